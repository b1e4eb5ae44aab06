//! Attribution: every submission is a touchpoint; a lead keeps its original one forever
//! and its latest one up to date, so marketing can credit both first and last touch.

use crate::ids::SubmissionId;
use crate::lead::LeadFields;
use crate::source::SourceName;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use time::OffsetDateTime;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Touchpoint {
    pub source: SourceName,
    /// The source's kind: `web_form`, `paid_ads`, `chat`, `social`, `event`, `partner`,
    /// `sales_tool`, `third_party`, `import` or `api`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub submission_id: SubmissionId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_medium: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_campaign: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utm_term: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub landing_page_url: Option<String>,
    /// The ad platform's ids: `campaign_id`, `adset_id`, `ad_id`, `creative_id`,
    /// `form_id`, `page_id`, … as the source's adapter or form sent them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ad_ids: BTreeMap<String, String>,
    /// Click ids: `gclid`, `fbclid`, `li_fat_id`, `msclkid`, `gbraid`, `wbraid`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub click_ids: BTreeMap<String, String>,
}

const CLICK_IDS: &[&str] = &["gclid", "gbraid", "wbraid", "fbclid", "li_fat_id", "msclkid", "ttclid"];
const AD_IDS: &[&str] =
    &["campaign_id", "adset_id", "adgroup_id", "ad_id", "creative_id", "form_id", "page_id", "keyword_id"];

impl Touchpoint {
    pub fn bare(source: SourceName, submission_id: SubmissionId, at: OffsetDateTime) -> Self {
        Self {
            source,
            channel: None,
            submission_id,
            at,
            utm_source: None,
            utm_medium: None,
            utm_campaign: None,
            utm_content: None,
            utm_term: None,
            referrer_url: None,
            landing_page_url: None,
            ad_ids: BTreeMap::new(),
            click_ids: BTreeMap::new(),
        }
    }

    /// The touchpoint a submission makes, with the campaign fields it carried.
    pub fn of_submission(
        source: SourceName,
        submission_id: SubmissionId,
        at: OffsetDateTime,
        fields: &LeadFields,
        custom: &Map<String, Value>,
    ) -> Self {
        // Adapters put the provider's ids under `touchpoint`; web forms (the embed script)
        // send click ids as plain fields, which land in `custom`.
        let nested = custom.get("touchpoint").and_then(Value::as_object);
        let pick = |names: &[&str]| -> BTreeMap<String, String> {
            names
                .iter()
                .filter_map(|name| {
                    let text = |v: Option<&Value>| {
                        match v? {
                            Value::String(s) => Some(s.trim().to_owned()),
                            Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        }
                        .filter(|t| !t.is_empty() && t.len() <= 500)
                    };
                    let value = text(nested.and_then(|t| t.get(*name))).or_else(|| text(custom.get(*name)))?;
                    Some(((*name).to_owned(), value))
                })
                .collect()
        };
        Self {
            ad_ids: pick(AD_IDS),
            click_ids: pick(CLICK_IDS),
            utm_source: fields.utm_source.clone(),
            utm_medium: fields.utm_medium.clone(),
            utm_campaign: fields.utm_campaign.clone(),
            utm_content: fields.utm_content.clone(),
            utm_term: fields.utm_term.clone(),
            referrer_url: fields.referrer_url.clone(),
            landing_page_url: fields.landing_page_url.clone(),
            ..Self::bare(source, submission_id, at)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attribution {
    /// The first touch: never overwritten, not even by a merge.
    pub original: Touchpoint,
    /// The most recent touch.
    pub latest: Touchpoint,
    pub touch_count: u32,
}

impl Attribution {
    pub fn first(touch: Touchpoint) -> Self {
        Self { original: touch.clone(), latest: touch, touch_count: 1 }
    }

    /// Records a later touch. A touch older than the latest one (a late retry, a backfill)
    /// still counts but does not displace the latest.
    pub fn record(&mut self, touch: Touchpoint) {
        self.touch_count = self.touch_count.saturating_add(1);
        if touch.at >= self.latest.at {
            self.latest = touch;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(secs).unwrap()
    }

    #[test]
    fn original_touch_is_kept_and_latest_follows_time() {
        let web = SourceName::parse("web").unwrap();
        let mut a = Attribution::first(Touchpoint::bare(SourceName::api(), SubmissionId::new(), at(100)));
        a.record(Touchpoint::bare(web.clone(), SubmissionId::new(), at(200)));
        a.record(Touchpoint::bare(SourceName::api(), SubmissionId::new(), at(150)));
        assert_eq!(a.original.source, SourceName::api());
        assert_eq!(a.latest.source, web);
        assert_eq!(a.touch_count, 3);
    }
}
