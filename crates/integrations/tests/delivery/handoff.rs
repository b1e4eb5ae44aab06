//! The richer handoff: field maps, owners and picklist value maps reaching fake CRMs that
//! check what they are sent as the real ones do (HubSpot refuses a property the portal
//! lacks or an option its enumeration does not have; Salesforce an unknown field or a
//! value outside a restricted picklist), and Slack worded per event for the owner.

use super::support::{Request, Response, Server};
use super::{client, delivery, hubspot, lead, salesforce, slack, webhook};
use leadflow_integrations::delivery::{Outcome, deliver};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A lead as the API shows it, with an owner, a score, a stage and both touches.
fn owned_lead(owner: &str) -> Value {
    let mut l = lead();
    l["owner"] = json!(owner);
    l["score"] = json!(42);
    l["lifecycle_stage"] = json!("mql");
    l["industry"] = json!("SaaS");
    l["custom"] = json!({"budget": 5000});
    l["attribution"] = json!({
        "original": {"source": "webinar", "submission_id": "s1", "at": "2026-01-01T00:00:00Z"},
        "latest": {"source": "pricing-form", "submission_id": "s2", "at": "2026-02-01T00:00:00Z",
                   "utm_source": "google", "utm_campaign": "spring"},
        "touch_count": 2
    });
    l
}

// ---- HubSpot -----------------------------------------------------------------------

/// A portal with HubSpot's default contact properties, the custom ones `created`, the
/// default `lifecyclestage` options and one owner (id 71234567). Anything else is
/// refused as HubSpot does: 400 VALIDATION_ERROR naming the property.
async fn hubspot_portal(created: &'static [&'static str]) -> Server {
    const DEFAULTS: &[&str] = &[
        "email",
        "firstname",
        "lastname",
        "phone",
        "company",
        "jobtitle",
        "website",
        "industry",
        "city",
        "state",
        "country",
        "zip",
        "address",
        "hs_lead_status",
        "lifecyclestage",
        "hubspot_owner_id",
    ];
    const STAGES: &[&str] = &[
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    ];
    Server::start(move |req: &Request, _| {
        let input = req.json()["inputs"][0].clone();
        let Some(properties) = input["properties"].as_object() else {
            return Response::json(
                400,
                json!({"status": "error", "message": "Invalid input JSON", "category": "VALIDATION_ERROR"}),
            );
        };
        for (name, value) in properties {
            let problem = if !DEFAULTS.contains(&name.as_str()) && !created.contains(&name.as_str()) {
                Some((format!("Property \"{name}\" does not exist"), "PROPERTY_DOESNT_EXIST"))
            } else if !value.is_string() {
                Some((format!("{value} is not a valid string for {name}"), "INVALID_STRING"))
            } else if name == "lifecyclestage" && !STAGES.contains(&value.as_str().unwrap_or_default()) {
                Some((format!("{value} was not one of the allowed options"), "INVALID_OPTION"))
            } else if name == "hubspot_owner_id" && value != "71234567" {
                Some((format!("{value} is not a valid owner id"), "INVALID_OWNER_ID"))
            } else {
                None
            };
            if let Some((message, error)) = problem {
                let detail = json!([{"isValid": false, "message": message, "error": error, "name": name}]);
                return Response::json(
                    400,
                    json!({
                        "status": "error",
                        "message": format!("Property values were not valid: {detail}"),
                        "correlationId": "2c4d7c1e-0000-4000-8000-000000000001",
                        "category": "VALIDATION_ERROR"
                    }),
                );
            }
        }
        Response::json(
            200,
            json!({
                "status": "COMPLETE",
                "results": [{"id": "51", "new": true, "properties": input["properties"]}],
                "startedAt": "2026-01-01T00:00:00Z", "completedAt": "2026-01-01T00:00:01Z"
            }),
        )
    })
    .await
}

const LEADFLOW_PROPERTIES: &[&str] =
    &["leadflow_score", "leadflow_original_source", "leadflow_latest_campaign", "leadflow_latest_utm_source", "budget"];

#[tokio::test]
async fn hubspot_receives_owner_score_stage_attribution_and_custom_fields_through_the_maps() {
    let portal = hubspot_portal(LEADFLOW_PROPERTIES).await;
    let mut dest = hubspot(&portal.url);
    dest.fields = strings(&[
        ("score", "leadflow_score"),
        ("lifecycle_stage", "lifecyclestage"),
        ("attribution.original.source", "leadflow_original_source"),
        ("attribution.latest.utm_campaign", "leadflow_latest_campaign"),
        ("attribution.latest.utm_source", "leadflow_latest_utm_source"),
        ("custom.budget", "budget"),
    ]);
    dest.values = BTreeMap::from([(
        "lifecyclestage".to_owned(),
        strings(&[("mql", "marketingqualifiedlead"), ("sql", "salesqualifiedlead")]),
    )]);
    dest.owners = strings(&[("ana@example.com", "71234567")]);

    let attempt = deliver(&client(vec![dest]), &delivery("hubspot", owned_lead("ana@example.com"))).await;
    assert!(matches!(attempt.outcome, Outcome::Delivered { status: 200, .. }), "{attempt:?}");
    let sent = &portal.requests()[0].json()["inputs"][0]["properties"];
    assert_eq!(sent["hubspot_owner_id"], "71234567");
    assert_eq!(sent["leadflow_score"], "42");
    assert_eq!(sent["lifecyclestage"], "marketingqualifiedlead");
    assert_eq!(sent["leadflow_original_source"], "webinar");
    assert_eq!(sent["leadflow_latest_campaign"], "spring");
    assert_eq!(sent["leadflow_latest_utm_source"], "google");
    assert_eq!(sent["budget"], "5000");
    assert_eq!(sent["email"], "ada@example.com", "the built-in table still goes");
}

