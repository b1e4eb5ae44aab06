//! The whole file through [`parse`]: each section read, every problem located.

use super::*;
use crate::deliver::EventType;
use crate::feedback::{FeedbackStatus, MappedStatus};
use crate::resolve::merge::Rule;
use std::time::Duration;

#[test]
fn empty_file_gives_the_defaults() {
    assert_eq!(parse("").unwrap(), Config::default());
}

#[test]
fn reads_every_section() {
    let c = parse(
        r#"
[server]
listen = "0.0.0.0:9000"
body_limit_bytes = 2048
request_timeout_secs = 5

[database]
url = "sqlite:///var/lib/leadflow.db"
max_connections = 4

[[sources]]
name = "website"
adapter = "json"
secret_env = "WEBSITE_SECRET"
"#,
    )
    .unwrap();
    assert_eq!(c.server.listen.port(), 9000);
    assert_eq!(c.server.body_limit_bytes, 2048);
    assert_eq!(c.server.request_timeout, Duration::from_secs(5));
    assert_eq!(c.database.url, "sqlite:///var/lib/leadflow.db");
    assert_eq!(c.database.max_connections, 4);
    let names: Vec<&str> = c.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["api", "website"]);
    assert_eq!(c.sources[1].secret_env.as_deref(), Some("WEBSITE_SECRET"));
}

#[test]
fn reports_every_error_with_its_location() {
    let errs = parse(
        r#"[server]
listen = "nowhere"
body_limit_bytes = -1

[[sources]]
name = "Bad Name"
adapter = "typeform"

[[sources]]
adapter = "carrier-pigeon"
colour = "blue"

[extras]
"#,
    )
    .unwrap_err();
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let expect = [
        "2:10: server.listen",
        "3:20: server.body_limit_bytes",
        "6:8: sources[0].name",
        "7:11: sources[0].adapter",
        "10:11: sources[1].adapter",
        "11:10: sources[1].colour",
        "13:1: extras",
    ];
    for e in expect {
        assert!(shown.iter().any(|s| s.starts_with(e)), "missing {e:?} in {shown:#?}");
    }
}

#[test]
fn a_source_mapping_is_read_and_its_errors_located() {
    let c = parse(
        "[[sources]]\nname = \"typeform\"\n[sources.mapping]\nemail = \"answers[0].email\"\nignore = [\"token\"]\n",
    )
    .unwrap();
    assert!(c.sources[1].mapping.is_some());
    let errs = parse("[[sources]]\nname = \"x\"\n[sources.mapping]\nemial = \"a\"\nphone = \"a[\"\n").unwrap_err();
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert!(shown.iter().any(|e| e.starts_with("4:1: sources[0].mapping.emial")), "{shown:#?}");
    assert!(shown.iter().any(|e| e.starts_with("5:") && e.contains("sources[0].mapping.phone")), "{shown:#?}");
}

#[test]
fn required_fields_are_standard_fields() {
    let c = parse("[[sources]]\nname = \"x\"\nrequired = [\"email\", \"company|website\"]\n").unwrap();
    assert_eq!(c.sources[1].required, vec![vec!["email".to_owned()], vec!["company".to_owned(), "website".to_owned()]]);
    let errs = parse("[[sources]]\nname = \"x\"\nrequired = [\"email\", \"shoe_size\"]\n").unwrap_err();
    assert_eq!(errs[0].key, "sources[0].required[1]");
    assert_eq!(errs[0].line, 3);
}

#[test]
fn an_industry_picklist_replaces_the_default() {
    let c = parse("[picklists.industry]\n\"Software\" = [\"SaaS\", \"Tech\"]\n\"Retail\" = []\n").unwrap();
    assert_eq!(c.picklists.industry.match_value("saas"), Some("Software"));
    assert_eq!(c.picklists.industry.match_value("Banking"), None);
    let errs = parse("[picklists.industry]\n\"A\" = [\"x\"]\n\"B\" = [\"X\"]\n[picklists.colour]\n").unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
}

#[test]
fn survivorship_rules_are_configurable_and_checked() {
    let c = parse(
        "[matching.survivorship]\ndefault = \"newest\"\ncompany = \"source_priority\"\nsource_priority = [\"crm\", \"api\"]\n",
    )
    .unwrap();
    let rules = &c.matching.survivorship;
    assert_eq!(rules.default, Rule::Newest);
    assert_eq!(rules.rule("company"), Rule::SourcePriority);
    assert_eq!(rules.rule("phone"), Rule::Newest);
    assert_eq!(rules.source_priority, vec![SourceName::parse("crm").unwrap(), SourceName::api()]);
    let errs =
        parse("[matching.survivorship]\nshoe_size = \"newest\"\ncompany = \"loudest\"\nphone = \"source_priority\"\n")
            .unwrap_err();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(errs.len(), 3, "{text:?}");
    assert!(text[0].starts_with("2:13: matching.survivorship.shoe_size"), "{text:?}");
    assert!(text.iter().any(|e| e.contains("need a source_priority list")), "{text:?}");
}

