//! The JetStream engine: every stream and consumer of the (one, global)
//! account, the `$JS.API` request handlers, what a captured publish and an
//! ack do, pull-request delivery, timers, and PubAcks held back until the
//! stored message is durable.
//!
//! The engine is pure: it is handed messages and the time, and produces
//! messages ([`Out`]) for the server to route like any other publish, and
//! sync jobs for the storage thread. It never touches a socket.

use super::api::{self, ApiError, err, response};
use super::consumer::{
    AckKind, AckPolicy, Consumer, ConsumerConfig, DeliverPolicy, NextRequest, PullRequest,
    start_sequence,
};
use super::headers;
use super::persist::Persistence;
use super::store::{MessageStore, StoreState, StoredMsg, SyncJob, SyncResult};
use super::stream::{Retention, Storage, Stored, Stream, StreamConfig, store_error};
use base64::Engine as _;
use log::{debug, warn};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// A message the engine wants published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Out {
    /// Subject to publish to.
    pub subject: String,
    /// Where to deliver it when that is not `subject`: a pull request's
    /// inbox gets stored messages under their own subject.
    pub deliver_to: Option<String>,
    /// Reply subject, if any.
    pub reply: Option<String>,
    /// Header block, or empty.
    pub headers: Vec<u8>,
    /// Payload.
    pub payload: Vec<u8>,
}

impl Out {
    fn json(subject: &str, v: &Value) -> Out {
        Out {
            subject: subject.to_string(),
            deliver_to: None,
            reply: None,
            headers: Vec::new(),
            payload: api::encode(v),
        }
    }
    fn status(subject: &str, code: u16, text: &str, hdrs: &[(&str, &str)]) -> Out {
        Out {
            subject: subject.to_string(),
            deliver_to: None,
            reply: None,
            headers: headers::status(code, text, hdrs),
            payload: Vec::new(),
        }
    }
}

/// Account-wide limits from the `jetstream` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `max_memory_store` in bytes (-1: no limit).
    pub max_memory: i64,
    /// `max_file_store` in bytes (-1: no limit).
    pub max_file: i64,
}

/// A PubAck waiting for its message to be durable.
struct HeldAck {
    seq: u64,
    out: Out,
}

/// A stream with its consumers.
struct Entry {
    id: u64,
    stream: Stream,
    consumers: BTreeMap<String, Consumer>,
}

/// Whether the engine answered a message (for the no-responders status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Answered (now or later).
    Yes,
    /// Not for JetStream, or nobody would answer it (no-responders applies).
    No,
}

/// The JetStream state of the server.
pub struct Engine {
    limits: Limits,
    streams: BTreeMap<String, Entry>,
    /// Stream subjects → stream name, for capturing publishes.
    capture: Vec<(String, String)>,
    /// PubAcks waiting for their stream's sync, per stream id, in the
    /// order published (so the durable ones are at the front).
    held: HashMap<u64, std::collections::VecDeque<HeldAck>>,
    outputs: Vec<Out>,
    next_id: u64,
    api_total: u64,
    api_errors: u64,
    persistence: Option<Persistence>,
    /// Consumers whose state must be written.
    dirty_consumers: BTreeSet<(String, String)>,
    /// Replies to acks sent as requests, waiting for the consumer state to be durable.
    held_ack_replies: Vec<(u64, u64, Out)>,
    /// Deliver subjects of push consumers whose interest the server must
    /// report ([`Engine::take_interest_queries`]).
    interest_queries: Vec<String>,
    /// Counter for flow-control reply subjects.
    fc_counter: u64,
}

/// Request body of `CONSUMER.CREATE`.
#[derive(Debug, Deserialize)]
struct CreateConsumerRequest {
    #[serde(default)]
    stream_name: String,
    config: ConsumerConfig,
    #[serde(default)]
    action: String,
}

/// Request body of `STREAM.MSG.GET` and `DIRECT.GET`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MsgGetRequest {
    seq: u64,
    last_by_subj: Option<String>,
    next_by_subj: Option<String>,
}

/// Request body of `STREAM.PURGE`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PurgeRequest {
    filter: Option<String>,
    seq: Option<u64>,
    keep: Option<u64>,
}

/// Paging and filters of the list requests.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ListRequest {
    offset: usize,
    subject: Option<String>,
}

/// Request body of `STREAM.INFO`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StreamInfoRequest {
    subjects_filter: Option<String>,
    deleted_details: bool,
}

/// Request body of `STREAM.MSG.DELETE`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MsgDeleteRequest {
    seq: u64,
    no_erase: bool,
}

fn parse_body<T: for<'de> Deserialize<'de> + Default>(payload: &[u8]) -> Result<T, ApiError> {
    let trimmed = payload.trim_ascii();
    if trimmed.is_empty() || trimmed == b"null" || trimmed == b"{}" {
        return Ok(T::default());
    }
    serde_json::from_slice(payload).map_err(|e| err::invalid_json(&e.to_string()))
}

/// A random consumer name (nats-server: 8 characters).
fn random_name() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut n = crate::random_u64();
    (0..8)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

impl Engine {
    /// An engine without streams; `persistence` is `None` when no stream
    /// may use file storage (tests).
    pub fn new(limits: Limits, persistence: Option<Persistence>) -> Engine {
        Engine {
            limits,
            streams: BTreeMap::new(),
            capture: Vec::new(),
            held: HashMap::new(),
            outputs: Vec::new(),
            next_id: 1,
            api_total: 0,
            api_errors: 0,
            persistence,
            dirty_consumers: BTreeSet::new(),
            held_ack_replies: Vec::new(),
            interest_queries: Vec::new(),
            fc_counter: 0,
        }
    }

    /// Restores the streams and consumers found by the persistence layer.
    pub fn recover(&mut self, now: Instant) {
        let Some(p) = self.persistence.as_mut() else {
            return;
        };
        let recovered = p.recover_all(now);
        for r in recovered {
            let id = self.next_id;
            self.next_id += 1;
            let name = r.stream.config.name.clone();
            let mut stream = r.stream;
            stream.rebuild_dedupe(api::now_ns());
            let mut consumers = BTreeMap::new();
            for c in r.consumers {
                if let Some(d) = &c.config.deliver_subject {
                    self.interest_queries.push(d.clone());
                }
                consumers.insert(c.name.clone(), c);
            }
            self.streams.insert(
                name,
                Entry {
                    id,
                    stream,
                    consumers,
                },
            );
        }
        self.rebuild_capture();
    }

    fn rebuild_capture(&mut self) {
        self.capture = self
            .streams
            .values()
            .flat_map(|e| {
                e.stream
                    .config
                    .subjects
                    .iter()
                    .map(|s| (s.clone(), e.stream.config.name.clone()))
            })
            .collect();
    }

    /// Messages to publish, in order.
    pub fn take_outputs(&mut self) -> Vec<Out> {
        std::mem::take(&mut self.outputs)
    }

    /// Number of streams and consumers (for `/varz` and `/jsz`).
    pub fn counts(&self) -> (usize, usize) {
        (
            self.streams.len(),
            self.streams.values().map(|e| e.consumers.len()).sum(),
        )
    }

    /// Bytes stored in memory and in files.
    pub fn usage(&self) -> (u64, u64) {
        let mut mem = 0;
        let mut file = 0;
        for e in self.streams.values() {
            let b = e.stream.store.state().bytes;
            match e.stream.config.storage {
                Storage::Memory => mem += b,
                Storage::File => file += b,
            }
        }
        (mem, file)
    }

    /// API requests served and failed.
    pub fn api_stats(&self) -> (u64, u64) {
        (self.api_total, self.api_errors)
    }

    /// The configured limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Each stream's name, config, state and consumers (for `/jsz`).
    pub fn stream_summaries(&self) -> Vec<(String, Value, StoreState, Vec<Value>)> {
        let now_ns = api::now_ns();
        self.streams
            .values()
            .map(|e| {
                (
                    e.stream.config.name.clone(),
                    serde_json::to_value(&e.stream.config).unwrap_or(Value::Null),
                    e.stream.store.state(),
                    e.consumers
                        .values()
                        .map(|c| consumer_info(&e.stream, c, now_ns))
                        .collect(),
                )
            })
            .collect()
    }

