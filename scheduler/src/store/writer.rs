//! The single writer thread: it owns the write connection and applies queued write requests
//! in groups, one transaction and one fsync per group (group commit).
//!
//! Each request runs inside its own savepoint, so a request that fails (a constraint, a full
//! disk at that statement) is rolled back alone and the rest of the group still commits.
//! Replies are sent only after the group's commit has returned, i.e. once the data is on disk.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::error::{sqlite, StoreError};

/// The most requests one transaction applies; bounds the latency a large burst adds to the
/// first request of the group.
pub(crate) const MAX_GROUP: usize = 512;

/// What the store's handles send to the writer thread.
pub(crate) enum Message {
    /// A write request.
    Write(Box<dyn Job>),
    /// Stop after the requests queued before this one; signal the sender (if any) once the
    /// write connection is closed.
    Close(Option<oneshot::Sender<()>>),
}

/// A write request: the work to run on the write connection and the caller waiting for it.
pub(crate) trait Job: Send {
    /// Runs the work inside the open transaction; returns whether it succeeded.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Records a failure of the request or of its group; an earlier failure of the request
    /// itself is kept.
    fn fail(&mut self, error: &StoreError);
    /// Sends the outcome to the caller (after the commit).
    fn answer(self: Box<Self>);
}

/// A [`Job`] whose work returns `T`.
struct WriteJob<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for WriteJob<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(conn);
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn fail(&mut self, error: &StoreError) {
        if !matches!(self.result, Some(Err(_))) {
            self.result = Some(Err(error.clone()));
        }
    }

    fn answer(self: Box<Self>) {
        // A result is always set before answering; without one, dropping the sender tells
        // the caller the store closed. A caller that stopped waiting is no error.
        if let Some(result) = self.result {
            let _ = self.reply.send(result);
        }
    }
}

/// Wraps `work` into a request answered on `reply`.
pub(crate) fn job<T, F>(work: F, reply: oneshot::Sender<Result<T, StoreError>>) -> Box<dyn Job>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    Box::new(WriteJob {
        work: Some(work),
        result: None,
        reply,
    })
}

/// Starts the writer thread on `conn`.
pub(crate) fn spawn(
    conn: Connection,
    path: PathBuf,
    inbox: Receiver<Message>,
) -> Result<JoinHandle<()>, StoreError> {
    let thread_path = path.clone();
    std::thread::Builder::new()
        .name("eremetic-store-writer".into())
        .spawn(move || run(conn, &thread_path, &inbox))
        .map_err(|source| StoreError::SpawnWriter {
            path,
            source: Arc::new(source),
        })
}

/// The thread's loop: wait for a request, take every request queued behind it (up to
/// [`MAX_GROUP`]), apply them as one transaction; stop on [`Message::Close`] or when every
/// handle is gone.
fn run(mut conn: Connection, path: &Path, inbox: &Receiver<Message>) {
    let mut closed_by = None;
    while let Ok(first) = inbox.recv() {
        let mut jobs = Vec::new();
        for message in collect_group(first, inbox, MAX_GROUP) {
            match message {
                Message::Write(job) => jobs.push(job),
                Message::Close(signal) => {
                    closed_by = Some(signal);
                    break;
                }
            }
        }
        // Requests grouped behind a Close are dropped unanswered: their callers get `Closed`.
        if !jobs.is_empty() {
            commit_group(&mut conn, path, jobs);
        }
        if closed_by.is_some() {
            break;
        }
    }
    drop(conn);
    if let Some(Some(signal)) = closed_by {
        let _ = signal.send(());
    }
}

/// `first` and every message already waiting in `inbox`, at most `max` in all.
pub(crate) fn collect_group<M>(first: M, inbox: &Receiver<M>, max: usize) -> Vec<M> {
    let mut group = vec![first];
    while group.len() < max {
        match inbox.try_recv() {
            Ok(message) => group.push(message),
            Err(_) => break,
        }
    }
    group
}

/// Applies `jobs` in one transaction, each in its own savepoint, commits, then answers them.
fn commit_group(conn: &mut Connection, path: &Path, mut jobs: Vec<Box<dyn Job>>) {
    match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Err(error) => {
            let error = sqlite(path, "beginning a write transaction")(error);
            jobs.iter_mut().for_each(|job| job.fail(&error));
        }
        Ok(mut tx) => {
            for job in jobs.iter_mut() {
                run_in_savepoint(&mut tx, path, job.as_mut());
            }
            if let Err(error) = tx.commit() {
                let error = sqlite(path, "committing")(error);
                tracing::error!("{error}");
                jobs.iter_mut().for_each(|job| job.fail(&error));
            }
        }
    }
    jobs.into_iter().for_each(|job| job.answer());
}

/// Runs one job; its changes are rolled back alone when it fails.
fn run_in_savepoint(tx: &mut rusqlite::Transaction<'_>, path: &Path, job: &mut dyn Job) {
    let savepoint = match tx.savepoint() {
        Ok(savepoint) => savepoint,
        Err(error) => return job.fail(&sqlite(path, "opening a savepoint")(error)),
    };
    if job.run(&savepoint) {
        if let Err(error) = savepoint.commit() {
            job.fail(&sqlite(path, "releasing a savepoint")(error));
        }
    }
    // A failed job's savepoint is rolled back when dropped.
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn group_takes_every_waiting_message_up_to_the_limit() {
        let (sender, inbox) = mpsc::channel();
        for n in 1..=10 {
            sender.send(n).unwrap();
        }
        assert_eq!(collect_group(0, &inbox, 4), [0, 1, 2, 3]);
        assert_eq!(collect_group(0, &inbox, 100), [0, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(collect_group(0, &inbox, 100), [0]);
    }

    #[test]
    fn a_failed_job_keeps_its_own_error_and_a_commit_failure_overrides_success() {
        let path = Path::new("/db");
        let (reply, mut outcome) = oneshot::channel::<Result<u8, StoreError>>();
        let mut ok = job(|_| Ok(1), reply);
        let own = StoreError::Closed {
            path: path.into(),
            operation: "own",
        };
        let conn = Connection::open_in_memory().unwrap();
        assert!(ok.run(&conn));
        ok.fail(&own);
        ok.answer();
        assert!(matches!(
            outcome.try_recv().unwrap(),
            Err(StoreError::Closed {
                operation: "own",
                ..
            })
        ));

        let (reply, mut outcome) = oneshot::channel::<Result<u8, StoreError>>();
        let mut failing = job(move |_| Err(own), reply);
        assert!(!failing.run(&conn));
        failing.fail(&StoreError::Closed {
            path: path.into(),
            operation: "commit",
        });
        failing.answer();
        assert!(matches!(
            outcome.try_recv().unwrap(),
            Err(StoreError::Closed {
                operation: "own",
                ..
            })
        ));
    }
}
