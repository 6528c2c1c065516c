//! Where file streams and consumers live on disk, and finding them again
//! at start.
//!
//! Layout, as nats-server's: `<store_dir>/jetstream/$G/streams/<stream>/`
//! holds the stream's message log (`msgs/`, a [`FileStore`], whose
//! metadata and segment headers keep the stream config) and its consumers
//! (`obs/<consumer>.json`, one checked file each with the consumer's
//! config and delivery/ack state, replaced atomically).
//!
//! Consumer state is written once per loop turn for every consumer whose
//! state changed, by the storage thread (group commit with the message
//! writes). An ack sent as a request is answered once the state that
//! includes it is on disk: [`Persistence::ticket`] names that write,
//! [`Persistence::state_durable`] says when it landed.

use super::consumer::{Consumer, ConsumerConfig, Pending};
use super::store::file::{self, FileStore, FileStoreConfig};
use super::store::fs::{FileSystem, RealFs};
use super::store::worker::Op;
use super::store::{MessageStore, StoreError, SyncJob, SyncResult, meta};
use super::stream::{Stream, StreamConfig};
use crate::config::{JetStreamOptions, SyncPolicy};
use log::{error, warn};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Job ids of consumer-state writes start here (stores use small ids).
const STATE_JOB_BASE: u64 = 1 << 48;

/// A stream found on disk at start.
pub struct Recovered {
    /// The stream with its store.
    pub stream: Stream,
    /// Its consumers with their state.
    pub consumers: Vec<Consumer>,
}

/// What a stream's store keeps as its config.
#[derive(Serialize, Deserialize)]
struct StoredStreamConfig {
    config: StreamConfig,
    created: i64,
}

/// A consumer's file: config and state.
#[derive(Serialize, Deserialize)]
struct StoredConsumer {
    name: String,
    created: i64,
    config: ConsumerConfig,
    next_seq: u64,
    delivered_cseq: u64,
    delivered_sseq: u64,
    ack_floor_cseq: u64,
    ack_floor_sseq: u64,
    /// Pending acks: stream seq, consumer seq, deliveries, delivery time.
    pending: Vec<(u64, u64, u64, i64)>,
    #[serde(default)]
    start_set: Vec<u64>,
    #[serde(default)]
    start_set_end: u64,
}

/// Writes of one consumer's state: how many were handed over, how many
/// are on disk.
#[derive(Debug, Default, Clone, Copy)]
struct StateGen {
    key: u64,
    handed: u64,
    durable: u64,
}

/// The file-backed part of the engine.
pub struct Persistence {
    fs: Arc<dyn FileSystem>,
    root: PathBuf,
    sync: file::SyncPolicy,
    gens: HashMap<(String, String), StateGen>,
    keys: HashMap<u64, (String, String)>,
    next_key: u64,
    next_job: u64,
    /// Job id → consumer key and the generation it writes.
    jobs: HashMap<u64, (u64, u64)>,
    /// Removals waiting for the storage thread.
    pending_jobs: Vec<(u64, SyncJob)>,
}

impl Persistence {
    /// The persistence layer over `<store_dir>/jetstream/$G/streams`.
    pub fn open(opts: &JetStreamOptions) -> std::io::Result<Persistence> {
        Self::open_with(Arc::new(RealFs::new()), opts)
    }

    /// [`Persistence::open`] on any file system (tests use the simulated one).
    pub fn open_with(
        fs: Arc<dyn FileSystem>,
        opts: &JetStreamOptions,
    ) -> std::io::Result<Persistence> {
        let root = opts.store_dir.join("jetstream").join("$G").join("streams");
        fs.create_dir_all(&root)?;
        Ok(Persistence {
            fs,
            root,
            sync: match opts.sync {
                SyncPolicy::Always => file::SyncPolicy::Always,
                SyncPolicy::Interval(d) => file::SyncPolicy::Interval(d),
            },
            gens: HashMap::new(),
            keys: HashMap::new(),
            next_key: 1,
            next_job: STATE_JOB_BASE,
            jobs: HashMap::new(),
            pending_jobs: Vec::new(),
        })
    }

    fn stream_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn consumer_path(&self, stream: &str, consumer: &str) -> PathBuf {
        self.stream_dir(stream)
            .join("obs")
            .join(format!("{consumer}.json"))
    }

    fn store_config(&self) -> FileStoreConfig {
        FileStoreConfig {
            sync: self.sync,
            ..FileStoreConfig::default()
        }
    }