    // ----- entry points -----

    /// Deliver subjects whose interest the server must look up and report
    /// with [`Engine::interest_changed`].
    pub fn take_interest_queries(&mut self) -> Vec<String> {
        std::mem::take(&mut self.interest_queries)
    }

    /// Whether `subject` is the deliver subject of a push consumer (the
    /// server then reports subscriptions on it).
    pub fn watches(&self, subject: &str) -> bool {
        self.streams.values().any(|e| {
            e.consumers
                .values()
                .any(|c| c.config.deliver_subject.as_deref() == Some(subject))
        })
    }

    /// Whether a subscription on exactly `subject` exists now.
    pub fn interest_changed(&mut self, subject: &str, has: bool, now: Instant) {
        let mut to_pump = Vec::new();
        for (name, e) in self.streams.iter_mut() {
            for c in e.consumers.values_mut() {
                if c.config.deliver_subject.as_deref() == Some(subject) && c.interest != has {
                    c.interest = has;
                    c.last_active = now;
                    if has {
                        c.next_heartbeat = c.heartbeat().map(|h| now + h);
                        to_pump.push(name.clone());
                    }
                }
            }
        }
        for name in to_pump {
            self.pump(&name, now);
        }
    }

    /// Whether a stream captures `subject`.
    pub fn captures(&self, subject: &str) -> bool {
        self.capture
            .iter()
            .any(|(f, _)| crate::sublist::subject_matches(f.as_bytes(), subject.as_bytes()))
    }

    /// A message published to `subject` (JetStream API, acks, or a subject
    /// a stream captures). Returns whether the engine answers it.
    pub fn on_publish(
        &mut self,
        subject: &str,
        reply: Option<&str>,
        hdrs: &[u8],
        payload: &[u8],
        now: Instant,
    ) -> Handled {
        if let Some(api_subject) = subject.strip_prefix("$JS.API.") {
            return self.on_api(api_subject, reply, payload, now);
        }
        if let Some(ack) = subject.strip_prefix("$JS.ACK.") {
            self.on_ack(ack, reply, payload, now);
            return Handled::Yes;
        }
        if subject.starts_with("$JS.FC.") {
            self.on_flow_control(subject, now);
            return Handled::Yes;
        }
        let Some(stream) = self
            .capture
            .iter()
            .find(|(filter, _)| {
                crate::sublist::subject_matches(filter.as_bytes(), subject.as_bytes())
            })
            .map(|(_, s)| s.clone())
        else {
            return Handled::No;
        };
        self.store_publish(&stream, subject, reply, hdrs, payload, now);
        Handled::Yes
    }

    fn store_publish(
        &mut self,
        name: &str,
        subject: &str,
        reply: Option<&str>,
        hdrs: &[u8],
        payload: &[u8],
        now: Instant,
    ) {
        let limits = self.limits;
        let (mem_used, file_used) = self.usage();
        let Some(entry) = self.streams.get_mut(name) else {
            return;
        };
        let storage = entry.stream.config.storage;
        let size = StoredMsg::stored_size(subject, hdrs, payload) as i64;
        let over = match storage {
            Storage::Memory => limits.max_memory >= 0 && mem_used as i64 + size > limits.max_memory,
            Storage::File => limits.max_file >= 0 && file_used as i64 + size > limits.max_file,
        };
        let has_consumers = !entry.consumers.is_empty();
        let result = if over {
            Err(ApiError::new(503, 10023, "insufficient resources"))
        } else {
            entry
                .stream
                .publish(subject, hdrs, payload, api::now_ns(), has_consumers)
        };
        let no_ack = entry.stream.config.no_ack;
        match result {
            Ok(Stored::New(seq)) => {
                if let Some(reply) = reply.filter(|_| !no_ack) {
                    let out = Out::json(reply, &json!({"stream": name, "seq": seq}));
                    if entry.stream.store.durable_seq() >= seq {
                        self.outputs.push(out);
                    } else {
                        self.held
                            .entry(entry.id)
                            .or_default()
                            .push_back(HeldAck { seq, out });
                    }
                }
                self.pump(name, now);
            }
            Ok(Stored::Duplicate(seq)) => {
                if let Some(reply) = reply {
                    let out = Out::json(
                        reply,
                        &json!({"stream": name, "seq": seq, "duplicate": true}),
                    );
                    // The original may not be durable yet: then the answer
                    // waits behind the PubAcks already held.
                    let last_held = self
                        .held
                        .get(&entry.id)
                        .and_then(|q| q.back())
                        .map_or(0, |h| h.seq);
                    if entry.stream.store.durable_seq() >= seq {
                        self.outputs.push(out);
                    } else {
                        self.held.entry(entry.id).or_default().push_back(HeldAck {
                            seq: seq.max(last_held),
                            out,
                        });
                    }
                }
            }
            Err(e) => {
                debug!("JetStream: publish to {subject} refused: {}", e.description);
                if let Some(reply) = reply {
                    self.outputs.push(Out::json(
                        reply,
                        &json!({"error": e.to_json(), "stream": name, "seq": 0}),
                    ));
                }
            }
        }
    }

    /// Sends the PubAcks of stream `id` whose messages are durable now.
    fn release_stream(&mut self, id: u64, durable: u64) {
        let Some(queue) = self.held.get_mut(&id) else {
            return;
        };
        while queue.front().is_some_and(|h| h.seq <= durable) {
            if let Some(h) = queue.pop_front() {
                self.outputs.push(h.out);
            }
        }
        if queue.is_empty() {
            self.held.remove(&id);
        }
    }

    /// Sends the answers of acks sent as requests whose consumer state is
    /// durable now.
    fn release_ack_replies(&mut self) {
        if self.held_ack_replies.is_empty() {
            return;
        }
        let mut still = Vec::new();
        for (ticket_stream, ticket, out) in std::mem::take(&mut self.held_ack_replies) {
            let done = self
                .persistence
                .as_ref()
                .is_none_or(|p| p.state_durable(ticket_stream, ticket));
            if done {
                self.outputs.push(out);
            } else {
                still.push((ticket_stream, ticket, out));
            }
        }
        self.held_ack_replies = still;
    }

    /// Sync jobs for the storage thread: every store with buffered writes,
    /// and the consumer states changed this turn.
    pub fn take_sync_jobs(&mut self) -> Vec<(u64, SyncJob)> {
        let mut jobs = Vec::new();
        for e in self.streams.values_mut() {
            if let Some(job) = e.stream.store.take_sync() {
                jobs.push((e.id, job));
            }
        }
        if let Some(p) = self.persistence.as_mut() {
            jobs.extend(p.take_pending_jobs());
            for (s, c) in std::mem::take(&mut self.dirty_consumers) {
                let Some(e) = self.streams.get_mut(&s) else {
                    continue;
                };
                let Some(consumer) = e.consumers.get_mut(&c) else {
                    continue;
                };
                if e.stream.config.storage == Storage::File && !consumer.config.mem_storage {
                    jobs.extend(p.consumer_state_job(&s, consumer));
                }
                consumer.dirty = false;
            }
        } else {
            self.dirty_consumers.clear();
        }
        jobs
    }

    /// Closes every store (clean shutdown; blocking).
    pub fn close_all(&mut self) {
        for e in self.streams.values_mut() {
            if let Err(err) = e.stream.store.close() {
                warn!("JetStream: closing stream {}: {err}", e.stream.config.name);
            }
        }
    }

    /// The storage thread finished job `id`.
    pub fn sync_done(&mut self, id: u64, result: SyncResult) {
        if let Some(p) = self.persistence.as_mut()
            && p.owns_job(id)
        {
            p.job_done(id, result);
            self.release_ack_replies();
        } else if let Some(e) = self.streams.values_mut().find(|e| e.id == id) {
            if let Some(err) = &result.error {
                warn!(
                    "JetStream: stream {}: storage failed ({err}); publishes are refused",
                    e.stream.config.name
                );
            }
            e.stream.store.sync_done(result);
            let durable = e.stream.store.durable_seq();
            self.release_stream(id, durable);
        }
    }

