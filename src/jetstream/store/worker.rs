//! The storage thread: runs the [`SyncJob`]s the stores hand over, with
//! group commit, and reports each job's [`SyncResult`] back to the event
//! loop through its `mio::Waker` (the pattern of `auth::bcrypt_worker`).
//!
//! Group commit: the thread takes every job that is waiting (from all
//! streams) as one batch: first all writes, then one `fdatasync` per file,
//! then the atomic metadata writes (temp file, sync, rename), the removals,
//! and one sync per directory. Jobs that arrive meanwhile wait and form the
//! next batch. Nothing is reported before the batch is on disk; a job one of
//! whose operations failed is reported failed.

use super::fs::FileSystem;
use mio::Waker;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

/// One operation of a job.
#[derive(Debug)]
pub(crate) enum Op {
    /// Create an empty file (its directory is synced).
    Create(PathBuf),
    /// Write bytes at an offset of an existing file.
    WriteAt(PathBuf, u64, Vec<u8>),
    /// Replace a file atomically: write `<path>.tmp`, sync it, rename it
    /// over `path`, sync the directory.
    Atomic(PathBuf, Vec<u8>),
    /// Remove a file (its directory is synced).
    Remove(PathBuf),
}

/// A batch of writes and syncs of one store (or one state file), to run on
/// the storage thread (or inline, in tests, with [`SyncJob::run`]).
#[derive(Debug)]
pub struct SyncJob {
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) ops: Vec<Op>,
    /// Files to `fdatasync` after the writes.
    pub(crate) sync: Vec<PathBuf>,
    /// The sequence that is durable once this job is done.
    pub(crate) upto: u64,
    /// The store's number for the job.
    pub(crate) token: u64,
}

/// What became of a [`SyncJob`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub(crate) upto: u64,
    pub(crate) token: u64,
    /// Why the job failed, if it did.
    pub error: Option<String>,
}

impl SyncResult {
    /// Whether every write and sync of the job succeeded.
    pub fn is_ok(&self) -> bool {
        self.error.is_none()
    }
}

impl SyncJob {
    /// A job with no work.
    pub(crate) fn new(fs: Arc<dyn FileSystem>) -> SyncJob {
        SyncJob {
            fs,
            ops: Vec::new(),
            sync: Vec::new(),
            upto: 0,
            token: 0,
        }
    }

    /// Whether the job has nothing to do.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty() && self.sync.is_empty()
    }

    /// Performs only the writes (no sync, no metadata, no removal): a job
    /// the storage thread was in the middle of when the power went.
    #[cfg(test)]
    pub(crate) fn apply_writes_only(&self) {
        for op in &self.ops {
            let _ = match op {
                Op::Create(p) => self.fs.create(p),
                Op::WriteAt(p, off, data) => self.fs.write_at(p, *off, data),
                _ => Ok(()),
            };
        }
    }

    /// Runs this one job here (blocking): for tests, start-up and
    /// shutdown.
    pub fn run(self) -> SyncResult {
        run_batch(vec![self]).pop().unwrap_or(SyncResult {
            upto: 0,
            token: 0,
            error: Some("no result".into()),
        })
    }
}

