//! One consumer of a stream: its configuration (nats-server's JSON,
//! defaults and checks), its delivery and ack state (what was delivered,
//! what awaits an ack and until when, what is to be redelivered), and the
//! pull requests waiting for messages.
//!
//! Pure state machine: the engine feeds it messages, acks and the time,
//! and sends what it decides.

use super::api::{ApiError, err};
use super::stream::{Retention, StreamConfig, is_valid_name};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// `deliver_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliverPolicy {
    #[default]
    All,
    Last,
    New,
    ByStartSequence,
    ByStartTime,
    LastPerSubject,
}

/// `ack_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckPolicy {
    None,
    All,
    #[default]
    Explicit,
}

/// `replay_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReplayPolicy {
    #[default]
    Instant,
    Original,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_false(b: &bool) -> bool {
    !*b
}

/// 30 s, nats-server's default `ack_wait`.
pub const DEFAULT_ACK_WAIT: i64 = 30_000_000_000;
/// nats-server's default `max_ack_pending`.
pub const DEFAULT_MAX_ACK_PENDING: i64 = 1000;
/// nats-server's default `max_waiting` for pull consumers.
pub const DEFAULT_MAX_WAITING: i64 = 512;
/// How long an ephemeral consumer without activity lives by default (5 s).
pub const DEFAULT_INACTIVE_THRESHOLD: i64 = 5_000_000_000;

/// A consumer's configuration, field for field as nats-server's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsumerConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durable_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub deliver_policy: DeliverPolicy,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub opt_start_seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opt_start_time: Option<String>,
    pub ack_policy: AckPolicy,
    pub ack_wait: i64,
    pub max_deliver: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backoff: Vec<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_subject: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filter_subjects: Vec<String>,
    pub replay_policy: ReplayPolicy,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_freq: Option<String>,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_waiting: i64,
    pub max_ack_pending: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub headers_only: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_batch: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_expires: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub max_bytes: i64,
    #[serde(skip_serializing_if = "is_zero")]
    pub inactive_threshold: i64,
    pub num_replicas: i64,
    #[serde(skip_serializing_if = "is_false")]
    pub mem_storage: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliver_group: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub flow_control: bool,
    #[serde(skip_serializing_if = "is_zero")]
    pub idle_heartbeat: i64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub rate_limit_bps: u64,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            durable_name: None,
            name: None,
            description: None,
            deliver_policy: DeliverPolicy::All,
            opt_start_seq: 0,
            opt_start_time: None,
            ack_policy: AckPolicy::Explicit,
            ack_wait: 0,
            max_deliver: 0,
            backoff: Vec::new(),
            filter_subject: None,
            filter_subjects: Vec::new(),
            replay_policy: ReplayPolicy::Instant,
            sample_freq: None,
            max_waiting: 0,
            max_ack_pending: 0,
            headers_only: false,
            max_batch: 0,
            max_expires: 0,
            max_bytes: 0,
            inactive_threshold: 0,
            num_replicas: 0,
            mem_storage: false,
            metadata: None,
            deliver_subject: None,
            deliver_group: None,
            flow_control: false,
            idle_heartbeat: 0,
            rate_limit_bps: 0,
        }
    }
}

impl ConsumerConfig {
    /// The filters (`filter_subject` and `filter_subjects` together); empty
    /// means every subject.
    pub fn filters(&self) -> Vec<String> {
        let mut f: Vec<String> = self.filter_subjects.clone();
        if let Some(s) = self.filter_subject.as_ref().filter(|s| !s.is_empty()) {
            f.push(s.clone());
        }
        f
    }