    /// Every stream under the root, with its consumers. Damage is logged
    /// and reported in the stream's state; a stream whose config cannot be
    /// read at all is kept under a config made from its directory name.
    pub fn recover_all(&mut self, now: Instant) -> Vec<Recovered> {
        let mut out = Vec::new();
        let names = match self.fs.list_dir(&self.root) {
            Ok(n) => n,
            Err(e) => {
                error!("JetStream: cannot read {}: {e}", self.root.display());
                return out;
            }
        };
        for name in names {
            if !super::stream::is_valid_name(&name) {
                continue;
            }
            let dir = self.stream_dir(&name);
            let msgs = dir.join("msgs");
            let stored = FileStore::recover_config_with(self.fs.as_ref(), &msgs)
                .and_then(|b| serde_json::from_slice::<StoredStreamConfig>(&b).ok());
            let (config, created) = match stored {
                Some(s) if s.config.name == name => (s.config, s.created),
                _ => {
                    error!(
                        "JetStream: stream {name}: its configuration is damaged or missing; \
                         recovering its messages under a default configuration (subject {name}); \
                         update the stream to restore its subjects and limits"
                    );
                    let mut c = StreamConfig {
                        name: name.clone(),
                        ..Default::default()
                    };
                    if c.normalise().is_err() {
                        continue;
                    }
                    (c, super::api::now_ns())
                }
            };
            let bytes = super::api::encode(&StoredStreamConfig {
                config: config.clone(),
                created,
            });
            let store =
                match FileStore::open_with(self.fs.clone(), &msgs, &bytes, self.store_config()) {
                    Ok(s) => s,
                    Err(e) => {
                        error!("JetStream: stream {name} cannot be opened: {e}");
                        continue;
                    }
                };
            if let Some(lost) = store.state().lost {
                warn!(
                    "JetStream: stream {name}: {} damaged messages ({} bytes) found and skipped",
                    lost.msgs.len(),
                    lost.bytes
                );
            }
            if let Err(e) = self.make_obs_dir(&name) {
                error!("JetStream: stream {name}: {e}; its consumers cannot be saved");
            }
            let stream = Stream::new(config, Box::new(store), created);
            let consumers = self.recover_consumers(&name, &stream, now);
            out.push(Recovered { stream, consumers });
        }
        out
    }

    fn recover_consumers(&mut self, stream: &str, s: &Stream, now: Instant) -> Vec<Consumer> {
        let dir = self.stream_dir(stream).join("obs");
        let Ok(files) = self.fs.list_dir(&dir) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let first = s.store.state().first_seq;
        for f in files {
            let Some(name) = f.strip_suffix(".json") else {
                continue;
            };
            let path = dir.join(&f);
            let body = match meta::read_checked(self.fs.as_ref(), &path) {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(e) => {
                    error!("JetStream: consumer {stream} > {name}: {e}; its state is lost");
                    continue;
                }
            };
            let Ok(sc) = serde_json::from_slice::<StoredConsumer>(&body) else {
                error!(
                    "JetStream: consumer {stream} > {name}: unreadable state; its state is lost"
                );
                continue;
            };
            let mut c = Consumer::new(sc.name.clone(), sc.config, sc.next_seq, now, sc.created);
            c.ephemeral = false;
            c.next_seq = sc.next_seq.max(first);
            c.delivered_cseq = sc.delivered_cseq;
            c.delivered_sseq = sc.delivered_sseq;
            c.ack_floor_cseq = sc.ack_floor_cseq;
            c.ack_floor_sseq = sc.ack_floor_sseq;
            c.start_set = sc.start_set.into_iter().collect();
            c.start_set_end = sc.start_set_end;
            for (sseq, cseq, deliveries, ts_ns) in sc.pending {
                let wait = c.ack_wait_for(deliveries);
                c.pending.insert(
                    sseq,
                    Pending {
                        cseq,
                        ts_ns,
                        deliveries,
                        deadline: now + wait,
                    },
                );
                if deliveries > 1 {
                    c.num_redelivered += 1;
                }
            }
            c.dirty = false;
            self.key_of(stream, &c.name);
            out.push(c);
        }
        out
    }

    fn key_of(&mut self, stream: &str, consumer: &str) -> u64 {
        let k = (stream.to_string(), consumer.to_string());
        if let Some(g) = self.gens.get(&k) {
            return g.key;
        }
        let key = self.next_key;
        self.next_key += 1;
        self.keys.insert(key, k.clone());
        self.gens.insert(
            k,
            StateGen {
                key,
                ..StateGen::default()
            },
        );
        key
    }

    /// Creates the store of a new file stream.
    pub fn create_stream(
        &mut self,
        config: &StreamConfig,
        created_ns: i64,
    ) -> Result<Box<dyn MessageStore>, StoreError> {
        let bytes = super::api::encode(&StoredStreamConfig {
            config: config.clone(),
            created: created_ns,
        });
        let dir = self.stream_dir(&config.name).join("msgs");
        let store = FileStore::open_with(self.fs.clone(), &dir, &bytes, self.store_config())?;
        self.make_obs_dir(&config.name)?;
        Ok(Box::new(store))
    }

    /// The directory of a stream's consumer files.
    fn make_obs_dir(&self, stream: &str) -> Result<(), StoreError> {
        let dir = self.stream_dir(stream).join("obs");
        self.fs
            .create_dir_all(&dir)
            .map_err(|e| StoreError::Io(format!("{}: {e}", dir.display())))
    }

