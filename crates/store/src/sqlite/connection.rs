//! Connections: how each is set up, the pool of read connections, and the thread that keeps
//! the write-ahead log short.

use crate::StoreError;
use rusqlite::hooks::Wal;
use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};
use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

const MAX_IDLE_READERS: usize = 8;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // FULL makes every commit durable across power loss, not only process crashes; group
    // commit is what keeps that affordable. Savepoint journals stay in memory: they only
    // matter until the transaction ends, and writing them to a temp file cost more than
    // the inserts themselves.
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA temp_store = MEMORY;")?;
    // Lookups read index pages all over the lead and key tables: with SQLite's default
    // 2 MB page cache they became read system calls once the store outgrew it. Much larger
    // caches cost more than they save (truncating the cache walks all of it).
    conn.execute_batch("PRAGMA cache_size = -32768;")?;
    // A capture or an event batch runs a few dozen distinct statements; with rusqlite's
    // default cache of 16 they evicted one another and were parsed and planned again on
    // every use (an eighth of the writer's time when rescoring leads from events).
    conn.set_prepared_statement_cache_capacity(256);
    Ok(())
}

/// WAL size (pages) at which the checkpointer is woken: SQLite's own autocheckpoint default.
pub(super) const CHECKPOINT_PAGES: c_int = 1000;
/// WAL size at which the writer checkpoints itself. The log only starts over from its
/// beginning after a checkpoint that caught up with the last commit, and a checkpointer
/// racing a busy writer never quite does: without this the log grew to tens of megabytes,
/// and every read searched it (an import of a million rows lost its whole gain). By the
/// time the log reaches this size the checkpointer has copied nearly all of it, so the
/// writer's share is the last commit's pages. Also the backstop when readers hold old
/// snapshots.
pub(super) const CHECKPOINT_BACKSTOP_PAGES: c_int = 4_000;

/// Moves WAL checkpoints off the writer thread. SQLite's autocheckpoint copies the log back
/// into the database inside the commit that crosses the threshold, on the single writer:
/// a twentieth of its time during an import. A passive checkpoint on another connection
/// never blocks the writer, and on a second core it costs captures nothing. The thread ends
/// when the writer's connection (holding the hook, and with it the sender) is dropped.
pub(super) fn start_checkpointer(writer: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let conn = Connection::open(path)?;
    configure(&conn)?;
    let (wake, wakes) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("leadflow-sqlite-checkpointer".into())
        .spawn(move || {
            for () in wakes {
                match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
                    Ok(_) => {}
                    // The writer's own backstop checkpoint is running: expected under load.
                    Err(e)
                        if matches!(
                            e.sqlite_error_code(),
                            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                        ) =>
                    {
                        tracing::debug!(error = %e, "a WAL checkpoint met the writer's; the next commit asks again");
                    }
                    Err(e) => tracing::warn!(error = %e, "a WAL checkpoint failed; the next commit asks again"),
                }
            }
        })
        .map_err(|e| StoreError::Internal(format!("cannot start the checkpointer thread: {e}")))?;
    writer.wal_hook(Some(move |wal: &mut Wal, pages: c_int| {
        if pages >= CHECKPOINT_BACKSTOP_PAGES {
            // Never an error from here: SQLite would report it as the commit's, though the
            // commit stands, and the writer would redo a group that is already written.
            // Busy (the checkpointer is at work) is expected; the next commit tries again.
            if let Err(e) = wal.checkpoint_v2(CheckpointMode::PASSIVE) {
                tracing::debug!(error = %e, "the writer's WAL checkpoint did not run");
            }
        } else if pages >= CHECKPOINT_PAGES {
            // Full means a checkpoint is already asked for; one is enough.
            let _ = wake.try_send(());
        }
        Ok(())
    }))?;
    Ok(())
}

pub(super) struct Readers {
    pub(super) path: PathBuf,
    pub(super) idle: Mutex<Vec<Connection>>,
    pub(super) cipher: Option<std::sync::Arc<crate::cipher::Cipher>>,
}

impl Readers {
    pub(super) fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // A lookup's statement has one part per blocking key, so leads with different
        // numbers of keys run different statements: with rusqlite's default cache of 16
        // they evicted one another, and the longest were parsed and planned again on the
        // lookups that could least afford it.
        conn.set_prepared_statement_cache_capacity(256);
        super::sealing::register(&conn, self.cipher.clone())?;
        Ok(conn)
    }

    pub(super) fn give(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE_READERS
        {
            idle.push(conn);
        }
    }
}