    /// Applies nats-server's defaults and checks against the stream
    /// (`setConsumerConfigDefaults`, `checkConsumerCfg`).
    pub fn normalise(&mut self, stream: &StreamConfig) -> Result<(), ApiError> {
        if self.name.as_deref() == Some("") {
            self.name = None;
        }
        if self.durable_name.as_deref() == Some("") {
            self.durable_name = None;
        }
        for n in [&self.name, &self.durable_name].into_iter().flatten() {
            if !is_valid_name(n) {
                return Err(err::invalid_consumer_name());
            }
        }
        if let (Some(n), Some(d)) = (&self.name, &self.durable_name)
            && n != d
        {
            return Err(err::consumer_config(
                "consumer name in request does not match durable name",
            ));
        }
        if self.deliver_subject.as_deref() == Some("") {
            self.deliver_subject = None;
        }
        if self.deliver_group.as_deref() == Some("") {
            self.deliver_group = None;
        }
        let push = self.deliver_subject.is_some();
        if let Some(d) = &self.deliver_subject
            && !crate::sublist::is_valid_literal_subject(d.as_bytes())
        {
            return Err(err::deliver_subject_wildcards());
        }
        if !push && (self.flow_control || self.idle_heartbeat > 0) {
            return Err(err::consumer_config(
                "consumer idle heartbeat and flow control require a push based consumer",
            ));
        }
        if self.flow_control && self.idle_heartbeat <= 0 {
            return Err(err::consumer_config(
                "consumer with flow control also needs heartbeats",
            ));
        }
        if self.ack_wait <= 0 {
            self.ack_wait = DEFAULT_ACK_WAIT;
        }
        if !self.backoff.is_empty() {
            if self.backoff.iter().any(|b| *b <= 0) {
                return Err(err::consumer_config(
                    "consumer backoff values must be positive",
                ));
            }
            if self.max_deliver > 0 && self.backoff.len() as i64 > self.max_deliver {
                return Err(err::consumer_config(
                    "max deliver is required to be > length of backoff values",
                ));
            }
            self.ack_wait = self.backoff[0];
        }
        if self.max_deliver == 0 || self.max_deliver < -1 {
            self.max_deliver = -1;
        }
        if self.max_ack_pending == 0 {
            self.max_ack_pending = if self.ack_policy == AckPolicy::None {
                -1
            } else {
                DEFAULT_MAX_ACK_PENDING
            };
        }
        if push {
            if self.max_waiting != 0 {
                return Err(err::push_max_waiting());
            }
        } else if self.max_waiting == 0 {
            self.max_waiting = DEFAULT_MAX_WAITING;
        } else if self.max_waiting < 0 {
            return Err(err::max_waiting_negative());
        }
        if self.num_replicas < 0 {
            self.num_replicas = 0;
        }
        if self.num_replicas > 1 {
            return Err(err::replicas_not_supported());
        }
        match self.deliver_policy {
            DeliverPolicy::ByStartSequence => {
                if self.opt_start_seq == 0 {
                    return Err(err::deliver_by_start_seq());
                }
                if self.opt_start_time.is_some() {
                    return Err(err::opt_start_not_allowed());
                }
            }
            DeliverPolicy::ByStartTime => {
                let Some(t) = &self.opt_start_time else {
                    return Err(err::deliver_by_start_time());
                };
                if super::api::parse_time(t).is_none() {
                    return Err(err::invalid_json("opt_start_time is not a valid time"));
                }
                if self.opt_start_seq != 0 {
                    return Err(err::opt_start_not_allowed());
                }
            }
            _ => {
                if self.opt_start_seq != 0 || self.opt_start_time.is_some() {
                    return Err(err::opt_start_not_allowed());
                }
            }
        }
        for f in self.filters() {
            if !crate::sublist::is_valid_subject(f.as_bytes()) {
                return Err(err::consumer_config(
                    "consumer filter subject is not a valid subset of the interest subjects",
                ));
            }
            if !stream
                .subjects
                .iter()
                .any(|s| super::stream::subjects_overlap(s, &f))
            {
                return Err(err::filter_not_in_stream());
            }
        }
        if stream.retention == Retention::Workqueue {
            if !push && self.ack_policy != AckPolicy::Explicit {
                return Err(err::workqueue_pull_ack());
            }
            if self.deliver_policy != DeliverPolicy::All {
                return Err(err::workqueue_deliver_all());
            }
        }
        Ok(())
    }
}

/// One delivered message awaiting its ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// The consumer sequence of its last delivery.
    pub cseq: u64,
    /// When it was last delivered (ns since the epoch).
    pub ts_ns: i64,
    /// How many times it has been delivered.
    pub deliveries: u64,
    /// When to redeliver it if no ack comes.
    pub deadline: Instant,
}