#[tokio::test]
async fn without_a_field_map_hubspot_gets_only_properties_every_portal_has() {
    // A portal where nobody created leadflow's properties: the defaults must not break it.
    let portal = hubspot_portal(&[]).await;
    let attempt =
        deliver(&client(vec![hubspot(&portal.url)]), &delivery("hubspot", owned_lead("ana@example.com"))).await;
    assert!(matches!(attempt.outcome, Outcome::Delivered { status: 200, .. }), "{attempt:?}");
    let sent = portal.requests()[0].json()["inputs"][0]["properties"].clone();
    for absent in ["hubspot_owner_id", "lifecyclestage", "leadflow_score"] {
        assert!(sent.get(absent).is_none(), "{absent} sent without a map: {sent}");
    }

    // What the defaults avoid: a map naming a property the portal lacks is refused.
    let mut dest = hubspot(&portal.url);
    dest.fields = strings(&[("score", "leadflow_score")]);
    let refused = deliver(&client(vec![dest]), &delivery("hubspot", owned_lead("ana@example.com"))).await;
    let Outcome::DeadLetter { status: Some(400), reason, .. } = refused.outcome else { panic!("{refused:?}") };
    assert!(reason.contains("PROPERTY_DOESNT_EXIST"), "{reason}");
}

#[tokio::test]
async fn a_rep_without_a_crm_user_is_delivered_without_an_owner_and_the_attempt_says_so() {
    let portal = hubspot_portal(&[]).await;
    let mut dest = hubspot(&portal.url);
    dest.owners = strings(&[("ana@example.com", "71234567")]);
    let attempt = deliver(&client(vec![dest]), &delivery("hubspot", owned_lead("ben@example.com"))).await;
    assert!(matches!(attempt.outcome, Outcome::Delivered { status: 200, .. }), "{attempt:?}");
    assert!(portal.requests()[0].json()["inputs"][0]["properties"].get("hubspot_owner_id").is_none());
    let excerpt = attempt.request_excerpt.unwrap_or_default();
    assert!(
        excerpt.ends_with(
            "# not sent: owner \"ben@example.com\" has no user in [destinations.owners]: hubspot_owner_id not sent"
        ),
        "{excerpt}"
    );
}

// ---- Salesforce --------------------------------------------------------------------

