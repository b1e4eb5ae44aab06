//! How a source's payloads are verified and parsed. The one list of adapters: the
//! configuration reads it here and the provider protocols match on it.

/// `json` (the standard fields, checked by the API's bearer keys) or one provider's
/// protocol (`adapter = "…"` in the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Adapter {
    /// The standard fields as JSON.
    Json,
    WebForm,
    FacebookLeadAds,
    GoogleAdsLeadForm,
    LinkedinLeadGen,
    Typeform,
    HubspotForms,
    Calendly,
    ZoomWebinar,
    Intercom,
    /// Drift chat: messages, identified contacts and their bot's answers.
    Drift,
    Unbounce,
    Webflow,
    Jotform,
    Tally,
    /// Inquiries by email: raw MIME or Mailgun, SendGrid and Postmark inbound-parse posts.
    Email,
    /// Any tool that signs a JSON body (one lead or a list) with a shared secret.
    SignedJson,
}

impl Adapter {
    /// Every adapter, in the contract's order.
    pub const ALL: [Adapter; 17] = [
        Adapter::Json,
        Adapter::WebForm,
        Adapter::FacebookLeadAds,
        Adapter::GoogleAdsLeadForm,
        Adapter::LinkedinLeadGen,
        Adapter::Typeform,
        Adapter::HubspotForms,
        Adapter::Calendly,
        Adapter::ZoomWebinar,
        Adapter::Intercom,
        Adapter::Drift,
        Adapter::Unbounce,
        Adapter::Webflow,
        Adapter::Jotform,
        Adapter::Tally,
        Adapter::Email,
        Adapter::SignedJson,
    ];

    /// The adapters that speak a provider's protocol on `POST /v1/hooks/{source}`: all
    /// but `json`, whose leads come to `POST /v1/leads`.
    pub fn providers() -> impl Iterator<Item = Adapter> {
        Self::ALL.into_iter().filter(Self::is_provider)
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::WebForm => "web_form",
            Self::FacebookLeadAds => "facebook_lead_ads",
            Self::GoogleAdsLeadForm => "google_ads_lead_form",
            Self::LinkedinLeadGen => "linkedin_lead_gen",
            Self::Typeform => "typeform",
            Self::HubspotForms => "hubspot_forms",
            Self::Calendly => "calendly",
            Self::ZoomWebinar => "zoom_webinar",
            Self::Intercom => "intercom",
            Self::Drift => "drift",
            Self::Unbounce => "unbounce",
            Self::Webflow => "webflow",
            Self::Jotform => "jotform",
            Self::Tally => "tally",
            Self::Email => "email",
            Self::SignedJson => "signed_json",
        }
    }

    /// Whether payloads come through a provider's webhook (verified and standardized by
    /// the provider's adapter) rather than as the standard fields.
    pub fn is_provider(&self) -> bool {
        *self != Self::Json
    }

    /// Providers that sign their requests: without the secret nothing they send can be
    /// trusted, so the source is unusable. Web forms, Unbounce and Jotform do not sign (a
    /// secret there is an optional `?token=`), `json` uses bearer keys, and of the
    /// inbound-email services only Mailgun signs (a secret there is Mailgun's signing key,
    /// or the shared key or password SendGrid and Postmark posts must carry).
    pub fn needs_secret(&self) -> bool {
        !matches!(self, Self::Json | Self::WebForm | Self::Unbounce | Self::Jotform | Self::Email)
    }

    /// Whether the adapter maps its payloads onto the standard fields itself. A `json`
    /// or `signed_json` payload is a lead object as its sender wrote it: the generic
    /// mapper (synonyms and the source's `[sources.mapping]`) reads it.
    pub fn standardizes(&self) -> bool {
        !matches!(self, Self::Json | Self::SignedJson)
    }

    /// Providers that notify with an id only; the lead is read back from their API.
    pub fn fetches(&self) -> bool {
        matches!(self, Self::FacebookLeadAds | Self::LinkedinLeadGen)
    }

    /// Providers whose notifications sometimes name the person by id only: with a token
    /// (`token_env`), the person is read back from their API; without one, such a
    /// notification is quarantined with the reason.
    pub fn may_fetch(&self) -> bool {
        self.fetches() || matches!(self, Self::Intercom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_json_is_no_provider() {
        for a in Adapter::ALL {
            assert_eq!(Adapter::parse(a.as_str()), Some(a));
        }
        assert_eq!(Adapter::parse("fax"), None);
        let providers: Vec<Adapter> = Adapter::providers().collect();
        assert_eq!(providers.len(), Adapter::ALL.len() - 1);
        assert!(!providers.contains(&Adapter::Json));
    }
}