/// A waiting pull request (`CONSUMER.MSG.NEXT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// Where to send messages and status.
    pub reply: String,
    /// Messages still to send.
    pub batch: u64,
    /// Payload bytes still allowed (0 = no limit).
    pub max_bytes: u64,
    /// When it expires.
    pub expires: Option<Instant>,
    /// Answer at once with what is there.
    pub no_wait: bool,
    /// Idle heartbeat interval.
    pub heartbeat: Option<Duration>,
    /// When the next heartbeat is due.
    pub next_heartbeat: Option<Instant>,
    /// Whether any message was sent for it.
    pub delivered_any: bool,
}

/// The request body of `CONSUMER.MSG.NEXT`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NextRequest {
    pub batch: i64,
    pub expires: i64,
    pub no_wait: bool,
    pub max_bytes: i64,
    pub idle_heartbeat: i64,
}

/// A consumer at run time.
#[derive(Debug, Clone)]
pub struct Consumer {
    /// Its name.
    pub name: String,
    /// Its configuration.
    pub config: ConsumerConfig,
    /// Created (ns since the epoch).
    pub created_ns: i64,
    /// Filters, precomputed.
    pub filters: Vec<String>,
    /// The next stream sequence to look at for a first delivery.
    pub next_seq: u64,
    /// Consumer sequence of the last delivery.
    pub delivered_cseq: u64,
    /// Stream sequence of the last first delivery.
    pub delivered_sseq: u64,
    /// Awaiting ack, by stream sequence.
    pub pending: BTreeMap<u64, Pending>,
    /// Due for redelivery (stream sequences, also in `pending`).
    pub redeliver: BTreeSet<u64>,
    /// Messages redelivered at least once and still pending.
    pub num_redelivered: u64,
    /// Ack floor: highest consumer/stream sequence below which everything
    /// is acknowledged.
    pub ack_floor_cseq: u64,
    /// See `ack_floor_cseq`.
    pub ack_floor_sseq: u64,
    /// Waiting pull requests, oldest first.
    pub waiting: VecDeque<PullRequest>,
    /// Last activity (pull request or ack), for `inactive_threshold`.
    pub last_active: Instant,
    /// Whether it is ephemeral (deleted after `inactive_threshold`).
    pub ephemeral: bool,
    /// Whether its state changed since last persisted.
    pub dirty: bool,
    /// `last_per_subject`: the initial messages still to deliver.
    pub start_set: BTreeSet<u64>,
    /// `last_per_subject`: the last sequence at creation (new deliveries
    /// start after it once `start_set` is done; 0 when not in use).
    pub start_set_end: u64,
    /// Push: whether a subscription on exactly the deliver subject exists.
    pub interest: bool,
    /// Push: the flow-control request awaiting its reply (delivery pauses).
    pub fc_pending: Option<String>,
    /// Push: payload bytes delivered since the last flow-control request.
    pub fc_bytes: u64,
    /// Push: when the next idle heartbeat is due.
    pub next_heartbeat: Option<Instant>,
    /// Stream sequence of the last message delivered (heartbeat headers).
    pub last_delivered_sseq: u64,
}

/// What an ack message asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AckKind {
    /// `+ACK` (or empty).
    Ack,
    /// `-NAK`, with an optional delay.
    Nak(Option<Duration>),
    /// `+WPI`: still working.
    Progress,
    /// `+NXT`: ack and ask for more.
    Next,
    /// `+TERM`: never redeliver.
    Term,
}

impl AckKind {
    /// Reads an ack body.
    pub fn parse(body: &[u8]) -> Option<AckKind> {
        let text = std::str::from_utf8(body).ok()?.trim();
        if text.is_empty() || text == "+ACK" {
            return Some(AckKind::Ack);
        }
        if let Some(rest) = text.strip_prefix("-NAK") {
            let rest = rest.trim();
            if rest.is_empty() {
                return Some(AckKind::Nak(None));
            }
            #[derive(Deserialize)]
            struct Delay {
                delay: i64,
            }
            let d: Delay = serde_json::from_str(rest).ok()?;
            return Some(AckKind::Nak(
                (d.delay > 0).then(|| Duration::from_nanos(d.delay as u64)),
            ));
        }
        if text.starts_with("+WPI") {
            return Some(AckKind::Progress);
        }
        if text.starts_with("+NXT") {
            return Some(AckKind::Next);
        }
        if text.starts_with("+TERM") {
            return Some(AckKind::Term);
        }
        None
    }
}

