//! The operator dashboard at /ui: sessions, CSRF, scopes and escaping over real HTTP, and
//! one walk through it in headless Chromium driven over WebDriver (chromedriver).

use crate::{TestApp, spawn_app};
use axum::http::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SCRIPT: &str = "<script>alert(1)</script>";
/// As the templates escape it (minijinja also escapes the slash).
const ESCAPED: &str = "&lt;script&gt;alert(1)&lt;";

/// A browser without a cookie jar that does not follow redirects, so each answer is seen.
fn browser() -> reqwest::Client {
    leadflow_integrations::delivery::http_client().redirect(Policy::none()).build().unwrap()
}

fn location(r: &reqwest::Response) -> &str {
    r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// Logs in with `token` and returns the `Cookie` header value of the session.
pub(crate) async fn login(app: &TestApp, token: &str) -> String {
    let r = browser().post(app.url("/ui/login")).form(&[("token", token)]).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/ui");
    let set = r.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/ui"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    set.split(';').next().unwrap().to_owned()
}

pub(crate) async fn page(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let r = browser().get(app.url(path)).header("cookie", cookie).send().await.unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

/// The CSRF token a page's forms carry.
pub(crate) fn csrf(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a form with a CSRF token") + r#"name="csrf" value=""#.len();
    html[at..].split('"').next().unwrap().to_owned()
}

pub(crate) async fn post(app: &TestApp, cookie: &str, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    browser().post(app.url(path)).header("cookie", cookie).form(form).send().await.unwrap()
}

#[tokio::test]
async fn without_a_session_every_page_sends_the_operator_to_the_login_form() {
    let app = spawn_app().await;
    for path in ["/ui", "/ui/leads", "/ui/reviews", "/ui/deliveries", "/ui/destinations/x", "/ui/alerts"] {
        let r = browser().get(app.url(path)).send().await.unwrap();
        assert_eq!((r.status(), location(&r)), (StatusCode::SEE_OTHER, "/ui/login"), "{path}");
    }
    let forged = browser().get(app.url("/ui")).header("cookie", "leadflow_session=lf_nope").send().await.unwrap();
    assert_eq!(location(&forged), "/ui/login");
    let post = browser().post(app.url("/ui/deliveries/replay")).form(&[("csrf", "x")]).send().await.unwrap();
    assert_eq!(location(&post), "/ui/login");

    let form = browser().get(app.url("/ui/login")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    assert!(form.text().await.unwrap().contains(r#"action="/ui/login""#));
}

#[tokio::test]
async fn a_bad_key_stays_on_the_login_page_and_a_good_one_opens_the_dashboard_until_logout() {
    let app = spawn_app().await;
    let ingest_only = app.key("ingest-only", &["ingest"]).await;
    for bad in ["lf_0000", "", "not a key; Path=/", ingest_only.as_str()] {
        let r = browser().post(app.url("/ui/login")).form(&[("token", bad)]).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad:?}");
        assert!(r.headers().get("set-cookie").is_none());
        let html = r.text().await.unwrap();
        assert!(html.contains(r#"action="/ui/login""#) && html.contains("unknown, revoked"), "{html}");
    }

    let cookie = login(&app, &app.admin).await;
    let r = browser().get(app.url("/ui")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    let html = r.text().await.unwrap();
    assert!(html.contains(r#"data-name="api""#), "the api source is listed: {html}");

    let out = post(&app, &cookie, "/ui/logout", &[("csrf", &csrf(&html))]).await;
    assert_eq!((out.status(), location(&out)), (StatusCode::SEE_OTHER, "/ui/login"));
    let cleared = out.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.starts_with("leadflow_session=;") && cleared.contains("Max-Age=0"), "{cleared}");

    // A revoked key's session ends at its next request.
    let reader = app.key("revoked-reader", &["read"]).await;
    let cookie = login(&app, &reader).await;
    app.store.revoke_key("revoked-reader").await.unwrap();
    let r = browser().get(app.url("/ui")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(location(&r), "/ui/login");
}

#[tokio::test]
async fn a_post_without_the_sessions_csrf_token_is_refused() {
    let app = spawn_app().await;
    let cookie = login(&app, &app.admin).await;
    let (_, html) = page(&app, &cookie, "/ui/deliveries").await;
    let token = csrf(&html);

    let missing = post(&app, &cookie, "/ui/deliveries/replay", &[]).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    let wrong = post(&app, &cookie, "/ui/deliveries/replay", &[("csrf", &"0".repeat(64))]).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    // Checked before anything else the form should hold.
    let bare = post(&app, &cookie, "/ui/reviews/0191e3b4-0000-7000-8000-000000000000", &[]).await;
    assert_eq!(bare.status(), StatusCode::FORBIDDEN);
    let logout = post(&app, &cookie, "/ui/logout", &[]).await;
    assert_eq!(logout.status(), StatusCode::FORBIDDEN);
    // Another session's token is not this one's.
    let other = app.key("other-admin", &["admin"]).await;
    let other_cookie = login(&app, &other).await;
    let (_, other_html) = page(&app, &other_cookie, "/ui/deliveries").await;
    let foreign = post(&app, &cookie, "/ui/deliveries/replay", &[("csrf", &csrf(&other_html))]).await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);

    let right = post(&app, &cookie, "/ui/deliveries/replay", &[("csrf", &token)]).await;
    assert_eq!((right.status(), location(&right)), (StatusCode::SEE_OTHER, "/ui/deliveries?status=dead&replayed=0"));
    let (_, after) = page(&app, &cookie, location(&right)).await;
    assert!(after.contains("Replayed 0 dead letters"), "{after}");
}

#[tokio::test]
async fn a_read_key_sees_the_pages_without_their_buttons_and_cannot_act() {
    let app = spawn_app().await;
    let older = json!({"first_name": "Jon", "last_name": "Smith", "company": "Acme", "email": "jon@acme.com"});
    app.post("/v1/leads", &older).await;
    let newer =
        json!({"first_name": "Jonathan", "last_name": "Smith", "company": "Acme Inc", "email": "jsmith@acme.com"});
    app.post("/v1/leads", &newer).await;
    app.resolved().await;
    let review: Value = app.get("/v1/reviews").await.json().await.unwrap();
    let review = review[0]["id"].as_str().unwrap().to_owned();

    let reader = app.key("reader", &["read"]).await;
    let cookie = login(&app, &reader).await;
    let (status, html) = page(&app, &cookie, "/ui/reviews").await;
    assert_eq!(status, 200);
    assert!(html.contains("Jonathan") && !html.contains(r#"name="decision""#), "{html}");
    assert!(html.contains("read only"));
    let token = csrf(&html);

    let decide =
        post(&app, &cookie, &format!("/ui/reviews/{review}"), &[("csrf", &token), ("decision", "merge")]).await;
    assert_eq!(decide.status(), StatusCode::FORBIDDEN);
    let replay = post(&app, &cookie, "/ui/deliveries/replay", &[("csrf", &token)]).await;
    assert_eq!(replay.status(), StatusCode::FORBIDDEN);
    let one = post(&app, &cookie, "/ui/deliveries/dl_x/replay", &[("csrf", &token)]).await;
    assert_eq!(one.status(), StatusCode::FORBIDDEN);
    // Dead letters are listed for admin keys only, as the API lists them.
    assert_eq!(page(&app, &cookie, "/ui/deliveries").await.0, StatusCode::FORBIDDEN);
    let reviews: Value = app.get("/v1/reviews").await.json().await.unwrap();
    assert_eq!(reviews.as_array().unwrap().len(), 1, "the review is still open");
}

#[tokio::test]
async fn a_lead_named_like_a_script_renders_as_text() {
    let app = spawn_app().await;
    let lead: Value = app
        .post(
            "/v1/leads",
            &json!({"first_name": SCRIPT, "last_name": "Mallory", "company": SCRIPT, "email": "mallory@example.com",
                    "linkedin_url": "linkedin.com/in/mallory", "x_url": SCRIPT}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = lead["id"].as_str().unwrap();
    let cookie = login(&app, &app.admin).await;
    for path in [
        format!("/ui/leads/{id}"),
        "/ui/leads".into(),
        "/ui/leads?q=mallory".into(),
        "/ui/leads?q=mallory%40example.com".into(),
    ] {
        let (status, html) = page(&app, &cookie, &path).await;
        assert_eq!(status, 200, "{path}");
        assert!(html.contains(ESCAPED), "{path}: {html}");
        assert!(!html.contains(SCRIPT), "{path} holds the raw script");
    }
    let (_, found) = page(&app, &cookie, "/ui/leads?q=mallory").await;
    assert!(found.contains(&format!("/ui/leads/{id}")), "the name search finds the lead");
    let (_, none) = page(&app, &cookie, "/ui/leads?q=nobody-has-this-name").await;
    assert!(!none.contains(&format!("/ui/leads/{id}")) && none.contains("No lead found"));
    let (_, timeline) = page(&app, &cookie, &format!("/ui/leads/{id}")).await;
    assert!(timeline.contains(r#"<li class="created">"#), "{timeline}");
    assert!(timeline.contains("<th>linkedin_url</th>") && timeline.contains("www.linkedin.com"), "{timeline}");
}

#[tokio::test]
async fn a_quarantined_submission_is_replayed_from_its_page_with_its_payload_escaped() {
    use leadflow_core::capture::RawSubmission;
    use leadflow_core::{FieldError, FieldErrorCode, SourceName};
    let app = spawn_app().await;
    let submission = |v: Value| RawSubmission::new(SourceName::api(), None, v.as_object().cloned().unwrap());
    let fixed = submission(json!({"email": "fixed@example.com", "first_name": SCRIPT}));
    let broken = submission(json!({"email": "still broken"}));
    let reason = vec![FieldError::new("email", FieldErrorCode::Required, "an email or a phone is required")];
    app.store.quarantine(vec![(fixed.clone(), reason.clone()), (broken.clone(), reason)]).await.unwrap();

    let cookie = login(&app, &app.admin).await;
    let (_, html) = page(&app, &cookie, "/ui/quarantine").await;
    assert!(html.contains(&fixed.id.to_string()) && html.contains(&broken.id.to_string()));
    assert!(html.contains("&lt;script&gt;") && !html.contains(SCRIPT), "the payload shows as text");
    let token = csrf(&html);
    let r = post(&app, &cookie, &format!("/ui/quarantine/{}/replay", fixed.id), &[("csrf", &token)]).await;
    assert_eq!(location(&r), "/ui/quarantine?replayed=settled");
    let r = post(&app, &cookie, &format!("/ui/quarantine/{}/replay", broken.id), &[("csrf", &token)]).await;
    assert_eq!(location(&r), "/ui/quarantine?replayed=quarantined");
    let (_, after) = page(&app, &cookie, "/ui/quarantine?replayed=quarantined").await;
    assert!(!after.contains(&fixed.id.to_string()) && after.contains(&broken.id.to_string()));
    assert!(after.contains("failed again"));
    let (_, source) = page(&app, &cookie, "/ui/sources/api").await;
    assert!(source.contains(&broken.id.to_string()), "the source's page lists its quarantine");
    let gone = post(&app, &cookie, &format!("/ui/quarantine/{}/replay", fixed.id), &[("csrf", &token)]).await;
    assert_eq!(gone.status(), StatusCode::NOT_FOUND);

    // In bulk: the page says how many first, then what became of them.
    let (_, filtered) = page(&app, &cookie, "/ui/quarantine?source=api").await;
    assert!(filtered.contains("Replay all 1 with the current configuration"), "{filtered}");
    let r = post(&app, &cookie, "/ui/quarantine/replay", &[("csrf", &token), ("source", "api")]).await;
    assert_eq!(location(&r), "/ui/quarantine?source=api&settled=0&stayed=1");
    let (_, done) = page(&app, &cookie, location(&r)).await;
    assert!(done.contains("0 settled and left the quarantine, 1 stay"), "{done}");
}

#[tokio::test]
async fn every_page_renders_and_unknown_names_are_404_pages() {
    let app = spawn_app().await;
    app.post("/v1/leads", &json!({"email": "someone@example.com", "first_name": "Some"})).await;
    let cookie = login(&app, &app.admin).await;
    for path in [
        "/ui",
        "/ui/sources/api",
        "/ui/alerts",
        "/ui/deliveries?status=dead",
        "/ui/deliveries?status=pending",
        "/ui/quarantine",
        "/ui/reviews",
        "/ui/leads",
        "/ui/reports",
        "/ui/reports?days=7",
    ] {
        let (status, html) = page(&app, &cookie, path).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert!(html.trim_end().ends_with("</html>"), "{path} rendered whole");
    }
    let (_, source) = page(&app, &cookie, "/ui/sources/api").await;
    assert!(source.contains("<svg class=\"chart\""), "charts are inline SVG");
    for path in ["/ui/sources/nope", "/ui/destinations/nope", "/ui/leads/not-an-id"] {
        let (status, html) = page(&app, &cookie, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(html.contains("404"));
    }
    let css = browser().get(app.url("/ui/assets/dashboard.css")).send().await.unwrap();
    assert_eq!(css.status(), 200);
    assert_eq!(css.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}

// The browser test: a CRM that always fails, so its dead letters raise the error-rate
// alert and the destination shows as failing.

#[tokio::test]
async fn a_leads_page_shows_its_deliveries_with_every_try_to_admins_only() {
    let app = crate::operations::spawn_with_failing_crm().await;
    let lead: Value = app.post("/v1/leads", &json!({"email": "tried@example.com"})).await.json().await.unwrap();
    let id = lead["id"].as_str().unwrap().to_owned();
    let cookie = login(&app, &app.admin).await;
    wait_for("the dead letter", async || page(&app, &cookie, &format!("/ui/leads/{id}")).await.1.contains("HTTP 502"))
        .await;
    let (_, html) = page(&app, &cookie, &format!("/ui/leads/{id}")).await;
    assert!(html.contains(r#"<table id="deliveries">"#) && html.contains("lead.created"), "{html}");
    assert!(html.contains("#1 ") && html.contains(">dead<"), "{html}");
    let reader = app.key("viewer", &["read"]).await;
    let read = login(&app, &reader).await;
    let (_, html) = page(&app, &read, &format!("/ui/leads/{id}")).await;
    assert!(!html.contains("HTTP 502") && html.contains("shown to admin keys"), "{html}");
}

/// chromedriver on a free local port, stopped when dropped.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn chromedriver() -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
    let child = std::process::Command::new(&binary)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{binary} could not run ({e}); install it: apt-get install -y chromium-driver"));
    let driver = Driver { child, url: format!("http://127.0.0.1:{port}") };
    let start = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "chromedriver did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver
}

async fn wait_for(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn screenshots() -> std::path::PathBuf {
    // target/ui-screenshots/ at the workspace's root (or CARGO_TARGET_DIR's).
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn in_a_browser_an_operator_finds_the_failing_destination_replays_a_dead_letter_and_decides_a_review() {
    use fantoccini::{ClientBuilder, Locator};

    let app = crate::operations::spawn_with_failing_crm().await;
    for i in 0..3 {
        assert_eq!(app.post("/v1/leads", &json!({"email": format!("lead{i}@example.com")})).await.status(), 201);
    }
    let older = json!({"first_name": "Jon", "last_name": "Smith", "company": "Acme", "email": "jon@acme.com"});
    app.post("/v1/leads", &older).await;
    let newer =
        json!({"first_name": "Jonathan", "last_name": "Smith", "company": "Acme Inc", "email": "jsmith@acme.com"});
    app.post("/v1/leads", &newer).await;
    app.resolved().await;
    wait_for("the crm to fail", async || {
        let h: Value = app.get("/v1/health").await.json().await.unwrap();
        h["destinations"][0]["status"] == "failing"
    })
    .await;

    let driver = chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let mut chrome = json!({"args": [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
        format!("--user-data-dir={}", profile.path().display()),
    ]});
    if let Ok(binary) = std::env::var("CHROMIUM") {
        chrome["binary"] = json!(binary);
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), chrome);
    let browser = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver");
    let shots = screenshots();
    let shot = async |name: &str| {
        let png = browser.screenshot().await.unwrap();
        std::fs::write(shots.join(format!("{name}.png")), png).unwrap();
    };

    // Log in.
    browser.goto(&app.url("/ui")).await.unwrap();
    assert!(browser.current_url().await.unwrap().path().ends_with("/ui/login"), "sent to the login form");
    browser.find(Locator::Css("#token")).await.unwrap().send_keys(&app.admin).await.unwrap();
    shot("01-login").await;
    browser.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();

    // The overview: the failing destination.
    let crm = browser.wait().for_element(Locator::Css(r#"#destinations tr[data-name="crm"]"#)).await.unwrap();
    let badge = crm.find(Locator::Css(".badge")).await.unwrap();
    assert_eq!(badge.text().await.unwrap(), "failing");
    shot("02-overview").await;
    crm.find(Locator::LinkText("crm")).await.unwrap().click().await.unwrap();

    // The destination's page: its dead letters; replay one.
    let dead = browser.wait().for_element(Locator::Css("#dead tbody tr")).await.unwrap();
    let delivery = dead.attr("data-id").await.unwrap().unwrap();
    let (before, _) = app.store.get_delivery(&delivery).await.unwrap().unwrap();
    assert!(browser.source().await.unwrap().contains("<svg class=\"chart\""));
    shot("03-destination").await;
    dead.find(Locator::Css("button")).await.unwrap().click().await.unwrap();
    let notice = browser.wait().for_element(Locator::Css("#replayed")).await.unwrap();
    assert!(notice.text().await.unwrap().starts_with("Replayed 1 dead letter"));
    shot("04-replayed").await;
    // Replayed: pending again with a fresh schedule (and, the CRM still failing, dead again
    // soon after): either way the row moved on.
    let (after, _) = app.store.get_delivery(&delivery).await.unwrap().unwrap();
    assert!(after.updated_at > before.updated_at, "{before:?} then {after:?}");

    // The review queue: merge the pair. (Opened by its address: a link found right after
    // a form's redirect can belong to the page being replaced.)
    browser.goto(&app.url("/ui/reviews")).await.unwrap();
    let review = browser.wait().for_element(Locator::Css("article.review")).await.unwrap();
    assert!(review.text().await.unwrap().contains("Jonathan"));
    shot("05-review").await;
    review.find(Locator::Css(r#"button[value="merge"]"#)).await.unwrap().click().await.unwrap();
    let decided = browser.wait().for_element(Locator::Css("#decided")).await.unwrap();
    assert_eq!(decided.text().await.unwrap(), "Decided: merged.");
    shot("06-decided").await;
    let open: Value = app.get("/v1/reviews").await.json().await.unwrap();
    assert_eq!(open, json!([]));

    // Back on the overview: acknowledge the firing alert.
    browser.goto(&app.url("/ui")).await.unwrap();
    let ack = browser.wait().for_element(Locator::Css("table.alerts button")).await.unwrap();
    ack.click().await.unwrap();
    wait_for("the acknowledgement on the overview", async || {
        match browser.find(Locator::Css("table.alerts tbody tr")).await {
            Ok(row) => row.text().await.is_ok_and(|t| t.contains("acknowledged by admin-")),
            Err(_) => false,
        }
    })
    .await;
    shot("07-acknowledged").await;
    let firing: Value = app.get("/v1/alerts?state=firing").await.json().await.unwrap();
    assert!(firing[0]["acknowledged_at"].is_string(), "{firing}");

    // The merged lead's timeline, found by name: the merge with its evidence.
    browser.goto(&app.url("/ui/leads?q=smith")).await.unwrap();
    browser.wait().for_element(Locator::Css("#leads tbody tr a")).await.unwrap().click().await.unwrap();
    let merge = browser.wait().for_element(Locator::Css("#timeline li.absorbed")).await.unwrap();
    assert!(merge.text().await.unwrap().contains("was merged in by rule"), "{}", merge.text().await.unwrap());
    shot("08-lead").await;

    browser.close().await.unwrap();
}
