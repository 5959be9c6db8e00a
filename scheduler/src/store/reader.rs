//! A small pool of read-only connections; WAL lets them read beside the writer.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use rusqlite::Connection;

use super::error::StoreError;
use super::schema;

/// How many read connections the store opens (reads run on tokio's blocking pool, so this
/// bounds the concurrent SQLite reads, not the callers).
pub(crate) const READERS: usize = 3;

/// Read-only connections, each behind its own lock.
pub(crate) struct ReadPool {
    connections: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl ReadPool {
    /// Opens `size` read-only connections to `path` (at least one).
    pub(crate) fn open(path: &Path, size: usize) -> Result<ReadPool, StoreError> {
        let connections = (0..size.max(1))
            .map(|_| schema::open_reader(path).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReadPool {
            connections,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `read` on a free connection, or waits for one (round robin) when all are busy.
    pub(crate) fn with<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A panic while a connection was locked cannot leave it inconsistent (every read
        // statement is reset when dropped), so a poisoned lock is still usable.
        for slot in &self.connections {
            if let Ok(conn) = slot.try_lock() {
                return read(&conn);
            }
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.connections.len();
        let conn = self.connections[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        read(&conn)
    }
}