impl Consumer {
    /// A new consumer whose first delivery starts at `start_seq`.
    pub fn new(
        name: String,
        config: ConsumerConfig,
        start_seq: u64,
        now: Instant,
        created_ns: i64,
    ) -> Consumer {
        let filters = config.filters();
        let ephemeral = config.durable_name.is_none();
        let floor = start_seq.saturating_sub(1);
        Consumer {
            name,
            config,
            created_ns,
            filters,
            next_seq: start_seq.max(1),
            delivered_cseq: 0,
            delivered_sseq: floor,
            pending: BTreeMap::new(),
            redeliver: BTreeSet::new(),
            num_redelivered: 0,
            ack_floor_cseq: 0,
            ack_floor_sseq: floor,
            waiting: VecDeque::new(),
            last_active: now,
            ephemeral,
            dirty: true,
            start_set: BTreeSet::new(),
            start_set_end: 0,
            interest: false,
            fc_pending: None,
            fc_bytes: 0,
            next_heartbeat: None,
            last_delivered_sseq: 0,
        }
    }

    /// Whether a subject passes the consumer's filters.
    pub fn wants(&self, subject: &str) -> bool {
        self.filters.is_empty()
            || self
                .filters
                .iter()
                .any(|f| crate::sublist::subject_matches(f.as_bytes(), subject.as_bytes()))
    }

    /// Whether it is a push consumer.
    pub fn is_push(&self) -> bool {
        self.config.deliver_subject.is_some()
    }

    /// The idle heartbeat interval, if any.
    pub fn heartbeat(&self) -> Option<Duration> {
        (self.config.idle_heartbeat > 0)
            .then(|| Duration::from_nanos(self.config.idle_heartbeat as u64))
    }

    /// Whether more messages may be delivered now (`max_ack_pending`).
    pub fn may_deliver(&self) -> bool {
        self.config.ack_policy == AckPolicy::None
            || self.config.max_ack_pending < 0
            || (self.pending.len() as i64) < self.config.max_ack_pending
    }

    /// How long to wait for the ack of delivery number `n` (1-based).
    pub fn ack_wait_for(&self, n: u64) -> Duration {
        let ns = if self.config.backoff.is_empty() {
            self.config.ack_wait
        } else {
            let i = (n as usize)
                .saturating_sub(1)
                .min(self.config.backoff.len() - 1);
            self.config.backoff[i]
        };
        Duration::from_nanos(ns.max(1) as u64)
    }

    /// Records a delivery of stream sequence `sseq`; returns the consumer
    /// sequence and the delivery count.
    pub fn record_delivery(&mut self, sseq: u64, now: Instant, now_ns: i64) -> (u64, u64) {
        self.delivered_cseq += 1;
        let cseq = self.delivered_cseq;
        self.dirty = true;
        let redelivery = self.redeliver.remove(&sseq);
        if !redelivery {
            self.delivered_sseq = self.delivered_sseq.max(sseq);
            self.next_seq = self.next_seq.max(sseq + 1);
        }
        if self.config.ack_policy == AckPolicy::None {
            self.ack_floor_cseq = cseq;
            self.ack_floor_sseq = self.ack_floor_sseq.max(sseq);
            return (cseq, 1);
        }
        let deliveries = self.pending.get(&sseq).map_or(0, |p| p.deliveries) + 1;
        if deliveries == 2 {
            self.num_redelivered += 1;
        }
        let deadline = now + self.ack_wait_for(deliveries);
        self.pending.insert(
            sseq,
            Pending {
                cseq,
                ts_ns: now_ns,
                deliveries,
                deadline,
            },
        );
        (cseq, deliveries)
    }

    /// Recomputes the ack floor after acks.
    fn update_floor(&mut self) {
        match self.pending.iter().next() {
            Some((&sseq, p)) => {
                self.ack_floor_sseq = sseq - 1;
                let lowest_cseq = self
                    .pending
                    .values()
                    .map(|p| p.cseq)
                    .min()
                    .unwrap_or(p.cseq);
                self.ack_floor_cseq = lowest_cseq - 1;
            }
            None => {
                self.ack_floor_sseq = self.delivered_sseq;
                self.ack_floor_cseq = self.delivered_cseq;
            }
        }
    }