    /// Timers: pull request expiry and heartbeats, ack waits, max_age,
    /// inactive ephemeral consumers.
    pub fn tick(&mut self, now: Instant) {
        let now_ns = api::now_ns();
        let names: Vec<String> = self.streams.keys().cloned().collect();
        for name in names {
            let Some(entry) = self.streams.get_mut(&name) else {
                continue;
            };
            if let Err(e) = entry.stream.expire_age(now_ns) {
                warn!("JetStream: stream {name}: {e}");
            }
            let mut gone = Vec::new();
            for c in entry.consumers.values_mut() {
                for (sseq, deliveries) in c.expire_pending(now) {
                    self.outputs
                        .push(max_deliveries_advisory(&name, &c.name, sseq, deliveries));
                    self.dirty_consumers.insert((name.clone(), c.name.clone()));
                }
                let mut keep = std::collections::VecDeque::new();
                for mut r in std::mem::take(&mut c.waiting) {
                    if r.expires.is_some_and(|t| now >= t) {
                        let pending_msgs = r.batch.to_string();
                        let pending_bytes = r.max_bytes.to_string();
                        self.outputs.push(Out::status(
                            &r.reply,
                            408,
                            "Request Timeout",
                            &[
                                ("Nats-Pending-Messages", &pending_msgs),
                                ("Nats-Pending-Bytes", &pending_bytes),
                            ],
                        ));
                        continue;
                    }
                    if let (Some(hb), Some(due)) = (r.heartbeat, r.next_heartbeat)
                        && now >= due
                    {
                        self.outputs
                            .push(Out::status(&r.reply, 100, "Idle Heartbeat", &[]));
                        r.next_heartbeat = Some(now + hb);
                    }
                    keep.push_back(r);
                }
                if !keep.is_empty() || (c.is_push() && c.interest) {
                    c.last_active = now;
                }
                c.waiting = keep;
                if c.is_push()
                    && c.interest
                    && let (Some(hb), Some(due)) = (c.heartbeat(), c.next_heartbeat)
                    && now >= due
                    && let Some(deliver) = &c.config.deliver_subject
                {
                    let last_c = c.delivered_cseq.to_string();
                    let last_s = c.last_delivered_sseq.to_string();
                    let mut h: Vec<(&str, &str)> = Vec::new();
                    if c.delivered_cseq > 0 {
                        h.push(("Nats-Last-Consumer", &last_c));
                        h.push(("Nats-Last-Stream", &last_s));
                    }
                    if let Some(fc) = &c.fc_pending {
                        h.push(("Nats-Consumer-Stalled", fc));
                    }
                    self.outputs
                        .push(Out::status(deliver, 100, "Idle Heartbeat", &h));
                    c.next_heartbeat = Some(now + hb);
                }
                let threshold = if c.config.inactive_threshold > 0 {
                    Some(Duration::from_nanos(c.config.inactive_threshold as u64))
                } else if c.ephemeral {
                    Some(Duration::from_nanos(
                        super::consumer::DEFAULT_INACTIVE_THRESHOLD as u64,
                    ))
                } else {
                    None
                };
                if let Some(t) = threshold
                    && c.waiting.is_empty()
                    && now.duration_since(c.last_active) >= t
                {
                    gone.push(c.name.clone());
                }
            }
            for c in gone {
                debug!("JetStream: consumer {name} > {c} inactive, deleted");
                self.delete_consumer(&name, &c);
            }
            self.pump(&name, now);
        }
    }

