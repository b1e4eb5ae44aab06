//! Capture load benchmark: the release `leadflow` binary on a fresh SQLite file, driven
//! over loopback by a minimal keep-alive HTTP/1.1 client (so the client costs little of
//! the two cores the server needs).
//!
//! Measures, in one run: the bare `/healthz` rate (the HTTP ceiling), single-lead
//! `POST /v1/leads` with 64 connections (rate and latency percentiles), `POST
//! /v1/leads/batch` with 1000 leads a request, and plain batched SQLite inserts of the
//! rows one lead produces (the storage ceiling).
//!
//! Run: `cargo bench -p leadflow --bench capture` (BENCH_SECONDS=N per phase, default 10;
//! BENCH_FUZZY=0 with fuzzy matching off; on by default, the resolver running beside
//! capture as in production).
//!
//! On PostgreSQL: `BENCH_DATABASE=postgres://postgres@127.0.0.1/postgres` runs the same
//! phases on a fresh database created on that server (and dropped after), and
//! `BENCH_INSTANCES=N` starts N servers on it, the load spread over them. The storage
//! phase stays SQLite's.
//!
//! With regions: `BENCH_REGIONS=1` serves two SQLite regions (`eu`, and `us` the default)
//! with every lead in the US one (what routing costs); `BENCH_REGIONS=split` sends every
//! other lead to the EU one (`"country":"DE"`). `BENCH_ENCRYPTED=1` encrypts personal data
//! at rest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{lead_json, sqlite_baseline};

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 64;
const BATCH_CONNECTIONS: usize = 4;

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let phase = Duration::from_secs(seconds);
    let dir = tempfile::tempdir().unwrap();
    let bin = common::binary();
    // BENCH_FUZZY=0 measures with fuzzy matching off (serve reads ./leadflow.toml).
    let mut toml = String::new();
    if std::env::var("BENCH_FUZZY").is_ok_and(|v| v == "0") {
        toml.push_str("[matching]\nfuzzy = false\n");
    }
    toml.push_str(common::encryption_toml());
    let regions = std::env::var("BENCH_REGIONS").unwrap_or_default();
    let split = regions == "split";
    if !regions.is_empty() {
        // `--database` below names the default region's file.
        toml.push_str(&format!(
            "[[regions]]\nname = \"eu\"\ndatabase = \"sqlite://{}\"\ncountries = [\"EU\"]\n\
             [[regions]]\nname = \"us\"\ndatabase = \"sqlite://{}\"\ndefault = true\n",
            dir.path().join("eu.db").display(),
            dir.path().join("leadflow.db").display()
        ));
        println!("regions: eu and us{}", if split { ", every other lead in eu" } else { ", every lead in us" });
    }
    if !toml.is_empty() {
        std::fs::write(dir.path().join("leadflow.toml"), toml).unwrap();
    }
    let lead_json = move |conn: usize, i: u64| {
        let lead = lead_json(conn, i);
        if split && i.is_multiple_of(2) { lead.replace("\"country\":\"US\"", "\"country\":\"DE\"") } else { lead }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let postgres = std::env::var("BENCH_DATABASE").ok().map(|server| {
        rt.block_on(leadflow_testkit::postgres::TestDatabase::create_on(&server)).unwrap_or_else(|e| panic!("{e}"))
    });
    let database = match &postgres {
        Some(db) => db.url.clone(),
        None => format!("sqlite://{}", dir.path().join("leadflow.db").display()),
    };
    let instances: usize = std::env::var("BENCH_INSTANCES").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    println!("store: {}, instances: {instances}", if postgres.is_some() { "PostgreSQL" } else { "SQLite" });
    let out = Command::new(&bin)
        .current_dir(dir.path())
        .env(common::KEY_ENV.0, common::KEY_ENV.1)
        .args(["keys", "create", "--name", "bench", "--scope", "admin", "--database", &database])
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().lines().last().unwrap().to_owned();
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for _ in 0..instances {
        let mut server = Command::new(&bin)
            .current_dir(dir.path())
            .env("LEADFLOW_LOG", "warn")
            .env(common::KEY_ENV.0, common::KEY_ENV.1)
            .args(["serve", "--listen", "127.0.0.1:0", "--database", &database])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
        addrs.push(line.trim().trim_start_matches("listening on ").to_owned());
        servers.push(server);
    }
    let addr = Arc::new(addrs);

    // BENCH_ONLY=healthz,single,batch,storage runs a subset (for profiling one phase).
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    let run = |name: &str| only.is_empty() || only.split(',').any(|p| p == name);
    println!("\n| measurement | rate | p50 | p99 | errors |");
    println!("|---|---|---|---|---|");
    let mut rates = std::collections::HashMap::new();
    if run("healthz") {
        let r = rt.block_on(load(
            &addr,
            CONNECTIONS,
            phase,
            |_, _| "GET /healthz HTTP/1.1\r\nhost: b\r\n\r\n".to_owned().into_bytes(),
            1,
        ));
        r.row("GET /healthz, 64 connections", "req/s");
        rates.insert("healthz", r.rate);
    }
    if run("single") {
        let t = token.clone();
        let r =
            rt.block_on(load(&addr, CONNECTIONS, phase, move |conn, i| post(&t, "/v1/leads", &lead_json(conn, i)), 1));
        r.row("POST /v1/leads, 64 connections", "leads/s");
        rates.insert("single", r.rate);
        if postgres.is_none() {
            resolver_lag(&dir.path().join("leadflow.db"));
        }
    }
    if run("batch") {
        let t = token.clone();
        let r = rt.block_on(load(
            &addr,
            BATCH_CONNECTIONS,
            phase,
            move |conn, i| {
                let leads: Vec<String> = (0..common::BATCH_SIZE)
                    .map(|k| lead_json(1000 + conn, i * common::BATCH_SIZE as u64 + k as u64))
                    .collect();
                post(&t, "/v1/leads/batch", &format!("{{\"leads\":[{}]}}", leads.join(",")))
            },
            common::BATCH_SIZE as u64,
        ));
        r.row("POST /v1/leads/batch (1000 leads), 4 connections", "leads/s");
        rates.insert("batch", r.rate);
    }
    for server in &mut servers {
        stop(server);
    }
    drop(postgres);
    if run("storage") {
        let storage = sqlite_baseline(dir.path(), phase);
        println!(
            "| plain batched SQLite inserts (leads + submissions + history rows, 1000 leads a transaction) | {storage:.0} leads/s ({:.0} rows/s) | | | |",
            storage * 3.0
        );
        rates.insert("storage", storage);
    }
    println!();
    for (a, b) in [("single", "healthz"), ("single", "storage"), ("batch", "storage")] {
        if let (Some(x), Some(y)) = (rates.get(a), rates.get(b)) {
            println!("{a} / {b} = {:.3}", x / y);
        }
    }
}

