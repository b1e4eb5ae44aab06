//! Provider API clients for the fetch step: Facebook's Graph API (a lead by id) and
//! LinkedIn's Lead Sync API (lead form responses, one or a page).
//!
//! Contract: each call goes to a configurable base URL with the source's token and is
//! retried a bounded number of times, with exponential backoff, on 5xx, 429 and transport
//! errors or timeouts (a `Retry-After` in seconds is honoured, capped by the policy).
//! Other 4xx answers are final. Failure modes are the [`FetchError`] variants.

use serde_json::{Map, Value};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The provider answered with a final error status (or kept failing past the retries).
    #[error("provider answered {status}: {body}")]
    Status { status: u16, body: String },
    /// Connection, timeout or TLS failure after the retries.
    #[error("transport: {0}")]
    Transport(String),
    /// The answer was not the documented JSON.
    #[error("unexpected answer: {0}")]
    Decode(String),
}

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A small HTTP client shared by the provider calls.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    retry: RetryPolicy,
}

/// A reqwest client builder that can speak HTTPS. reqwest is built without a TLS crypto
/// provider (see the workspace `Cargo.toml`), so this installs ring's as the process
/// default first; when one is installed already, that one stays.
pub fn http_client() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

impl Client {
    pub fn new(retry: RetryPolicy) -> Result<Self, FetchError> {
        let http = http_client().timeout(retry.timeout).build().map_err(|e| FetchError::Transport(e.to_string()))?;
        Ok(Self { http, retry })
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.retry.base_delay.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        retry_after.unwrap_or(exp).min(self.retry.max_delay)
    }

    /// GETs a JSON object, retrying as the policy says. `build` makes a fresh request per
    /// attempt.
    async fn get_json(
        &self,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Map<String, Value>, FetchError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= self.retry.max_attempts.max(1);
            match build(&self.http).send().await {
                Ok(resp) => {
                    let status = resp.status();
                    if status.is_success() {
                        let v: Value = resp.json().await.map_err(|e| FetchError::Decode(e.to_string()))?;
                        return match v {
                            Value::Object(m) => Ok(m),
                            _ => Err(FetchError::Decode("expected a JSON object".into())),
                        };
                    }
                    let retryable = status.is_server_error() || status.as_u16() == 429;
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|h| h.to_str().ok())
                        .and_then(|s| s.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    if !retryable || last {
                        let body = resp.text().await.unwrap_or_default();
                        let body: String = body.chars().take(500).collect();
                        return Err(FetchError::Status { status: status.as_u16(), body });
                    }
                    tokio::time::sleep(self.backoff(attempt, retry_after)).await;
                }
                Err(e) => {
                    if last {
                        return Err(FetchError::Transport(e.to_string()));
                    }
                    tokio::time::sleep(self.backoff(attempt, None)).await;
                }
            }
        }
    }
}

fn join(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// Facebook Graph API.
pub mod facebook {
    use super::{Client, FetchError, join};
    use serde_json::{Map, Value};

    /// The Graph API version called; Meta versions every path.
    pub const GRAPH_API_VERSION: &str = "v21.0";

    /// The lead fields read ("Retrieving leads": `field_data`, `created_time`, the ad,
    /// ad set, campaign and form ids, `is_organic`, `platform`, consent checkboxes).
    pub const LEAD_FIELDS: &str = "id,created_time,field_data,ad_id,ad_name,adset_id,adset_name,campaign_id,campaign_name,form_id,is_organic,platform,partner_name,custom_disclaimer_responses";

    /// `GET {base}/{version}/{leadgen_id}?access_token=…&fields=…`.
    pub async fn fetch_lead(
        client: &Client,
        base_url: &str,
        token: &str,
        leadgen_id: &str,
    ) -> Result<Map<String, Value>, FetchError> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("access_token", token)
            .append_pair("fields", LEAD_FIELDS)
            .finish();
        let id: String = form_urlencoded::byte_serialize(leadgen_id.as_bytes()).collect();
        let url = format!("{}?{query}", join(base_url, &format!("{GRAPH_API_VERSION}/{id}")));
        let lead = client.get_json(|http| http.get(&url)).await?;
        if !lead.get("field_data").is_some_and(Value::is_array) {
            return Err(FetchError::Decode("lead without field_data".into()));
        }
        Ok(lead)
    }
}

/// Intercom REST API: a contact by id, for conversation notifications that name their
/// person by reference only.
pub mod intercom {
    use super::{Client, FetchError, join};
    use serde_json::{Map, Value};

    /// The `Intercom-Version` header sent: the contact model read is 2.x's.
    pub const INTERCOM_VERSION: &str = "2.11";

    /// `GET {base}/contacts/{id}` with the app's access token ("Retrieve a contact").
    pub async fn fetch_contact(
        client: &Client,
        base_url: &str,
        token: &str,
        contact_id: &str,
    ) -> Result<Map<String, Value>, FetchError> {
        let id: String = form_urlencoded::byte_serialize(contact_id.as_bytes()).collect();
        let url = join(base_url, &format!("contacts/{id}"));
        let contact = client
            .get_json(|http| {
                http.get(&url)
                    .bearer_auth(token)
                    .header("Intercom-Version", INTERCOM_VERSION)
                    .header("Accept", "application/json")
            })
            .await?;
        if contact.get("type").and_then(Value::as_str) != Some("contact") {
            return Err(FetchError::Decode("the answer is not a contact".into()));
        }
        Ok(contact)
    }
}