    /// The earliest moment [`Engine::tick`] has something to do (the
    /// loop's tick is at most this far away).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.streams
            .values()
            .flat_map(|e| e.consumers.values())
            .filter_map(Consumer::next_deadline)
            .min()
    }

    // ----- delivery -----

    /// Delivers what the waiting pull requests of stream `name` can take.
    fn pump(&mut self, name: &str, now: Instant) {
        let Some(entry) = self.streams.get_mut(name) else {
            return;
        };
        let now_ns = api::now_ns();
        let stream = &mut entry.stream;
        let mut removed_for_workqueue = Vec::new();
        for c in entry.consumers.values_mut() {
            if let Some(deliver) = c.config.deliver_subject.clone() {
                let mut budget = PUSH_BUDGET;
                while budget > 0 && c.interest && c.fc_pending.is_none() && c.may_deliver() {
                    let msg = match next_message(stream.store.as_mut(), c) {
                        Ok(Some(m)) => m,
                        Ok(None) => break,
                        Err(e) => {
                            warn!("JetStream: stream {name}: {e}");
                            break;
                        }
                    };
                    budget -= 1;
                    let size = (msg.headers.len() + msg.payload.len()) as u64;
                    let seq = msg.seq;
                    let out = delivery(name, stream.store.as_ref(), c, msg, &deliver, now, now_ns);
                    self.outputs.push(out);
                    if c.config.ack_policy == AckPolicy::None
                        && stream.config.retention == Retention::Workqueue
                    {
                        removed_for_workqueue.push(seq);
                    }
                    c.next_heartbeat = c.heartbeat().map(|h| now + h);
                    c.last_active = now;
                    c.dirty = true;
                    if c.config.flow_control {
                        c.fc_bytes += size;
                        if c.fc_bytes >= FLOW_CONTROL_BYTES {
                            self.fc_counter += 1;
                            let fc = format!("$JS.FC.{name}.{}.{}", c.name, self.fc_counter);
                            let mut out = Out::status(&deliver, 100, "FlowControl Request", &[]);
                            out.reply = Some(fc.clone());
                            self.outputs.push(out);
                            c.fc_pending = Some(fc);
                            c.fc_bytes = 0;
                        }
                    }
                }
                if c.dirty {
                    self.dirty_consumers
                        .insert((name.to_string(), c.name.clone()));
                }
                continue;
            }
            while let Some(mut req) = c.waiting.pop_front() {
                if !c.may_deliver() {
                    c.waiting.push_front(req);
                    break;
                }
                let next = next_message(stream.store.as_mut(), c);
                let msg = match next {
                    Ok(Some(m)) => m,
                    Ok(None) => {
                        c.waiting.push_front(req);
                        break;
                    }
                    Err(e) => {
                        warn!("JetStream: stream {name}: {e}");
                        c.waiting.push_front(req);
                        break;
                    }
                };
                let size = (msg.headers.len() + msg.payload.len()) as u64;
                if req.max_bytes > 0 && size > req.max_bytes {
                    // Not delivered: it stays next for the following request.
                    if !c.pending.contains_key(&msg.seq) {
                        c.next_seq = c.next_seq.min(msg.seq);
                    }
                    self.outputs.push(Out::status(
                        &req.reply,
                        409,
                        "Message Size Exceeds MaxBytes",
                        &[],
                    ));
                    continue;
                }
                let seq = msg.seq;
                let out = delivery(name, stream.store.as_ref(), c, msg, &req.reply, now, now_ns);
                self.outputs.push(out);
                if c.config.ack_policy == AckPolicy::None
                    && stream.config.retention == Retention::Workqueue
                {
                    removed_for_workqueue.push(seq);
                }
                req.delivered_any = true;
                req.batch = req.batch.saturating_sub(1);
                if req.max_bytes > 0 {
                    req.max_bytes = req.max_bytes.saturating_sub(size);
                }
                if let Some(hb) = req.heartbeat {
                    req.next_heartbeat = Some(now + hb);
                }
                if req.batch > 0 {
                    c.waiting.push_front(req);
                }
                c.dirty = true;
            }
            // A no_wait request (without expiry) ends once nothing is left.
            let mut keep = std::collections::VecDeque::new();
            for r in std::mem::take(&mut c.waiting) {
                if r.no_wait && r.expires.is_none() {
                    self.outputs
                        .push(Out::status(&r.reply, 404, "No Messages", &[]));
                } else {
                    keep.push_back(r);
                }
            }
            c.waiting = keep;
            if c.dirty {
                self.dirty_consumers
                    .insert((name.to_string(), c.name.clone()));
            }
        }
        for s in removed_for_workqueue {
            let _ = stream.store.remove(s, false);
        }
    }

    /// The reply to a flow-control request: delivery resumes.
    fn on_flow_control(&mut self, subject: &str, now: Instant) {
        let mut resumed = None;
        for (name, e) in self.streams.iter_mut() {
            for c in e.consumers.values_mut() {
                if c.fc_pending.as_deref() == Some(subject) {
                    c.fc_pending = None;
                    resumed = Some(name.clone());
                }
            }
        }
        if let Some(name) = resumed {
            self.pump(&name, now);
        }
    }

    // ----- acks -----

    fn on_ack(&mut self, ack: &str, reply: Option<&str>, payload: &[u8], now: Instant) {
        let tokens: Vec<&str> = ack.split('.').collect();
        // v1: <stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
        // v2: <domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]
        let (stream, consumer, sseq) = match tokens.len() {
            7 => (tokens[0], tokens[1], tokens[3]),
            9 | 10 => (tokens[2], tokens[3], tokens[5]),
            _ => return,
        };
        let Ok(sseq) = sseq.parse::<u64>() else {
            return;
        };
        let Some(kind) = AckKind::parse(payload) else {
            return;
        };
        let Some(entry) = self.streams.get_mut(stream) else {
            return;
        };
        let retention = entry.stream.config.retention;
        let file_backed = entry.stream.config.storage == Storage::File;
        let Some(c) = entry.consumers.get_mut(consumer) else {
            return;
        };
        let persistent = file_backed && !c.config.mem_storage;
        let done = c.ack(sseq, kind, now);
        let cname = c.name.clone();
        if let Some(done) = &done {
            match retention {
                Retention::Workqueue => {
                    for s in done {
                        let _ = entry.stream.store.remove(*s, false);
                    }
                }
                Retention::Interest => {
                    for s in done {
                        if entry.consumers.values().all(|c| c.is_done_with(*s)) {
                            let _ = entry.stream.store.remove(*s, false);
                        }
                    }
                }
                Retention::Limits => {}
            }
            if kind == AckKind::Term {
                self.outputs.push(Out::json(
                    &format!("$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.{stream}.{cname}"),
                    &json!({
                        "type": "io.nats.jetstream.advisory.v1.terminated",
                        "id": random_name(),
                        "timestamp": api::time_string(api::now_ns()),
                        "stream": stream,
                        "consumer": cname,
                        "consumer_seq": 0,
                        "stream_seq": sseq,
                        "deliveries": 1,
                    }),
                ));
            }
        }
        self.dirty_consumers
            .insert((stream.to_string(), consumer.to_string()));
        let stream_name = stream.to_string();
        if kind == AckKind::Next
            && let Some(r) = reply
        {
            // +NXT: the reply subject is where the next message goes.
            let body = std::str::from_utf8(payload)
                .ok()
                .and_then(|t| t.trim().strip_prefix("+NXT"))
                .unwrap_or("")
                .trim()
                .as_bytes()
                .to_vec();
            self.next_request(&stream_name, &cname, r, &body, now);
        } else if let Some(r) = reply {
            let out = Out {
                subject: r.to_string(),
                deliver_to: None,
                reply: None,
                headers: Vec::new(),
                payload: Vec::new(),
            };
            let ticket = if persistent {
                self.persistence
                    .as_mut()
                    .and_then(|p| p.ticket(&stream_name, &cname))
            } else {
                None
            };
            match ticket {
                Some((sid, ticket)) => self.held_ack_replies.push((sid, ticket, out)),
                None => self.outputs.push(out),
            }
        }
        self.pump(&stream_name, now);
    }

    // ----- the API -----

    fn on_api(&mut self, api: &str, reply: Option<&str>, payload: &[u8], now: Instant) -> Handled {
        let Some(reply) = reply else {
            // nats-server ignores API requests without a reply subject.
            return Handled::Yes;
        };
        if let Some(rest) = api.strip_prefix("CONSUMER.MSG.NEXT.") {
            let mut it = rest.splitn(2, '.');
            let (Some(stream), Some(consumer)) = (it.next(), it.next()) else {
                return Handled::No;
            };
            let exists = self
                .streams
                .get(stream)
                .is_some_and(|e| e.consumers.contains_key(consumer));
            if !exists {
                return Handled::No;
            }
            let (stream, consumer) = (stream.to_string(), consumer.to_string());
            self.next_request(&stream, &consumer, reply, payload, now);
            return Handled::Yes;
        }
        if let Some(rest) = api.strip_prefix("DIRECT.GET.") {
            return self.direct_get(rest, reply, payload);
        }
        self.api_total += 1;
        let (kind, result) = self.api_request(api, payload, now);
        let body = match result {
            Ok(v) => response(kind, v),
            Err(e) => {
                self.api_errors += 1;
                api::error_response(kind, &e)
            }
        };
        self.outputs.push(Out::json(reply, &body));
        Handled::Yes
    }

    fn api_request(
        &mut self,
        api: &str,
        payload: &[u8],
        now: Instant,
    ) -> (&'static str, Result<Value, ApiError>) {
        let (op, arg) = match api {
            "INFO" => ("INFO", ""),
            "STREAM.LIST" => ("STREAM.LIST", ""),
            "STREAM.NAMES" => ("STREAM.NAMES", ""),
            _ => {
                let prefixes = [
                    "STREAM.CREATE.",
                    "STREAM.UPDATE.",
                    "STREAM.INFO.",
                    "STREAM.DELETE.",
                    "STREAM.PURGE.",
                    "STREAM.MSG.GET.",
                    "STREAM.MSG.DELETE.",
                    "CONSUMER.DURABLE.CREATE.",
                    "CONSUMER.CREATE.",
                    "CONSUMER.INFO.",
                    "CONSUMER.DELETE.",
                    "CONSUMER.LIST.",
                    "CONSUMER.NAMES.",
                ];
                match prefixes.iter().find(|p| api.starts_with(*p)) {
                    Some(p) => (p.trim_end_matches('.'), &api[p.len()..]),
                    None => ("UNKNOWN", api),
                }
            }
        };
        match op {
            "INFO" => ("account_info_response", Ok(self.account_info())),
            "STREAM.CREATE" => (
                "stream_create_response",
                self.stream_create(arg, payload, now),
            ),
            "STREAM.UPDATE" => (
                "stream_update_response",
                self.stream_update(arg, payload, now),
            ),
            "STREAM.INFO" => ("stream_info_response", self.stream_info_req(arg, payload)),
            "STREAM.DELETE" => ("stream_delete_response", self.stream_delete(arg)),
            "STREAM.PURGE" => (
                "stream_purge_response",
                self.stream_purge(arg, payload, now),
            ),
            "STREAM.LIST" => ("stream_list_response", self.stream_list(payload)),
            "STREAM.NAMES" => ("stream_names_response", self.stream_names(payload)),
            "STREAM.MSG.GET" => ("stream_msg_get_response", self.msg_get(arg, payload)),
            "STREAM.MSG.DELETE" => ("stream_msg_delete_response", self.msg_delete(arg, payload)),
            "CONSUMER.CREATE" => (
                "consumer_create_response",
                self.consumer_create(arg, payload, false, now),
            ),
            "CONSUMER.DURABLE.CREATE" => (
                "consumer_create_response",
                self.consumer_create(arg, payload, true, now),
            ),
            "CONSUMER.INFO" => ("consumer_info_response", self.consumer_info_req(arg)),
            "CONSUMER.DELETE" => ("consumer_delete_response", self.consumer_delete_req(arg)),
            "CONSUMER.LIST" => ("consumer_list_response", self.consumer_list(arg, payload)),
            "CONSUMER.NAMES" => ("consumer_names_response", self.consumer_names(arg, payload)),
            _ => ("api_response", Err(err::unknown_request())),
        }
    }

    fn account_info(&self) -> Value {
        let (mem, file) = self.usage();
        let (streams, consumers) = self.counts();
        json!({
            "memory": mem,
            "storage": file,
            "reserved_memory": 0,
            "reserved_storage": 0,
            "streams": streams,
            "consumers": consumers,
            "limits": {
                "max_memory": self.limits.max_memory,
                "max_storage": self.limits.max_file,
                "max_streams": -1,
                "max_consumers": -1,
                "max_ack_pending": -1,
                "memory_max_stream_bytes": -1,
                "storage_max_stream_bytes": -1,
                "max_bytes_required": false,
            },
            "api": {"level": 1, "total": self.api_total, "errors": self.api_errors},
        })
    }

    fn stream_create(
        &mut self,
        name: &str,
        payload: &[u8],
        now: Instant,
    ) -> Result<Value, ApiError> {
        let mut config: StreamConfig = parse_body(payload)?;
        if config.name.is_empty() {
            config.name = name.to_string();
        }
        if config.name != name {
            return Err(err::stream_name_mismatch());
        }
        config.normalise()?;
        if let Some(existing) = self.streams.get(name) {
            if existing.stream.config == config {
                return Ok(self.stream_info(name, None, true));
            }
            return Err(err::stream_name_exists());
        }
        self.check_overlap(&config, None)?;
        self.check_resources(&config, None)?;
        let created_ns = api::now_ns();
        let store: Box<dyn MessageStore> = match config.storage {
            Storage::Memory => Box::new(super::store::mem::MemStore::new()),
            Storage::File => match self.persistence.as_mut() {
                Some(p) => p
                    .create_stream(&config, created_ns)
                    .map_err(|e| store_error(&e))?,
                None => Box::new(super::store::mem::MemStore::new()),
            },
        };
        let id = self.next_id;
        self.next_id += 1;
        let stream = Stream::new(config.clone(), store, created_ns);
        self.streams.insert(
            name.to_string(),
            Entry {
                id,
                stream,
                consumers: BTreeMap::new(),
            },
        );
        self.rebuild_capture();
        self.outputs.push(stream_action_advisory("created", name));
        let _ = now;
        Ok(self.stream_info(name, None, true))
    }

    fn check_overlap(&self, config: &StreamConfig, except: Option<&str>) -> Result<(), ApiError> {
        for e in self.streams.values() {
            if Some(e.stream.config.name.as_str()) == except {
                continue;
            }
            for a in &e.stream.config.subjects {
                for b in &config.subjects {
                    if super::stream::subjects_overlap(a, b) {
                        return Err(err::subjects_overlap());
                    }
                }
            }
        }
        Ok(())
    }

    fn check_resources(&self, config: &StreamConfig, except: Option<&str>) -> Result<(), ApiError> {
        let (limit, error) = match config.storage {
            Storage::Memory => (self.limits.max_memory, err::insufficient_memory()),
            Storage::File => (self.limits.max_file, err::insufficient_storage()),
        };
        if limit < 0 {
            return Ok(());
        }
        let reserved: i64 = self
            .streams
            .values()
            .filter(|e| e.stream.config.storage == config.storage)
            .filter(|e| Some(e.stream.config.name.as_str()) != except)
            .map(|e| e.stream.config.max_bytes.max(0))
            .sum();
        if config.max_bytes > 0 && reserved + config.max_bytes > limit {
            return Err(error);
        }
        Ok(())
    }

    fn stream_update(
        &mut self,
        name: &str,
        payload: &[u8],
        now: Instant,
    ) -> Result<Value, ApiError> {
        let mut config: StreamConfig = parse_body(payload)?;
        if config.name.is_empty() {
            config.name = name.to_string();
        }
        if config.name != name {
            return Err(err::stream_name_mismatch());
        }
        config.normalise()?;
        let Some(existing) = self.streams.get(name) else {
            return Err(err::stream_not_found());
        };
        existing.stream.config.check_update(&config)?;
        self.check_overlap(&config, Some(name))?;
        self.check_resources(&config, Some(name))?;
        let Some(entry) = self.streams.get_mut(name) else {
            return Err(err::stream_not_found());
        };
        entry
            .stream
            .store
            .set_config(&Persistence::config_bytes(&config, entry.stream.created_ns));
        entry.stream.config = config;
        entry
            .stream
            .enforce_limits(None)
            .map_err(|e| store_error(&e))?;
        self.rebuild_capture();
        self.pump(name, now);
        Ok(self.stream_info(name, None, false))
    }

    fn stream_info_req(&mut self, name: &str, payload: &[u8]) -> Result<Value, ApiError> {
        let req: StreamInfoRequest = parse_body(payload)?;
        let _ = req.deleted_details;
        if !self.streams.contains_key(name) {
            return Err(err::stream_not_found());
        }
        Ok(self.stream_info(name, req.subjects_filter.as_deref(), false))
    }

    fn stream_info(&self, name: &str, subjects_filter: Option<&str>, created: bool) -> Value {
        let Some(e) = self.streams.get(name) else {
            return json!({});
        };
        let mut v = stream_info_json(&e.stream, e.consumers.len(), subjects_filter);
        if created && let Value::Object(m) = &mut v {
            m.insert("did_create".into(), Value::Bool(true));
        }
        v
    }

    fn stream_delete(&mut self, name: &str) -> Result<Value, ApiError> {
        let Some(mut entry) = self.streams.remove(name) else {
            return Err(err::stream_not_found());
        };
        if let Err(e) = entry.stream.store.delete() {
            warn!("JetStream: deleting stream {name}: {e}");
        }
        if let Some(p) = self.persistence.as_mut() {
            p.delete_stream(name);
        }
        for c in entry.consumers.values() {
            for r in &c.waiting {
                self.outputs
                    .push(Out::status(&r.reply, 409, "Consumer Deleted", &[]));
            }
        }
        self.held.remove(&entry.id);
        self.rebuild_capture();
        self.outputs.push(stream_action_advisory("deleted", name));
        Ok(json!({"success": true}))
    }

    fn stream_purge(
        &mut self,
        name: &str,
        payload: &[u8],
        now: Instant,
    ) -> Result<Value, ApiError> {
        let req: PurgeRequest = parse_body(payload)?;
        let Some(entry) = self.streams.get_mut(name) else {
            return Err(err::stream_not_found());
        };
        if entry.stream.config.deny_purge {
            return Err(err::purge_denied());
        }
        if req.seq.is_some() && req.keep.is_some() {
            return Err(err::bad_request());
        }
        let purged = entry
            .stream
            .store
            .purge(
                req.filter.as_deref().filter(|f| !f.is_empty()),
                req.seq,
                req.keep,
            )
            .map_err(|e| store_error(&e))?;
        // Consumers skip what is gone.
        let first = entry.stream.store.state().first_seq;
        for c in entry.consumers.values_mut() {
            if req.filter.is_none() && c.next_seq < first {
                c.next_seq = first;
            }
            let stale: Vec<u64> = c.pending.keys().copied().filter(|s| *s < first).collect();
            for s in stale {
                c.pending.remove(&s);
                c.redeliver.remove(&s);
            }
        }
        self.pump(name, now);
        Ok(json!({"success": true, "purged": purged}))
    }

    fn stream_names(&self, payload: &[u8]) -> Result<Value, ApiError> {
        let req: ListRequest = parse_body(payload)?;
        let names: Vec<&String> = self
            .streams
            .iter()
            .filter(|(_, e)| {
                req.subject.as_deref().is_none_or(|s| {
                    e.stream
                        .config
                        .subjects
                        .iter()
                        .any(|x| super::stream::subjects_overlap(x, s))
                })
            })
            .map(|(n, _)| n)
            .collect();
        let total = names.len();
        let page: Vec<&String> = names.into_iter().skip(req.offset).take(1024).collect();
        Ok(json!({"total": total, "offset": req.offset, "limit": 1024, "streams": page}))
    }

    fn stream_list(&self, payload: &[u8]) -> Result<Value, ApiError> {
        let req: ListRequest = parse_body(payload)?;
        let list: Vec<Value> = self
            .streams
            .values()
            .filter(|e| {
                req.subject.as_deref().is_none_or(|s| {
                    e.stream
                        .config
                        .subjects
                        .iter()
                        .any(|x| super::stream::subjects_overlap(x, s))
                })
            })
            .map(|e| stream_info_json(&e.stream, e.consumers.len(), None))
            .collect();
        let total = list.len();
        let page: Vec<Value> = list.into_iter().skip(req.offset).take(256).collect();
        Ok(json!({"total": total, "offset": req.offset, "limit": 256, "streams": page}))
    }

    fn find_message(&mut self, name: &str, req: &MsgGetRequest) -> Result<StoredMsg, ApiError> {
        let Some(entry) = self.streams.get_mut(name) else {
            return Err(err::stream_not_found());
        };
        let store = entry.stream.store.as_mut();
        let found = if let Some(subj) = req.last_by_subj.as_deref() {
            store.load_last(subj)
        } else if let Some(subj) = req.next_by_subj.as_deref() {
            store.load_next(req.seq.max(1), Some(subj))
        } else if req.seq > 0 {
            store.load(req.seq)
        } else {
            return Err(err::bad_request());
        };
        match found {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Err(err::no_message_found()),
            Err(e) => Err(store_error(&e)),
        }
    }

    fn msg_get(&mut self, name: &str, payload: &[u8]) -> Result<Value, ApiError> {
        let req: MsgGetRequest = parse_body(payload)?;
        let m = self.find_message(name, &req)?;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut message = json!({
            "subject": m.subject,
            "seq": m.seq,
            "data": b64.encode(&m.payload),
            "time": api::time_string(m.time_ns),
        });
        if !m.headers.is_empty()
            && let Value::Object(o) = &mut message
        {
            o.insert("hdrs".into(), Value::String(b64.encode(&m.headers)));
        }
        Ok(json!({ "message": message }))
    }

    fn direct_get(&mut self, rest: &str, reply: &str, payload: &[u8]) -> Handled {
        let (name, subject) = match rest.split_once('.') {
            Some((n, s)) => (n, Some(s)),
            None => (rest, None),
        };
        let Some(entry) = self.streams.get(name) else {
            return Handled::No;
        };
        if !entry.stream.config.allow_direct {
            return Handled::No;
        }
        let req = match subject {
            Some(s) => MsgGetRequest {
                last_by_subj: Some(s.to_string()),
                ..Default::default()
            },
            None => match parse_body::<MsgGetRequest>(payload) {
                Ok(r) => r,
                Err(_) => {
                    self.outputs
                        .push(Out::status(reply, 408, "Bad Request", &[]));
                    return Handled::Yes;
                }
            },
        };
        match self.find_message(name, &req) {
            Ok(m) => {
                let seq = m.seq.to_string();
                let ts = api::time_string(m.time_ns);
                let hdrs = headers::with_extra(
                    &m.headers,
                    &[
                        ("Nats-Stream", name),
                        ("Nats-Subject", &m.subject),
                        ("Nats-Sequence", &seq),
                        ("Nats-Time-Stamp", &ts),
                    ],
                );
                self.outputs.push(Out {
                    subject: reply.to_string(),
                    deliver_to: None,
                    reply: None,
                    headers: hdrs,
                    payload: m.payload,
                });
            }
            Err(_) => {
                self.outputs
                    .push(Out::status(reply, 404, "Message Not Found", &[]));
            }
        }
        Handled::Yes
    }

    fn msg_delete(&mut self, name: &str, payload: &[u8]) -> Result<Value, ApiError> {
        let req: MsgDeleteRequest = parse_body(payload)?;
        let Some(entry) = self.streams.get_mut(name) else {
            return Err(err::stream_not_found());
        };
        if entry.stream.config.deny_delete {
            return Err(err::message_delete_denied());
        }
        if req.seq == 0 {
            return Err(err::bad_request());
        }
        let state = entry.stream.store.state();
        let removed = entry
            .stream
            .store
            .remove(req.seq, !req.no_erase)
            .map_err(|e| store_error(&e))?;
        if !removed {
            if req.seq < state.first_seq || req.seq > state.last_seq {
                // nats-server: below the first sequence is a store error.
                return Err(ApiError::new(500, 10057, "no message found"));
            }
            return Err(err::sequence_not_found(req.seq));
        }
        for c in entry.consumers.values_mut() {
            c.pending.remove(&req.seq);
            c.redeliver.remove(&req.seq);
        }
        Ok(json!({"success": true}))
    }

    fn consumer_create(
        &mut self,
        arg: &str,
        payload: &[u8],
        legacy_durable: bool,
        now: Instant,
    ) -> Result<Value, ApiError> {
        let mut parts = arg.splitn(3, '.');
        let stream_name = parts.next().unwrap_or("");
        let subject_name = parts.next();
        let subject_filter = parts.next();
        let req: CreateConsumerRequest =
            serde_json::from_slice(payload).map_err(|e| err::invalid_json(&e.to_string()))?;
        if !req.stream_name.is_empty() && req.stream_name != stream_name {
            return Err(err::stream_name_mismatch());
        }
        let Some(entry) = self.streams.get(stream_name) else {
            return Err(err::stream_not_found());
        };
        let mut config = req.config;
        let name = match (legacy_durable, subject_name) {
            (true, Some(d)) => {
                if config.durable_name.as_deref().is_some_and(|n| n != d) {
                    return Err(err::durable_name_mismatch());
                }
                config.durable_name = Some(d.to_string());
                d.to_string()
            }
            (true, None) => return Err(err::bad_request()),
            (false, Some(n)) => {
                if config.name.as_deref().is_some_and(|x| x != n)
                    || config.durable_name.as_deref().is_some_and(|x| x != n)
                {
                    return Err(err::consumer_name_mismatch());
                }
                if let Some(f) = subject_filter
                    && config.filter_subject.as_deref().is_some_and(|x| x != f)
                {
                    return Err(err::consumer_config(
                        "consumer create request did not match filtered subject from create subject",
                    ));
                }
                config.name = Some(n.to_string());
                n.to_string()
            }
            (false, None) => {
                if config.durable_name.is_some() {
                    return Err(err::ephemeral_with_durable());
                }
                config.name.clone().unwrap_or_else(random_name)
            }
        };
        config.normalise(&entry.stream.config)?;
        if let Some(existing) = entry.consumers.get(&name) {
            let mut want = config.clone();
            want.name = existing.config.name.clone();
            if existing.config == want || existing.config == config {
                return Ok(consumer_info(&entry.stream, existing, api::now_ns()));
            }
            if req.action == "create" {
                return Err(err::consumer_exists());
            }
            if existing.config.ack_policy != config.ack_policy {
                return Err(err::ack_policy_update());
            }
            if existing.config.deliver_policy != config.deliver_policy {
                return Err(err::consumer_config("deliver policy can not be updated"));
            }
            let Some(entry) = self.streams.get_mut(stream_name) else {
                return Err(err::stream_not_found());
            };
            let Some(c) = entry.consumers.get_mut(&name) else {
                return Err(err::consumer_not_found());
            };
            c.filters = config.filters();
            if let Some(d) = &config.deliver_subject {
                self.interest_queries.push(d.clone());
            }
            c.config = config;
            c.dirty = true;
            self.dirty_consumers
                .insert((stream_name.to_string(), name.clone()));
            if let Some(p) = self.persistence.as_mut()
                && entry.stream.config.storage == Storage::File
            {
                p.save_consumer_config(stream_name, c);
            }
            let info = consumer_info(&entry.stream, c, api::now_ns());
            return Ok(info);
        }
        if req.action == "update" {
            return Err(err::consumer_not_found());
        }
        if entry.stream.config.max_consumers > 0
            && entry.consumers.len() as i64 >= entry.stream.config.max_consumers
        {
            return Err(err::max_consumers());
        }
        if entry.stream.config.retention == Retention::Workqueue {
            let mine = config.filters();
            for other in entry.consumers.values() {
                let theirs = &other.filters;
                if mine.is_empty() || theirs.is_empty() {
                    if mine.is_empty() && theirs.is_empty() {
                        return Err(err::workqueue_multiple_unfiltered());
                    }
                    return Err(err::workqueue_filter_not_unique());
                }
                if mine
                    .iter()
                    .any(|a| theirs.iter().any(|b| super::stream::subjects_overlap(a, b)))
                {
                    return Err(err::workqueue_filter_not_unique());
                }
            }
        }
        let Some(entry) = self.streams.get_mut(stream_name) else {
            return Err(err::stream_not_found());
        };
        let state = entry.stream.store.state();
        let filters = config.filters();
        let last_matching = if config.deliver_policy == DeliverPolicy::Last {
            let mut best: Option<u64> = None;
            if filters.is_empty() {
                best = (state.msgs > 0).then_some(state.last_seq);
            }
            for f in &filters {
                if let Ok(Some(m)) = entry.stream.store.load_last(f) {
                    best = Some(best.map_or(m.seq, |b| b.max(m.seq)));
                }
            }
            best
        } else {
            None
        };
        let by_time = match (&config.deliver_policy, &config.opt_start_time) {
            (DeliverPolicy::ByStartTime, Some(t)) => {
                let t = api::parse_time(t).unwrap_or(0);
                first_seq_at_or_after(entry.stream.store.as_mut(), t)
            }
            _ => None,
        };
        let start = start_sequence(
            &config,
            state.first_seq,
            state.last_seq,
            last_matching,
            by_time,
        );
        let created_ns = api::now_ns();
        let mut consumer = Consumer::new(name.clone(), config, start, now, created_ns);
        if consumer.config.deliver_policy == DeliverPolicy::LastPerSubject {
            let mut set = BTreeSet::new();
            let patterns: Vec<String> = if filters.is_empty() {
                vec![">".to_string()]
            } else {
                filters.clone()
            };
            for f in &patterns {
                for (_, s) in entry.stream.store.subjects(f) {
                    set.insert(s.last);
                }
            }
            consumer.start_set = set;
            consumer.start_set_end = state.last_seq;
        }
        if let Some(p) = self.persistence.as_mut()
            && entry.stream.config.storage == Storage::File
        {
            p.save_consumer_config(stream_name, &consumer);
        }
        let info = consumer_info(&entry.stream, &consumer, created_ns);
        if let Some(d) = &consumer.config.deliver_subject {
            self.interest_queries.push(d.clone());
        }
        entry.consumers.insert(name.clone(), consumer);
        self.dirty_consumers
            .insert((stream_name.to_string(), name.clone()));
        self.outputs
            .push(consumer_action_advisory("created", stream_name, &name));
        Ok(info)
    }

    fn consumer_info_req(&self, arg: &str) -> Result<Value, ApiError> {
        let (stream, name) = arg.split_once('.').unwrap_or((arg, ""));
        let Some(entry) = self.streams.get(stream) else {
            return Err(err::stream_not_found());
        };
        let Some(c) = entry.consumers.get(name) else {
            return Err(err::consumer_not_found());
        };
        Ok(consumer_info(&entry.stream, c, api::now_ns()))
    }

    fn consumer_delete_req(&mut self, arg: &str) -> Result<Value, ApiError> {
        let (stream, name) = arg.split_once('.').unwrap_or((arg, ""));
        let Some(entry) = self.streams.get(stream) else {
            return Err(err::stream_not_found());
        };
        if !entry.consumers.contains_key(name) {
            return Err(err::consumer_not_found());
        }
        self.delete_consumer(stream, name);
        Ok(json!({"success": true}))
    }

    fn delete_consumer(&mut self, stream: &str, name: &str) {
        let Some(entry) = self.streams.get_mut(stream) else {
            return;
        };
        let Some(c) = entry.consumers.remove(name) else {
            return;
        };
        for r in &c.waiting {
            self.outputs
                .push(Out::status(&r.reply, 409, "Consumer Deleted", &[]));
        }
        if let Some(p) = self.persistence.as_mut() {
            p.delete_consumer(stream, name);
        }
        if entry.stream.config.retention == Retention::Interest {
            // What no remaining consumer still needs goes.
            let state = entry.stream.store.state();
            let mut seq = state.first_seq;
            while seq <= state.last_seq {
                let Ok(Some(m)) = entry.stream.store.load_next(seq, None) else {
                    break;
                };
                seq = m.seq + 1;
                let needed = entry
                    .consumers
                    .values()
                    .any(|c| c.wants(&m.subject) && !c.is_done_with(m.seq));
                if !needed {
                    let _ = entry.stream.store.remove(m.seq, false);
                }
            }
        }
        self.outputs
            .push(consumer_action_advisory("deleted", stream, name));
    }

    fn consumer_list(&self, stream: &str, payload: &[u8]) -> Result<Value, ApiError> {
        let req: ListRequest = parse_body(payload)?;
        let Some(entry) = self.streams.get(stream) else {
            return Err(err::stream_not_found());
        };
        let now_ns = api::now_ns();
        let all: Vec<Value> = entry
            .consumers
            .values()
            .map(|c| consumer_info(&entry.stream, c, now_ns))
            .collect();
        let total = all.len();
        let page: Vec<Value> = all.into_iter().skip(req.offset).take(256).collect();
        Ok(json!({"total": total, "offset": req.offset, "limit": 256, "consumers": page}))
    }

    fn consumer_names(&self, stream: &str, payload: &[u8]) -> Result<Value, ApiError> {
        let req: ListRequest = parse_body(payload)?;
        let Some(entry) = self.streams.get(stream) else {
            return Err(err::stream_not_found());
        };
        let total = entry.consumers.len();
        let page: Vec<&String> = entry.consumers.keys().skip(req.offset).take(1024).collect();
        Ok(json!({"total": total, "offset": req.offset, "limit": 1024, "consumers": page}))
    }

    /// A pull request for `stream` > `consumer`.
    fn next_request(
        &mut self,
        stream: &str,
        consumer: &str,
        reply: &str,
        payload: &[u8],
        now: Instant,
    ) {
        let Some(entry) = self.streams.get_mut(stream) else {
            return;
        };
        let Some(c) = entry.consumers.get_mut(consumer) else {
            return;
        };
        c.last_active = now;
        let text = std::str::from_utf8(payload).unwrap_or("").trim();
        let req: NextRequest = if text.is_empty() {
            NextRequest {
                batch: 1,
                ..Default::default()
            }
        } else if let Ok(n) = text.parse::<i64>() {
            NextRequest {
                batch: n,
                ..Default::default()
            }
        } else {
            match serde_json::from_str(text) {
                Ok(r) => r,
                Err(_) => {
                    self.outputs
                        .push(Out::status(reply, 400, "Bad Request", &[]));
                    return;
                }
            }
        };
        let batch = req.batch.max(1) as u64;
        if c.config.max_batch > 0 && batch > c.config.max_batch as u64 {
            self.outputs.push(Out::status(
                reply,
                409,
                &format!("Exceeded MaxRequestBatch of {}", c.config.max_batch),
                &[],
            ));
            return;
        }
        if c.config.max_expires > 0 && req.expires > c.config.max_expires {
            self.outputs.push(Out::status(
                reply,
                409,
                &format!(
                    "Exceeded MaxRequestExpires of {}",
                    crate::monitor::timefmt::go_duration(Duration::from_nanos(
                        c.config.max_expires as u64
                    ))
                ),
                &[],
            ));
            return;
        }
        if c.config.max_bytes > 0 && req.max_bytes > c.config.max_bytes {
            self.outputs.push(Out::status(
                reply,
                409,
                &format!("Exceeded MaxRequestMaxBytes of {}", c.config.max_bytes),
                &[],
            ));
            return;
        }
        if c.waiting.len() as i64 >= c.config.max_waiting {
            self.outputs
                .push(Out::status(reply, 409, "Exceeded MaxWaiting", &[]));
            return;
        }
        let heartbeat =
            (req.idle_heartbeat > 0).then(|| Duration::from_nanos(req.idle_heartbeat as u64));
        c.waiting.push_back(PullRequest {
            reply: reply.to_string(),
            batch,
            max_bytes: req.max_bytes.max(0) as u64,
            expires: (req.expires > 0).then(|| now + Duration::from_nanos(req.expires as u64)),
            no_wait: req.no_wait,
            heartbeat,
            next_heartbeat: heartbeat.map(|h| now + h),
            delivered_any: false,
        });
        let stream = stream.to_string();
        self.pump(&stream, now);
    }
}