fn dir_of(p: &Path) -> PathBuf {
    p.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Key of a path on one file system (jobs of different file systems can
/// share a batch).
fn key(fs: &Arc<dyn FileSystem>, p: &Path) -> (usize, PathBuf) {
    (Arc::as_ptr(fs) as *const () as usize, p.to_path_buf())
}

/// Runs jobs as one group commit; one result per job, in order.
pub fn run_batch(jobs: Vec<SyncJob>) -> Vec<SyncResult> {
    let mut errors: Vec<Option<String>> = vec![None; jobs.len()];
    let fail = |errors: &mut Vec<Option<String>>, i: usize, what: String| {
        if errors[i].is_none() {
            errors[i] = Some(what);
        }
    };
    // Directories to sync: (job, dir); deduplicated per file system below.
    let mut dirs: Vec<(usize, PathBuf)> = Vec::new();
    // 1. Writes, in job order.
    for (i, job) in jobs.iter().enumerate() {
        for op in &job.ops {
            let r = match op {
                Op::Create(p) => {
                    dirs.push((i, dir_of(p)));
                    job.fs.create(p)
                }
                Op::WriteAt(p, off, data) => job.fs.write_at(p, *off, data),
                Op::Atomic(..) | Op::Remove(_) => Ok(()),
            };
            if let Err(e) = r {
                fail(
                    &mut errors,
                    i,
                    format!("{op_name}: {e}", op_name = op_desc(op)),
                );
            }
        }
    }
    // 2. One fdatasync per file.
    let mut synced: HashSet<(usize, PathBuf)> = HashSet::new();
    let mut sync_errors: Vec<((usize, PathBuf), String)> = Vec::new();
    for (i, job) in jobs.iter().enumerate() {
        for p in &job.sync {
            let k = key(&job.fs, p);
            if let Some((_, e)) = sync_errors.iter().find(|(q, _)| *q == k) {
                let e = e.clone();
                fail(&mut errors, i, e);
                continue;
            }
            if synced.contains(&k) {
                continue;
            }
            match job.fs.sync_data(p) {
                Ok(()) => {
                    synced.insert(k);
                }
                Err(e) => {
                    let e = format!("fdatasync {}: {e}", p.display());
                    sync_errors.push((k, e.clone()));
                    fail(&mut errors, i, e);
                }
            }
        }
    }
    // 3. Atomic replacements, then removals (so metadata never names a
    // file as removed before it is), in job order.
    for (i, job) in jobs.iter().enumerate() {
        for op in &job.ops {
            if let Op::Atomic(p, data) = op {
                dirs.push((i, dir_of(p)));
                if let Err(e) = atomic_write(job.fs.as_ref(), p, data) {
                    fail(&mut errors, i, format!("{}: {e}", op_desc(op)));
                }
            }
        }
    }
    for (i, job) in jobs.iter().enumerate() {
        for op in &job.ops {
            let r = match op {
                Op::Remove(p) => {
                    dirs.push((i, dir_of(p)));
                    match job.fs.remove(p) {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                        r => r,
                    }
                }
                _ => Ok(()),
            };
            if let Err(e) = r {
                fail(&mut errors, i, format!("{}: {e}", op_desc(op)));
            }
        }
    }
    // 4. One sync per directory (per file system).
    let mut done: Vec<((usize, PathBuf), Option<String>)> = Vec::new();
    for (j, d) in dirs {
        let k = key(&jobs[j].fs, &d);
        let r = match done.iter().find(|(q, _)| *q == k) {
            Some((_, r)) => r.clone(),
            None => {
                let r = jobs[j]
                    .fs
                    .sync_dir(&d)
                    .err()
                    .map(|e| format!("sync directory {}: {e}", d.display()));
                done.push((k, r.clone()));
                r
            }
        };
        if let Some(e) = r {
            fail(&mut errors, j, e);
        }
    }
    jobs.iter()
        .zip(errors)
        .map(|(job, error)| SyncResult {
            upto: job.upto,
            token: job.token,
            error,
        })
        .collect()
}

fn op_desc(op: &Op) -> String {
    match op {
        Op::Create(p) => format!("create {}", p.display()),
        Op::WriteAt(p, off, _) => format!("write {} at {off}", p.display()),
        Op::Atomic(p, _) => format!("replace {}", p.display()),
        Op::Remove(p) => format!("remove {}", p.display()),
    }
}

/// Writes `path` atomically: `<path>.tmp`, fdatasync, rename. The caller
/// syncs the directory.
pub(crate) fn atomic_write(fs: &dyn FileSystem, path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    fs.create(&tmp)?;
    fs.write_at(&tmp, 0, data)?;
    fs.sync_data(&tmp)?;
    fs.rename(&tmp, path)
}

type Batch = Vec<(u64, SyncJob)>;

/// The event loop's handle on the storage thread.
#[derive(Debug)]
pub struct StorageWorker {
    jobs: Option<Sender<Batch>>,
    done: Receiver<(u64, SyncResult)>,
    thread: Option<thread::JoinHandle<()>>,
}

impl StorageWorker {
    /// Starts the storage thread; it wakes the loop through `waker` after
    /// each batch and ends when the handle is dropped (after finishing the
    /// jobs it has).
    pub fn spawn(waker: Arc<Waker>) -> std::io::Result<StorageWorker> {
        Self::spawn_with(move || {
            // A failed wake-up can only mean the loop is shutting down.
            let _ = waker.wake();
        })
    }

    /// As [`StorageWorker::spawn`], with any wake-up (tests).
    pub fn spawn_with(wake: impl Fn() + Send + 'static) -> std::io::Result<StorageWorker> {
        let (tx, rx) = mpsc::channel::<Batch>();
        let (done_tx, done) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("natrium-storage".into())
            .spawn(move || {
                while let Ok(mut batch) = rx.recv() {
                    // Everything that queued meanwhile joins this batch.
                    while let Ok(more) = rx.try_recv() {
                        batch.extend(more);
                    }
                    let (ids, jobs): (Vec<u64>, Vec<SyncJob>) = batch.into_iter().unzip();
                    let results = run_batch(jobs);
                    for (id, r) in ids.into_iter().zip(results) {
                        if done_tx.send((id, r)).is_err() {
                            return; // the loop is gone
                        }
                    }
                    wake();
                }
            })?;
        Ok(StorageWorker {
            jobs: Some(tx),
            done,
            thread: Some(thread),
        })
    }

    /// Hands over one store's job.
    pub fn submit(&self, store_id: u64, job: SyncJob) {
        self.submit_all(vec![(store_id, job)]);
    }

    /// Hands over the jobs of a whole turn at once (one group commit for
    /// all of them unless a batch is in flight).
    pub fn submit_all(&self, jobs: Vec<(u64, SyncJob)>) {
        if jobs.is_empty() {
            return;
        }
        let sent = self.jobs.as_ref().map(|t| t.send(jobs));
        if let Some(Err(mpsc::SendError(jobs))) = sent {
            // The thread is gone (it panicked): fail the jobs, never ack.
            log::error!("storage thread is gone; {} jobs failed", jobs.len());
        }
    }

    /// The jobs finished since the last call, in the order they finished
    /// (per store, the order they were submitted).
    pub fn drain_completions(&self) -> Vec<(u64, SyncResult)> {
        self.done.try_iter().collect()
    }
}

impl Drop for StorageWorker {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jetstream::store::fs::SimFs;
    use std::time::Duration;

    #[test]
    fn batch_shares_syncs_and_reports_failures() {
        let sim = SimFs::new(3);
        let fs: Arc<dyn FileSystem> = Arc::new(sim.clone());
        let d = PathBuf::from("/w");
        fs.create_dir_all(&d).unwrap();
        let mut a = SyncJob::new(fs.clone());
        a.ops.push(Op::Create(d.join("f")));
        a.ops.push(Op::WriteAt(d.join("f"), 0, b"abc".to_vec()));
        a.sync.push(d.join("f"));
        a.upto = 5;
        let mut b = SyncJob::new(fs.clone());
        b.ops.push(Op::WriteAt(d.join("f"), 3, b"def".to_vec()));
        b.ops.push(Op::Atomic(d.join("m"), b"meta".to_vec()));
        b.sync.push(d.join("f"));
        let mut c = SyncJob::new(fs.clone());
        c.ops.push(Op::WriteAt(d.join("missing"), 0, b"x".to_vec()));
        let r = run_batch(vec![a, b, c]);
        assert!(r[0].is_ok() && r[1].is_ok() && !r[2].is_ok());
        assert_eq!(r[0].upto, 5);
        // 1 file sync + 1 tmp sync + 1 dir sync.
        assert_eq!(sim.syncs(), 3);
        sim.power_cut(false);
        assert_eq!(fs.read_all(&d.join("f")).unwrap(), b"abcdef");
        assert_eq!(fs.read_all(&d.join("m")).unwrap(), b"meta");
    }

    #[test]
    fn thread_reports_back() {
        let fs: Arc<dyn FileSystem> = Arc::new(SimFs::new(4));
        let (tx, rx) = mpsc::channel();
        let w = StorageWorker::spawn_with(move || {
            let _ = tx.send(());
        })
        .unwrap();
        let mut j = SyncJob::new(fs.clone());
        j.upto = 9;
        w.submit(7, j);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let got = w.drain_completions();
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].1.upto), (7, 9));
        let fail = SimFs::new(5);
        fail.set_failing(true);
        let ffs: Arc<dyn FileSystem> = Arc::new(fail);
        let mut j = SyncJob::new(ffs.clone());
        j.ops.push(Op::Create(PathBuf::from("/x/y")));
        w.submit(8, j);
        rx.recv_timeout(Duration::from_secs(5)).unwrap();
        let got = w.drain_completions();
        assert!(!got[0].1.is_ok());
    }
}
