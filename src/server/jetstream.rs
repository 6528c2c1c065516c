//! The loop's side of JetStream: feeding the engine the publishes it
//! cares about, routing the messages it produces like any other publish,
//! handing its sync jobs to the storage thread at the end of each turn,
//! and taking the completions back when the thread wakes the loop.
//!
//! The engine (`crate::jetstream::engine`) is pure; this is all the I/O
//! it has, and none of it waits for the disk.

use super::Server;
use crate::jetstream::engine::{Engine, Handled, Limits, Out};
use crate::jetstream::persist::Persistence;
use crate::jetstream::store::worker::StorageWorker;
use crate::protocol::parser::Publish;
use log::{error, info};
use std::time::Instant;

/// The `from` of messages the engine publishes: no client, so every
/// subscriber gets them (echo does not apply).
const NO_CLIENT: usize = usize::MAX;

/// JetStream's state in the server.
pub(crate) struct JetStream {
    pub(crate) engine: Engine,
    worker: Option<StorageWorker>,
}

impl JetStream {
    /// Starts JetStream from its options: opens the store directory,
    /// recovers what is there, starts the storage thread.
    pub(crate) fn start(
        opts: &crate::config::JetStreamOptions,
        waker: std::sync::Arc<mio::Waker>,
    ) -> std::io::Result<JetStream> {
        let limits = Limits {
            max_memory: if opts.max_memory < 0 {
                default_max_memory()
            } else {
                opts.max_memory
            },
            max_file: if opts.max_file < 0 {
                1 << 40
            } else {
                opts.max_file
            },
        };
        let persistence = Persistence::open(opts)?;
        let mut engine = Engine::new(limits, Some(persistence));
        engine.recover(Instant::now());
        let (streams, consumers) = engine.counts();
        info!(
            "Starting JetStream: store {} ({streams} streams, {consumers} consumers recovered)",
            opts.store_dir.display()
        );
        let worker = StorageWorker::spawn(waker)?;
        Ok(JetStream {
            engine,
            worker: Some(worker),
        })
    }
}

/// 75% of the machine's memory, as nats-server's default
/// `max_memory_store` (1 GiB if it cannot be read).
fn default_max_memory() -> i64 {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<i64>().ok())
        })
        .map_or(1 << 30, |kb| kb * 1024);
    total / 4 * 3
}

impl Server {
    /// A client's publish, offered to JetStream first. Returns whether
    /// JetStream answers it (then no no-responders status is due).
    pub(crate) fn jetstream_publish(&mut self, p: &Publish<'_>) -> bool {
        let Some(js) = self.jetstream.as_deref_mut() else {
            return false;
        };
        let Ok(subject) = std::str::from_utf8(p.subject) else {
            return false;
        };
        if !js_relevant(subject) && !js.engine.captures(subject) {
            return false;
        }
        let reply = p.reply.and_then(|r| std::str::from_utf8(r).ok());
        let hdr_len = p.header_len.unwrap_or(0).min(p.data.len());
        let (hdrs, payload) = p.data.split_at(hdr_len);
        let handled = js
            .engine
            .on_publish(subject, reply, hdrs, payload, Instant::now());
        self.answer_interest_queries();
        self.route_jetstream_outputs();
        handled == Handled::Yes
    }

    /// Tells the engine whether the deliver subjects it asks about have
    /// a subscriber.
    fn answer_interest_queries(&mut self) {
        let Some(js) = self.jetstream.as_deref_mut() else {
            return;
        };
        let queries = js.engine.take_interest_queries();
        if queries.is_empty() {
            return;
        }
        let now = Instant::now();
        for subject in queries {
            let has = self.has_exact_interest(subject.as_bytes());
            if let Some(js) = self.jetstream.as_deref_mut() {
                js.engine.interest_changed(&subject, has, now);
            }
        }
    }

    /// Whether a subscription on exactly `subject` exists (a push consumer
    /// delivers only then; a wildcard that covers it does not count, as in
    /// nats-server).
    fn has_exact_interest(&mut self, subject: &[u8]) -> bool {
        let result = self.sublist.matches(subject);
        let exact = |id: &crate::sublist::SubId| {
            self.subs
                .get(*id as usize)
                .is_some_and(|s| s.subject.as_ref() == subject)
        };
        result.plain.iter().any(exact) || result.queues.iter().any(|g| g.members.iter().any(exact))
    }

