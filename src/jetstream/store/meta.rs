//! Checked, atomically replaced state files: the file store's metadata
//! (stream config bytes, the sequence high-water mark) and any state file
//! of the layers above (consumer state), through [`write_atomic_job`] and
//! [`read_checked`].
//!
//! A checked file is `NATRCHK1`, the body length (u32 LE), a CRC-32 of
//! those 12 bytes and the body, then the body. Each is written twice,
//! `<name>` and `<name>.bak`, each through a temp file, fdatasync, rename
//! and a sync of the directory; reading takes the first copy that passes
//! its check, so one damaged or missing copy loses nothing.

use super::StoreError;
use super::fs::FileSystem;
use super::worker::{Op, SyncJob};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"NATRCHK1";

/// Frames `body` with magic, length and checksum.
pub fn encode_checked(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&out);
    h.update(body);
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// The body of a checked file, if it passes its check.
pub fn decode_checked(buf: &[u8]) -> Option<&[u8]> {
    if buf.get(..8)? != MAGIC {
        return None;
    }
    let mut l = [0u8; 4];
    l.copy_from_slice(buf.get(8..12)?);
    let len = u32::from_le_bytes(l) as usize;
    let mut c = [0u8; 4];
    c.copy_from_slice(buf.get(12..16)?);
    let body = buf.get(16..)?;
    if body.len() != len {
        return None;
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&buf[..12]);
    h.update(body);
    (h.finalize() == u32::from_le_bytes(c)).then_some(body)
}

/// The backup copy's path.
pub fn backup_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".bak");
    PathBuf::from(s)
}

/// The two atomic writes of a checked file, for a job.
pub(crate) fn atomic_ops(path: &Path, body: &[u8]) -> [Op; 2] {
    let data = encode_checked(body);
    [
        Op::Atomic(path.to_path_buf(), data.clone()),
        Op::Atomic(backup_path(path), data),
    ]
}

/// A job that replaces the checked file `path` (and its backup) with
/// `body`, durably: run it on the storage thread
/// ([`super::worker::StorageWorker::submit`]) or inline ([`SyncJob::run`]).
pub fn write_atomic_job(fs: Arc<dyn FileSystem>, path: &Path, body: &[u8]) -> SyncJob {
    let mut job = SyncJob::new(fs);
    job.ops.extend(atomic_ops(path, body));
    job
}

/// Reads the checked file `path`: `Ok(None)` if neither copy exists, the
/// body of the first copy that passes its check, or an error if copies
/// exist but none passes (the caller reports the damage).
pub fn read_checked(fs: &dyn FileSystem, path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let mut seen = false;
    for p in [path.to_path_buf(), backup_path(path)] {
        if !fs.exists(&p) {
            continue;
        }
        seen = true;
        match fs.read_all(&p) {
            Ok(buf) => match decode_checked(&buf) {
                Some(body) => return Ok(Some(body.to_vec())),
                None => log::warn!("{}: damaged (checksum), trying its copy", p.display()),
            },
            Err(e) => log::warn!("{}: {e}", p.display()),
        }
    }
    if seen {
        Err(StoreError::Io(format!(
            "{}: every copy is damaged",
            path.display()
        )))
    } else {
        Ok(None)
    }
}

/// The file store's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StoreMeta {
    /// Increases with every write.
    pub generation: u64,
    /// No sequence above this was ever handed out (a reservation while
    /// running, exact after a clean close).
    pub hwm: u64,
    /// Every message below this was purged.
    pub floor: u64,
    /// Written by a clean close.
    pub clean: bool,
    /// The first segment that should exist.
    pub first_seg: u32,
    /// The last segment that exists.
    pub last_seg: u32,
    /// Time of the message with sequence `hwm` (meaningful when clean).
    pub last_ts: i64,
    /// The stream's config, as the caller gave it.
    pub config: Vec<u8>,
}