#[test]
fn a_source_declares_its_channel_or_takes_its_adapters() {
    let c = parse("[[sources]]\nname = \"fair\"\nchannel = \"event\"\n[[sources]]\nname = \"crm\"\n").unwrap();
    let channel = |n: &str| c.source(&SourceName::parse(n).unwrap()).unwrap().channel();
    assert_eq!((channel("fair"), channel("crm"), channel("api")), ("event", "api", "api"));
    let errs = parse("[[sources]]\nname = \"x\"\nchannel = \"billboard\"\n").unwrap_err();
    assert!(errs[0].to_string().starts_with("3:11: sources[0].channel"), "{errs:?}");
}

#[test]
fn scoring_and_lifecycle_sections_are_read_and_located() {
    let c = parse("[scoring]\nmql_threshold = 40\n[[scoring.rules]]\nname = \"vp\"\nwhen = { derived = \"seniority\", is = \"vp\" }\npoints = 10\n").unwrap();
    assert_eq!(c.engagement.scoring.mql_threshold, 40);
    assert_eq!(c.engagement.scoring.rules.len(), 1);
    assert!(c.engagement.contract.has_stage("mql"));
    let errs =
        parse("[scoring]\nmql_threshold = \"high\"\n[lifecycle]\nstages = [\"new\", \"nowhere\"]\n").unwrap_err();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert!(text.iter().any(|e| e.starts_with("2:") && e.contains("mql_threshold")), "{text:?}");
    assert!(text.iter().any(|e| e.contains("lifecycle")), "{text:?}");
}

#[test]
fn matching_thresholds_are_configurable_and_checked() {
    assert!(parse("").unwrap().matching.fuzzy, "fuzzy matching is on by default");
    let c = parse("[matching]\nfuzzy = false\nauto_merge = 20\nreview = 12.5\n").unwrap();
    assert!(!c.matching.fuzzy);
    assert_eq!((c.matching.model.thresholds().auto_merge, c.matching.model.thresholds().review), (20.0, 12.5));
    let errs = parse("[matching]\nauto_merge = 5\nreview = 9\nfuzzy = \"yes\"\n").unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
}

#[test]
fn email_provider_rules_are_configurable_per_domain() {
    let c = parse(
        r#"
[matching.email]
plus_tag_domains = ["Acme.com"]
[[matching.email.providers]]
domains = ["yandex.ru", "ya.ru"]
"#,
    )
    .unwrap();
    let rules = c.matching.model.email_rules();
    let key = |e: &str| crate::matching::email_match_key(e, rules);
    assert_eq!(key("kim+webinar@acme.com"), "kim@acme.com");
    assert_eq!(key("ivan+news@ya.ru"), "ivan@yandex.ru", "a provider's domains share one key");
    assert_eq!(key("Jane.Doe+x@googlemail.com"), "janedoe@gmail.com", "the built-in providers remain");
    assert_eq!(key("kim+webinar@globex.com"), "kim+webinar@globex.com", "other domains keep their tags");
    let errs = parse(
        "[matching.email]\nplus_tag_domains = [\"not a domain\"]\n[[matching.email.providers]]\nignore_dots = 1\n",
    )
    .unwrap_err();
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(errs.len(), 3, "{text:?}");
    assert!(text.iter().any(|e| e.contains("providers[0]") && e.contains("domains")), "{text:?}");
}

#[test]
fn duplicate_source_names_are_refused() {
    let errs = parse("[[sources]]\nname = \"web\"\n[[sources]]\nname = \"web\"\n").unwrap_err();
    assert_eq!((errs[0].line, errs[0].key.as_str()), (4, "sources[1].name"));
}

#[test]
fn every_contract_adapter_is_accepted_with_its_keys() {
    let c = parse(
        r#"
[[sources]]
name = "fb"
adapter = "facebook_lead_ads"
secret_env = "FB_APP_SECRET"
verify_token_env = "FB_VERIFY"
token_env = "FB_TOKEN"
api_base_url = "http://127.0.0.1:9/"
mode = "batch"
batch_interval_secs = 60

[[sources]]
name = "site"
adapter = "web_form"
allowed_origins = ["https://www.example.com", "http://localhost:3000"]
honeypot_field = "nickname"
min_submit_secs = 2
rate_limit_per_minute = 5
"#,
    )
    .unwrap();
    let fb = &c.sources[1];
    assert_eq!(fb.adapter, Adapter::FacebookLeadAds);
    assert_eq!(fb.api_base_url.as_deref(), Some("http://127.0.0.1:9"));
    assert_eq!((fb.mode, fb.batch_interval), (Mode::Batch, Duration::from_secs(60)));
    let site = &c.sources[2];
    assert_eq!(site.mode, Mode::Realtime);
    assert_eq!(site.batch_interval, DEFAULT_BATCH_INTERVAL);
    assert_eq!(site.allowed_origins, ["https://www.example.com", "http://localhost:3000"]);
    assert_eq!((site.honeypot_field.as_deref(), site.min_submit_secs), (Some("nickname"), Some(2)));
    assert_eq!(site.rate_limit_per_minute, 5);
    for a in Adapter::ALL {
        assert_eq!(Adapter::parse(a.as_str()), Some(a));
    }
}