    /// The config bytes a file store keeps for `config`.
    pub fn config_bytes(config: &StreamConfig, created_ns: i64) -> Vec<u8> {
        super::api::encode(&StoredStreamConfig {
            config: config.clone(),
            created: created_ns,
        })
    }

    /// Removes what is left of a deleted stream (its store deleted its
    /// log): the consumer files, on the storage thread.
    pub fn delete_stream(&mut self, name: &str) {
        let consumers: Vec<String> = self
            .gens
            .keys()
            .filter(|(s, _)| s == name)
            .map(|(_, c)| c.clone())
            .collect();
        for c in consumers {
            self.delete_consumer(name, &c);
        }
    }

    /// Removes a deleted consumer's file (on the storage thread: the loop
    /// does not wait for the disk).
    pub fn delete_consumer(&mut self, stream: &str, name: &str) {
        let path = self.consumer_path(stream, name);
        let mut job = SyncJob::new(self.fs.clone());
        job.ops.push(Op::Remove(path.clone()));
        job.ops.push(Op::Remove(meta::backup_path(&path)));
        let id = self.next_job;
        self.next_job += 1;
        self.pending_jobs.push((id, job));
        if let Some(g) = self.gens.remove(&(stream.to_string(), name.to_string())) {
            self.keys.remove(&g.key);
        }
    }

    /// Jobs queued outside a turn's state writes (removals).
    pub fn take_pending_jobs(&mut self) -> Vec<(u64, SyncJob)> {
        std::mem::take(&mut self.pending_jobs)
    }

    /// The write of `c`'s state, as a job for the storage thread.
    pub fn consumer_state_job(&mut self, stream: &str, c: &Consumer) -> Option<(u64, SyncJob)> {
        // `obs/` exists: made with the stream (or at recovery), so no
        // directory call on the loop per write.
        let body = super::api::encode(&StoredConsumer {
            name: c.name.clone(),
            created: c.created_ns,
            config: c.config.clone(),
            next_seq: c.next_seq,
            delivered_cseq: c.delivered_cseq,
            delivered_sseq: c.delivered_sseq,
            ack_floor_cseq: c.ack_floor_cseq,
            ack_floor_sseq: c.ack_floor_sseq,
            pending: c
                .pending
                .iter()
                .map(|(s, p)| (*s, p.cseq, p.deliveries, p.ts_ns))
                .collect(),
            start_set: c.start_set.iter().copied().collect(),
            start_set_end: c.start_set_end,
        });
        let key = self.key_of(stream, &c.name);
        let k = (stream.to_string(), c.name.clone());
        let g = self.gens.get_mut(&k)?;
        g.handed += 1;
        let id = self.next_job;
        self.next_job += 1;
        self.jobs.insert(id, (key, g.handed));
        let job =
            meta::write_atomic_job(self.fs.clone(), &self.consumer_path(stream, &c.name), &body);
        Some((id, job))
    }

    /// Whether job `id` is a consumer-state write.
    pub fn owns_job(&self, id: u64) -> bool {
        id >= STATE_JOB_BASE
    }

    /// A consumer-state write finished.
    pub fn job_done(&mut self, id: u64, result: SyncResult) {
        let Some((key, generation)) = self.jobs.remove(&id) else {
            return;
        };
        if let Some(e) = &result.error {
            error!("JetStream: writing consumer state failed: {e}");
            return;
        }
        if let Some(k) = self.keys.get(&key)
            && let Some(g) = self.gens.get_mut(k)
        {
            g.durable = g.durable.max(generation);
        }
    }

    /// A ticket for "the next state write of this consumer": an ack reply
    /// waits for it (see [`Persistence::state_durable`]).
    pub fn ticket(&mut self, stream: &str, consumer: &str) -> Option<(u64, u64)> {
        let key = self.key_of(stream, consumer);
        let g = self.gens.get(&(stream.to_string(), consumer.to_string()))?;
        Some((key, g.handed + 1))
    }

    /// Whether the state write named by a ticket is on disk (a consumer
    /// deleted meanwhile counts as done: nothing is left to wait for).
    pub fn state_durable(&self, key: u64, ticket: u64) -> bool {
        match self.keys.get(&key).and_then(|k| self.gens.get(k)) {
            Some(g) => g.durable >= ticket,
            None => true,
        }
    }

    /// Records a consumer's config at creation (its first state write
    /// carries it; nothing extra to do).
    pub fn save_consumer_config(&mut self, stream: &str, c: &Consumer) {
        self.key_of(stream, &c.name);
    }

    /// The root directory (for logs).
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Recovered streams by name (helper for tests).
pub fn by_name(r: Vec<Recovered>) -> BTreeMap<String, Recovered> {
    r.into_iter()
        .map(|r| (r.stream.config.name.clone(), r))
        .collect()
}