impl StoreMeta {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(32 + self.config.len());
        b.push(1); // version
        b.extend_from_slice(&self.generation.to_le_bytes());
        b.extend_from_slice(&self.hwm.to_le_bytes());
        b.extend_from_slice(&self.floor.to_le_bytes());
        b.push(u8::from(self.clean));
        b.extend_from_slice(&self.first_seg.to_le_bytes());
        b.extend_from_slice(&self.last_seg.to_le_bytes());
        b.extend_from_slice(&self.last_ts.to_le_bytes());
        b.extend_from_slice(&self.config);
        b
    }

    pub fn decode(b: &[u8]) -> Option<StoreMeta> {
        if *b.first()? != 1 {
            return None;
        }
        let u = |at: usize| -> Option<u64> {
            let mut x = [0u8; 8];
            x.copy_from_slice(b.get(at..at + 8)?);
            Some(u64::from_le_bytes(x))
        };
        let w = |at: usize| -> Option<u32> {
            let mut x = [0u8; 4];
            x.copy_from_slice(b.get(at..at + 4)?);
            Some(u32::from_le_bytes(x))
        };
        Some(StoreMeta {
            generation: u(1)?,
            hwm: u(9)?,
            floor: u(17)?,
            clean: *b.get(25)? == 1,
            first_seg: w(26)?,
            last_seg: w(30)?,
            last_ts: u(34)? as i64,
            config: b.get(42..)?.to_vec(),
        })
    }
}

/// Reads both copies of the store metadata and keeps the newest valid one.
pub(crate) fn read_store_meta(fs: &dyn FileSystem, path: &Path) -> (Option<StoreMeta>, bool) {
    let mut best: Option<StoreMeta> = None;
    let mut damaged = false;
    for p in [path.to_path_buf(), backup_path(path)] {
        if !fs.exists(&p) {
            continue;
        }
        let m = fs
            .read_all(&p)
            .ok()
            .and_then(|buf| decode_checked(&buf).and_then(StoreMeta::decode));
        match m {
            Some(m) => {
                if best.as_ref().is_none_or(|b| m.generation > b.generation) {
                    best = Some(m);
                }
            }
            None => {
                log::warn!("{}: damaged metadata copy ignored", p.display());
                damaged = true;
            }
        }
    }
    (best, damaged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jetstream::store::fs::SimFs;

    #[test]
    fn one_damaged_copy_loses_nothing() {
        let sim = SimFs::new(9);
        let fs: Arc<dyn FileSystem> = Arc::new(sim.clone());
        let d = Path::new("/c");
        fs.create_dir_all(d).unwrap();
        let p = d.join("state");
        assert_eq!(read_checked(fs.as_ref(), &p), Ok(None));
        assert!(write_atomic_job(fs.clone(), &p, b"acks:5").run().is_ok());
        sim.power_cut(false);
        assert_eq!(read_checked(fs.as_ref(), &p), Ok(Some(b"acks:5".to_vec())));
        sim.flip_bit(&p, 100);
        assert_eq!(read_checked(fs.as_ref(), &p), Ok(Some(b"acks:5".to_vec())));
        sim.flip_bit(&backup_path(&p), 3);
        assert!(read_checked(fs.as_ref(), &p).is_err());
        sim.delete_file(&p);
        sim.delete_file(&backup_path(&p));
        assert_eq!(read_checked(fs.as_ref(), &p), Ok(None));
    }

    #[test]
    fn meta_round_trip() {
        let m = StoreMeta {
            generation: 3,
            hwm: 99,
            floor: 4,
            clean: true,
            first_seg: 2,
            last_seg: 7,
            last_ts: -3,
            config: b"{}".to_vec(),
        };
        assert_eq!(StoreMeta::decode(&m.encode()), Some(m.clone()));
        for n in 0..42 {
            assert_eq!(StoreMeta::decode(&m.encode()[..n]), None);
        }
    }
}