    /// Applies an ack of stream sequence `sseq`. Returns the stream
    /// sequences now fully acknowledged by this consumer (for workqueue and
    /// interest retention), or `None` if the ack matched nothing pending.
    pub fn ack(&mut self, sseq: u64, kind: AckKind, now: Instant) -> Option<Vec<u64>> {
        self.last_active = now;
        match kind {
            AckKind::Ack | AckKind::Next | AckKind::Term => {
                let done: Vec<u64> = if self.config.ack_policy == AckPolicy::All {
                    self.pending.range(..=sseq).map(|(s, _)| *s).collect()
                } else if self.pending.contains_key(&sseq) {
                    vec![sseq]
                } else {
                    Vec::new()
                };
                if done.is_empty() {
                    return None;
                }
                for s in &done {
                    if let Some(p) = self.pending.remove(s)
                        && p.deliveries > 1
                    {
                        self.num_redelivered = self.num_redelivered.saturating_sub(1);
                    }
                    self.redeliver.remove(s);
                }
                self.update_floor();
                self.dirty = true;
                Some(done)
            }
            AckKind::Nak(delay) => {
                let p = self.pending.get_mut(&sseq)?;
                match delay {
                    Some(d) => p.deadline = now + d,
                    None => {
                        self.redeliver.insert(sseq);
                    }
                }
                Some(Vec::new())
            }
            AckKind::Progress => {
                let wait = self.ack_wait_for(self.pending.get(&sseq)?.deliveries);
                let p = self.pending.get_mut(&sseq)?;
                p.deadline = now + wait;
                Some(Vec::new())
            }
        }
    }

    /// Moves pending messages whose ack wait passed to the redelivery set.
    /// Returns the ones that reached `max_deliver` (dropped from pending).
    pub fn expire_pending(&mut self, now: Instant) -> Vec<(u64, u64)> {
        let mut exhausted = Vec::new();
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(s, p)| now >= p.deadline && !self.redeliver.contains(s))
            .map(|(s, _)| *s)
            .collect();
        for s in due {
            let Some(p) = self.pending.get(&s).copied() else {
                continue;
            };
            if self.config.max_deliver > 0 && p.deliveries >= self.config.max_deliver as u64 {
                self.pending.remove(&s);
                if p.deliveries > 1 {
                    self.num_redelivered = self.num_redelivered.saturating_sub(1);
                }
                exhausted.push((s, p.deliveries));
                self.dirty = true;
            } else {
                self.redeliver.insert(s);
            }
        }
        if !exhausted.is_empty() {
            self.update_floor();
        }
        exhausted
    }

    /// Whether stream sequence `sseq` is done for this consumer: delivered
    /// (or skipped as not matching) and not awaiting an ack.
    pub fn is_done_with(&self, sseq: u64) -> bool {
        sseq < self.next_seq && !self.pending.contains_key(&sseq)
    }

    /// The earliest time something of this consumer's is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        let p = self
            .pending
            .iter()
            .filter(|(s, _)| !self.redeliver.contains(s))
            .map(|(_, p)| p.deadline)
            .min();
        let w = self
            .waiting
            .iter()
            .flat_map(|r| [r.expires, r.next_heartbeat])
            .chain([self.next_heartbeat])
            .flatten()
            .min();
        match (p, w) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// The sequence a new consumer starts at.