#[test]
fn an_adapter_without_what_it_needs_is_reported_at_the_adapter() {
    let errs = parse(
        r#"[[sources]]
name = "tf"
adapter = "typeform"

[[sources]]
name = "fb"
adapter = "facebook_lead_ads"
secret_env = "FB"

[[sources]]
name = "web"
adapter = "web_form"
allowed_origins = ["https://x.example/path"]
mode = "sometimes"

[[sources]]
name = "hs"
adapter = "hubspot_forms"
secret_env = "HS"
allowed_origins = ["https://x.example"]
"#,
    )
    .unwrap_err();
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let expect = [
        "3:11: sources[0].adapter: adapter \"typeform\" verifies signatures: set secret_env",
        "7:11: sources[1].adapter: adapter \"facebook_lead_ads\" reads leads from the provider's API: set token_env",
        "7:11: sources[1].adapter: adapter \"facebook_lead_ads\" answers the hub.challenge: set verify_token_env",
        "13:20: sources[2].allowed_origins[0]",
        "14:8: sources[2].mode",
        "20:19: sources[3].allowed_origins",
    ];
    for e in expect {
        assert!(shown.iter().any(|s| s.starts_with(e)), "missing {e:?} in {shown:#?}");
    }
    assert_eq!(shown.len(), expect.len(), "{shown:#?}");
}

#[test]
fn routing_is_read_and_names_configured_sources() {
    let text = "[[sources]]\nname = \"demo\"\n\n[routing]\nfallback_owner = \"queue\"\npriority_sources = [\"demo\", \"chat\"]\n";
    let shown: Vec<String> = parse(text).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["6:20: routing.priority_sources: \"chat\" is not a configured source"]);
    let config = parse(&text.replace(", \"chat\"", "")).unwrap();
    assert_eq!(config.rules().routing.fallback_owner.as_deref(), Some("queue"));
    assert!(config.routing.is_enabled() && !Config::default().routing.is_enabled());
    let bad = parse("[routing]\nfallback_owner = 3\n").unwrap_err();
    assert_eq!(
        bad[0].to_string(),
        "2:18: routing.fallback_owner: must be a non-empty string: a rep's id as the CRM knows them"
    );
}

#[test]
fn a_linkedin_pull_needs_an_owner_and_only_linkedin_pulls() {
    let errs = parse(
        r#"[[sources]]
name = "li"
adapter = "linkedin_lead_gen"
secret_env = "LI"
token_env = "LI_TOKEN"
pull_interval_secs = 300

[[sources]]
name = "li2"
adapter = "linkedin_lead_gen"
secret_env = "LI"
token_env = "LI_TOKEN"
pull_interval_secs = 0
linkedin_owner = "urn:li:person:1"

[[sources]]
name = "tf"
adapter = "typeform"
secret_env = "TF"
pull_interval_secs = 60
"#,
    )
    .unwrap_err();
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    let expect = [
        "6:22: sources[0].pull_interval_secs: a pull reads the forms of one owner: set linkedin_owner",
        "13:22: sources[1].pull_interval_secs: must be a positive integer",
        "14:18: sources[1].linkedin_owner: must be urn:li:sponsoredAccount:ID or urn:li:organization:ID",
        "20:22: sources[2].pull_interval_secs: only linkedin_lead_gen sources take this key",
    ];
    for e in expect {
        assert!(shown.iter().any(|s| s.starts_with(e)), "missing {e:?} in {shown:#?}");
    }
    assert_eq!(shown.len(), expect.len(), "{shown:#?}");

    let config = parse(
        r#"[[sources]]
name = "li"
adapter = "linkedin_lead_gen"
secret_env = "LI"
token_env = "LI_TOKEN"
pull_interval_secs = 300
linkedin_owner = "urn:li:sponsoredAccount:42"
"#,
    )
    .unwrap();
    let li = config.source(&SourceName::parse("li").unwrap()).unwrap();
    assert_eq!(li.pull_interval, Some(Duration::from_secs(300)));
    assert_eq!(li.linkedin_owner.as_deref(), Some("urn:li:sponsoredAccount:42"));
}

#[test]
fn origins_are_scheme_host_and_port() {
    assert_eq!(origin_of("https://www.Example.com/contact?x=1").as_deref(), Some("https://www.example.com"));
    assert_eq!(origin_of("http://localhost:3000").as_deref(), Some("http://localhost:3000"));
    assert_eq!(origin_of("javascript:alert(1)"), None);
    assert_eq!(origin_of("https://user@evil.example"), None);
    assert_eq!(origin_of("/relative"), None);
}

