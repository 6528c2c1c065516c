//! The storage engine of JetStream streams: one message log per stream,
//! durable by default, honest about damage.
//!
//! This is the *contract* between the stream layer (`jetstream::stream`,
//! which knows retention, limits, de-duplication and the API) and the
//! storage (which knows files, records, checksums, recovery and syncing).
//! The stream layer only ever talks to a [`MessageStore`]; two
//! implementations exist: [`mem::MemStore`] (storage `memory`) and
//! [`file::FileStore`] (storage `file`, segment files through a
//! [`fs::FileSystem`] that tests replace with a simulated disk).
//!
//! Rules every implementation keeps:
//! - Sequences start at 1 and only grow; a sequence is never given to two
//!   different messages, also across restarts and damage (recovery restores
//!   `last_seq` from what is on disk and from the metadata's high-water
//!   mark, whichever is higher).
//! - A message appended is visible to `load*` at once. It is *durable* once
//!   [`MessageStore::durable_seq`] reaches its sequence. The event loop
//!   sends a PubAck only then.
//! - Nothing damaged is ever returned: a record that fails its checksum is
//!   reported (in [`StoreState::lost`] and the log), never loaded.
//! - No method blocks on the disk for a sync. Appends are buffered in
//!   memory; [`MessageStore::take_sync`] hands the buffered writes to the
//!   storage thread ([`worker`]) as one job; [`MessageStore::sync_done`]
//!   takes its result back. Reads of old messages may read the file
//!   (page cache; bounded per call) but never sync.
//!
//! Pure code: may use `crate::sublist` (subject matching) and nothing above.

pub mod file;
pub mod fs;
mod index;
pub mod mem;
pub mod meta;
pub mod record;
pub mod worker;

#[cfg(test)]
mod sim;

use std::fmt;

/// One stored message as the store returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMsg {
    /// Stream sequence.
    pub seq: u64,
    /// When it was stored: nanoseconds since the Unix epoch.
    pub time_ns: i64,
    /// The subject it was published to.
    pub subject: String,
    /// The header block as published (`NATS/1.0\r\n...\r\n\r\n`), or empty.
    pub headers: Vec<u8>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl StoredMsg {
    /// The size nats-server accounts for a message (subject + headers +
    /// payload + 16 bytes of framing): what `max_bytes` and `state.bytes`
    /// count.
    pub fn stored_size(subject: &str, headers: &[u8], payload: &[u8]) -> u64 {
        (subject.len() + headers.len() + payload.len() + 16) as u64
    }
}

/// Data found damaged at recovery or at a read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LostData {
    /// Sequences known to be lost (as far as they could be identified).
    pub msgs: Vec<u64>,
    /// Bytes of damaged records skipped.
    pub bytes: u64,
}

/// A stream's state as `STREAM.INFO` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreState {
    /// Messages stored.
    pub msgs: u64,
    /// Their accounted size ([`StoredMsg::stored_size`]).
    pub bytes: u64,
    /// First sequence still stored (`last_seq + 1` when empty).
    pub first_seq: u64,
    /// Time of the first message (0 when empty).
    pub first_ts: i64,
    /// Last sequence ever assigned.
    pub last_seq: u64,
    /// Time of the last message ever stored (kept when it is deleted).
    pub last_ts: i64,
    /// Sequences between first and last that are deleted.
    pub num_deleted: u64,
    /// Distinct subjects stored.
    pub num_subjects: u64,
    /// Damage found, if any.
    pub lost: Option<LostData>,
}

/// Per-subject state, for `subjects_filter`, `max_msgs_per_subject`,
/// `last_by_subj` and `deliver_policy: last_per_subject`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubjectState {
    /// Messages stored on the subject.
    pub msgs: u64,
    /// Its first stored sequence.
    pub first: u64,
    /// Its last stored sequence.
    pub last: u64,
}

