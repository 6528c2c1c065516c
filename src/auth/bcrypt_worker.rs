//! The bcrypt worker: one thread that runs bcrypt verifications off the
//! event loop.
//!
//! bcrypt is slow on purpose (tens to hundreds of milliseconds per check).
//! Run inline, every CONNECT with a bcrypt password would stall every other
//! client, and a client repeating wrong passwords could stall the server.
//! The loop sends a [`Job`] here and parks the connection; the answer comes
//! back as a [`Verdict`] with a wake-up of the loop's [`Waker`].

use mio::Waker;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread;

/// Checks waiting for the worker before new ones are refused.
pub const QUEUE: usize = 1024;

/// One verification to run.
#[derive(Debug)]
pub struct Job {
    /// The connection's slab key.
    pub key: usize,
    /// The connection's id (a slab key may be reused by then).
    pub cid: u64,
    /// The configured bcrypt hash.
    pub hash: String,
    /// The secret the client sent.
    pub given: String,
}

/// The answer to a [`Job`].
#[derive(Debug)]
pub struct Verdict {
    /// The connection's slab key.
    pub key: usize,
    /// The connection's id.
    pub cid: u64,
    /// The hash that was checked.
    pub hash: String,
    /// Whether the secret matches it.
    pub ok: bool,
}

/// The handle the event loop keeps.
#[derive(Debug)]
pub struct AuthWorker {
    jobs: SyncSender<Job>,
    verdicts: Receiver<Verdict>,
}

impl AuthWorker {
    /// Starts the worker thread; it wakes the loop through `waker` after
    /// each verdict and ends when the handle is dropped.
    pub fn start(waker: Arc<Waker>) -> std::io::Result<AuthWorker> {
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(QUEUE);
        let (verdict_tx, verdicts) = mpsc::channel::<Verdict>();
        thread::Builder::new()
            .name("natrium-bcrypt".into())
            .spawn(move || {
                for job in job_rx {
                    let ok = crate::auth::verify_bcrypt(&job.given, &job.hash);
                    let verdict = Verdict {
                        key: job.key,
                        cid: job.cid,
                        hash: job.hash,
                        ok,
                    };
                    if verdict_tx.send(verdict).is_err() {
                        return; // the server is gone
                    }
                    // A failed wake-up can only mean the loop is shutting down.
                    let _ = waker.wake();
                }
            })?;
        Ok(AuthWorker { jobs, verdicts })
    }

    /// Queues a verification; false when the queue is full (or the worker gone).
    pub fn submit(&self, job: Job) -> bool {
        match self.jobs.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// The verdicts that arrived so far.
    pub fn verdicts(&self) -> impl Iterator<Item = Verdict> + '_ {
        self.verdicts.try_iter()
    }
}