#[test]
fn destinations_are_read_with_their_subscriptions() {
    let config = parse(
        r#"
[delivery]
timeout = "2s"
concurrency = 8

[[destinations]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/in"
secret_env = "HOOK_SECRET"
events = ["created", "mql"]
required_fields = ["company"]
retry = ["0s", "500ms", "1m"]
rate_limit = { per_second = 5.0, burst = 2 }
"#,
    )
    .unwrap();
    assert_eq!(config.delivery, DeliverySettings { timeout: Duration::from_secs(2), concurrency: 8 });
    let d = &config.destinations[0];
    assert_eq!((d.name.as_str(), d.kind.as_str()), ("hook", "webhook"));
    assert_eq!(d.events, [EventType::Created, EventType::Mql]);
    assert_eq!(d.retry.as_deref(), Some(&[Duration::ZERO, Duration::from_millis(500), Duration::from_secs(60)][..]));
    assert_eq!(d.rate_limit, Some((5.0, 2)));
    assert_eq!(d.settings.get("secret_env").map(String::as_str), Some("HOOK_SECRET"));
    assert!(!config.rules().outbox.is_empty());
}

#[test]
fn destination_errors_are_located_and_secrets_stay_out_of_the_file() {
    let errors = parse(
        r#"
[[destinations]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/in"
secret_env = "whsec_abc"
events = ["created", "bought"]
retry = ["5 minutes"]

[[destinations]]
name = "crm"
type = "pipedrive"
"#,
    )
    .unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        ["destinations[0].secret_env", "destinations[0].events[1]", "destinations[0].retry[0]", "destinations[1].type"]
    );
    assert!(errors.iter().all(|e| e.line > 1));
}

#[test]
fn crm_destinations_take_feedback_with_their_mappings() {
    let config = parse(
        r#"
[feedback]
stages = { converted = "sql" }
reasons = { "Price" = "no_budget" }

[[destinations]]
name = "hs"
type = "hubspot"
token_env = "HS_TOKEN"
[destinations.feedback]
secret_env = "HS_APP_SECRET"
portal_id = 62515
reason_field = "unqualified_reason"
statuses = { "CUSTOM_DQ" = "disqualified:not_a_fit", "NEW" = "accepted" }
reasons = { "Too small" = "not_a_fit" }

[[destinations]]
name = "sf"
type = "salesforce"
base_url = "https://x.my.salesforce.com"
token_url = "https://login.salesforce.com/services/oauth2/token"
client_id = "id"
client_secret_env = "SF_SECRET"
api_version = "62.0"
feedback = { secret_env = "SF_OM_TOKEN", organization_id = "00D000000000001AAA" }
"#,
    )
    .unwrap();
    assert_eq!(config.feedback.stage(FeedbackStatus::Converted, &config.engagement.contract).as_deref(), Some("sql"));
    assert_eq!(config.feedback.stage(FeedbackStatus::Won, &config.engagement.contract).as_deref(), Some("customer"));
    assert_eq!(config.feedback.reasons.get("price").map(String::as_str), Some("no_budget"));
    let (_, hs) = config.feedback_destination("hs").unwrap();
    assert_eq!((hs.secret_env.as_str(), hs.portal_id.as_deref()), ("HS_APP_SECRET", Some("62515")));
    assert_eq!(
        hs.statuses.get("custom_dq"),
        Some(&MappedStatus::Status { status: FeedbackStatus::Disqualified, reason: Some("not_a_fit".into()) })
    );
    assert_eq!(hs.statuses.get("open"), Some(&MappedStatus::Status { status: FeedbackStatus::Accepted, reason: None }));
    let (_, sf) = config.feedback_destination("sf").unwrap();
    assert_eq!(sf.organization_id.as_deref(), Some("00D000000000001AAA"));
    assert_eq!(sf.status_fields, ["Status"]);
    assert!(config.feedback_destination("nope").is_none());
}

#[test]
fn feedback_errors_are_located() {
    let errors = parse(
        r#"
[feedback]
stages = { won = "champagne", maybe = "sal" }
reasons = { "Price" = "too_expensive" }

[[destinations]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/in"
secret_env = "HOOK_SECRET"
feedback = { secret_env = "X" }

[[destinations]]
name = "sf"
type = "salesforce"
base_url = "https://x.my.salesforce.com"
token_url = "https://login.salesforce.com/services/oauth2/token"
client_id = "id"
client_secret_env = "SF_SECRET"
api_version = "62.0"
[destinations.feedback]
secret_env = "SF_OM_TOKEN"
statuses = { "Closed - Not Converted" = "gone" }
reasons = { "x" = "nope" }
"#,
    )
    .unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    for key in [
        "feedback.stages.won",
        "feedback.stages.maybe",
        "feedback.reasons.Price",
        "destinations[0].feedback",
        "destinations[1].feedback.statuses.Closed - Not Converted",
        "destinations[1].feedback",
    ] {
        assert!(keys.contains(&key), "missing {key:?} in {errors:#?}");
    }
}

#[test]
fn syntax_errors_are_located() {
    let errs = parse("[server]\nlisten = \n").unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].line, 2);
}