/// Messages a push consumer is given per pump (the tick continues).
const PUSH_BUDGET: usize = 1024;

/// Payload bytes a flow-controlled push consumer receives between
/// flow-control requests.
const FLOW_CONTROL_BYTES: u64 = 1 << 20;

/// The next message for consumer `c`: a redelivery first, then the
/// initial last-per-subject set, then the next new one matching its filters.
fn next_message(
    store: &mut dyn MessageStore,
    c: &mut Consumer,
) -> Result<Option<StoredMsg>, super::store::StoreError> {
    while let Some(&s) = c.redeliver.iter().next() {
        match store.load(s)? {
            Some(m) => return Ok(Some(m)),
            None => {
                c.redeliver.remove(&s);
                c.pending.remove(&s);
            }
        }
    }
    while let Some(&s) = c.start_set.iter().next() {
        c.start_set.remove(&s);
        if let Some(m) = store.load(s)? {
            return Ok(Some(m));
        }
    }
    if c.start_set_end > 0 {
        c.next_seq = c.next_seq.max(c.start_set_end + 1);
        c.start_set_end = 0;
    }
    loop {
        let m = if c.filters.len() <= 1 {
            store.load_next(c.next_seq, c.filters.first().map(String::as_str))?
        } else {
            let mut best: Option<StoredMsg> = None;
            for f in &c.filters {
                if let Some(m) = store.load_next(c.next_seq, Some(f))?
                    && best.as_ref().is_none_or(|b| m.seq < b.seq)
                {
                    best = Some(m);
                }
            }
            best
        };
        match m {
            Some(m) if c.pending.contains_key(&m.seq) => c.next_seq = m.seq + 1,
            other => return Ok(other),
        }
    }
}

