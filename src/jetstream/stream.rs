//! One stream: its configuration (as the API sends and echoes it, with
//! nats-server's defaults and checks), its message store, the
//! de-duplication window, and what a publish to it does (expected-header
//! checks, limits, discard policy, rollups).
//!
//! Pure: no sockets, no timers of its own (the engine passes `now`).

use super::api::{ApiError, err};
use super::headers;
use super::store::{MessageStore, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Two minutes, nats-server's default `duplicate_window`.
pub const DEFAULT_DUPLICATE_WINDOW: i64 = 120_000_000_000;

/// `retention`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Retention {
    #[default]
    Limits,
    Interest,
    Workqueue,
}

/// `discard`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Discard {
    #[default]
    Old,
    New,
}

/// `storage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    #[default]
    File,
    Memory,
}

/// `compression` (accepted; natrium does not compress).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    S2,
}

fn minus_one() -> i64 {
    -1
}
fn minus_one_i32() -> i32 {
    -1
}
fn is_false(b: &bool) -> bool {
    !*b
}

/// A stream's configuration, field for field as nats-server's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StreamConfig {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
    pub retention: Retention,
    #[serde(default = "minus_one")]
    pub max_consumers: i64,
    #[serde(default = "minus_one")]
    pub max_msgs: i64,
    #[serde(default = "minus_one")]
    pub max_bytes: i64,
    pub max_age: i64,
    #[serde(default = "minus_one")]
    pub max_msgs_per_subject: i64,
    #[serde(default = "minus_one_i32")]
    pub max_msg_size: i32,
    pub discard: Discard,
    pub storage: Storage,
    pub num_replicas: i64,
    pub duplicate_window: i64,
    pub compression: Compression,
    pub sealed: bool,
    pub deny_delete: bool,
    pub deny_purge: bool,
    pub allow_rollup_hdrs: bool,
    pub allow_direct: bool,
    pub mirror_direct: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub discard_new_per_subject: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub no_ack: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sources: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub republish: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_transform: Option<serde_json::Value>,
    pub consumer_limits: serde_json::Value,
    #[serde(skip_serializing_if = "is_false")]
    pub allow_msg_ttl: bool,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            name: String::new(),
            description: None,
            subjects: Vec::new(),
            retention: Retention::Limits,
            max_consumers: -1,
            max_msgs: -1,
            max_bytes: -1,
            max_age: 0,
            max_msgs_per_subject: -1,
            max_msg_size: -1,
            discard: Discard::Old,
            storage: Storage::File,
            num_replicas: 1,
            duplicate_window: 0,
            compression: Compression::None,
            sealed: false,
            deny_delete: false,
            deny_purge: false,
            allow_rollup_hdrs: false,
            allow_direct: false,
            mirror_direct: false,
            discard_new_per_subject: false,
            no_ack: false,
            metadata: None,
            placement: None,
            mirror: None,
            sources: None,
            republish: None,
            subject_transform: None,
            consumer_limits: serde_json::json!({}),
            allow_msg_ttl: false,
        }
    }
}

/// Whether a stream or consumer name is acceptable (no subject separators
/// or wildcards, no white space, not empty).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.bytes().any(|b| {
            matches!(
                b,
                b'.' | b'*' | b'>' | b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'\\'
            )
        })
}