/// LinkedIn Lead Sync API (versioned REST, Rest.li 2.0).
pub mod linkedin {
    use super::{Client, FetchError, join};
    use serde_json::{Map, Value};

    /// The `LinkedIn-Version` header sent (YYYYMM); LinkedIn sunsets versions yearly.
    pub const LINKEDIN_VERSION: &str = "202509";
    /// Responses per page asked for.
    pub const PAGE_SIZE: u32 = 100;

    /// Who owns the lead forms: an ad account (sponsored leads) or an organization.
    #[derive(Clone, Debug)]
    pub enum Owner {
        SponsoredAccount(String),
        Organization(String),
    }

    /// One page of lead form responses and where the next starts (`None` at the end).
    #[derive(Clone, Debug, PartialEq)]
    pub struct Page {
        pub responses: Vec<Map<String, Value>>,
        pub next_cursor: Option<String>,
    }

    fn restli_encode(s: &str) -> String {
        // Rest.li 2.0 reserved characters inside a query value.
        s.replace('%', "%25").replace(':', "%3A").replace(',', "%2C").replace('(', "%28").replace(')', "%29")
    }

    fn headers(req: reqwest::RequestBuilder, token: &str) -> reqwest::RequestBuilder {
        req.bearer_auth(token).header("LinkedIn-Version", LINKEDIN_VERSION).header("X-Restli-Protocol-Version", "2.0.0")
    }

    /// The `leadFormResponses` owner finder: `GET {base}/rest/leadFormResponses?q=owner&
    /// owner=(sponsoredAccount:URN)&leadType=(leadType:SPONSORED)&start=N&count=M`. The
    /// cursor is the `start` offset; the next one is given while a full page came back and
    /// `paging.total` (when sent) is not reached.
    pub async fn fetch_form_responses(
        client: &Client,
        base_url: &str,
        token: &str,
        owner: &Owner,
        cursor: Option<&str>,
    ) -> Result<Page, FetchError> {
        let start: u64 = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
        let (owner_param, lead_type) = match owner {
            Owner::SponsoredAccount(urn) => (format!("(sponsoredAccount:{})", restli_encode(urn)), "SPONSORED"),
            Owner::Organization(urn) => (format!("(organization:{})", restli_encode(urn)), "COMPANY"),
        };
        // Rest.li values are pre-encoded, so the query string is assembled by hand.
        let url = format!(
            "{}?q=owner&owner={owner_param}&leadType=(leadType:{lead_type})&limitedToTestLeads=false&start={start}&count={PAGE_SIZE}",
            join(base_url, "rest/leadFormResponses")
        );
        let body = client.get_json(|http| headers(http.get(&url), token)).await?;
        let responses: Vec<Map<String, Value>> = body
            .get("elements")
            .and_then(Value::as_array)
            .ok_or_else(|| FetchError::Decode("answer without elements".into()))?
            .iter()
            .filter_map(|e| e.as_object().cloned())
            .collect();
        let total = body.get("paging").and_then(|p| p.get("total")).and_then(Value::as_u64);
        let next = start + responses.len() as u64;
        let more = responses.len() as u32 >= PAGE_SIZE && total.is_none_or(|t| next < t);
        Ok(Page { responses, next_cursor: more.then(|| next.to_string()) })
    }

    /// A lead form, whose questions say which standard field each answer is
    /// (`predefinedField`): `GET {base}/rest/leadForms/{id}`.
    pub async fn fetch_lead_form(
        client: &Client,
        base_url: &str,
        token: &str,
        form_id: &str,
    ) -> Result<Map<String, Value>, FetchError> {
        let url = join(base_url, &format!("rest/leadForms/{}", restli_encode(form_id)));
        client.get_json(|http| headers(http.get(&url), token)).await
    }

    /// The lead form id a response names in `versionedLeadGenFormUrn`
    /// (`urn:li:versionedLeadGenForm:(urn:li:leadGenForm:123,1)` → `123`).
    pub fn form_id(response: &Map<String, Value>) -> Option<String> {
        let urn = response.get("versionedLeadGenFormUrn")?.as_str()?;
        let rest = &urn[urn.find("urn:li:leadGenForm:")? + "urn:li:leadGenForm:".len()..];
        let id: String = rest.chars().take_while(|c| *c != ',' && *c != ')').collect();
        (!id.is_empty()).then_some(id)
    }

    /// One lead form response: `GET {base}/rest/leadFormResponses/{id}`.
    pub async fn fetch_form_response(
        client: &Client,
        base_url: &str,
        token: &str,
        response_id: &str,
    ) -> Result<Map<String, Value>, FetchError> {
        let url = join(base_url, &format!("rest/leadFormResponses/{}", restli_encode(response_id)));
        client.get_json(|http| headers(http.get(&url), token)).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_form_id_is_read_from_the_versioned_form_urn() {
        let resp = |urn: &str| json!({"versionedLeadGenFormUrn": urn}).as_object().cloned().unwrap();
        let id = super::linkedin::form_id(&resp("urn:li:versionedLeadGenForm:(urn:li:leadGenForm:123,1)"));
        assert_eq!(id.as_deref(), Some("123"));
        assert_eq!(super::linkedin::form_id(&resp("urn:li:somethingElse:9")), None);
        assert_eq!(super::linkedin::form_id(&serde_json::Map::new()), None);
    }
}