/// Token endpoint and Lead upsert for an org whose Lead has the standard fields and
/// `Leadflow_Score__c`, with restricted picklists (`LeadSource`, `Status`, `Industry`)
/// and one active user. Anything else is refused as Salesforce does.
async fn salesforce_org() -> Server {
    Server::start(|req: &Request, _| {
        if req.path == "/services/oauth2/token" {
            return Response::json(200, json!({"access_token": "tok-1", "token_type": "Bearer",
                "instance_url": "https://example.my.salesforce.com", "issued_at": "1278448832702"}));
        }
        let picklist = |field: &str| -> Option<&'static [&'static str]> {
            match field {
                "LeadSource" => Some(&["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"]),
                "Status" => Some(&["Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted"]),
                "Industry" => Some(&["Technology", "Finance", "Healthcare", "Other"]),
                _ => None,
            }
        };
        const FIELDS: &[&str] = &[
            "FirstName", "LastName", "Email", "Phone", "Company", "Title", "City", "Country",
            "NumberOfEmployees", "LeadSource", "Status", "Industry", "OwnerId", "Leadflow_Score__c",
        ];
        let body = req.json();
        for (field, value) in body.as_object().into_iter().flatten() {
            if !FIELDS.contains(&field.as_str()) {
                return Response::json(400, json!([{"message": format!("No such column '{field}' on sobject of type Lead"), "errorCode": "INVALID_FIELD"}]));
            }
            if let Some(allowed) = picklist(field)
                && !allowed.contains(&value.as_str().unwrap_or_default())
            {
                let text = value.as_str().unwrap_or_default();
                return Response::json(400, json!([{"message": format!("{field}: bad value for restricted picklist field: {text}"), "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "fields": [field]}]));
            }
            if field == "OwnerId" && value != "0055e000001AbCdAAK" {
                return Response::json(400, json!([{"message": "Owner ID: owner cannot be blank", "errorCode": "INVALID_CROSS_REFERENCE_KEY", "fields": ["OwnerId"]}]));
            }
        }
        Response::json(201, json!({"id": "00Q5e00000AbCdE", "success": true, "errors": [], "created": true}))
    })
    .await
}

#[tokio::test]
async fn salesforce_receives_the_owner_id_and_value_mapped_picklists() {
    let org = salesforce_org().await;
    let mut dest = salesforce(&org.url);
    dest.fields = strings(&[("lifecycle_stage", "Status"), ("score", "Leadflow_Score__c")]);
    dest.values = BTreeMap::from([
        ("LeadSource".to_owned(), strings(&[("webinar", "Partner Referral")])),
        ("Status".to_owned(), strings(&[("mql", "Working - Contacted")])),
        ("Industry".to_owned(), strings(&[("saas", "Technology")])),
    ]);
    dest.owners = strings(&[("ana@example.com", "0055e000001AbCdAAK")]);

    let attempt = deliver(&client(vec![dest.clone()]), &delivery("salesforce", owned_lead("ana@example.com"))).await;
    assert!(matches!(attempt.outcome, Outcome::Delivered { status: 201, .. }), "{attempt:?}");
    let body = org.requests()[1].json();
    assert_eq!(body["OwnerId"], "0055e000001AbCdAAK");
    assert_eq!(body["LeadSource"], "Partner Referral");
    assert_eq!(body["Status"], "Working - Contacted");
    assert_eq!(body["Industry"], "Technology");
    assert_eq!(body["Leadflow_Score__c"], 42, "a number field gets a number");

    // Without the value maps, leadflow's own words miss the restricted picklist.
    dest.values.clear();
    let refused = deliver(&client(vec![dest]), &delivery("salesforce", owned_lead("ana@example.com"))).await;
    let Outcome::DeadLetter { status: Some(400), reason, .. } = refused.outcome else { panic!("{refused:?}") };
    assert!(reason.contains("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"), "{reason}");
}

// ---- Slack and webhooks: the owner hears of a returning lead -----------------------

fn returned(payload: &mut Value, detail: Value) -> leadflow_integrations::delivery::Delivery {
    payload["returned"] = detail;
    let mut d = delivery("slack", payload.clone());
    d.event_type = "lead.returned".to_owned();
    d
}

#[tokio::test]
async fn slack_tells_the_owner_in_words_that_fit_each_event() {
    let server = Server::start(|_, _| Response::new(200, "ok")).await;
    let mut dest = slack(&server.url);
    dest.owners = strings(&[("ana@example.com", "U0ANA1234")]);
    dest.rate_limit = Some(leadflow_integrations::delivery::RateLimit { per_second: 100.0, burst: 10 });
    let client = client(vec![dest]);
    let mut payload = owned_lead("ana@example.com");

    let mut created = delivery("slack", payload.clone());
    created.event_type = "lead.created".to_owned();
    let mut mql = delivery("slack", payload.clone());
    mql.event_type = "lead.mql".to_owned();
    let came_back = returned(&mut payload, json!({"via": "submission", "source": "pricing-form"}));
    let engaged = returned(&mut payload, json!({"via": "engagement", "previous_score": 30, "score": 42}));
    for d in [&created, &mql, &came_back, &engaged] {
        let sent = deliver(&client, d).await;
        assert!(matches!(sent.outcome, Outcome::Delivered { status: 200, .. }), "{sent:?}");
    }
    let texts: Vec<String> =
        server.requests().iter().map(|r| r.json()["text"].as_str().unwrap_or_default().to_owned()).collect();
    let who = "Ada Lovelace from Analytical Engines (ada@example.com)";
    assert_eq!(
        texts,
        [
            format!("New lead: {who} — owner <@U0ANA1234>."),
            format!("Lead qualified: {who} reached MQL (score 42) — owner <@U0ANA1234>."),
            format!("Returning lead: {who} submitted pricing-form again — owner <@U0ANA1234>."),
            format!("Renewed interest: {who} is active again (score 30 → 42) — owner <@U0ANA1234>."),
        ]
    );
}

#[tokio::test]
async fn a_webhook_hears_of_a_returning_lead_with_its_owner_and_why() {
    let server = Server::start(|_, _| Response::new(204, "")).await;
    let client = client(vec![webhook("hook", &server.url)]);
    let mut payload = owned_lead("ana@example.com");
    let mut d = returned(&mut payload, json!({"via": "submission", "source": "pricing-form"}));
    d.destination = "hook".to_owned();
    let sent = deliver(&client, &d).await;
    assert!(matches!(sent.outcome, Outcome::Delivered { status: 204, .. }), "{sent:?}");
    let envelope = server.requests()[0].json();
    assert_eq!(envelope["type"], "lead.returned");
    assert_eq!(envelope["data"]["owner"], "ana@example.com");
    assert_eq!(envelope["data"]["returned"], json!({"via": "submission", "source": "pricing-form"}));
}