impl StreamConfig {
    /// Applies nats-server's defaults and checks (`checkStreamCfg`).
    pub fn normalise(&mut self) -> Result<(), ApiError> {
        if self.name.is_empty() {
            return Err(err::bad_name());
        }
        if !is_valid_name(&self.name) {
            return Err(err::invalid_stream_name());
        }
        if self.num_replicas > 1 {
            return Err(err::replicas_not_supported());
        }
        if self.num_replicas <= 0 {
            self.num_replicas = 1;
        }
        if self.mirror.as_ref().is_some_and(|m| !m.is_null())
            || self
                .sources
                .as_ref()
                .is_some_and(|s| s.as_array().is_some_and(|a| !a.is_empty()))
        {
            return Err(err::stream_config(
                "stream mirrors and sources are not supported by natrium yet",
            ));
        }
        for v in [
            &mut self.max_msgs,
            &mut self.max_bytes,
            &mut self.max_msgs_per_subject,
            &mut self.max_consumers,
        ] {
            if *v <= 0 {
                *v = -1;
            }
        }
        if self.max_msg_size <= 0 {
            self.max_msg_size = -1;
        }
        if self.max_age < 0 {
            return Err(err::stream_config("max age needs to be >= 0"));
        }
        if self.duplicate_window < 0 {
            return Err(err::stream_config("duplicates window needs to be >= 0"));
        }
        if self.duplicate_window == 0 {
            self.duplicate_window = if self.max_age > 0 && self.max_age < DEFAULT_DUPLICATE_WINDOW {
                self.max_age
            } else {
                DEFAULT_DUPLICATE_WINDOW
            };
        } else if self.max_age > 0 && self.duplicate_window > self.max_age {
            return Err(err::stream_config(
                "duplicates window can not be larger then max age",
            ));
        }
        if self.subjects.is_empty() {
            self.subjects.push(self.name.clone());
        }
        for (i, s) in self.subjects.iter().enumerate() {
            if !crate::sublist::is_valid_subject(s.as_bytes()) {
                return Err(err::stream_config("invalid subject"));
            }
            for other in &self.subjects[..i] {
                if subjects_overlap(s, other) {
                    return Err(err::stream_config(&format!(
                        "subject {other:?} overlaps with {s:?}"
                    )));
                }
            }
        }
        if self.retention == Retention::Workqueue && self.discard == Discard::New {
            // Allowed by nats-server; nothing to normalise.
        }
        if self.discard_new_per_subject
            && (self.discard != Discard::New || self.max_msgs_per_subject <= 0)
        {
            return Err(err::stream_config(
                "discard new per subject requires discard new policy to be set",
            ));
        }
        Ok(())
    }

    /// Whether an update from `self` to `new` is allowed
    /// (nats-server's `checkStreamCfg` for updates).
    pub fn check_update(&self, new: &StreamConfig) -> Result<(), ApiError> {
        if self.storage != new.storage {
            return Err(err::stream_update(
                "stream configuration update can not change storage type",
            ));
        }
        if self.retention != new.retention {
            return Err(err::stream_update(
                "stream configuration update can not change retention policy",
            ));
        }
        if self.sealed && !new.sealed {
            return Err(err::stream_update(
                "stream configuration update can not unseal a sealed stream",
            ));
        }
        if self.deny_delete && !new.deny_delete {
            return Err(err::stream_update(
                "stream configuration update can not cancel deny message deletes",
            ));
        }
        if self.deny_purge && !new.deny_purge {
            return Err(err::stream_update(
                "stream configuration update can not cancel deny purge",
            ));
        }
        Ok(())
    }
}

