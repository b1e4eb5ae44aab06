//! The `leadflow` binary as users and scripts run it: real processes, real signals, a
//! fresh SQLite file per test; and, at the end, several instances on one PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn leadflow(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leadflow"));
    cmd.current_dir(dir);
    for var in ["LEADFLOW_DATABASE_URL", "LEADFLOW_CONFIG", "LEADFLOW_LISTEN", "LEADFLOW_SUPPRESSION_KEY"] {
        cmd.env_remove(var);
    }
    cmd.env("LEADFLOW_LOG", "warn");
    cmd
}

fn run(dir: &Path, args: &[&str]) -> Output {
    leadflow(dir).args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn create_key(dir: &Path, scopes: &[&str]) -> String {
    let mut args = vec!["keys", "create", "--name", "test"];
    for s in scopes {
        args.extend(["--scope", s]);
    }
    let out = run(dir, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().last().unwrap().to_owned()
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts `leadflow serve` in `dir` on a free port; returns once it listens.
    fn start(dir: &Path) -> Self {
        Self::start_with(dir, &[])
    }

    /// Like [`Server::start`], with more arguments (`--database URL`).
    fn start_with(dir: &Path, extra: &[&str]) -> Self {
        Self::start_with_all(dir, extra, &[])
    }

    /// Like [`Server::start`], with environment variables (destination secrets).
    fn start_with_env(dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_with_all(dir, &[], env)
    }

    fn start_with_all(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = leadflow(dir)
            .envs(env.iter().copied())
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Self { child, base: format!("http://{addr}") }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    leadflow_integrations::delivery::http_client().timeout(Duration::from_secs(10)).build().unwrap()
}

async fn all_leads(http: &reqwest::Client, base: &str, token: &str) -> Vec<Value> {
    let mut leads = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let url = match &after {
            Some(a) => format!("{base}/v1/leads?limit=1000&after={a}"),
            None => format!("{base}/v1/leads?limit=1000"),
        };
        let page: Vec<Value> = http.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last["id"].as_str().unwrap().to_owned());
        leads.extend(page);
    }
    leads
}

#[test]
fn keys_create_prints_the_token_last_and_nothing_secret_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["keys", "create", "--name", "ci", "--scope", "ingest:web", "--scope", "read"]);
    assert!(out.status.success());
    let token = stdout(&out).lines().last().unwrap().to_owned();
    assert!(token.starts_with("lf_") && token.len() > 40);
    assert_eq!(stdout(&out).matches(&token).count(), 1);
    assert!(!stderr(&out).contains(&token[3..]));

    let listed = run(dir.path(), &["keys", "list"]);
    assert!(stdout(&listed).contains("ci") && stdout(&listed).contains("ingest:web,read"));
    assert!(!stdout(&listed).contains(&token[12..]), "a listing never shows the secret");

    let bad = run(dir.path(), &["keys", "create", "--name", "x", "--scope", "root"]);
    assert_eq!(bad.status.code(), Some(2), "an unknown scope is a usage error");
    let dup = run(dir.path(), &["keys", "create", "--name", "ci", "--scope", "read"]);
    assert_eq!(dup.status.code(), Some(1));

    assert!(run(dir.path(), &["keys", "revoke", "ci"]).status.success());
    assert_eq!(run(dir.path(), &["keys", "revoke", "ci"]).status.code(), Some(1));
    assert!(stdout(&run(dir.path(), &["keys", "list"])).contains("revoked"));
}

#[tokio::test]
async fn a_key_revoked_from_the_command_line_stops_working_within_the_cache_time() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_key(dir.path(), &["ingest"]);
    let server = Server::start(dir.path());
    let http = client();
    let post = || {
        http.post(format!("{}/v1/leads", server.base))
            .bearer_auth(&token)
            .json(&json!({"email": "r@example.com"}))
            .send()
    };
    assert_eq!(post().await.unwrap().status(), 201);
    assert!(run(dir.path(), &["keys", "revoke", "test"]).status.success());
    // The server trusts a key it read for `[server] key_cache_ttl` (5 s by default).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while post().await.unwrap().status() != 401 {
        assert!(std::time::Instant::now() < deadline, "the revocation never reached the server");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[test]
fn check_config_names_an_alert_rule_on_an_unknown_source_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("alerts.toml"),
        "[[alerts.rules]]\nkind = \"silence\"\nscope = \"source:nowhere\"\nwindow = \"2h\"\n",
    )
    .unwrap();
    let out = run(dir.path(), &["check-config", "alerts.toml"]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    assert!(err.contains("alerts.toml:3:9: alerts.rules[0].scope: \"nowhere\" is not a configured source"), "{err}");
}