    /// A subscription on `subject` was added or removed: a push consumer
    /// delivering there may start or stop.
    pub(crate) fn jetstream_interest(&mut self, subject: &[u8]) {
        let Some(js) = self.jetstream.as_deref() else {
            return;
        };
        let Ok(text) = std::str::from_utf8(subject) else {
            return;
        };
        if !js.engine.watches(text) {
            return;
        }
        let has = self.has_exact_interest(subject);
        let text = text.to_string();
        if let Some(js) = self.jetstream.as_deref_mut() {
            js.engine.interest_changed(&text, has, Instant::now());
        }
        self.route_jetstream_outputs();
    }

    /// Publishes what the engine produced.
    pub(crate) fn route_jetstream_outputs(&mut self) {
        let Some(js) = self.jetstream.as_deref_mut() else {
            return;
        };
        let outputs = js.engine.take_outputs();
        for out in outputs {
            self.route_out(&out);
        }
    }

    fn route_out(&mut self, out: &Out) {
        let mut data = Vec::with_capacity(out.headers.len() + out.payload.len());
        data.extend_from_slice(&out.headers);
        data.extend_from_slice(&out.payload);
        let p = Publish {
            subject: out.subject.as_bytes(),
            reply: out.reply.as_deref().map(str::as_bytes),
            header_len: (!out.headers.is_empty()).then_some(out.headers.len()),
            data: &data,
        };
        let target = out.deliver_to.as_deref().unwrap_or(&out.subject);
        self.route_to(NO_CLIENT, true, target.as_bytes(), &p);
    }

    /// End of a loop turn: the turn's writes go to the storage thread as
    /// one batch (group commit).
    pub(crate) fn jetstream_end_of_turn(&mut self) {
        if self.jetstream.is_none() {
            return;
        }
        // Consumers recovered at start ask here.
        self.answer_interest_queries();
        let Some(js) = self.jetstream.as_deref_mut() else {
            return;
        };
        let jobs = js.engine.take_sync_jobs();
        if !jobs.is_empty() {
            match &js.worker {
                Some(w) => w.submit_all(jobs),
                None => error!("JetStream: no storage thread; {} jobs dropped", jobs.len()),
            }
        }
        self.route_jetstream_outputs();
    }

    /// The storage thread woke the loop: finished jobs release PubAcks.
    pub(crate) fn jetstream_completions(&mut self) {
        let Some(js) = self.jetstream.as_deref_mut() else {
            return;
        };
        let Some(worker) = &js.worker else {
            return;
        };
        for (id, result) in worker.drain_completions() {
            js.engine.sync_done(id, result);
        }
        self.route_jetstream_outputs();
    }

    /// Clean shutdown: the storage thread finishes what it was given, then
    /// every store writes and syncs what is left (blocking: the loop is
    /// done).
    pub(crate) fn jetstream_shutdown(&mut self) {
        let Some(js) = self.jetstream.as_deref_mut() else {
            return;
        };
        let jobs = js.engine.take_sync_jobs();
        if let Some(w) = &js.worker {
            w.submit_all(jobs);
        }
        drop(js.worker.take());
        js.engine.close_all();
    }

    /// Housekeeping: the engine's timers.
    pub(crate) fn jetstream_tick(&mut self, now: Instant) {
        let Some(js) = self.jetstream.as_deref_mut() else {
            return;
        };
        js.engine.tick(now);
        self.route_jetstream_outputs();
    }
}

/// Subjects JetStream handles whether or not a stream captures them.
fn js_relevant(subject: &str) -> bool {
    subject.starts_with("$JS.API.")
        || subject.starts_with("$JS.ACK.")
        || subject.starts_with("$JS.FC.")
}