/// Records the delivery of `msg` to consumer `c` and builds it: the stored
/// subject, delivered to `deliver_to` (a pull request's inbox or a push
/// consumer's deliver subject), with the `$JS.ACK` reply subject clients
/// read their metadata from, and only the headers when `headers_only`.
fn delivery(
    stream: &str,
    store: &dyn MessageStore,
    c: &mut Consumer,
    msg: StoredMsg,
    deliver_to: &str,
    now: Instant,
    now_ns: i64,
) -> Out {
    let (cseq, deliveries) = c.record_delivery(msg.seq, now, now_ns);
    c.last_delivered_sseq = msg.seq;
    let pending = num_pending(store, c);
    let ack = format!(
        "$JS.ACK.{stream}.{}.{deliveries}.{}.{cseq}.{}.{pending}",
        c.name, msg.seq, msg.time_ns
    );
    let (headers, payload) = if c.config.headers_only {
        let size = msg.payload.len().to_string();
        (
            headers::with_extra(&msg.headers, &[("Nats-Msg-Size", &size)]),
            Vec::new(),
        )
    } else {
        (msg.headers, msg.payload)
    };
    Out {
        subject: msg.subject,
        deliver_to: Some(deliver_to.to_string()),
        reply: Some(ack),
        headers,
        payload,
    }
}