/// How far the resolver (fuzzy matching after capture) was behind when the load stopped,
/// and how long it took to catch up: a capture rate it cannot follow only defers the work.
fn resolver_lag(db: &std::path::Path) {
    let conn = rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let backlog = || conn.query_row("SELECT count(*) FROM resolve_queue", [], |r| r.get::<_, i64>(0)).unwrap();
    let (behind, started) = (backlog(), Instant::now());
    while backlog() > 0 && started.elapsed() < Duration::from_secs(300) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = backlog();
    println!(
        "| resolver queue when the load stopped: {behind} leads; {} | | | | |",
        if left == 0 {
            format!("drained {:.2} s later", started.elapsed().as_secs_f64())
        } else {
            format!("{left} left after 300 s")
        }
    );
}

fn post(token: &str, path: &str, body: &str) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nhost: b\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

fn stop(server: &mut Child) {
    let _ = Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    let _ = server.wait();
}

struct Result {
    rate: f64,
    p50: Duration,
    p99: Duration,
    errors: u64,
}

impl Result {
    fn row(&self, what: &str, unit: &str) {
        println!(
            "| {what} | {:.0} {unit} | {:.2} ms | {:.2} ms | {} |",
            self.rate,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.errors
        );
    }
}

/// Runs `connections` keep-alive connections for `phase`, each sending the requests
/// `make(connection, n)` builds; `per_request` is how many units (leads) one request
/// carries.
async fn load(
    addrs: &Arc<Vec<String>>,
    connections: usize,
    phase: Duration,
    make: impl Fn(usize, u64) -> Vec<u8> + Send + Sync + 'static,
    per_request: u64,
) -> Result {
    let make = Arc::new(make);
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + phase;
    let mut tasks = Vec::new();
    for c in 0..connections {
        // Connections are spread over the instances, as a load balancer would.
        let (make, errors, addr) = (make.clone(), errors.clone(), addrs[c % addrs.len()].clone());
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut latencies = Vec::new();
            let mut buf = Vec::with_capacity(64 * 1024);
            let mut n = 0u64;
            while Instant::now() < deadline {
                let request = make(c, n);
                n += 1;
                let sent = Instant::now();
                stream.write_all(&request).await.unwrap();
                let status = read_response(&mut stream, &mut buf).await;
                latencies.push(sent.elapsed());
                if !(200..300).contains(&status) {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or_default()
    };
    Result {
        rate: all.len() as f64 * per_request as f64 / elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
        errors: errors.load(Ordering::Relaxed),
    }
}

/// Reads one HTTP/1.1 response with a content-length body; returns its status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> u16 {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed mid-body");
                buf.extend_from_slice(&chunk[..n]);
            }
            return status;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}