#[test]
fn problems_are_listed_in_file_order_whatever_section_finds_them() {
    let text = "[routing]\nfallback_owner = 3\n\n[[sources]]\nname = \"Bad\"\n\n[server]\nlisten = \"x\"\n\n[scoring]\nmql_threshold = \"high\"\n";
    let lines: Vec<usize> = parse(text).unwrap_err().iter().map(|e| e.line).collect();
    assert_eq!(lines, [2, 5, 8, 11]);
}

#[test]
fn unset_variables_are_reported_at_the_key_that_names_them() {
    let text = r#"[[sources]]
name = "tf"
adapter = "typeform"
secret_env = "TF_SECRET"

[[destinations]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/in"
secret_env = "HOOK_SECRET"

[[destinations]]
name = "hs"
type = "hubspot"
token_env = "HS_TOKEN"
feedback = { secret_env = "HS_APP_SECRET" }
"#;
    assert!(parse(text).is_ok(), "parse alone does not read the environment");
    let set = ["HOOK_SECRET", "HS_TOKEN"];
    let shown: Vec<String> =
        parse_with_env(text, |var| set.contains(&var)).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "4:14: sources[0].secret_env: the environment variable TF_SECRET is not set",
            "16:27: destinations[1].feedback.secret_env: the environment variable HS_APP_SECRET is not set",
        ]
    );
    assert!(parse_with_env(text, |_| true).is_ok());
}

#[test]
fn a_problem_found_away_from_the_file_is_placed_by_its_key() {
    let text = "[[destinations]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/in\"\nsecret_env = \"HOOK_SECRET\"\n";
    let refused = ConfigError::new("destinations[0].secret_env", "the secret it names is refused");
    assert_eq!(refused.to_string(), "destinations[0].secret_env: the secret it names is refused");
    let located = refused.locate(text);
    assert_eq!((located.line, located.column), (5, 14));
    assert_eq!(located.to_string(), "5:14: destinations[0].secret_env: the secret it names is refused");
    assert_eq!(located.clone().locate("other = 1\n"), located, "located once, for good");
    let elsewhere = ConfigError::new("delivery", "HTTP client: no TLS").locate(text);
    assert_eq!((elsewhere.line, elsewhere.to_string().as_str()), (0, "delivery: HTTP client: no TLS"));
}

#[test]
fn destination_urls_and_api_versions_are_checked_where_written() {
    let errors = parse(
        r#"[[destinations]]
name = "hook"
type = "webhook"
url = "hooks.example.com/in"
secret_env = "HOOK_SECRET"

[[destinations]]
name = "sf"
type = "salesforce"
base_url = "https://x.my.salesforce.com"
token_url = "ftp://login.salesforce.com/token"
client_id = "id"
client_secret_env = "SF_SECRET"
api_version = "latest"
"#,
    )
    .unwrap_err();
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "4:7: destinations[0].url: must be an http:// or https:// URL",
            "11:13: destinations[1].token_url: must be an http:// or https:// URL",
            "14:15: destinations[1].api_version: must look like 62.0",
        ]
    );
    for (url, ok) in
        [("https://user:pw@hooks.example.com:8443/in?x=1", true), ("http://", false), ("https://:80/x", false)]
    {
        let text = format!("[[destinations]]\nname = \"h\"\ntype = \"webhook\"\nurl = \"{url}\"\nsecret_env = \"S\"\n");
        assert_eq!(parse(&text).is_ok(), ok, "{url}");
    }
    for (version, ok) in [("62.0", true), ("v61.5", true), ("62", false), (".0", false), ("6a.0", false)] {
        assert_eq!(crate::deliver::is_api_version(version), ok, "{version}");
    }
}

#[test]
fn a_destinations_feedback_reasons_are_checked_against_a_contract_written_later() {
    let text = r#"[[destinations]]
name = "hs"
type = "hubspot"
token_env = "HS_TOKEN"
[destinations.feedback]
secret_env = "HS_APP_SECRET"
reasons = { "Too small" = "not_a_fit", "Pricey" = "no_money" }

[lifecycle]
disqualify_reasons = ["not_a_fit", "spam"]
"#;
    let shown: Vec<String> = parse(text).unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        ["7:51: destinations[0].feedback.reasons.Pricey: must be one of the disqualify_reasons: not_a_fit, spam"]
    );
    let config = parse(&text.replace("\"no_money\"", "\"spam\"")).unwrap();
    let (_, hs) = config.feedback_destination("hs").unwrap();
    assert_eq!(hs.reasons.get("pricey").map(String::as_str), Some("spam"));
}

#[test]
fn a_lifecycle_without_stages_is_refused_where_it_says_so() {
    let errs = parse("[lifecycle]\nstages = []\ntransitions = []\n").unwrap_err();
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "2:10: lifecycle.stages: must be a non-empty list of names",
            "3:15: lifecycle.transitions: custom transitions need the stages listed: stages = [...]"
        ]
    );
}

