//! Shared by the benchmarks: the lead they send and the storage ceiling they compare with.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

pub const BATCH_SIZE: usize = 1000;

const FIRST: &[&str] = &[
    "Ada", "Grace", "Alan", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances", "John", "Radia", "Tim", "Hedy",
    "Donald", "Karen", "Edsger", "Shafi", "Leslie", "Anita", "Niklaus", "Sophie", "Bjarne", "Adele", "Guido",
];
const SYLLABLES: &[&str] = &[
    "lo", "ve", "hop", "tur", "ing", "tor", "valds", "ham", "rit", "chie", "lis", "kov", "sen", "berg", "mar", "ton",
    "dal", "ric", "bel", "son", "win", "ter", "ash", "ford",
];

/// A different, realistic person for each `(conn, i)`: names from lists (so namesakes
/// occur, as in real data), one of 20,000 companies with its own domain, a valid phone.
pub fn lead_json(conn: usize, i: u64) -> String {
    let n = i * 64 + conn as u64;
    let syl = |k: u64| SYLLABLES[(k % SYLLABLES.len() as u64) as usize];
    let last = format!("{}{}{}", syl(n / 7), syl(n / 151), syl(n / 3299));
    let last = format!("{}{}", last[..1].to_uppercase(), &last[1..]);
    let first = FIRST[(n % FIRST.len() as u64) as usize];
    let company = n % 20_000;
    format!(
        r#"{{"email":"{}.{}{n}@co{company}.com","first_name":"{first}","last_name":"{last}","company":"Company {company} Ltd","job_title":"Head of Research","phone":"+1 212 {} {:04}","country":"US","city":"New York","utm_source":"google","utm_campaign":"q4-launch","custom":{{"plan":"pro"}}}}"#,
        first.to_lowercase(),
        last.to_lowercase(),
        200 + (n / 10_000) % 700,
        n % 10_000
    )
}

/// The storage ceiling: the rows one lead produces (a lead, its inbox submission, its
/// history entry), with the same schema and indexes, inserted in transactions of 1000
/// with the same durability settings. Returns leads/s.
pub fn sqlite_baseline(dir: &std::path::Path, phase: Duration) -> f64 {
    let conn = rusqlite::Connection::open(dir.join("baseline.db")).unwrap();
    conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY;").unwrap();
    conn.execute_batch(include_str!("../../../store/migrations/sqlite/0001_capture_core.sql")).unwrap();
    let doc = format!("{{\"lead\":{},\"pad\":\"{}\"}}", lead_json(0, 0), "x".repeat(700));
    let payload = lead_json(0, 0);
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < phase {
        let tx = conn.unchecked_transaction().unwrap();
        {
            let mut lead = tx.prepare_cached("INSERT INTO leads (id, email, version, created_at, updated_at, doc) VALUES (?1, ?2, 1, ?3, ?3, ?4)").unwrap();
            let mut sub = tx
                .prepare_cached("INSERT INTO submissions (id, source, idempotency_key, received_at, payload, status, lead_id, outcome) VALUES (?1, 'api', NULL, ?2, ?3, 'processed', ?4, 'created')")
                .unwrap();
            let mut hist = tx
                .prepare_cached("INSERT INTO lead_history (lead_id, at, submission_id, entry) VALUES (?1, ?2, ?3, ?4)")
                .unwrap();
            for _ in 0..BATCH_SIZE {
                let lead_id = format!("01900000-0000-7000-8000-{n:012}");
                let sub_id = format!("01900000-0000-7000-9000-{n:012}");
                let email = format!("base-{n}@example.com");
                let now = i64::try_from(n).unwrap();
                lead.execute(rusqlite::params![lead_id, email, now, doc]).unwrap();
                sub.execute(rusqlite::params![sub_id, now, payload, lead_id]).unwrap();
                hist.execute(rusqlite::params![lead_id, now, sub_id, "{\"kind\":\"created\",\"source\":\"api\"}"])
                    .unwrap();
                n += 1;
            }
        }
        tx.commit().unwrap();
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// `BENCH_ENCRYPTED=1`: personal data encrypted at rest (`[encryption]`), under a key the
/// benchmark makes up and passes in [`KEY_ENV`].
pub fn encryption_toml() -> &'static str {
    if std::env::var("BENCH_ENCRYPTED").is_ok_and(|v| v == "1") {
        println!("encryption at rest: on");
        "[encryption]\nkey_env = \"LEADFLOW_BENCH_ENCRYPTION_KEY\"\n"
    } else {
        ""
    }
}

/// The variable the benchmark's key is passed in, and the key (32 bytes, base64).
pub const KEY_ENV: (&str, &str) = ("LEADFLOW_BENCH_ENCRYPTION_KEY", "QmVuY2htYXJrIGtleSwgbm90IGEgc2VjcmV0ISEhISE=");

/// The server binary: `BENCH_BIN` when set (to compare two builds in one sitting without
/// rebuilding), else the one cargo built for this bench.
pub fn binary() -> String {
    std::env::var("BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_leadflow").to_owned())
}