/// Messages left for consumer `c` after its next sequence.
fn num_pending(store: &dyn MessageStore, c: &Consumer) -> u64 {
    let extra = c.start_set.len() as u64;
    if c.filters.is_empty() {
        return store.num_pending(c.next_seq, None) + extra;
    }
    c.filters
        .iter()
        .map(|f| store.num_pending(c.next_seq, Some(f)))
        .sum::<u64>()
        + extra
}

/// The first sequence stored at or after `t_ns`.
fn first_seq_at_or_after(store: &mut dyn MessageStore, t_ns: i64) -> Option<u64> {
    let state = store.state();
    let mut seq = state.first_seq;
    while seq <= state.last_seq {
        let m = store.load_next(seq, None).ok()??;
        if m.time_ns >= t_ns {
            return Some(m.seq);
        }
        seq = m.seq + 1;
    }
    None
}

/// `state` of a stream as the API reports it.
pub fn state_json(state: &StoreState, consumers: usize) -> Value {
    let mut v = json!({
        "messages": state.msgs,
        "bytes": state.bytes,
        "first_seq": state.first_seq,
        "first_ts": api::time_string(state.first_ts),
        "last_seq": state.last_seq,
        "last_ts": api::time_string(state.last_ts),
        "num_subjects": state.num_subjects,
        "consumer_count": consumers,
    });
    if let Value::Object(m) = &mut v {
        if state.num_deleted > 0 {
            m.insert("num_deleted".into(), json!(state.num_deleted));
        }
        if let Some(lost) = &state.lost {
            m.insert(
                "lost".into(),
                json!({"msgs": lost.msgs, "bytes": lost.bytes}),
            );
        }
    }
    v
}