#[test]
fn privacy_purposes_bound_what_destinations_and_submissions_may_name() {
    let config = parse(
        r#"
[privacy]
purposes = ["newsletter", "sales_contact"]
suppression_key_env = "MY_SUPPRESSION_KEY"

[[destinations]]
name = "crm"
type = "hubspot"
token_env = "HUBSPOT_TOKEN"
events = ["created", "consent_changed"]
consent = ["sales_contact"]
consent_fields = { newsletter = "newsletter_consent" }
"#,
    )
    .unwrap();
    assert_eq!(config.privacy.purposes, ["newsletter", "sales_contact"]);
    assert_eq!(config.picklists.consent_purposes, config.privacy.purposes);
    assert_eq!(config.privacy.suppression_key_env, "MY_SUPPRESSION_KEY");
    let d = &config.destinations[0];
    assert_eq!(d.consent, ["sales_contact"]);
    assert_eq!(d.consent_fields.get("newsletter").map(String::as_str), Some("newsletter_consent"));
    assert_eq!(d.events, [EventType::Created, EventType::ConsentChanged]);

    let errors = parse(
        r#"
[privacy]
purposes = ["Bad Name"]

[[destinations]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/in"
secret_env = "HOOK_SECRET"
consent = ["telepathy"]
consent_fields = { marketing_email = "x" }
"#,
    )
    .unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["privacy.purposes", "destinations[0].consent[0]", "destinations[0].consent_fields"]);
}

#[test]
fn server_connection_limits_and_metrics_keys_are_read() {
    let c = parse(
        r#"[server]
header_read_timeout = "3s"
max_connections = 64
unauthenticated_rate_per_minute = 0
metrics_key_env = "LEADFLOW_METRICS_KEY"
metrics_listen = "127.0.0.1:9090"
"#,
    )
    .unwrap();
    assert_eq!(c.server.header_read_timeout, Duration::from_secs(3));
    assert_eq!(c.server.max_connections, 64);
    assert_eq!(c.server.unauthenticated_rate_per_minute, 0);
    assert_eq!(c.server.metrics_key_env.as_deref(), Some("LEADFLOW_METRICS_KEY"));
    assert_eq!(c.server.metrics_listen, Some("127.0.0.1:9090".parse().unwrap()));
    let defaults = ServerConfig::default();
    assert_eq!(defaults.header_read_timeout, Duration::from_secs(10));
    assert_eq!(defaults.max_connections, DEFAULT_SERVER_MAX_CONNECTIONS);
    assert_eq!((defaults.metrics_key_env, defaults.metrics_listen), (None, None));
    let unset = parse_with_env("[server]\nmetrics_key_env = \"LEADFLOW_METRICS_KEY\"\n", |_| false).unwrap_err();
    assert_eq!(unset[0].key, "server.metrics_key_env");
}

#[test]
fn server_connection_limits_refuse_what_cannot_work() {
    let errors = parse(
        r#"[server]
listen = "127.0.0.1:8080"
header_read_timeout = "0s"
max_connections = 0
unauthenticated_rate_per_minute = -1
metrics_key_env = "the-token-itself"
metrics_listen = "127.0.0.1:8080"
"#,
    )
    .unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "server.header_read_timeout",
            "server.max_connections",
            "server.unauthenticated_rate_per_minute",
            "server.metrics_key_env",
            "server.metrics_listen"
        ]
    );
}

#[test]
fn destination_urls_must_be_https_unless_loopback_or_allowed() {
    let hook = |url: &str, extra: &str| {
        format!(
            "[[destinations]]\nname = \"crm-hook\"\ntype = \"webhook\"\nurl = \"{url}\"\nsecret_env = \"S\"\n{extra}"
        )
    };
    for url in ["https://hooks.example.com/in", "http://127.0.0.1:9/in", "http://localhost/in", "http://[::1]:80/x"] {
        assert!(parse(&hook(url, "")).is_ok(), "{url}");
    }
    let errors = parse(&hook("http://hooks.example.com/in", "")).unwrap_err();
    let shown = errors[0].to_string();
    assert!(
        shown.starts_with("4:7: destinations[0].url: destination \"crm-hook\": must be an https:// URL"),
        "{shown}"
    );
    assert!(shown.contains("allow_http = true"), "{shown}");
    // Written below the URL it allows, and for every URL key of a destination.
    let allowed = parse(&hook("http://hooks.internal/in", "allow_http = true\n")).unwrap();
    assert!(allowed.destinations[0].allow_http);
    let salesforce = r#"[[destinations]]
name = "sf"
type = "salesforce"
base_url = "https://x.my.salesforce.com"
token_url = "http://login.example.com/token"
client_id = "id"
client_secret_env = "SF_SECRET"
api_version = "62.0"
"#;
    let errors = parse(salesforce).unwrap_err();
    assert_eq!(errors[0].key, "destinations[0].token_url");
    assert!(parse(&hook("http://127.0.0.1.evil.example/in", "")).is_err(), "a name that merely starts like loopback");
    assert!(parse(&hook("http://localhost@evil.example/in", "")).is_err(), "userinfo is not the host");
}