impl Server {
    /// The `jetstream` section of `/varz` (`{}` without JetStream, as
    /// nats-server).
    pub(crate) fn jetstream_varz(&self) -> serde_json::Value {
        let (Some(js), Some(opts)) = (self.jetstream.as_deref(), self.config.jetstream.as_ref())
        else {
            return serde_json::json!({});
        };
        let (mem, file) = js.engine.usage();
        let (total, errors) = js.engine.api_stats();
        let limits = js.engine.limits();
        serde_json::json!({
            "config": jetstream_config_json(opts, limits),
            "stats": {
                "memory": mem,
                "storage": file,
                "reserved_memory": 0,
                "reserved_storage": 0,
                "accounts": 1,
                "ha_assets": 0,
                "api": {"total": total, "errors": errors},
            },
        })
    }

    /// `/jsz`, nats-server's shape: totals, and with `accounts=1`,
    /// `streams=1` or `consumers=1` the details of the global account.
    pub(crate) fn jsz(&self, req: &crate::monitor::http::Request) -> serde_json::Value {
        let now = crate::monitor::timefmt::rfc3339_nano(std::time::SystemTime::now());
        let (Some(js), Some(opts)) = (self.jetstream.as_deref(), self.config.jetstream.as_ref())
        else {
            return serde_json::json!({
                "server_id": self.server_id(),
                "now": now,
                "disabled": true,
                "config": {},
                "memory": 0, "storage": 0, "reserved_memory": 0, "reserved_storage": 0,
                "accounts": 0, "ha_assets": 0,
                "api": {"total": 0, "errors": 0},
                "streams": 0, "consumers": 0, "messages": 0, "bytes": 0,
            });
        };
        let flag = |n: &str| req.param(n).is_some_and(|v| v == "1" || v == "true");
        let want_consumers = flag("consumers");
        let want_streams = flag("streams") || want_consumers;
        let want_config = flag("config");
        let want_accounts = flag("accounts") || want_streams;
        let (mem, file) = js.engine.usage();
        let (total, errors) = js.engine.api_stats();
        let (streams, consumers) = js.engine.counts();
        let summaries = js.engine.stream_summaries();
        let messages: u64 = summaries.iter().map(|s| s.2.msgs).sum();
        let bytes: u64 = summaries.iter().map(|s| s.2.bytes).sum();
        let mut out = serde_json::json!({
            "server_id": self.server_id(),
            "now": now,
            "config": jetstream_config_json(opts, js.engine.limits()),
            "memory": mem,
            "storage": file,
            "reserved_memory": 0,
            "reserved_storage": 0,
            "accounts": 1,
            "ha_assets": 0,
            "api": {"total": total, "errors": errors},
            "streams": streams,
            "consumers": consumers,
            "messages": messages,
            "bytes": bytes,
        });
        if want_accounts && let serde_json::Value::Object(m) = &mut out {
            let detail: Vec<serde_json::Value> = if want_streams {
                summaries
                    .into_iter()
                    .map(|(name, config, state, consumer_info)| {
                        let mut s = serde_json::json!({
                            "name": name,
                            "state": crate::jetstream::engine::state_json(&state, consumer_info.len()),
                        });
                        if let serde_json::Value::Object(o) = &mut s {
                            if want_config {
                                o.insert("config".into(), config);
                            }
                            if want_consumers {
                                o.insert("consumer_detail".into(), consumer_info.into());
                            }
                        }
                        s
                    })
                    .collect()
            } else {
                Vec::new()
            };
            m.insert(
                "account_details".into(),
                serde_json::json!([{
                    "name": "$G",
                    "id": "$G",
                    "memory": mem,
                    "storage": file,
                    "reserved_memory": 0,
                    "reserved_storage": 0,
                    "accounts": 1,
                    "ha_assets": 0,
                    "api": {"total": total, "errors": errors},
                    "stream_detail": detail,
                }]),
            );
        }
        out
    }
}

fn jetstream_config_json(
    opts: &crate::config::JetStreamOptions,
    limits: Limits,
) -> serde_json::Value {
    let sync_ns: u64 = match opts.sync {
        crate::config::SyncPolicy::Always => 0,
        crate::config::SyncPolicy::Interval(d) => d.as_nanos() as u64,
    };
    serde_json::json!({
        "max_memory": limits.max_memory,
        "max_storage": limits.max_file,
        "store_dir": opts.store_dir.display().to_string(),
        "sync_interval": sync_ns,
        "sync_always": matches!(opts.sync, crate::config::SyncPolicy::Always),
        "compress_ok": false,
    })
}