fn stream_info_json(stream: &Stream, consumers: usize, subjects_filter: Option<&str>) -> Value {
    let state = stream.store.state();
    let mut st = state_json(&state, consumers);
    if let Some(f) = subjects_filter
        && let Value::Object(m) = &mut st
    {
        let subjects: serde_json::Map<String, Value> = stream
            .store
            .subjects(f)
            .into_iter()
            .map(|(s, ss)| (s, json!(ss.msgs)))
            .collect();
        m.insert("subjects".into(), Value::Object(subjects));
    }
    json!({
        "config": stream.config,
        "created": api::time_string(stream.created_ns),
        "state": st,
        "ts": api::time_string(api::now_ns()),
    })
}

/// A consumer's info as the API reports it.
pub fn consumer_info(stream: &Stream, c: &Consumer, now_ns: i64) -> Value {
    let mut config = serde_json::to_value(&c.config).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut config
        && !m.contains_key("name")
    {
        m.insert("name".into(), Value::String(c.name.clone()));
    }
    let mut info = json!({
        "stream_name": stream.config.name,
        "name": c.name,
        "created": api::time_string(c.created_ns),
        "config": config,
        "delivered": {"consumer_seq": c.delivered_cseq, "stream_seq": c.delivered_sseq},
        "ack_floor": {"consumer_seq": c.ack_floor_cseq, "stream_seq": c.ack_floor_sseq},
        "num_ack_pending": c.pending.len(),
        "num_redelivered": c.num_redelivered,
        "num_waiting": c.waiting.len(),
        "num_pending": num_pending(stream.store.as_ref(), c),
        "ts": api::time_string(now_ns),
    });
    if c.is_push()
        && c.interest
        && let Value::Object(m) = &mut info
    {
        m.insert("push_bound".into(), Value::Bool(true));
    }
    info
}

fn stream_action_advisory(action: &str, stream: &str) -> Out {
    Out::json(
        &format!(
            "$JS.EVENT.ADVISORY.STREAM.{}.{stream}",
            action.to_uppercase()
        ),
        &json!({
            "type": "io.nats.jetstream.advisory.v1.stream_action",
            "id": random_name(),
            "timestamp": api::time_string(api::now_ns()),
            "stream": stream,
            "action": if action == "created" { "create" } else { "delete" },
        }),
    )
}

fn consumer_action_advisory(action: &str, stream: &str, consumer: &str) -> Out {
    Out::json(
        &format!(
            "$JS.EVENT.ADVISORY.CONSUMER.{}.{stream}.{consumer}",
            action.to_uppercase()
        ),
        &json!({
            "type": "io.nats.jetstream.advisory.v1.consumer_action",
            "id": random_name(),
            "timestamp": api::time_string(api::now_ns()),
            "stream": stream,
            "consumer": consumer,
            "action": if action == "created" { "create" } else { "delete" },
        }),
    )
}

fn max_deliveries_advisory(stream: &str, consumer: &str, sseq: u64, deliveries: u64) -> Out {
    Out::json(
        &format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"),
        &json!({
            "type": "io.nats.jetstream.advisory.v1.max_deliver",
            "id": random_name(),
            "timestamp": api::time_string(api::now_ns()),
            "stream": stream,
            "consumer": consumer,
            "stream_seq": sseq,
            "deliveries": deliveries,
        }),
    )
}