/// What can go wrong in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The file system failed (the text says what and where).
    Io(String),
    /// A record failed its checksum when read; it has been added to
    /// [`StoreState::lost`].
    Corrupt(u64),
    /// The store is closed or was deleted.
    Closed,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(e) => write!(f, "storage I/O error: {e}"),
            StoreError::Corrupt(seq) => write!(f, "message {seq} is damaged"),
            StoreError::Closed => f.write_str("store closed"),
        }
    }
}

impl std::error::Error for StoreError {}

/// An opaque batch of writes and syncs for the storage thread, taken from a
/// store with [`MessageStore::take_sync`]. `worker` runs it.
pub use worker::SyncJob;
/// The outcome of a [`SyncJob`], given back with
/// [`MessageStore::sync_done`].
pub use worker::SyncResult;

/// The message log of one stream.
pub trait MessageStore {
    /// Appends a message under the next sequence and returns it. Visible to
    /// loads at once; durable once [`MessageStore::durable_seq`] reaches it.
    fn append(
        &mut self,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        time_ns: i64,
    ) -> Result<u64, StoreError>;

    /// The message with sequence `seq`, if stored (`Ok(None)` if it was
    /// never stored or was removed).
    fn load(&mut self, seq: u64) -> Result<Option<StoredMsg>, StoreError>;

    /// The first stored message with sequence `>= from` whose subject
    /// matches `filter` (a subject with wildcards; `None` matches all).
    fn load_next(
        &mut self,
        from: u64,
        filter: Option<&str>,
    ) -> Result<Option<StoredMsg>, StoreError>;

    /// The last stored message whose subject matches `filter` (wildcards
    /// allowed).
    fn load_last(&mut self, filter: &str) -> Result<Option<StoredMsg>, StoreError>;

    /// Removes one message. `erase` overwrites its bytes on disk too
    /// (`no_erase: false`). Returns whether it was stored.
    fn remove(&mut self, seq: u64, erase: bool) -> Result<bool, StoreError>;

    /// Purges messages: those matching `filter` (all if `None`), with a
    /// sequence below `before_seq` (if given), keeping the newest `keep` per
    /// filter (if given). Returns how many were removed. A full purge keeps
    /// `last_seq` and sets `first_seq = last_seq + 1`.
    fn purge(
        &mut self,
        filter: Option<&str>,
        before_seq: Option<u64>,
        keep: Option<u64>,
    ) -> Result<u64, StoreError>;

    /// Removes every message with a sequence below `seq` (limits and
    /// retention trimming from the front). Returns how many were removed.
    fn compact(&mut self, seq: u64) -> Result<u64, StoreError>;

    /// The state as `STREAM.INFO` shows it.
    fn state(&self) -> StoreState;

    /// Per-subject state of the subjects matching `filter` (wildcards
    /// allowed), in no particular order.
    fn subjects(&self, filter: &str) -> Vec<(String, SubjectState)>;

    /// The state of one literal subject, if any message is stored on it.
    fn subject_state(&self, subject: &str) -> Option<SubjectState>;

    /// How many stored messages with sequence `>= from` match `filter`
    /// (`None` = all): the pending count of a consumer.
    fn num_pending(&self, from: u64, filter: Option<&str>) -> u64;

    /// Every sequence up to this one is on stable storage (for memory
    /// storage: always `last_seq`).
    fn durable_seq(&self) -> u64;

    /// The buffered writes (and removals) not yet handed to the storage
    /// thread, as one job; `None` when there is nothing to sync.
    fn take_sync(&mut self) -> Option<SyncJob>;

    /// The storage thread finished a job of this store. An error makes the
    /// store refuse further appends (the stream reports it) rather than
    /// acknowledge data that may not be durable.
    fn sync_done(&mut self, result: SyncResult);

    /// Replaces the stream config bytes kept with the store (file storage:
    /// in the metadata, durable with the next job). Memory storage ignores
    /// it.
    fn set_config(&mut self, _config: &[u8]) {}

    /// Clean shutdown, blocking: writes what is buffered, syncs, and records
    /// the exact last sequence. Call once the storage thread has finished
    /// this store's jobs; the store is closed afterwards.
    fn close(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Deletes the store and everything it keeps on disk.
    fn delete(&mut self) -> Result<(), StoreError>;
}