#[test]
fn tls_files_go_together_and_the_key_cache_has_a_bound() {
    let config =
        parse("[server]\ntls_cert = \"/etc/tls/cert.pem\"\ntls_key = \"/etc/tls/key.pem\"\nkey_cache_ttl = \"0s\"\n")
            .unwrap();
    assert_eq!(config.server.tls_cert.as_deref(), Some(std::path::Path::new("/etc/tls/cert.pem")));
    assert_eq!(config.server.tls_key.as_deref(), Some(std::path::Path::new("/etc/tls/key.pem")));
    assert!(config.server.key_cache_ttl.is_zero());
    assert_eq!(Config::default().server.key_cache_ttl, std::time::Duration::from_secs(5));
    let errors = parse("[server]\ntls_cert = \"/etc/tls/cert.pem\"\nkey_cache_ttl = \"1h\"\n").unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["server.tls_cert", "server.key_cache_ttl"]);
}

#[test]
fn exact_phone_is_read_and_needs_fuzzy_matching() {
    assert!(parse("[matching]\nexact_phone = true\n").unwrap().matching.exact_phone);
    assert!(!parse("").unwrap().matching.exact_phone, "off by default");
    let errors = parse("[matching]\nfuzzy = false\nexact_phone = true\n").unwrap_err();
    assert!(errors.iter().any(|e| e.to_string().contains("needs fuzzy")), "{errors:?}");
}

#[test]
fn email_and_signed_json_sources_read_their_settings_and_report_bad_ones() {
    use crate::source::inbound::{EmailProvider, SignatureAlgorithm, SignatureEncoding};
    let c = parse(
        r#"[[sources]]
name = "mail"
adapter = "email"
email_provider = "postmark"
keep_attachments = true
relay_domains = ["@Directory.example"]
[sources.extract]
phone = ["Tel:"]
inquiry = { pattern = "(?s)Message:\\s*(.*)" }

[[sources]]
name = "zap"
adapter = "signed_json"
secret_env = "ZAP_SECRET"
signature_header = "X-Zap-Signature"
signature_algorithm = "sha512"
signature_encoding = "base64"
signature_prefix = "sha512="
timestamp_header = "X-Zap-Timestamp"
"#,
    )
    .unwrap();
    let mail = &c.sources[1];
    assert_eq!(mail.email.provider, Some(EmailProvider::Postmark));
    assert!(mail.email.keep_attachments);
    assert_eq!(mail.email.relay_domains, ["directory.example"]);
    assert_eq!(mail.email.extract.len(), 2, "configured rules replace the defaults");
    assert_eq!(mail.body_limit(1 << 20), 10 << 20);
    let zap = &c.sources[2].signed_json;
    assert_eq!((zap.algorithm, zap.encoding), (SignatureAlgorithm::Sha512, SignatureEncoding::Base64));
    assert_eq!(zap.prefix.as_deref(), Some("sha512="));
    assert_eq!(c.sources[2].body_limit(1 << 20), 1 << 20);

    let errs = parse(
        r#"[[sources]]
name = "mail"
adapter = "email"
email_provider = "carrier-pigeon"
[sources.extract]
phone = { pattern = "(" }

[[sources]]
name = "zap"
adapter = "signed_json"
signature_algorithm = "md5"
keep_attachments = true
"#,
    )
    .unwrap_err();
    let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
    for e in [
        "4:18: sources[0].email_provider",
        "6:21: sources[0].extract.phone.pattern",
        "10:11: sources[1].adapter",
        "11:23: sources[1].signature_algorithm",
        "12:20: sources[1].keep_attachments",
    ] {
        assert!(shown.iter().any(|s| s.starts_with(e)), "missing {e:?} in {shown:#?}");
    }
    assert_eq!(shown.len(), 5, "one problem each: {shown:#?}");
}