pub fn start_sequence(
    config: &ConsumerConfig,
    first_seq: u64,
    last_seq: u64,
    last_matching: Option<u64>,
    by_time: Option<u64>,
) -> u64 {
    match config.deliver_policy {
        DeliverPolicy::All | DeliverPolicy::LastPerSubject => first_seq.max(1),
        DeliverPolicy::Last => last_matching.unwrap_or(last_seq + 1).max(1),
        DeliverPolicy::New => last_seq + 1,
        DeliverPolicy::ByStartSequence => config.opt_start_seq.max(1),
        DeliverPolicy::ByStartTime => by_time.unwrap_or(last_seq + 1).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(ack: AckPolicy) -> Consumer {
        let stream = StreamConfig {
            name: "S".into(),
            subjects: vec!["s.>".into()],
            ..Default::default()
        };
        let mut c = ConsumerConfig {
            durable_name: Some("C".into()),
            ack_policy: ack,
            max_deliver: 2,
            ..Default::default()
        };
        c.normalise(&stream).unwrap();
        Consumer::new("C".into(), c, 1, Instant::now(), 0)
    }

    #[test]
    fn defaults() {
        let c = consumer(AckPolicy::Explicit);
        assert_eq!(c.config.ack_wait, DEFAULT_ACK_WAIT);
        assert_eq!(c.config.max_ack_pending, 1000);
        assert_eq!(c.config.max_waiting, 512);
    }

    #[test]
    fn ack_floor_follows_acks() {
        let now = Instant::now();
        let mut c = consumer(AckPolicy::Explicit);
        for s in 1..=3 {
            c.record_delivery(s, now, 0);
        }
        assert_eq!(c.ack(2, AckKind::Ack, now), Some(vec![2]));
        assert_eq!((c.ack_floor_sseq, c.ack_floor_cseq), (0, 0));
        assert_eq!(c.ack(1, AckKind::Ack, now), Some(vec![1]));
        assert_eq!((c.ack_floor_sseq, c.ack_floor_cseq), (2, 2));
        assert_eq!(c.ack(1, AckKind::Ack, now), None);
        c.ack(3, AckKind::Ack, now);
        assert_eq!((c.ack_floor_sseq, c.ack_floor_cseq), (3, 3));
        assert!(c.is_done_with(3));
        assert!(!c.is_done_with(4));
    }

    #[test]
    fn ack_all_acks_below() {
        let now = Instant::now();
        let mut c = consumer(AckPolicy::All);
        for s in 1..=3 {
            c.record_delivery(s, now, 0);
        }
        assert_eq!(c.ack(2, AckKind::Ack, now), Some(vec![1, 2]));
        assert_eq!(c.pending.len(), 1);
    }

    #[test]
    fn redelivery_and_max_deliver() {
        let now = Instant::now();
        let mut c = consumer(AckPolicy::Explicit);
        c.record_delivery(1, now, 0);
        let later = now + Duration::from_secs(31);
        assert!(c.expire_pending(later).is_empty());
        assert!(c.redeliver.contains(&1));
        c.record_delivery(1, later, 0);
        assert_eq!(c.pending[&1].deliveries, 2);
        assert_eq!(c.num_redelivered, 1);
        let exhausted = c.expire_pending(later + Duration::from_secs(31));
        assert_eq!(exhausted, vec![(1, 2)]);
        assert!(c.pending.is_empty());
    }

    #[test]
    fn ack_bodies() {
        assert_eq!(AckKind::parse(b""), Some(AckKind::Ack));
        assert_eq!(AckKind::parse(b"+ACK"), Some(AckKind::Ack));
        assert_eq!(AckKind::parse(b"-NAK"), Some(AckKind::Nak(None)));
        assert_eq!(
            AckKind::parse(br#"-NAK {"delay": 1000000000}"#),
            Some(AckKind::Nak(Some(Duration::from_secs(1))))
        );
        assert_eq!(AckKind::parse(b"+WPI"), Some(AckKind::Progress));
        assert_eq!(AckKind::parse(b"+TERM reason"), Some(AckKind::Term));
        assert_eq!(AckKind::parse(b"+NXT {\"batch\":2}"), Some(AckKind::Next));
        assert_eq!(AckKind::parse(b"bogus"), None);
    }

    #[test]
    fn workqueue_rules() {
        let stream = StreamConfig {
            name: "S".into(),
            subjects: vec!["s.>".into()],
            retention: Retention::Workqueue,
            ..Default::default()
        };
        let mut c = ConsumerConfig {
            ack_policy: AckPolicy::None,
            ..Default::default()
        };
        assert_eq!(c.normalise(&stream).unwrap_err().err_code, 10084);
        let mut c = ConsumerConfig {
            deliver_policy: DeliverPolicy::New,
            ..Default::default()
        };
        assert_eq!(c.normalise(&stream).unwrap_err().err_code, 10101);
        let mut c = ConsumerConfig {
            deliver_policy: DeliverPolicy::ByStartSequence,
            ..Default::default()
        };
        assert_eq!(
            c.normalise(&StreamConfig {
                name: "S".into(),
                ..Default::default()
            })
            .unwrap_err()
            .err_code,
            10094
        );
    }
}