/// Whether two subject filters can match a common subject.
pub fn subjects_overlap(a: &str, b: &str) -> bool {
    let mut x = a.split('.');
    let mut y = b.split('.');
    loop {
        match (x.next(), y.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(p), Some(q)) => {
                if p != q && p != "*" && q != "*" {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// What storing a publish came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// Stored under this sequence.
    New(u64),
    /// A duplicate of the message stored under this sequence.
    Duplicate(u64),
}

/// One stream at run time.
pub struct Stream {
    /// Its configuration.
    pub config: StreamConfig,
    /// When it was created (ns since the epoch).
    pub created_ns: i64,
    /// Its messages.
    pub store: Box<dyn MessageStore>,
    /// Msg-Id → sequence and time, within `duplicate_window`.
    dedupe: HashMap<String, (u64, i64)>,
    /// The same ids in arrival order, for expiry.
    dedupe_order: VecDeque<(i64, String)>,
    /// The last Nats-Msg-Id stored, for `Nats-Expected-Last-Msg-Id`.
    last_msg_id: Option<String>,
    /// Storage failed: appends are refused until restart.
    pub failed: Option<String>,
}

impl Stream {
    /// A stream over `store`.
    pub fn new(config: StreamConfig, store: Box<dyn MessageStore>, created_ns: i64) -> Stream {
        Stream {
            config,
            created_ns,
            store,
            dedupe: HashMap::new(),
            dedupe_order: VecDeque::new(),
            last_msg_id: None,
            failed: None,
        }
    }

    /// Rebuilds the de-duplication window from stored messages younger than
    /// the window (after a restart), as nats-server 2.15 does.
    pub fn rebuild_dedupe(&mut self, now_ns: i64) {
        // Newest first, stopping at the first message older than the
        // window: a long stream costs only what the window covers.
        let window_start = now_ns - self.config.duplicate_window;
        let state = self.store.state();
        let mut found = Vec::new();
        let mut seq = state.last_seq;
        while seq >= state.first_seq.max(1) {
            if let Ok(Some(m)) = self.store.load(seq) {
                if m.time_ns < window_start {
                    break;
                }
                if !m.headers.is_empty()
                    && let Some(id) = headers::get(&m.headers, "Nats-Msg-Id")
                {
                    found.push((id.to_string(), m.seq, m.time_ns));
                }
            }
            seq -= 1;
        }
        for (id, seq, t) in found.into_iter().rev() {
            self.remember_id(id, seq, t);
        }
    }

    fn remember_id(&mut self, id: String, seq: u64, time_ns: i64) {
        self.last_msg_id = Some(id.clone());
        self.dedupe.insert(id.clone(), (seq, time_ns));
        self.dedupe_order.push_back((time_ns, id));
    }

    /// Drops ids older than the window.
    pub fn expire_dedupe(&mut self, now_ns: i64) {
        let window_start = now_ns - self.config.duplicate_window;
        while let Some((t, _)) = self.dedupe_order.front() {
            if *t >= window_start {
                break;
            }
            if let Some((t, id)) = self.dedupe_order.pop_front()
                && self.dedupe.get(&id).is_some_and(|(_, at)| *at == t)
            {
                self.dedupe.remove(&id);
            }
        }
    }

    /// Stores a published message after the checks nats-server makes, in
    /// its order. `has_consumers` is for interest retention: without any
    /// consumer, the message is acknowledged but not kept.
    pub fn publish(
        &mut self,
        subject: &str,
        hdrs: &[u8],
        payload: &[u8],
        now_ns: i64,
        has_consumers: bool,
    ) -> Result<Stored, ApiError> {
        if let Some(e) = &self.failed {
            return Err(err::storage_failed(e));
        }
        if self.config.sealed {
            return Err(err::stream_sealed());
        }
        let size = hdrs.len() + payload.len();
        if self.config.max_msg_size >= 0 && size > self.config.max_msg_size as usize {
            return Err(err::message_too_big());
        }
        self.expire_dedupe(now_ns);
        let msg_id = headers::get(hdrs, "Nats-Msg-Id").filter(|s| !s.is_empty());
        if let Some(id) = msg_id
            && let Some(&(seq, _)) = self.dedupe.get(id)
        {
            return Ok(Stored::Duplicate(seq));
        }
        if let Some(expected) = headers::get(hdrs, "Nats-Expected-Stream")
            && expected != self.config.name
        {
            return Err(err::expected_stream());
        }
        let state = self.store.state();
        if let Some(v) = headers::get(hdrs, "Nats-Expected-Last-Sequence") {
            let want: u64 = v.trim().parse().map_err(|_| err::bad_request())?;
            if want != state.last_seq {
                return Err(err::wrong_last_sequence(state.last_seq));
            }
        }
        if let Some(v) = headers::get(hdrs, "Nats-Expected-Last-Subject-Sequence") {
            let want: u64 = v.trim().parse().map_err(|_| err::bad_request())?;
            let filter = headers::get(hdrs, "Nats-Expected-Last-Subject-Sequence-Subject")
                .unwrap_or(subject);
            let last = self
                .store
                .load_last(filter)
                .map_err(|e| store_error(&e))?
                .map_or(0, |m| m.seq);
            if want != last {
                return Err(err::wrong_last_sequence(last));
            }
        }
        if let Some(want) = headers::get(hdrs, "Nats-Expected-Last-Msg-Id") {
            let last = self.last_msg_id.as_deref().unwrap_or("");
            if want != last {
                return Err(err::wrong_last_msg_id(last));
            }
        }
        let rollup = headers::get(hdrs, "Nats-Rollup");
        if let Some(r) = rollup {
            if !self.config.allow_rollup_hdrs {
                return Err(err::rollup_not_permitted());
            }
            if r != "sub" && r != "all" {
                return Err(err::invalid_rollup(r));
            }
        }
        let msg_size = super::store::StoredMsg::stored_size(subject, hdrs, payload);
        if self.config.discard == Discard::New {
            if self.config.max_msgs > 0 && state.msgs >= self.config.max_msgs as u64 {
                return Err(err::max_messages());
            }
            if self.config.max_bytes > 0 && state.bytes + msg_size > self.config.max_bytes as u64 {
                return Err(err::max_bytes());
            }
            if self.config.discard_new_per_subject
                && self.config.max_msgs_per_subject > 0
                && self
                    .store
                    .subject_state(subject)
                    .is_some_and(|s| s.msgs >= self.config.max_msgs_per_subject as u64)
            {
                return Err(err::max_messages_per_subject());
            }
        }
        let seq = self
            .store
            .append(subject, hdrs, payload, now_ns)
            .map_err(|e| store_error(&e))?;
        if let Some(id) = msg_id {
            self.remember_id(id.to_string(), seq, now_ns);
        }
        match rollup {
            Some("sub") => {
                self.store
                    .purge(Some(subject), Some(seq), None)
                    .map_err(|e| store_error(&e))?;
            }
            Some("all") => {
                self.store.compact(seq).map_err(|e| store_error(&e))?;
            }
            _ => {}
        }
        if self.config.retention == Retention::Interest && !has_consumers {
            let _ = self.store.remove(seq, false);
        }
        self.enforce_limits(Some(subject))
            .map_err(|e| store_error(&e))?;
        Ok(Stored::New(seq))
    }

    /// Trims from the front what `max_msgs`, `max_bytes` and (for the
    /// subject just stored) `max_msgs_per_subject` no longer allow.
    pub fn enforce_limits(&mut self, subject: Option<&str>) -> Result<(), StoreError> {
        if let Some(subject) = subject
            && self.config.max_msgs_per_subject > 0
        {
            let max = self.config.max_msgs_per_subject as u64;
            if let Some(s) = self.store.subject_state(subject)
                && s.msgs > max
            {
                self.store.purge(Some(subject), None, Some(max))?;
            }
        }
        if self.config.discard == Discard::New {
            return Ok(());
        }
        let state = self.store.state();
        if self.config.max_msgs > 0 && state.msgs > self.config.max_msgs as u64 {
            let excess = state.msgs - self.config.max_msgs as u64;
            self.drop_oldest(excess)?;
        }
        if self.config.max_bytes > 0 {
            let max = self.config.max_bytes as u64;
            while self.store.state().bytes > max {
                if self.drop_oldest(1)? == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Removes the `n` oldest messages; returns how many went.
    fn drop_oldest(&mut self, n: u64) -> Result<u64, StoreError> {
        let mut removed = 0;
        while removed < n {
            let first = self.store.state().first_seq;
            match self.store.load_next(first, None)? {
                Some(m) => {
                    self.store.compact(m.seq + 1)?;
                    removed += 1;
                }
                None => break,
            }
        }
        Ok(removed)
    }

    /// Removes messages older than `max_age`.
    pub fn expire_age(&mut self, now_ns: i64) -> Result<(), StoreError> {
        if self.config.max_age <= 0 {
            return Ok(());
        }
        let cutoff = now_ns - self.config.max_age;
        loop {
            let first = self.store.state().first_seq;
            match self.store.load_next(first, None)? {
                Some(m) if m.time_ns < cutoff => {
                    self.store.compact(m.seq + 1)?;
                }
                _ => return Ok(()),
            }
        }
    }
}

/// A store error as the API reports it.
pub fn store_error(e: &StoreError) -> ApiError {
    err::storage_failed(&e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap() {
        assert!(subjects_overlap("a.*", "a.b"));
        assert!(subjects_overlap("a.>", "a.b.c"));
        assert!(subjects_overlap(">", "x"));
        assert!(!subjects_overlap("a.b", "a.c"));
        assert!(!subjects_overlap("a.b", "a.b.c"));
        assert!(subjects_overlap("a.*.c", "a.b.*"));
    }

    #[test]
    fn defaults_and_checks() {
        let mut c = StreamConfig {
            name: "S".into(),
            ..Default::default()
        };
        c.normalise().unwrap();
        assert_eq!(c.subjects, vec!["S".to_string()]);
        assert_eq!(c.duplicate_window, DEFAULT_DUPLICATE_WINDOW);
        let mut c = StreamConfig {
            name: "S".into(),
            subjects: vec!["a.*".into(), "a.b".into()],
            ..Default::default()
        };
        assert_eq!(
            c.normalise().unwrap_err().description,
            "subject \"a.*\" overlaps with \"a.b\""
        );
        let mut c = StreamConfig {
            name: "S".into(),
            num_replicas: 3,
            ..Default::default()
        };
        assert_eq!(c.normalise().unwrap_err().err_code, 10074);
        let mut c = StreamConfig {
            name: "S".into(),
            max_age: 1_000_000_000,
            duplicate_window: 2_000_000_000,
            ..Default::default()
        };
        assert_eq!(c.normalise().unwrap_err().err_code, 10052);
        let mut c: StreamConfig = serde_json::from_str(r#"{"name":"S","max_msgs":-5}"#).unwrap();
        c.normalise().unwrap();
        assert_eq!(c.max_msgs, -1);
        assert!(
            serde_json::from_str::<StreamConfig>(r#"{"name":"S","retention":"bogus"}"#).is_err()
        );
    }
}