#[test]
fn check_config_reports_every_error_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[server]\nlisten = \"nowhere\"\n\n[[sources]]\nname = \"Web Form\"\nadapter = \"fax\"\n",
    )
    .unwrap();
    let out = run(dir.path(), &["check-config", "bad.toml"]);
    assert_eq!(out.status.code(), Some(3));
    let err = stderr(&out);
    for located in
        ["bad.toml:2:10: server.listen", "bad.toml:5:8: sources[0].name", "bad.toml:6:11: sources[0].adapter"]
    {
        assert!(err.contains(located), "missing {located:?} in {err}");
    }

    std::fs::write(dir.path().join("leadflow.toml"), "[[sources]]\nname = \"web\"\nadapter = \"json\"\n").unwrap();
    let ok = run(dir.path(), &["check-config"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stdout(&ok).contains("api, web"));
    assert!(stderr(&ok).contains("LEADFLOW_SUPPRESSION_KEY is not set"), "{}", stderr(&ok));
    let short = leadflow(dir.path()).args(["check-config"]).env("LEADFLOW_SUPPRESSION_KEY", "short").output().unwrap();
    assert_eq!(short.status.code(), Some(3), "{}", stderr(&short));
    assert!(stderr(&short).contains("at least 16 bytes"), "{}", stderr(&short));
    let keyed = leadflow(dir.path())
        .args(["check-config"])
        .env("LEADFLOW_SUPPRESSION_KEY", "a long enough random secret")
        .output()
        .unwrap();
    assert!(keyed.status.success() && !stderr(&keyed).contains("warning"), "{}", stderr(&keyed));

    std::fs::write(
        dir.path().join("secret.toml"),
        "[[sources]]\nname = \"web\"\nsecret_env = \"LEADFLOW_TEST_UNSET_SECRET\"\n",
    )
    .unwrap();
    let missing = run(dir.path(), &["check-config", "secret.toml"]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(stderr(&missing).contains("LEADFLOW_TEST_UNSET_SECRET"));

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../leadflow.example.toml");
    let checked = leadflow(dir.path())
        .args(["check-config", example.to_str().unwrap()])
        .env("WEBSITE_FORM_SECRET", "x")
        .env("TYPEFORM_SECRET", "x")
        .env("FACEBOOK_APP_SECRET", "x")
        .env("FACEBOOK_VERIFY_TOKEN", "x")
        .env("FACEBOOK_PAGE_TOKEN", "x")
        .env("CRM_HOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .env("MAILGUN_SIGNING_KEY", "x")
        .env("ZAPIER_SIGNING_SECRET", "x")
        .env("DRIFT_VERIFICATION_TOKEN", "x")
        .output()
        .unwrap();
    assert!(checked.status.success(), "the example configuration is valid: {}", stderr(&checked));

    let unset = leadflow(dir.path())
        .args(["check-config", example.to_str().unwrap()])
        .env("WEBSITE_FORM_SECRET", "x")
        .env_remove("CRM_HOOK_SECRET")
        .output()
        .unwrap();
    assert_eq!(unset.status.code(), Some(3));
    assert!(stderr(&unset).contains("CRM_HOOK_SECRET"), "names the variable: {}", stderr(&unset));
}

#[test]
fn sources_test_sends_a_marked_lead_through_every_stage() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leadflow.toml"), "[[sources]]\nname = \"site\"\nadapter = \"web_form\"\n").unwrap();
    let out = run(dir.path(), &["sources", "test", "site"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let stages: Vec<(&str, &str)> = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["stage"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(stages, [("adapter", "ok"), ("prepare", "ok"), ("capture", "ok")]);
    assert_eq!(report["stages"][2]["detail"]["outcome"], "created");
    assert_eq!(run(dir.path(), &["sources", "test", "nowhere"]).status.code(), Some(3));
}

#[test]
fn an_unsupported_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["keys", "list", "--database", "mysql://localhost/x"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(stderr(&out).contains("sqlite://"));
}

#[tokio::test]
async fn serve_with_no_configuration_creates_leadflow_db_here() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_key(dir.path(), &["admin"]);
    let mut server = Server::start(dir.path());
    assert!(dir.path().join("leadflow.db").exists());
    let http = client();
    assert_eq!(http.get(format!("{}/readyz", server.base)).send().await.unwrap().status(), 200);
    let r = http
        .post(format!("{}/v1/leads", server.base))
        .bearer_auth(&token)
        .json(&json!({"email": "d@example.com", "source": "api"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(server.terminate().success());
}

#[test]
fn sigterm_finishes_the_request_in_flight_and_exits_0() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let token = create_key(dir.path(), &["admin"]);
    let mut server = Server::start(dir.path());
    let body = json!({"email": "inflight@example.com"}).to_string();
    let mut stream = std::net::TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // `Expect: 100-continue` makes the server say when the handler starts reading the
    // body: from then on the request is in flight.
    write!(
        stream,
        "POST /v1/leads HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 100"));

    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    stream.write_all(body.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "the in-flight request is answered: {answer}");
    assert!(server.child.wait().unwrap().success(), "exit status 0 after SIGTERM");
    drop(server);
    let out = run(dir.path(), &["export", "--format", "jsonl"]);
    assert!(stdout(&out).contains("inflight@example.com"));
}

#[tokio::test]
async fn export_writes_every_lead_and_neutralizes_formula_cells() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_key(dir.path(), &["admin"]);
    let server = Server::start(dir.path());
    let http = client();
    for (email, company) in [
        ("e1@example.com", "=HYPERLINK(\"http://evil\")"),
        ("e2@example.com", "Acme, Inc."),
        ("e3@example.com", "@SUM(A1)"),
    ] {
        let r = http
            .post(format!("{}/v1/leads", server.base))
            .bearer_auth(&token)
            .json(&json!({"email": email, "company": company, "phone": "+33 1 23 45 67 89", "X handle": "@Ada"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    drop(server);

    let out = run(dir.path(), &["export", "--format", "csv", "--out", "leads.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut reader = csv::Reader::from_path(dir.path().join("leads.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    for column in ["id", "email", "phone", "company", "linkedin_url", "x_url", "lifecycle_stage", "score", "owner"] {
        assert!(headers.iter().any(|h| h == column), "missing column {column}");
    }
    let x_url = headers.iter().position(|h| h == "x_url").unwrap();
    let company = headers.iter().position(|h| h == "company").unwrap();
    let phone = headers.iter().position(|h| h == "phone").unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][company], "'=HYPERLINK(\"http://evil\")");
    assert_eq!(&rows[1][company], "Acme, Inc.");
    assert_eq!(&rows[2][company], "'@SUM(A1)");
    assert!(rows[0][phone].starts_with("'+"));
    assert_eq!(&rows[0][x_url], "https://x.com/ada");

    let out = run(dir.path(), &["export", "--format", "jsonl"]);
    let leads: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(leads.len(), 3);
    assert_eq!(leads[0]["company"], "=HYPERLINK(\"http://evil\")", "JSON keeps the value as it is");
    assert_eq!(leads[0]["lifecycle_stage"], "new");
}

/// The lead ids in a Parquet leads file, and its row count.
fn parquet_ids(path: &Path) -> (HashSet<String>, usize) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let rows: Vec<parquet::record::Row> = reader.get_row_iter(None).unwrap().map(Result::unwrap).collect();
    let ids = rows
        .iter()
        .map(|r| {
            use parquet::record::RowAccessor;
            r.get_string(0).unwrap().clone()
        })
        .collect();
    (ids, rows.len())
}

fn parquet_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

#[tokio::test]
async fn parquet_export_follows_the_change_feed_and_forgets_erased_people() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_key(dir.path(), &["admin"]);
    let http = client();
    let capture = |base: String, email: &'static str| {
        let (http, token) = (http.clone(), token.clone());
        async move {
            let r = http
                .post(format!("{base}/v1/leads"))
                .bearer_auth(&token)
                .json(&json!({"email": email}))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
        }
    };
    let server = Server::start(dir.path());
    let ada = capture(server.base.clone(), "ada@acme.com").await;
    let grace = capture(server.base.clone(), "grace@navy.mil").await;
    capture(server.base.clone(), "ada@acme.com").await;
    drop(server);

    let out = run(dir.path(), &["export", "--format", "parquet", "--out", "warehouse"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let wh = dir.path().join("warehouse");
    let cursor = std::fs::read_to_string(wh.join("_cursor")).unwrap().trim().to_owned();
    assert_eq!(cursor, "3", "created, created, updated");
    assert_eq!(parquet_files(&wh), ["_cursor", "changes-0-3.parquet", "leads-0-3.parquet"]);
    let (ids, rows) = parquet_ids(&wh.join("leads-0-3.parquet"));
    assert_eq!((ids, rows), (HashSet::from([ada.clone(), grace.clone()]), 2));
    let (_, changes) = parquet_ids(&wh.join("changes-0-3.parquet"));
    assert_eq!(changes, 3);

    // Nothing new: no new files, the cursor stays.
    let out = run(dir.path(), &["export", "--format", "parquet", "--out", "warehouse"]);
    assert!(out.status.success() && stderr(&out).contains("nothing changed"), "{}", stderr(&out));
    assert_eq!(parquet_files(&wh).len(), 3);

    // Ada is erased: the next run rewrites the earlier file without her.
    let server = Server::start(dir.path());
    let r = http
        .post(format!("{}/v1/leads/{ada}/erase", server.base))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let alan = capture(server.base.clone(), "alan@bletchley.uk").await;
    drop(server);
    let out = run(dir.path(), &["export", "--format", "parquet", "--out", "warehouse"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cursor = std::fs::read_to_string(wh.join("_cursor")).unwrap().trim().to_owned();
    let range = format!("3-{cursor}");
    assert!(parquet_files(&wh).contains(&format!("changes-{range}.parquet")), "{:?}", parquet_files(&wh));
    assert_eq!(parquet_ids(&wh.join("leads-0-3.parquet")), (HashSet::from([grace.clone()]), 1));
    let (ids, _) = parquet_ids(&wh.join(format!("leads-{range}.parquet")));
    assert_eq!(ids, HashSet::from([alan]), "the erased person is not exported again");
    let (changed, _) = parquet_ids(&wh.join(format!("changes-{range}.parquet")));
    assert!(changed.iter().all(|cursor| cursor.parse::<u64>().unwrap() > 3));

    // From the start again, into another directory: the same first range's names.
    let out = run(dir.path(), &["export", "--format", "parquet", "--out", "again", "--after", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(parquet_files(&dir.path().join("again")).contains(&format!("changes-0-{cursor}.parquet")));

    for bad in [
        vec!["export", "--format", "parquet"],
        vec!["export", "--format", "parquet", "--out", "x", "--after", "abc"],
        vec!["export", "--format", "parquet", "--out", "x", "--after", "999"],
        vec!["export", "--format", "csv", "--after", "3"],
    ] {
        let out = run(dir.path(), &bad);
        assert!(!out.status.success(), "{bad:?} must fail");
        assert!(!stderr(&out).is_empty());
    }
}

/// Kills the server with SIGKILL in the middle of a stream of submissions. After a
/// restart every acknowledged lead must be there, none twice, and resending what was not
/// acknowledged (with its idempotency key) must not create doubles either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_acknowledged_lead_and_doubles_none() {
    const WRITERS: usize = 8;
    const KILL_AFTER: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let token = create_key(dir.path(), &["admin"]);
    let mut server = Server::start(dir.path());
    let http = client();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    // Each unanswered request with its body: a retry resends the same body under its key.
    let unacked = Arc::new(Mutex::new(Vec::<(String, serde_json::Value)>::new()));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (http, base, token, acked, unacked) =
            (http.clone(), server.base.clone(), token.clone(), acked.clone(), unacked.clone());
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let email = format!("w{w}-{i}@example.com");
                let body = json!({"email": email, "custom": {"i": i}});
                let sent = http
                    .post(format!("{base}/v1/leads"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", &email)
                    .json(&body)
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 201 => acked.lock().unwrap().push(email),
                    Ok(r) => panic!("unexpected status {}", r.status()),
                    Err(_) => {
                        unacked.lock().unwrap().push((email, body));
                        return;
                    }
                }
            }
        }));
    }
    while acked.lock().unwrap().len() < KILL_AFTER {
        tokio::task::yield_now().await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    drop(server);

    let server = Server::start(dir.path());
    let acked = acked.lock().unwrap().clone();
    let unacked = unacked.lock().unwrap().clone();
    assert!(acked.len() >= KILL_AFTER);
    let leads = all_leads(&http, &server.base, &token).await;
    let emails: Vec<&str> = leads.iter().map(|l| l["email"].as_str().unwrap()).collect();
    let distinct: HashSet<&str> = emails.iter().copied().collect();
    assert_eq!(distinct.len(), emails.len(), "no lead exists twice");
    for email in &acked {
        assert!(distinct.contains(email.as_str()), "acknowledged lead {email} was lost");
    }

    for (email, body) in &unacked {
        let r = http
            .post(format!("{}/v1/leads", server.base))
            .bearer_auth(&token)
            .header("Idempotency-Key", email)
            .json(body)
            .send()
            .await
            .unwrap();
        assert!(r.status() == 201, "resending {email} gave {}", r.status());
    }
    let after = all_leads(&http, &server.base, &token).await;
    let emails: HashSet<String> = after.iter().map(|l| l["email"].as_str().unwrap().to_owned()).collect();
    assert_eq!(emails.len(), after.len());
    assert_eq!(after.len(), acked.len() + unacked.len());
}

fn report_rows(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    assert_eq!(r.headers().unwrap().iter().collect::<Vec<_>>(), ["row", "external_id", "outcome", "lead_id", "errors"]);
    r.records().map(|rec| rec.unwrap().iter().map(str::to_owned).collect()).collect()
}

#[test]
fn import_reports_every_row_and_importing_again_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Semicolons, a byte-order mark, a quoted delimiter and a quoted line break.
    let csv = "\u{feff}email;first_name;company;phone;country;external_id;notes\n\
               ada@example.com;Ada;\"Analytical; Engines\";+44 20 7946 0958;UK;crm-1;\"line1\nline2\"\n\
               bad-email;Bob;X;;;crm-2;\n\
               ;Carol;Y;030 1234567;Germany;crm-3;\n\
               ADA@example.com;;;;;crm-4;again\n";
    std::fs::write(dir.path().join("leads.csv"), csv).unwrap();
    let out = run(dir.path(), &["import", "leads.csv", "--source", "api", "--report", "first.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let first = report_rows(&dir.path().join("first.csv"));
    let outcomes: Vec<&str> = first.iter().map(|r| r[2].as_str()).collect();
    assert_eq!(outcomes, ["created", "rejected", "created", "merged"]);
    assert_eq!(first[0][0], "1");
    assert_eq!(first[1][1], "crm-2");
    assert!(first[1][4].contains("email"), "the reason is reported");
    assert_eq!(first[3][3], first[0][3], "the merged row names the lead it merged into");

    let again = run(dir.path(), &["import", "leads.csv", "--source", "api", "--report", "second.csv"]);
    assert!(again.status.success());
    assert_eq!(report_rows(&dir.path().join("second.csv")), first, "the same outcomes, nothing new");

    let leads = stdout(&run(dir.path(), &["export", "--format", "jsonl"]));
    let leads: Vec<Value> = leads.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(leads.len(), 2);
    assert_eq!(leads[0]["company"], "Analytical; Engines");
    assert_eq!(leads[0]["phone"], "+442079460958");
    assert_eq!(leads[0]["custom"]["notes"], "line1\nline2");
    assert_eq!(leads[1]["phone"], "+49301234567");
    let quarantined = stdout(&run(dir.path(), &["quarantine", "list"]));
    assert_eq!(quarantined.lines().count(), 1, "the invalid row is quarantined once: {quarantined}");
}

#[test]
fn export_person_writes_the_document_and_retention_runs_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "email,first_name\nada@example.com,Ada\ngrace@example.com,Grace\n";
    std::fs::write(dir.path().join("leads.csv"), csv).unwrap();
    let out = run(dir.path(), &["import", "leads.csv", "--source", "api", "--report", "report.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = report_rows(&dir.path().join("report.csv"));
    let (ada, grace) = (rows[0][3].clone(), rows[1][3].clone());

    let out = run(dir.path(), &["leads", "export-person", &ada, "--out", "ada.json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("ada.json")).unwrap()).unwrap();
    assert_eq!((doc["requested_id"].as_str(), doc["lead"]["id"].as_str()), (Some(ada.as_str()), Some(ada.as_str())));
    assert_eq!(doc["submissions"][0]["payload"]["email"], "ada@example.com");

    // Ada arrived and last changed 400 days ago.
    let old = (std::time::SystemTime::now() - Duration::from_secs(400 * 86_400))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let conn = rusqlite::Connection::open(dir.path().join("leadflow.db")).unwrap();
    conn.execute("UPDATE submissions SET received_at = ?1 WHERE lead_id = ?2", rusqlite::params![old, ada]).unwrap();
    conn.execute("UPDATE leads SET updated_at = ?1 WHERE id = ?2", rusqlite::params![old, ada]).unwrap();
    let config =
        "[retention]\nraw_payloads = \"90d\"\ninactive_leads = { after = \"1 year\", action = \"anonymize\" }\n";
    std::fs::write(dir.path().join("leadflow.toml"), config).unwrap();
    let count = |text: &str, kind: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(kind)).unwrap_or_else(|| panic!("no {kind} in {text}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };

    let dry = run(dir.path(), &["retention", "run", "--dry-run"]);
    assert!(dry.status.success(), "{}", stderr(&dry));
    let text = stdout(&dry);
    assert_eq!((count(&text, "raw_payloads"), count(&text, "inactive_leads")), (1, 1), "{text}");
    assert_eq!(count(&text, "delivered_outbox"), 0, "the default still applies: {text}");
    let erased: i64 =
        conn.query_row("SELECT count(*) FROM leads WHERE erased_at IS NOT NULL", [], |r| r.get(0)).unwrap();
    assert_eq!(erased, 0, "a dry run changes nothing");

    let done = run(dir.path(), &["retention", "run"]);
    assert!(done.status.success(), "{}", stderr(&done));
    let text = stdout(&done);
    assert_eq!((count(&text, "raw_payloads"), count(&text, "inactive_leads")), (1, 1), "{text}");
    let erased: Vec<String> = conn
        .prepare("SELECT id FROM leads WHERE erased_at IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(erased, std::slice::from_ref(&ada), "only the inactive lead is anonymized");
    let runs: i64 = conn
        .query_row(
            "SELECT count(*) FROM retention_runs WHERE trigger = 'manual' AND finished_at IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(runs, 1, "the run is recorded, the dry run is not");
    let suppressed: i64 = conn.query_row("SELECT count(*) FROM suppressions", [], |r| r.get(0)).unwrap();
    assert_eq!(suppressed, 0, "an anonymized person did not ask to be forgotten: they may come back");
    let audited: i64 =
        conn.query_row("SELECT count(*) FROM audit_log WHERE action = 'retention.run'", [], |r| r.get(0)).unwrap();
    assert_eq!(audited, 1, "the run is audited, the dry run is not");
    let again = stdout(&run(dir.path(), &["retention", "run", "--dry-run"]));
    assert_eq!((count(&again, "raw_payloads"), count(&again, "inactive_leads")), (0, 0), "{again}");

    let gone = run(dir.path(), &["leads", "export-person", &ada]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(stderr(&gone).contains("erased"), "{}", stderr(&gone));
    let kept = run(dir.path(), &["leads", "export-person", &grace]);
    assert!(kept.status.success(), "{}", stderr(&kept));
    let doc: Value = serde_json::from_str(&stdout(&kept)).unwrap();
    assert_eq!(doc["submissions"][0]["payload"]["email"], "grace@example.com");
    assert_eq!(run(dir.path(), &["leads", "export-person", "nope"]).status.code(), Some(1));
}

#[test]
fn leads_erase_prints_the_receipt_and_the_person_leaves_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let csv = "email,first_name,external_id\nada@example.com,Ada,crm-1\ngrace@example.com,Grace,crm-2\n";
    std::fs::write(dir.path().join("leads.csv"), csv).unwrap();
    let out = run(dir.path(), &["import", "leads.csv", "--source", "api", "--report", "report.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let ada = report_rows(&dir.path().join("report.csv"))[0][3].clone();

    let out = run(dir.path(), &["leads", "erase", &ada, "--reason", "DSR-1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let receipt: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((receipt["lead_id"].as_str(), receipt["already_erased"].as_bool()), (Some(ada.as_str()), Some(false)));
    let submissions = receipt["tables"].as_array().unwrap().iter().find(|t| t["table"] == "submissions").cloned();
    assert_eq!(submissions, Some(json!({"table": "submissions", "scrubbed": 1, "deleted": 0})));
    let leads = stdout(&run(dir.path(), &["export", "--format", "jsonl"]));
    assert_eq!(leads.lines().count(), 1);
    assert!(!leads.contains("ada@example.com") && leads.contains("grace@example.com"), "{leads}");

    let again = run(dir.path(), &["leads", "erase", &ada]);
    assert!(again.status.success());
    assert_eq!(serde_json::from_str::<Value>(&stdout(&again)).unwrap()["already_erased"], true);
    assert!(stderr(&again).contains("already erased"), "{}", stderr(&again));
    let unknown = run(dir.path(), &["leads", "erase", "0190f3a4-7c1e-7000-8000-00000000002a"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("no lead has the id"), "{}", stderr(&unknown));
    assert_eq!(run(dir.path(), &["leads", "erase", "nope"]).status.code(), Some(1));
}

#[test]
fn an_attendance_report_imports_leads_with_their_attendance_once() {
    let dir = tempfile::tempdir().unwrap();
    // Zoom's attendee report: one line per session, so Ada's two sessions add up.
    let csv = "Attended,User Name (Original Name),First Name,Last Name,Email,Join Time,Leave Time,Time in Session (minutes)\n\
               Yes,Ada L,Ada,Lovelace,ada@example.com,06/01/2026 04:02:10 PM,06/01/2026 04:30:00 PM,28\n\
               Yes,Ada L,Ada,Lovelace,ada@example.com,06/01/2026 04:35:00 PM,06/01/2026 04:50:00 PM,15\n\
               No,,Grace,Hopper,grace@example.com,,,\n\
               Maybe,,Carl,Gauss,carl@example.com,,,\n";
    std::fs::write(dir.path().join("attendees.csv"), csv).unwrap();
    let args =
        ["import", "attendees.csv", "--source", "api", "--attendance", "zoom:webinar:9", "--event-name", "Launch"];
    for _ in 0..2 {
        let out = run(dir.path(), &args);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let leads = stdout(&run(dir.path(), &["export", "--format", "jsonl"]));
    let leads: Vec<Value> = leads.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let of = |email: &str| leads.iter().find(|l| l["email"] == email).unwrap()["attendance"].clone();
    assert_eq!(
        of("ada@example.com"),
        json!([{"event": "zoom:webinar:9", "name": "Launch", "status": "attended", "minutes": 43,
            "joined_at": "2026-06-01T16:02:10Z"}]),
        "both sessions, counted once though the file was imported twice"
    );
    assert_eq!(of("grace@example.com")[0]["status"], "no_show");
    assert_eq!(of("carl@example.com"), Value::Null, "an unknown status records no attendance");
    let bad = run(dir.path(), &["import", "attendees.csv", "--source", "api", "--event-name", "Launch"]);
    assert_eq!(bad.status.code(), Some(2), "--event-name needs --attendance: {}", stderr(&bad));
}

#[test]
fn import_reads_windows_1252_and_tabs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("legacy.csv"), b"email\tfirst_name\tcity\nzoe@example.com\tZo\xeb\tK\xf6ln\n")
        .unwrap();
    let out = run(dir.path(), &["import", "legacy.csv", "--source", "api"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lead: Value = serde_json::from_str(stdout(&run(dir.path(), &["export", "--format", "jsonl"])).trim()).unwrap();
    assert_eq!((lead["first_name"].as_str(), lead["city"].as_str()), (Some("Zoë"), Some("Köln")));
}

#[test]
fn import_reads_a_named_xlsx_sheet() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/leads.xlsx");
    let out = run(
        dir.path(),
        &["import", fixture.to_str().unwrap(), "--source", "api", "--sheet", "Leads", "--report", "r.csv"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let outcomes: Vec<String> = report_rows(&dir.path().join("r.csv")).into_iter().map(|r| r[2].clone()).collect();
    assert_eq!(outcomes, ["created", "created", "rejected"]);
    let leads = stdout(&run(dir.path(), &["export", "--format", "jsonl"]));
    let grace: Value = serde_json::from_str(leads.lines().next().unwrap()).unwrap();
    assert_eq!(grace["phone"], "+14155552671", "a phone stored as a spreadsheet number reads as typed");
    assert_eq!(grace["postal_code"], "10115");
    assert_eq!(grace["country"], "US");
    let missing = run(dir.path(), &["import", fixture.to_str().unwrap(), "--source", "api", "--sheet", "Nope"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("Nope"));
}

#[test]
fn a_dry_run_shows_decisions_and_errors_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leads.csv"), "email,Favourite Colour\nada@example.com,teal\nnope,red\n").unwrap();
    let out = run(dir.path(), &["import", "leads.csv", "--source", "api", "--dry-run"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("email → email (exact)") && text.contains("Favourite Colour → custom.Favourite Colour"),
        "{text}"
    );
    assert!(text.contains("row 2: email"), "{text}");
    assert!(text.contains("\"email\":\"ada@example.com\""), "{text}");
    assert!(!dir.path().join("leadflow.db").exists(), "a dry run does not even create the database");
}

#[test]
fn import_into_an_unknown_source_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leads.csv"), "email\nada@example.com\n").unwrap();
    let out = run(dir.path(), &["import", "leads.csv", "--source", "trade-show"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(stderr(&out).contains("trade-show"));
}

#[test]
fn quarantined_rows_can_be_shown_and_replayed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leads.csv"), "email,first_name\nnot-an-email,Bob\n").unwrap();
    assert!(run(dir.path(), &["import", "leads.csv", "--source", "api"]).status.success());
    let listed = stdout(&run(dir.path(), &["quarantine", "list"]));
    let id = listed.split_whitespace().next().unwrap().to_owned();
    let shown: Value = serde_json::from_str(&stdout(&run(dir.path(), &["quarantine", "show", &id]))).unwrap();
    assert_eq!(shown["payload"]["first_name"], "Bob");
    assert_eq!(shown["errors"][0]["code"], "invalid_email");
    let replayed = run(dir.path(), &["quarantine", "replay", &id]);
    assert!(replayed.status.success());
    assert!(stdout(&replayed).contains("still quarantined"), "{}", stdout(&replayed));
    let all = run(dir.path(), &["quarantine", "replay", "--all"]);
    assert!(stdout(&all).contains("0 settled, 1 still quarantined"), "{}", stdout(&all));
}

#[test]
fn rows_quarantined_for_a_mapping_gap_settle_when_the_mapping_is_fixed_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    // "Kontakt" is no synonym of any field: the rows have no email and are quarantined.
    std::fs::write(
        dir.path().join("messe.csv"),
        "Kontakt,Vorname,Firma\nada@example.com,Ada,Analytical\ngrace@example.com,Grace,Navy\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("leadflow.toml"), "[[sources]]\nname = \"messe\"\n").unwrap();
    let out = run(dir.path(), &["import", "messe.csv", "--source", "messe"]);
    assert!(stdout(&out).contains("2 rejected"), "{}", stdout(&out));

    std::fs::write(
        dir.path().join("leadflow.toml"),
        "[[sources]]\nname = \"messe\"\n[sources.mapping]\nemail = \"Kontakt\"\nfirst_name = \"Vorname\"\ncompany = \"Firma\"\n",
    )
    .unwrap();
    assert!(run(dir.path(), &["check-config"]).status.success());
    let replayed = run(dir.path(), &["quarantine", "replay", "--all", "--source", "messe"]);
    assert!(stdout(&replayed).contains("2 settled, 0 still quarantined"), "{}", stdout(&replayed));
    let leads: Vec<Value> = stdout(&run(dir.path(), &["export", "--format", "jsonl"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(leads.len(), 2);
    assert_eq!(
        (leads[0]["email"].as_str(), leads[0]["first_name"].as_str(), leads[0]["company"].as_str()),
        (Some("ada@example.com"), Some("Ada"), Some("Analytical"))
    );
    assert_eq!(leads[0]["attribution"]["original"]["source"], "messe");
}

#[test]
fn common_column_names_are_matched_by_synonym() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("crm.csv"), "Work Email,First Name,Last Name,Company Name,Mobile Phone,Zip Code,Full Name\nada@example.com,Ada,Lovelace,Analytical,+44 20 7946 0958,N1 9GU,Ada Lovelace\n").unwrap();
    let out = run(dir.path(), &["import", "crm.csv", "--source", "api", "--dry-run"]);
    let text = stdout(&out);
    for decision in
        ["Work Email → email (synonym)", "Company Name → company (synonym)", "Zip Code → postal_code (synonym)"]
    {
        assert!(text.contains(decision), "missing {decision:?} in {text}");
    }
    assert!(run(dir.path(), &["import", "crm.csv", "--source", "api"]).status.success());
    let lead: Value = serde_json::from_str(stdout(&run(dir.path(), &["export", "--format", "jsonl"])).trim()).unwrap();
    assert_eq!(
        (lead["company"].as_str(), lead["postal_code"].as_str(), lead["phone"].as_str()),
        (Some("Analytical"), Some("N1 9GU"), Some("+442079460958"))
    );
}

/// A badge scan of Robert Smith without an email, a possible second mailbox of Jon Smith
/// at his company, and a namesake of Robert's elsewhere.
const SMITHS: &str = "first_name,last_name,company,phone,email,country\n\
     Robert,Smith,\"Acme, Inc.\",+1 415 555 2671,robert.smith@acme.com,US\n\
     Jon,Smith,Initech,,jon@initech.com,US\n\
     Bob,Smith,ACME Incorporated,(415) 555-2671,,US\n\
     Jonathan,Smith,Initech LLC,,jsmith@initech.com,US\n\
     Robert,Smith,Globex,,rsmith@globex.com,US\n";

#[test]
fn an_import_ends_with_its_duplicates_resolved() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leads.csv"), SMITHS).unwrap();
    let out = run(dir.path(), &["import", "leads.csv", "--source", "api"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("imported 5 rows: 5 created"), "{text}");
    assert!(text.contains("1 leads merged as duplicates, 1 possible duplicates queued for review"), "{text}");
    let leads: Vec<Value> = stdout(&run(dir.path(), &["export", "--format", "jsonl"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(leads.len(), 4);
    let robert = leads.iter().find(|l| l["email"] == "robert.smith@acme.com").unwrap();
    assert_eq!(robert["attribution"]["touch_count"], 2, "the badge scan was folded into Robert");
    let again = stdout(&run(dir.path(), &["dedupe"]));
    assert!(again.contains("0 duplicates were merged, 0 possible duplicates were queued"), "{again}");
}

#[test]
fn dedupe_train_learns_the_weights_from_the_stored_leads_and_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let first = ["Ada", "Grace", "Alan", "Linus", "Ken", "Dennis", "Margaret", "Barbara", "Frances", "Radia"];
    let last = ["Lovelace", "Hopper", "Turing", "Torvalds", "Thompson", "Ritchie", "Hamilton", "Liskov", "Allen"];
    let mut csv = String::from("first_name,last_name,email,company,city\n");
    for i in 0..1_200usize {
        let (f, l) = (first[i % first.len()], last[i / first.len() % last.len()]);
        csv.push_str(&format!("{f},{l},p{i}@co{}.com,Company {},Town {}\n", i % 300, i % 300, i % 40));
    }
    std::fs::write(dir.path().join("leads.csv"), csv).unwrap();
    // Stored as they are (namesakes at similarly named companies would merge otherwise).
    std::fs::write(dir.path().join("leadflow.toml"), "[matching]\nfuzzy = false\n").unwrap();
    assert!(run(dir.path(), &["import", "leads.csv", "--source", "api"]).status.success());
    std::fs::remove_file(dir.path().join("leadflow.toml")).unwrap();
    let out = run(dir.path(), &["dedupe", "--train"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("trained on 1200 leads: "), "{text}");
    let first_name_different = text.lines().find(|l| l.starts_with("FirstName") && l.contains(" Different ")).unwrap();
    assert!(first_name_different.contains("u learned"), "{first_name_different}");
    // Stored: a second training over the same leads learns the same weights, and the
    // search reads them without complaint.
    let again = stdout(&run(dir.path(), &["dedupe", "--train"]));
    assert_eq!(again, text, "deterministic");
    assert!(run(dir.path(), &["dedupe", "--dry-run"]).status.success());
    let conflicting = run(dir.path(), &["dedupe", "--train", "--dry-run"]);
    assert!(!conflicting.status.success());
}

#[tokio::test]
async fn dedupe_finds_fuzzy_duplicates_explains_them_and_merges_only_when_applied() {
    let dir = tempfile::tempdir().unwrap();
    // Imported while fuzzy matching was off: capture matched by exact email only.
    std::fs::write(dir.path().join("leads.csv"), SMITHS).unwrap();
    std::fs::write(dir.path().join("leadflow.toml"), "[matching]\nfuzzy = false\n").unwrap();
    assert!(run(dir.path(), &["import", "leads.csv", "--source", "api"]).status.success());
    std::fs::remove_file(dir.path().join("leadflow.toml")).unwrap();
    let leads = || stdout(&run(dir.path(), &["export", "--format", "jsonl"])).lines().count();
    assert_eq!(leads(), 5);

    let preview = run(dir.path(), &["dedupe", "--dry-run"]);
    assert!(preview.status.success(), "{}", stderr(&preview));
    let text = stdout(&preview);
    assert!(text.contains("would merge") && text.contains("fuzzy, score"), "{text}");
    assert!(text.contains("1 duplicates would be merged, 1 possible duplicates would be queued"), "{text}");
    assert_eq!(leads(), 5, "a dry run changes nothing");

    let applied = stdout(&run(dir.path(), &["dedupe"]));
    assert!(applied.contains("1 duplicates were merged, 1 possible duplicates were queued"), "{applied}");
    let remaining: Vec<Value> = stdout(&run(dir.path(), &["export", "--format", "jsonl"]))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(remaining.len(), 4);
    let robert = remaining.iter().find(|l| l["email"] == "robert.smith@acme.com").unwrap();
    assert_eq!(robert["attribution"]["touch_count"], 2, "the badge scan was folded into Robert");

    // A person says the Initech pair are two people; the next run does not ask again.
    let token = create_key(dir.path(), &["admin"]);
    let server = Server::start(dir.path());
    let http = client();
    let reviews: Vec<Value> =
        http.get(format!("{}/v1/reviews", server.base)).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(reviews.len(), 1);
    let id = reviews[0]["id"].as_str().unwrap();
    let r = http
        .post(format!("{}/v1/reviews/{id}", server.base))
        .bearer_auth(&token)
        .json(&json!({"decision": "distinct"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(server);
    let again = stdout(&run(dir.path(), &["dedupe"]));
    assert!(again.contains("0 duplicates were merged, 0 possible duplicates were queued"), "{again}");
}

// ---------------------------------------------------------------------------------------
// PostgreSQL: several instances on one database, and the database restarting under load.

use leadflow_testkit::postgres::TestDatabase;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

fn create_key_on(dir: &Path, database: &str) -> String {
    let out = run(dir, &["keys", "create", "--name", "test", "--scope", "admin", "--database", database]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().last().unwrap().to_owned()
}

/// Two servers on one PostgreSQL receive the same people at the same moment, each person
/// several times and through both. One lead per person, every acknowledged id present,
/// and each lead's delivery made once although both instances run a delivery worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_make_one_lead_per_person() {
    const PEOPLE: usize = 50;
    const ROUNDS: usize = 4;
    let seen: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let destination = format!(
        "[[destinations]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{hook}/hook\"\nsecret_env = \"LF_TEST_HOOK_SECRET\"\nevents = [\"created\"]\n"
    );
    let env = [("LF_TEST_HOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")];

    let db = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // One instance with fuzzy matching, one without: both settle the same email the same way.
    std::fs::write(dir_a.path().join("leadflow.toml"), format!("[matching]\nfuzzy = true\n\n{destination}")).unwrap();
    std::fs::write(dir_b.path().join("leadflow.toml"), &destination).unwrap();
    let token = create_key_on(dir_a.path(), &db.url);
    let a = Server::start_with_all(dir_a.path(), &["--database", &db.url], &env);
    let b = Server::start_with_all(dir_b.path(), &["--database", &db.url], &env);
    let http = client();
    let mut sends = Vec::new();
    for round in 0..ROUNDS {
        for p in 0..PEOPLE {
            let base = if (p + round) % 2 == 0 { a.base.clone() } else { b.base.clone() };
            let (http, token) = (http.clone(), token.clone());
            // The same address written differently each round: still one person.
            let email =
                if round % 2 == 0 { format!("person{p}@example.com") } else { format!(" Person{p}@EXAMPLE.com") };
            sends.push(tokio::spawn(async move {
                let r = http
                    .post(format!("{base}/v1/leads"))
                    .bearer_auth(&token)
                    .json(&json!({"email": email, "first_name": "Pat", "custom": {"round": round}}))
                    .send()
                    .await
                    .unwrap();
                let status = r.status();
                assert!(status == 201 || status == 200, "person {p} round {round}: {status}");
                let body: Value = r.json().await.unwrap();
                (p, body["id"].as_str().unwrap().to_owned())
            }));
        }
    }
    let mut ids: HashMap<usize, HashSet<String>> = HashMap::new();
    for send in sends {
        let (p, id) = send.await.unwrap();
        ids.entry(p).or_default().insert(id);
    }
    for (p, seen) in &ids {
        assert_eq!(seen.len(), 1, "person {p} answered with several lead ids: {seen:?}");
    }
    let leads = all_leads(&http, &b.base, &token).await;
    assert_eq!(leads.len(), PEOPLE, "one lead per person");
    let emails: HashSet<&str> = leads.iter().map(|l| l["email"].as_str().unwrap()).collect();
    assert_eq!(emails.len(), PEOPLE);
    for id in ids.values().flatten() {
        let r = http.get(format!("{}/v1/leads/{id}/history", a.base)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let history: Vec<Value> = r.json().await.unwrap();
        assert_eq!(history.len(), ROUNDS, "every submission of the person is in one lead's history");
    }
    // Both workers claim from one outbox: every lead's "created" event arrives, once.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < PEOPLE {
        assert!(std::time::Instant::now() < deadline, "{} of {PEOPLE} delivered", seen.lock().unwrap().len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Every outcome recorded, so no worker has a try of these still in flight.
    loop {
        let url = format!("{}/v1/deliveries?status=delivered&limit=1000", a.base);
        let delivered: Vec<Value> = http.get(url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        if delivered.len() == PEOPLE {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{} of {PEOPLE} recorded as delivered", delivered.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = seen.lock().unwrap().clone();
    let delivered_ids: HashSet<&str> = received.iter().map(|(id, _)| id.as_str()).collect();
    let delivered_leads: HashSet<&str> = received.iter().map(|(_, lead)| lead.as_str()).collect();
    assert_eq!(delivered_leads.len(), PEOPLE, "one delivery per lead");
    assert_eq!(received.len(), delivered_ids.len(), "no delivery was made twice: {received:?}");
}

/// Personal data sealed at rest on PostgreSQL, as an operator runs it: two instances with
/// the key from the environment share one database. The same person sent to both is one
/// lead, found by email on either; the webhook gets the lead in clear; no table holds
/// the person's name, email or phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_an_encrypted_postgres_seal_what_they_store() {
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    let keep = |axum::extract::State(bodies): axum::extract::State<Arc<Mutex<Vec<String>>>>, body: String| async move {
        bodies.lock().unwrap().push(body);
        axum::http::StatusCode::NO_CONTENT
    };
    let app = axum::Router::new().route("/hook", axum::routing::post(keep)).with_state(bodies.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = format!(
        "[encryption]\nkey_env = \"LF_KEY\"\n\n[[destinations]]\nname = \"hook\"\ntype = \"webhook\"\nurl = \"http://{hook}/hook\"\nsecret_env = \"LF_TEST_HOOK_SECRET\"\nevents = [\"created\"]\n"
    );
    let key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let env = [("LF_TEST_HOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), ("LF_KEY", key)];

    let db = TestDatabase::create().await.unwrap_or_else(|e| panic!("{e}"));
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(dir_a.path().join("leadflow.toml"), &config).unwrap();
    std::fs::write(dir_b.path().join("leadflow.toml"), &config).unwrap();
    let out = leadflow(dir_a.path())
        .env("LF_KEY", key)
        .args(["keys", "create", "--name", "test", "--scope", "admin", "--database", &db.url])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).lines().last().unwrap().to_owned();
    let a = Server::start_with_all(dir_a.path(), &["--database", &db.url], &env);
    let b = Server::start_with_all(dir_b.path(), &["--database", &db.url], &env);
    let http = client();
    let post = |base: String, body: Value| {
        let (http, token) = (http.clone(), token.clone());
        async move {
            let r = http.post(format!("{base}/v1/leads")).bearer_auth(&token).json(&body).send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };
    let first = post(
        a.base.clone(),
        json!({"email": "Ottoline.Vasquez@Quibble-Partners.com", "first_name": "Ottoline",
               "last_name": "Vasquez-Brandt", "phone": "+1 617 555 0199"}),
    )
    .await;
    let id = first["id"].as_str().unwrap().to_owned();
    let again =
        post(b.base.clone(), json!({"email": " ottoline.vasquez@quibble-partners.com", "company": "Quibble"})).await;
    assert_eq!(again["id"], id.as_str(), "{again}");
    assert_eq!(again["outcome"], "merged");
    let url = format!("{}/v1/leads?email=ottoline.vasquez@quibble-partners.com", a.base);
    let found: Value = http.get(url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(found[0]["id"], id.as_str(), "{found}");
    assert_eq!(found[0]["last_name"], "Vasquez-Brandt", "{found}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !bodies.lock().unwrap().iter().any(|b| b.contains("ottoline.vasquez@quibble-partners.com")) {
        assert!(Instant::now() < deadline, "the webhook got no lead in clear: {:?}", bodies.lock().unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop((a, b));

    let (pg, connection) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let tables = pg.query("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'", &[]).await.unwrap();
    let mut text = String::new();
    for table in tables {
        let table: String = table.get(0);
        for row in pg.query(&format!("SELECT t::text FROM {table} t"), &[]).await.unwrap() {
            text.push_str(&row.get::<_, String>(0).to_lowercase());
        }
    }
    assert!(text.contains("quibble"), "the company's domain is kept in clear on its account");
    for personal in ["ottoline", "vasquez", "6175550199", "555 0199"] {
        assert!(!text.contains(personal), "{personal} is stored in clear");
    }
}

/// A private PostgreSQL server in a temporary directory, on a free port, that a test may
/// stop and start (the machine's shared server is never restarted: other tests use it).
struct PrivatePostgres {
    dir: tempfile::TempDir,
    bin: std::path::PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivatePostgres {
    fn start_new() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()
            .unwrap_or_else(|| {
                panic!("no PostgreSQL server binaries under /usr/lib/postgresql: run scripts/test, which installs them")
            });
        let dir = tempfile::tempdir().unwrap();
        // initdb refuses to run as root: run the server as the postgres user then.
        let as_postgres = stdout(&Command::new("id").arg("-u").output().unwrap()).trim() == "0";
        if as_postgres {
            assert!(
                Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().unwrap().success()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let pg = Self { dir, bin, port, as_postgres };
        let data = pg.dir.path().join("data");
        let out = pg
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "--no-sync"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb failed: {}", stderr(&out));
        pg.start();
        pg
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(path);
            cmd
        } else {
            Command::new(path)
        }
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.path().display());
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start failed: {}", stderr(&out));
    }

    /// Stops like a crash: no checkpoint, clients cut off mid-transaction.
    fn stop(&self) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop failed: {}", stderr(&out));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

async fn readyz(http: &reqwest::Client, base: &str) -> u16 {
    http.get(format!("{base}/readyz")).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Polls `/readyz` until it answers `status`, for at most `limit`.
async fn wait_for_readyz(http: &reqwest::Client, base: &str, status: u16, limit: Duration) {
    let deadline = Instant::now() + limit;
    while readyz(http, base).await != status {
        assert!(Instant::now() < deadline, "/readyz did not answer {status} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// PostgreSQL crashes and comes back while leads stream in. Every acknowledged lead
/// survives; meanwhile requests are answered at once with 503 problems, not left hanging;
/// `/readyz` goes 503 and back to 200 without anyone restarting leadflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_during_load_loses_no_acknowledged_lead() {
    const WRITERS: usize = 4;
    let pg = PrivatePostgres::start_new();
    let url = pg.url();
    let dir = tempfile::tempdir().unwrap();
    let token = create_key_on(dir.path(), &url);
    let server = Server::start_with(dir.path(), &["--database", &url]);
    let http = client();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let refused = Arc::new(Mutex::new(Vec::<(String, u16, String, Duration)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (http, base, token) = (http.clone(), server.base.clone(), token.clone());
        let (acked, refused, stop) = (acked.clone(), refused.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let email = format!("r{w}-{i}@example.com");
                i += 1;
                let sent = Instant::now();
                let r = http
                    .post(format!("{base}/v1/leads"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", &email)
                    .json(&json!({"email": email}))
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("leadflow must answer while the database is down: {e}"));
                let status = r.status().as_u16();
                if status == 201 {
                    acked.lock().unwrap().push(email);
                } else {
                    let kind = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
                    refused.lock().unwrap().push((email, status, kind, sent.elapsed()));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    let wait_acked = |n: usize| {
        let acked = acked.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            while acked.lock().unwrap().len() < n {
                assert!(Instant::now() < deadline, "fewer than {n} leads acknowledged in time");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    wait_acked(200).await;

    pg.stop();
    wait_for_readyz(&http, &server.base, 503, Duration::from_secs(10)).await;
    let down = Instant::now();
    while refused.lock().unwrap().len() < 20 {
        assert!(down.elapsed() < Duration::from_secs(20), "requests were not refused while the database was down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(readyz(&http, &server.base).await, 503);

    pg.start();
    wait_for_readyz(&http, &server.base, 200, Duration::from_secs(30)).await;
    let before = acked.lock().unwrap().len();
    wait_acked(before + 100).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }

    let refused = refused.lock().unwrap().clone();
    for (email, status, kind, took) in &refused {
        assert_eq!(*status, 503, "{email} was refused with {status}");
        assert_eq!(kind, "application/problem+json");
        assert!(*took < Duration::from_secs(5), "{email} took {took:?} to be refused");
    }
    let acked = acked.lock().unwrap().clone();
    let leads = all_leads(&http, &server.base, &token).await;
    let emails: Vec<&str> = leads.iter().map(|l| l["email"].as_str().unwrap()).collect();
    let distinct: HashSet<&str> = emails.iter().copied().collect();
    assert_eq!(distinct.len(), emails.len(), "no lead exists twice");
    for email in &acked {
        assert!(distinct.contains(email.as_str()), "acknowledged lead {email} was lost");
    }
    // What was refused can be sent again, once: committed or not, it is one lead.
    for (email, ..) in &refused {
        let r = http
            .post(format!("{}/v1/leads", server.base))
            .bearer_auth(&token)
            .header("Idempotency-Key", email)
            .json(&json!({"email": email}))
            .send()
            .await
            .unwrap();
        assert!(r.status() == 201 || r.status() == 200, "resending {email} gave {}", r.status());
    }
    let after = all_leads(&http, &server.base, &token).await;
    assert_eq!(after.len(), acked.len() + refused.len());
}

#[test]
fn rescore_applies_changed_rules_and_a_dry_run_only_counts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leads.csv"),
        "email,job_title,company\nada@acme.com,VP Engineering,Acme\nbo@globex.com,Engineer,Globex\ncy@initech.com,Chief Executive Officer,Initech\n",
    )
    .unwrap();
    assert!(run(dir.path(), &["import", "leads.csv", "--source", "api"]).status.success());
    std::fs::write(
        dir.path().join("rules.toml"),
        "[scoring]\nmql_threshold = 20\n[[scoring.rules]]\nname = \"decision maker\"\nwhen = { derived = \"seniority\", in = [\"vp\", \"c_level\"] }\npoints = 25\n",
    )
    .unwrap();
    let stages = || -> Vec<String> {
        stdout(&run(dir.path(), &["export", "--format", "jsonl"]))
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["lifecycle_stage"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(stages(), vec!["new", "new", "new"]);

    let preview = run(dir.path(), &["rescore", "--config", "rules.toml", "--dry-run"]);
    assert!(preview.status.success(), "{}", stderr(&preview));
    let text = stdout(&preview);
    assert!(text.contains("3 leads; 2 scores would change"), "{text}");
    assert!(text.contains("2 would change stage: new → mql"), "{text}");
    assert_eq!(stages(), vec!["new", "new", "new"], "a dry run changes nothing");

    let applied = stdout(&run(dir.path(), &["rescore", "--config", "rules.toml"]));
    assert!(applied.contains("2 changed stage: new → mql"), "{applied}");
    assert_eq!(stages(), vec!["mql", "new", "mql"]);
    let again = stdout(&run(dir.path(), &["rescore", "--config", "rules.toml"]));
    assert!(again.contains("0 scores changed") && again.contains("no lead changed stage"), "{again}");
}

/// What the test's destination received: (webhook-id, lead id) per accepted call.
type Received = Arc<Mutex<Vec<(String, String)>>>;

async fn receive(
    axum::extract::State(seen): axum::extract::State<Received>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    // Slow enough that deliveries are in flight when the server is killed.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let id = headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let event: Value = serde_json::from_slice(&body).unwrap();
    seen.lock().unwrap().push((id, event["data"]["id"].as_str().unwrap().to_owned()));
    axum::http::StatusCode::NO_CONTENT
}

type Typed = Arc<Mutex<Vec<(String, String)>>>;

async fn receive_typed(
    axum::extract::State(seen): axum::extract::State<Typed>,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    let event: Value = serde_json::from_slice(&body).unwrap();
    let (kind, lead) = (event["type"].as_str().unwrap_or_default(), event["data"]["id"].as_str().unwrap_or_default());
    seen.lock().unwrap().push((kind.to_owned(), lead.to_owned()));
    axum::http::StatusCode::NO_CONTENT
}

/// A destination added later gets the leads of a time range through the outbox, as they
/// stand now; Slack and unknown destinations are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_sends_a_time_range_to_a_destination_through_the_outbox() {
    let seen: Typed = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/hook", axum::routing::post(receive_typed)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leadflow.toml"),
        format!(
            r#"
[[destinations]]
name = "warehouse"
type = "webhook"
url = "http://{hook}/hook"
secret_env = "LF_TEST_HOOK_SECRET"
events = ["erased"]

[[destinations]]
name = "sales-channel"
type = "slack"
url_env = "LF_TEST_SLACK_URL"
events = ["erased"]
"#
        ),
    )
    .unwrap();
    let env = [
        ("LF_TEST_HOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("LF_TEST_SLACK_URL", "http://127.0.0.1:9/slack"),
    ];
    let token = create_key(dir.path(), &["admin"]);
    let server = Server::start_with_env(dir.path(), &env);
    let http = client();
    let capture = |email: &str| {
        let r =
            http.post(format!("{}/v1/leads", server.base)).bearer_auth(&token).json(&json!({"email": email})).send();
        async move { r.await.unwrap().json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned() }
    };
    capture("early@acme.com").await;
    let from = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();
    let wanted = HashSet::from([capture("ada@acme.com").await, capture("grace@navy.mil").await]);
    drop(server);
    assert!(seen.lock().unwrap().is_empty(), "the destination subscribes to erasures only");

    let out = run(dir.path(), &["deliveries", "backfill", "--destination", "warehouse", "--from", &from]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "queued 2");
    let again = run(dir.path(), &["deliveries", "backfill", "--destination", "warehouse", "--from", &from]);
    assert_eq!(stdout(&again).trim(), "queued 0", "the same leads, unchanged, are not queued twice");
    for (args, why) in [
        (vec!["deliveries", "backfill", "--destination", "nowhere"], "not a configured destination"),
        (vec!["deliveries", "backfill", "--destination", "sales-channel"], "Slack"),
        (vec!["deliveries", "backfill", "--destination", "warehouse", "--from", "yesterday"], "RFC 3339"),
    ] {
        let out = run(dir.path(), &args);
        assert!(!out.status.success() && stderr(&out).contains(why), "{args:?}: {}", stderr(&out));
    }

    let _server = Server::start_with_env(dir.path(), &env);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got: HashSet<String> = seen.lock().unwrap().iter().map(|(_, lead)| lead.clone()).collect();
        if got == wanted {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "backfilled {got:?}, wanted {wanted:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(seen.lock().unwrap().iter().all(|(kind, _)| kind == "lead.backfilled"));
}

/// Kills the server with SIGKILL while deliveries are in flight. After a restart the
/// worker takes up the unfinished ones (their leases lapse) and every lead reaches the
/// destination; a repeat carries the webhook-id of the first try.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_delivery_loses_no_delivery() {
    const LEADS: usize = 120;
    let seen: Received = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = listener.local_addr().unwrap();
    let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leadflow.toml"),
        format!(
            r#"
[delivery]
timeout = "1s"
concurrency = 4

[[destinations]]
name = "hook"
type = "webhook"
url = "http://{hook}/hook"
secret_env = "LF_TEST_HOOK_SECRET"
events = ["created"]
retry = ["0s", "100ms", "200ms", "500ms", "1s", "1s", "1s", "1s"]
rate_limit = {{ per_second = 1000.0, burst = 1000 }}
"#
        ),
    )
    .unwrap();
    let env = [("LF_TEST_HOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")];
    let token = create_key(dir.path(), &["admin"]);
    let mut server = Server::start_with_env(dir.path(), &env);
    let http = client();
    let mut leads = HashSet::new();
    for i in 0..LEADS {
        let r = http
            .post(format!("{}/v1/leads", server.base))
            .bearer_auth(&token)
            .json(&json!({"email": format!("d{i}@example.com")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let created: Value = r.json().await.unwrap();
        leads.insert(created["id"].as_str().unwrap().to_owned());
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < 10 {
        assert!(std::time::Instant::now() < deadline, "nothing was delivered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(server);
    let before_restart: HashSet<String> = seen.lock().unwrap().iter().map(|(_, lead)| lead.clone()).collect();
    assert!(before_restart.len() < LEADS, "killed before every delivery was made");

    let server = Server::start_with_env(dir.path(), &env);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let received: HashSet<String> = seen.lock().unwrap().iter().map(|(_, lead)| lead.clone()).collect();
        if received == leads {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{} of {LEADS} delivered after the restart", received.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut ids = std::collections::HashMap::new();
    for (id, lead) in seen.lock().unwrap().iter() {
        assert_eq!(ids.entry(id.clone()).or_insert_with(|| lead.clone()), lead, "one webhook-id, one event");
    }
    assert_eq!(ids.len(), LEADS, "a repeat is a retry of the same webhook-id, never a new delivery");
    // Each outcome is recorded just after the destination answers.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let url = format!("{}/v1/deliveries?status=delivered&limit=1000", server.base);
        let delivered: Vec<Value> = http.get(url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        if delivered.len() == LEADS {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{} of {LEADS} recorded as delivered", delivered.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_shown_and_replayed_from_the_command_line() {
    // A destination nobody listens on, and a schedule of one try: straight to the dead letters.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leadflow.toml"),
        format!(
            r#"
[[destinations]]
name = "gone"
type = "webhook"
url = "http://{closed}/hook"
secret_env = "LF_TEST_HOOK_SECRET"
events = ["created"]
retry = ["0s"]
"#
        ),
    )
    .unwrap();
    let env = [("LF_TEST_HOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")];
    let token = create_key(dir.path(), &["admin"]);
    let mut server = Server::start_with_env(dir.path(), &env);
    let http = client();
    let r = http
        .post(format!("{}/v1/leads", server.base))
        .bearer_auth(&token)
        .json(&json!({"email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let url = format!("{}/v1/deliveries?status=dead", server.base);
        let dead: Vec<Value> = http.get(url).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        if dead.len() == 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the delivery never reached the dead letters");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.terminate().success());

    let listed = run(dir.path(), &["deliveries", "list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let line = stdout(&listed);
    assert!(line.contains("gone") && line.contains("lead.created"), "{line}");
    let id = line.split_whitespace().next().unwrap().to_owned();
    let shown = run(dir.path(), &["deliveries", "show", &id]);
    let shown: Value = serde_json::from_str(&stdout(&shown)).unwrap();
    assert_eq!(shown["status"], "dead");
    assert_eq!(shown["attempts_made"].as_array().unwrap().len(), 1);
    let replayed = run(dir.path(), &["deliveries", "replay", "--all", "--destination", "gone"]);
    assert_eq!(stdout(&replayed).trim(), "replayed 1");
    let pending = run(dir.path(), &["deliveries", "list", "--status", "pending"]);
    assert!(stdout(&pending).contains(&id));
    assert!(!run(dir.path(), &["deliveries", "show", "dlv_nothing"]).status.success());
}

#[tokio::test]
async fn export_can_keep_only_the_leads_that_grant_a_purpose() {
    let dir = tempfile::tempdir().unwrap();
    let token = create_key(dir.path(), &["admin"]);
    let server = Server::start(dir.path());
    let http = client();
    for body in [
        json!({"email": "yes@example.com", "consent": {"purposes": {"marketing_email": "granted", "phone": "granted"}}}),
        json!({"email": "no@example.com", "consent": {"purposes": {"marketing_email": "withdrawn"}}}),
        json!({"email": "silent@example.com"}),
        json!({"email": "half@example.com", "consent": {"purposes": {"marketing_email": "granted"}}}),
    ] {
        let r = http.post(format!("{}/v1/leads", server.base)).bearer_auth(&token).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 201);
    }
    drop(server);
    let emails = |args: &[&str]| -> Vec<String> {
        let out = run(dir.path(), args);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut emails: Vec<String> = stdout(&out)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["email"].as_str().unwrap().to_owned())
            .collect();
        emails.sort();
        emails
    };
    assert_eq!(
        emails(&["export", "--format", "jsonl", "--consent", "marketing_email"]),
        ["half@example.com", "yes@example.com"]
    );
    assert_eq!(
        emails(&["export", "--format", "jsonl", "--consent", "marketing_email", "--consent", "phone"]),
        ["yes@example.com"]
    );
    let out = run(dir.path(), &["export", "--format", "jsonl", "--consent", "telepathy"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not a consent purpose"), "{}", stderr(&out));
}

fn audit_lines(dir: &Path) -> Vec<Value> {
    let out = run(dir, &["audit", "list", "--limit", "50"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn audit_verify_passes_an_intact_chain_and_names_the_entry_changed_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    create_key(dir.path(), &["read"]);
    assert!(run(dir.path(), &["keys", "revoke", "test"]).status.success());
    assert!(run(dir.path(), &["export", "--format", "jsonl", "--out", "leads.jsonl"]).status.success());

    let entries = audit_lines(dir.path());
    let actions: Vec<&str> = entries.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["leads.exported", "key.revoked", "key.created"]);
    assert!(entries.iter().all(|e| e["actor"] == "cli"));
    assert_eq!(entries[2]["detail"], json!({"name": "test", "scopes": ["read"]}));
    assert_eq!(entries[1]["target"], entries[2]["target"], "the same key");

    let ok = run(dir.path(), &["audit", "verify"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let head = entries[0]["hash"].as_str().unwrap();
    assert_eq!(stdout(&ok).trim(), format!("ok: 3 entries, head {head}"));

    // An attacker with the file: the trigger goes, then one entry's detail changes.
    let conn = rusqlite::Connection::open(dir.path().join("leadflow.db")).unwrap();
    let refused = conn.execute("UPDATE audit_log SET detail = '{}' WHERE seq = 2", []);
    assert!(refused.unwrap_err().to_string().contains("append-only"));
    conn.execute_batch(
        "DROP TRIGGER audit_log_append_only; UPDATE audit_log SET detail = '{\"name\":\"other\"}' WHERE seq = 2;",
    )
    .unwrap();
    drop(conn);
    let broken = run(dir.path(), &["audit", "verify"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(stderr(&broken).contains("entry 2: hash mismatch"), "{}", stderr(&broken));
    assert!(stdout(&broken).is_empty());
}

#[test]
fn serve_records_the_configuration_it_loaded_with_the_hash_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("leadflow.toml"), "# the defaults\n").unwrap();
    // Recorded before it listens: once it does, the entry is committed.
    drop(Server::start(dir.path()));
    let sum = Command::new("sha256sum").arg(dir.path().join("leadflow.toml")).output().unwrap();
    let expected = stdout(&sum).split_whitespace().next().unwrap().to_owned();
    let entries = audit_lines(dir.path());
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(
        (e["action"].as_str(), e["actor"].as_str(), e["target"].as_str()),
        (Some("config.loaded"), Some("system"), Some("config"))
    );
    assert_eq!(e["detail"]["sha256"], expected.as_str());
    assert_eq!(e["detail"]["file"], "leadflow.toml");
}

#[test]
fn with_regions_an_import_settles_each_row_in_its_region_and_every_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leadflow.toml"),
        "[[regions]]\nname = \"eu\"\ndatabase = \"sqlite://eu.db\"\ncountries = [\"EU\"]\n\
         [[regions]]\nname = \"us\"\ndatabase = \"sqlite://us.db\"\ndefault = true\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("leads.csv"), "email,country\nmarta@example.it,Italy\nkai@example.com,US\n")
        .unwrap();
    let out = run(dir.path(), &["import", "leads.csv", "--source", "api", "--report", "report.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(dir.path(), &["export", "--format", "jsonl", "--out", "leads.jsonl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let exported = std::fs::read_to_string(dir.path().join("leads.jsonl")).unwrap();
    assert_eq!(exported.lines().count(), 2, "both regions are exported");
    let in_file = |file: &str, email: &str| {
        let conn = rusqlite::Connection::open(dir.path().join(file)).unwrap();
        conn.query_row("SELECT count(*) FROM leads WHERE email = ?1", [email], |r| r.get::<_, i64>(0)).unwrap()
    };
    assert_eq!((in_file("eu.db", "marta@example.it"), in_file("us.db", "marta@example.it")), (1, 0));
    assert_eq!((in_file("eu.db", "kai@example.com"), in_file("us.db", "kai@example.com")), (0, 1));

    let ok = run(dir.path(), &["audit", "verify"]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let lines: Vec<String> = stdout(&ok).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with("region eu: ok") && lines[1].starts_with("region us: ok"), "{lines:?}");
}

#[test]
fn keys_rotate_with_a_grace_and_list_their_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &[
            "keys",
            "create",
            "--name",
            "crm",
            "--scope",
            "read",
            "--expires-in",
            "90d",
            "--rate-limit-per-minute",
            "60",
            "--allow-ip",
            "10.0.0.0/8",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let old = stdout(&out).lines().last().unwrap().to_owned();
    assert!(stdout(&out).contains("it expires at"), "{}", stdout(&out));

    let out = run(dir.path(), &["keys", "rotate", "crm", "--grace", "1h"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let new = stdout(&out).lines().last().unwrap().to_owned();
    assert!(new.starts_with("lf_") && new != old);
    let list = stdout(&run(dir.path(), &["keys", "list"]));
    let rows: Vec<&str> = list.lines().filter(|l| l.contains(" crm ")).collect();
    assert_eq!(rows.len(), 2, "{list}");
    assert!(rows.iter().any(|r| r.contains("rotated")) && rows.iter().any(|r| r.contains("active")), "{list}");
    // The old key has a grace and is not rotated twice.
    let again = run(dir.path(), &["keys", "rotate", "crm", "--grace", "0s"]);
    assert!(again.status.success(), "the current key rotates: {}", stderr(&again));
    let list = stdout(&run(dir.path(), &["keys", "list"]));
    assert_eq!(list.lines().filter(|l| l.contains(" crm ") && l.contains("active")).count(), 1, "{list}");
    assert!(list.lines().any(|l| l.contains(" crm ") && l.contains("expired")), "no grace: expired at once\n{list}");

    let audit = audit_lines(dir.path());
    assert_eq!(audit.iter().filter(|e| e["action"] == "key.rotated").count(), 2);
    let bad = run(dir.path(), &["keys", "create", "--name", "x", "--scope", "read", "--allow-ip", "nowhere"]);
    assert_eq!(bad.status.code(), Some(2), "a usage error: {}", stderr(&bad));
    let unknown = run(dir.path(), &["keys", "rotate", "nobody", "--grace", "1h"]);
    assert!(!unknown.status.success());
}

/// The certificate `serve` presents on `addr` (the test certificates are trusted).
async fn presented_certificate(addr: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/tests/data/tls");
    let mut roots = rustls::RootCertStore::empty();
    for name in ["a.crt", "b.crt"] {
        roots.add(rustls::pki_types::CertificateDer::from_pem_file(fixtures.join(name)).unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").await.unwrap();
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await.unwrap();
    assert!(response.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&response));
    presented
}

#[tokio::test]
async fn serve_with_tls_flags_speaks_https_and_reloads_its_certificate_on_sighup() {
    use rustls::pki_types::pem::PemObject;
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../server/tests/data/tls");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::copy(fixtures.join("a.crt"), &cert).unwrap();
    std::fs::copy(fixtures.join("a.key"), &key).unwrap();
    let mut server = Server::start_with(dir.path(), &["--tls-cert", "cert.pem", "--tls-key", "key.pem"]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let der = |name: &str| rustls::pki_types::CertificateDer::from_pem_file(fixtures.join(name)).unwrap().to_vec();
    assert_eq!(presented_certificate(&addr).await, der("a.crt"));

    // New files that keep the old modification times: only the signal can tell.
    for (from, to) in [("b.key", &key), ("b.crt", &cert)] {
        let modified = std::fs::metadata(to).unwrap().modified().unwrap();
        let staged = dir.path().join(format!("{from}.new"));
        std::fs::copy(fixtures.join(from), &staged).unwrap();
        std::fs::File::options().write(true).open(&staged).unwrap().set_modified(modified).unwrap();
        std::fs::rename(&staged, to).unwrap();
    }
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while presented_certificate(&addr).await != der("b.crt") {
        assert!(std::time::Instant::now() < deadline, "SIGHUP did not reload the certificate");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.terminate().success(), "SIGHUP did not stop the server");
}

/// `[encryption]` as an operator runs it: keys from the environment, an import sealed at
/// rest, a rotation re-encrypted by `leadflow encryption reencrypt`, after which the old
/// key is no longer needed.
#[test]
fn encryption_keys_come_from_the_environment_and_rotate() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("leadflow.toml"),
        "[encryption]\nkey_env = \"LF_KEY\"\nprevious_key_envs = [\"LF_OLD_KEY\"]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("leads.csv"), "email,first_name\nquentin.oyelaran@example.com,Quentin\n").unwrap();
    let (first, second) =
        ("AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=", "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=");
    let with = |key: &str, old: Option<&str>, args: &[&str]| {
        let mut cmd = leadflow(dir.path());
        cmd.env("LF_KEY", key).args(args);
        match old {
            Some(old) => cmd.env("LF_OLD_KEY", old),
            None => cmd.env_remove("LF_OLD_KEY"),
        };
        cmd.output().unwrap()
    };
    let missing = leadflow(dir.path()).env_remove("LF_KEY").args(["export", "--format", "jsonl"]).output().unwrap();
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("LF_KEY is not set"), "{}", stderr(&missing));
    let bad = with("c2hvcnQ=", Some(first), &["export", "--format", "jsonl"]);
    assert!(stderr(&bad).contains("not 32"), "{}", stderr(&bad));
    let checked = with("c2hvcnQ=", Some(first), &["check-config"]);
    assert!(!checked.status.success() && stderr(&checked).contains("not 32"), "{}", stderr(&checked));
    assert!(with(first, None, &["check-config"]).status.success());

    let out = with(first, Some(first), &["import", "leads.csv", "--source", "api"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let db = std::fs::read(dir.path().join("leadflow.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains("oyelaran"));

    // Rotated: the new key writes, the old one still reads; re-encryption retires it.
    let out = with(second, Some(first), &["encryption", "reencrypt"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("re-encrypted"), "{}", stdout(&out));
    let out = with(second, None, &["export", "--format", "jsonl"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("quentin.oyelaran@example.com"));
    // Without any key, a database holding encrypted data refuses to open.
    let plain = leadflow(dir.path())
        .env_remove("LF_KEY")
        .env("LEADFLOW_CONFIG", "/dev/null")
        .args(["export", "--format", "jsonl"])
        .output();
    let plain = plain.unwrap();
    assert!(!plain.status.success());
    assert!(stderr(&plain).contains("key_env"), "{}", stderr(&plain));
}
