//! The schema: versioned migrations and the backfills that came with some of them.

use super::{accounts, engagement, now_ms};
use crate::StoreError;
use leadflow_core::resolve::Matching;
use rusqlite::{Connection, TransactionBehavior, params};

/// Versioned, append-only migrations. Never edit a released one: add the next.
pub(super) const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_capture_core.sql")),
    (2, include_str!("../../migrations/sqlite/0002_imports.sql")),
    (3, include_str!("../../migrations/sqlite/0003_matching.sql")),
    (4, include_str!("../../migrations/sqlite/0004_accounts.sql")),
    (5, include_str!("../../migrations/sqlite/0005_engagement.sql")),
    (6, include_str!("../../migrations/sqlite/0006_jobs.sql")),
    (7, include_str!("../../migrations/sqlite/0007_outbox.sql")),
    (8, include_str!("../../migrations/sqlite/0008_routing.sql")),
    (9, include_str!("../../migrations/sqlite/0009_feedback.sql")),
    (10, include_str!("../../migrations/sqlite/0010_erasure.sql")),
    (11, include_str!("../../migrations/sqlite/0011_email_key.sql")),
    (12, include_str!("../../migrations/sqlite/0012_submission_fingerprint.sql")),
    (13, include_str!("../../migrations/sqlite/0013_resolve_queue.sql")),
    (14, include_str!("../../migrations/sqlite/0014_lead_records.sql")),
    (15, include_str!("../../migrations/sqlite/0015_health.sql")),
    (16, include_str!("../../migrations/sqlite/0016_alerts.sql")),
    (17, include_str!("../../migrations/sqlite/0017_audit.sql")),
    (18, include_str!("../../migrations/sqlite/0018_privacy.sql")),
    (19, include_str!("../../migrations/sqlite/0019_retention.sql")),
    (20, include_str!("../../migrations/sqlite/0020_key_lifecycle.sql")),
    (21, include_str!("../../migrations/sqlite/0021_encryption.sql")),
    (22, include_str!("../../migrations/sqlite/0022_changes.sql")),
];

pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    // A migration that rebuilds a table (SQLite cannot alter a CHECK) drops it while rows
    // of other tables refer to it: foreign keys are off while migrating (the pragma is a
    // no-op inside a transaction) and checked before the commit instead.
    conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    let migrated = run(conn);
    conn.execute_batch("PRAGMA foreign_keys = ON")?;
    migrated
}

fn run(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    let applied: std::collections::BTreeSet<i64> =
        tx.prepare("SELECT version FROM schema_migrations")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    // Every migration not applied yet, not only those above the highest applied: numbers
    // are taken by branches merged in any order, so a lower one may arrive later.
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| !applied.contains(v)) {
        tx.execute_batch(sql)?;
        tx.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)", params![version, now_ms()])?;
        tracing::info!(version, "applied migration");
    }
    if current < 4 {
        accounts::backfill(&tx)?;
    }
    if current < 5 {
        engagement::backfill(&tx)?;
    }
    if current < 11 {
        backfill_email_keys(&tx)?;
    }
    let broken: Option<String> =
        tx.query_row("PRAGMA foreign_key_check", [], |r| r.get(0)).map(Some).or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })?;
    if let Some(table) = broken {
        return Err(StoreError::Corrupt(format!("a migration left rows of {table} referring to nothing")));
    }
    tx.commit()?;
    Ok(())
}

/// Leads stored before the email match key get theirs, under the built-in provider rules
/// (the configuration is not known here; a lead is keyed with the configured rules on its
/// next write).
pub(super) fn backfill_email_keys(conn: &Connection) -> Result<(), StoreError> {
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT id, email FROM leads WHERE email IS NOT NULL AND email_key IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let matching = Matching::default();
    let mut update = conn.prepare("UPDATE leads SET email_key = ?2 WHERE id = ?1")?;
    for (id, email) in rows {
        update.execute(params![id, matching.stored_email_key(&email)])?;
    }
    Ok(())
}

pub(super) fn latest_migration() -> i64 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}