#[test]
fn a_crm_destination_reads_field_maps_value_maps_and_owners() {
    let config = parse(
        r#"
[[destinations]]
name = "hubspot"
type = "hubspot"
token_env = "HUBSPOT_TOKEN"
events = ["created", "returned"]
[destinations.fields]
score = "leadflow_score"
lifecycle_stage = "lifecyclestage"
"attribution.original.source" = "leadflow_original_source"
attribution.latest.utm_campaign = "leadflow_latest_campaign"
custom.budget = "budget__c"
[destinations.values.lifecyclestage]
mql = "marketingqualifiedlead"
sql = "salesqualifiedlead"
[destinations.owners]
"ana@example.com" = "71234567"

[[destinations]]
name = "sf"
type = "salesforce"
base_url = "https://example.my.salesforce.com"
token_url = "https://login.salesforce.com/services/oauth2/token"
client_id = "id"
client_secret_env = "SF_SECRET"
api_version = "62.0"
values.LeadSource = { webinar = "Webinar" }
values.Industry = { saas = "Technology" }
"#,
    )
    .unwrap();
    let d = &config.destinations[0];
    assert_eq!(d.events, [EventType::Created, EventType::Returned]);
    assert_eq!(d.fields.get("attribution.latest.utm_campaign").map(String::as_str), Some("leadflow_latest_campaign"));
    assert_eq!(d.fields.get("attribution.original.source").map(String::as_str), Some("leadflow_original_source"));
    assert_eq!(d.fields.get("custom.budget").map(String::as_str), Some("budget__c"));
    assert_eq!(d.values["lifecyclestage"]["mql"], "marketingqualifiedlead");
    assert_eq!(d.owners["ana@example.com"], "71234567");
    // Salesforce's LeadSource and Industry are sent without a map: their values map.
    assert_eq!(config.destinations[1].values["LeadSource"]["webinar"], "Webinar");
}

#[test]
fn field_map_problems_name_their_key() {
    let errors = parse(
        r#"
[[destinations]]
name = "hubspot"
type = "hubspot"
token_env = "HUBSPOT_TOKEN"
[destinations.fields]
scor = "leadflow_score"
lifecycle_stage = ""
"attribution.first.source" = "x"
owner = "hubspot_owner_id"
industry = "lead score"
[destinations.values.lifecyclestage]
mql = "marketingqualifiedlead"
[destinations.values.hubspot_owner_id]
ana = "1"

[[destinations]]
name = "hook"
type = "webhook"
url = "http://127.0.0.1:9/in"
secret_env = "HOOK_SECRET"
fields = { score = "s" }
owners = { ana = "U1" }
"#,
    )
    .unwrap_err();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "destinations[0].fields.scor",
            "destinations[0].fields.lifecycle_stage",
            "destinations[0].fields.attribution.first.source",
            "destinations[0].fields.owner",
            "destinations[0].fields.industry",
            "destinations[0].values.lifecyclestage",
            "destinations[0].values.hubspot_owner_id",
            "destinations[1].fields",
            "destinations[1].owners",
        ],
        "{errors:#?}"
    );
    let message = |key: &str| errors.iter().find(|e| e.key == key).map(|e| e.message.clone()).unwrap_or_default();
    assert!(message("destinations[0].fields.scor").contains("unknown leadflow field"));
    assert!(message("destinations[0].fields.lifecycle_stage").contains("not empty"));
    assert!(message("destinations[0].fields.owner").contains("[destinations.owners]"));
    assert!(message("destinations[0].values.lifecyclestage").contains("no field of this destination is sent"));
    assert!(message("destinations[1].owners").contains("a webhook has no owner field"));
}

#[test]
fn the_handoff_docs_examples_are_valid_configuration() {
    let doc = include_str!("../../../../docs/HANDOFF.md");
    let blocks: Vec<&str> = doc.split("```toml\n").skip(1).filter_map(|rest| rest.split("```").next()).collect();
    let [full, status] = blocks[..] else { panic!("two toml examples expected, found {}", blocks.len()) };
    let config = parse(full).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(config.destinations[0].values["lifecyclestage"]["mql"], "marketingqualifiedlead");
    // The Salesforce value maps, under a destination that maps the stage to Status.
    let salesforce = format!(
        "[[destinations]]\nname = \"sf\"\ntype = \"salesforce\"\nbase_url = \"https://example.my.salesforce.com\"\n\
         token_url = \"https://login.salesforce.com/services/oauth2/token\"\nclient_id = \"id\"\n\
         client_secret_env = \"SF_SECRET\"\napi_version = \"62.0\"\nfields = {{ lifecycle_stage = \"Status\" }}\n{status}"
    );
    let config = parse(&salesforce).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(config.destinations[0].values["Status"]["mql"], "Working - Contacted");
}

#[test]
fn a_qualification_table_maps_questions_to_fields_and_a_bad_target_is_located() {
    let c = parse(
        "[[sources]]\nname = \"drift\"\nadapter = \"drift\"\nsecret_env = \"DRIFT_TOKEN\"\n\
         qualification = { \"What's your team size?\" = \"employee_count\", \"Budget\" = \"custom.budget\" }\n",
    )
    .unwrap();
    let q = &c.sources[1].qualification;
    use crate::source::qualification::AnswerTarget;
    assert_eq!(q.target("what's your team size"), Some(&AnswerTarget::Field("employee_count")));
    assert_eq!(q.target("Budget"), Some(&AnswerTarget::Custom("budget".into())));
    let errs =
        parse("[[sources]]\nname = \"x\"\n[sources.qualification]\n\"Team size?\" = \"team_size\"\n").unwrap_err();
    assert_eq!(errs[0].key, "sources[0].qualification.\"Team size?\"");
    assert_eq!(errs[0].line, 4);
}
