//! Where file streams and consumers live on disk, and their recovery.
//! (Being written: filled in once the file store lands.)

use super::consumer::Consumer;
use super::store::{MessageStore, StoreError, SyncJob, SyncResult};
use super::stream::{Stream, StreamConfig};
use std::time::Instant;

/// A stream found on disk at start.
pub struct Recovered {
    /// The stream with its store.
    pub stream: Stream,
    /// Its consumers with their state.
    pub consumers: Vec<Consumer>,
}

/// The file-backed part of the engine.
pub struct Persistence {}

impl Persistence {
    pub fn open(_opts: &crate::config::JetStreamOptions) -> std::io::Result<Persistence> {
        Ok(Persistence {})
    }
    pub fn recover_all(&mut self, _now: Instant) -> Vec<Recovered> {
        Vec::new()
    }
    pub fn state_durable(&self, _stream: u64, _ticket: u64) -> bool {
        true
    }
    pub fn consumer_state_job(&mut self, _stream: &str, _c: &Consumer) -> Option<(u64, SyncJob)> {
        None
    }
    pub fn owns_job(&self, _id: u64) -> bool {
        false
    }
    pub fn job_done(&mut self, _id: u64, _result: SyncResult) {}
    pub fn ticket(&mut self, _stream: &str, _consumer: &str) -> Option<(u64, u64)> {
        None
    }
    pub fn create_stream(
        &mut self,
        _config: &StreamConfig,
        _created_ns: i64,
    ) -> Result<Box<dyn MessageStore>, StoreError> {
        Err(StoreError::Io("file storage is not ready".into()))
    }
    pub fn update_stream(&mut self, _config: &StreamConfig) -> Result<(), StoreError> {
        Ok(())
    }
    pub fn delete_stream(&mut self, _name: &str) {}
    pub fn save_consumer_config(&mut self, _stream: &str, _c: &Consumer) {}
    pub fn delete_consumer(&mut self, _stream: &str, _name: &str) {}
}
