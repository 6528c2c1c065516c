//! [`FileStore`]: storage `file`. A stream directory holds segment files
//! (`00000001.seg`, ...) of self-checking records ([`super::record`]) and
//! the metadata (`meta`, `meta.bak`: [`super::meta`]).
//!
//! In memory: the shared [`Index`] with a 12-byte location per message
//! (32-byte slots), and a bounded cache of recent record bytes. Appends,
//! tombstones and metadata writes are only buffered here, as the operations
//! of the next [`SyncJob`]; the storage thread performs them. Records not
//! yet written by a finished job stay in the cache (pinned), so loads never
//! read a file region that may still be in flight. Older messages are read
//! back with one bounded read of their record.
//!
//! Recovery ([`FileStore::open`]) reads every segment, verifies every
//! record, skips damaged bytes by scanning for the next valid record,
//! reports what it skipped ([`StoreState::lost`], `log::warn!`) and never
//! truncates or rewrites what it read: new records go to a new segment.
//! `last_seq` is the highest of the sequences found and the metadata's
//! high-water mark, which every job raises (by a reservation) before it
//! makes a sequence above it durable.

use super::fs::{FileSystem, RealFs};
use super::index::{Filter, Index, Slot};
use super::mem::purge_plan;
use super::meta::{self, StoreMeta};
use super::record::{self, Decoded, Record};
use super::worker::{Op, SyncJob, SyncResult};
use super::{LostData, MessageStore, StoreError, StoreState, StoredMsg, SubjectState};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// When the store syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every job syncs the files it wrote: `durable_seq` means on stable
    /// storage (the default; `sync_interval: always`).
    Always,
    /// Jobs write to the OS at once but sync at most once per interval
    /// (nats-server's default, 2 minutes). NOT durable: `durable_seq` then
    /// only means written to the OS; a power cut loses up to an interval.
    /// Sequences still never repeat (the high-water mark is synced).
    Interval(Duration),
}

/// Tuning of a file store.
#[derive(Debug, Clone)]
pub struct FileStoreConfig {
    /// A segment is closed and a new one begun past this size.
    pub segment_bytes: u64,
    /// Record bytes kept in memory for loads (recent messages).
    pub cache_bytes: usize,
    /// When to sync.
    pub sync: SyncPolicy,
    /// Sequences reserved ahead in the metadata's high-water mark.
    pub reserve: u64,
}

impl Default for FileStoreConfig {
    fn default() -> Self {
        FileStoreConfig {
            segment_bytes: 64 * 1024 * 1024,
            cache_bytes: 4 * 1024 * 1024,
            sync: SyncPolicy::Always,
            reserve: 4096,
        }
    }
}

/// Where a record lies.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Loc {
    seg: u32,
    off: u32,
    len: u32,
}

#[derive(Debug)]
struct Seg {
    path: PathBuf,
    /// Length including writes not yet handed over.
    len: u64,
    /// Messages of the index in it.
    live: u64,
    /// Whether any record was written to it (beyond its header).
    used: bool,
}

const META: &str = "meta";

fn seg_name(id: u32) -> String {
    format!("{id:08}.seg")
}

fn parse_seg_name(name: &str) -> Option<u32> {
    let n = name.strip_suffix(".seg")?;
    if n.len() != 8 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// A stream's message log in a directory.
#[derive(Debug)]
pub struct FileStore {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    cfg: FileStoreConfig,
    config: Vec<u8>,
    index: Index<Loc>,
    segs: BTreeMap<u32, Seg>,
    active: u32,
    /// Operations of the next job.
    ops: Vec<Op>,
    /// Recent records by sequence.
    cache: BTreeMap<u64, Vec<u8>>,
    cached: usize,
    /// Highest sequence in a finished job.
    written: u64,
    durable: u64,
    /// The high-water mark covered by metadata in handed-over jobs.
    hwm: u64,
    generation: u64,
    floor: u64,
    /// Files written since the last sync (lazy mode).
    dirty: Vec<PathBuf>,
    last_sync: Instant,
    token: u64,
    failed: Option<String>,
    lost: Option<LostData>,
    closed: bool,
}

/// What recovery found in the segments.
#[derive(Default)]
struct Scan {
    index: Index<Loc>,
    segs: BTreeMap<u32, Seg>,
    floor: u64,
    tombs: HashSet<u64>,
    candidates: Vec<u64>,
    lost_bytes: u64,
    last_msg: u64,
    damage_open: bool,
    /// Damage whose size is unknown (a missing or cut segment).
    unexplained: bool,
    /// Whether the segment being scanned ended with its seal.
    sealed: bool,
    /// Damaged single records: (kind, claimed sequence, length, file,
    /// offset).
    maybe_erased: Vec<(u8, u64, u64, PathBuf, usize)>,
    last_config: Option<Vec<u8>>,
}

const MAX_LOST_LISTED: usize = 100_000;

impl Scan {
    fn damage(&mut self, path: &Path, at: usize, len: usize) {
        log::warn!(
            "{}: {len} damaged bytes at offset {at} skipped",
            path.display()
        );
        self.lost_bytes += len as u64;
        self.damage_open = true;
        self.sealed = false;
    }

    fn missing(&mut self, what: String) {
        log::warn!("{what}; its messages are lost");
        self.damage_open = true;
        self.unexplained = true;
    }

    fn seen_seq(&mut self, seq: u64) {
        if self.damage_open {
            let from = self.last_msg + 1;
            let room = MAX_LOST_LISTED.saturating_sub(self.candidates.len()) as u64;
            self.candidates
                .extend((from..seq).take(room.min(seq.saturating_sub(from)) as usize));
            self.damage_open = false;
        }
        self.last_msg = self.last_msg.max(seq);
    }

    fn remove(&mut self, seq: u64) {
        if let Some(slot) = self.index.remove(seq)
            && let Some(s) = self.segs.get_mut(&slot.body.seg)
        {
            s.live = s.live.saturating_sub(1);
        }
    }

    /// Scans one segment: whether it ends with its seal, and where damage
    /// that runs to the end of the file begins (a write cut by a crash,
    /// usually).
    fn segment(&mut self, id: u32, path: &Path, data: &[u8]) -> (bool, Option<usize>) {
        self.sealed = false;
        let mut header_ok = false;
        let start = match record::parse_seg_header(data) {
            Some((start, cfg)) => {
                self.last_config = Some(cfg.to_vec());
                header_ok = true;
                start
            }
            None => {
                if data.is_empty() {
                    // Created but never written (a power cut): nothing lost.
                    data.len()
                } else {
                    let at = record::resync(data, record::SEG_MAGIC.len()).unwrap_or(data.len());
                    self.damage(path, 0, at);
                    at
                }
            }
        };
        self.segs.insert(
            id,
            Seg {
                path: path.to_path_buf(),
                len: data.len() as u64,
                live: 0,
                used: true,
            },
        );
        let mut pos = start;
        let mut tail = None;
        while pos < data.len() {
            match record::decode(&data[pos..]) {
                Decoded::Ok(rec, n) => {
                    self.apply(id, pos, n, rec, path);
                    pos += n;
                    if self.sealed {
                        // Whatever follows a seal is not part of the segment
                        // (the rest of a cut write, reported when sealed).
                        break;
                    }
                }
                Decoded::Short | Decoded::Bad => {
                    let next = record::resync(data, pos + 1).unwrap_or(data.len());
                    // Exactly one record whose framing still parses: maybe an
                    // erase cut by a crash (not a loss if the message was
                    // removed; decided once all tombstones are known).
                    if let Some((kind, seq, n)) = record::peek(&data[pos..])
                        && pos + n == next
                    {
                        self.maybe_erased
                            .push((kind, seq, n as u64, path.to_path_buf(), pos));
                        if next == data.len() && header_ok {
                            tail = Some(pos);
                        }
                        self.sealed = false;
                        pos = next;
                        continue;
                    }
                    self.damage(path, pos, next - pos);
                    if next == data.len() && header_ok {
                        tail = Some(pos);
                    }
                    pos = next;
                }
            }
        }
        (self.sealed, tail)
    }

    fn apply(&mut self, seg: u32, pos: usize, n: usize, rec: Record<'_>, path: &Path) {
        self.sealed = false;
        match rec {
            Record::Seal { seq } => self.sealed = seq == u64::from(seg),
            Record::Msg {
                seq,
                time,
                subject,
                headers,
                payload,
            } => {
                self.seen_seq(seq);
                if seq <= self.index.last_seq() {
                    log::warn!(
                        "{}: message {seq} at offset {pos} repeats a sequence; ignored",
                        path.display()
                    );
                    return;
                }
                let size = StoredMsg::stored_size(subject, headers, payload);
                let loc = Loc {
                    seg,
                    off: pos as u32,
                    len: n as u32,
                };
                if self.index.insert(seq, subject, loc, size as u32, time)
                    && let Some(s) = self.segs.get_mut(&seg)
                {
                    s.live += 1;
                }
            }
            Record::Erased { seq } => {
                self.seen_seq(seq);
                self.tombs.insert(seq);
                self.remove(seq);
                self.index.raise_last(seq);
            }
            Record::Delete { seq } => {
                self.tombs.insert(seq);
                self.remove(seq);
                self.index.raise_last(seq);
            }
            Record::Floor { seq } => {
                self.floor = self.floor.max(seq);
                while let Some(q) = self.index.first_live() {
                    if q >= seq {
                        break;
                    }
                    self.remove(q);
                }
                self.index.raise_last(seq - 1);
            }
        }
    }
}

impl FileStore {
    /// Opens the store in `dir` on the real file system, creating it if
    /// needed (see [`FileStore::open_with`]).
    pub fn open(dir: &Path, config: &[u8], cfg: FileStoreConfig) -> Result<FileStore, StoreError> {
        Self::open_with(Arc::new(RealFs::new()), dir, config, cfg)
    }

    /// Opens (recovers) or creates the store in `dir`. Blocking: reads every
    /// segment; meant for start-up and stream creation. Damage is reported
    /// in [`StoreState::lost`], never an error; an error means the
    /// directory cannot be read at all. `config` is the stream's config
    /// (stored in the metadata and in each new segment's header). Nothing
    /// is written here: the first [`MessageStore::take_sync`] job creates
    /// the new segment and writes the metadata.
    pub fn open_with(
        fs: Arc<dyn FileSystem>,
        dir: &Path,
        config: &[u8],
        mut cfg: FileStoreConfig,
    ) -> Result<FileStore, StoreError> {
        cfg.segment_bytes = cfg.segment_bytes.clamp(256, 1 << 31);
        let io = |e: std::io::Error| StoreError::Io(format!("{}: {e}", dir.display()));
        fs.create_dir_all(dir).map_err(io)?;
        let names = fs.list_dir(dir).map_err(io)?;
        let mut ids: Vec<u32> = names.iter().filter_map(|n| parse_seg_name(n)).collect();
        ids.sort_unstable();
        let (meta, meta_damaged) = meta::read_store_meta(fs.as_ref(), &dir.join(META));
        let mut scan = Scan::default();
        let (meta_first, meta_last) = meta.as_ref().map_or((0, 0), |m| (m.first_seg, m.last_seg));
        let mut expect = meta_first.max(1);
        let mut last_sealed = true;
        let mut last_tail = None;
        for (i, &id) in ids.iter().enumerate() {
            let path = dir.join(seg_name(id));
            // Ids are never skipped, and only leading segments are removed.
            if (meta.is_some() || i > 0) && id > expect {
                scan.missing(format!(
                    "{}: segments {expect} to {} are missing",
                    dir.display(),
                    id - 1
                ));
            }
            expect = id + 1;
            (last_sealed, last_tail) = match fs.read_all(&path) {
                Ok(data) => {
                    // Empty: its creation outran its header in a crash, unless
                    // the metadata (written after the header was synced)
                    // already names it.
                    if data.is_empty() && meta_last >= id {
                        scan.missing(format!("{}: empty", path.display()));
                    }
                    scan.segment(id, &path, &data)
                }
                Err(e) => {
                    scan.missing(format!("{}: unreadable ({e})", path.display()));
                    (true, None)
                }
            };
            if !last_sealed && i + 1 < ids.len() {
                scan.missing(format!("{}: ends before its seal", path.display()));
            }
        }
        if meta.is_some() && meta_last >= expect {
            scan.missing(format!(
                "{}: segments {expect} to {meta_last} are missing",
                dir.display()
            ));
        }
        let floor = scan.floor.max(meta.as_ref().map_or(0, |m| m.floor));
        let mut index = std::mem::take(&mut scan.index);
        while let Some(q) = index.first_live() {
            if q >= floor {
                break;
            }
            if let Some(slot) = index.remove(q)
                && let Some(s) = scan.segs.get_mut(&slot.body.seg)
            {
                s.live = s.live.saturating_sub(1);
            }
        }
        let hwm = meta.as_ref().map_or(0, |m| m.hwm);
        index.raise_last(hwm.max(floor.saturating_sub(1)));
        if let Some(m) = &meta
            && m.clean
            && m.hwm == index.last_seq()
        {
            index.set_last_ts(m.last_ts);
        }
        let tombs = std::mem::take(&mut scan.tombs);
        // Damaged records whose (unchecked) sequence is not stored: given a
        // tombstone once reported, so that the next start does not report
        // them again.
        let mut settle = Vec::new();
        for (kind, seq, n, path, at) in std::mem::take(&mut scan.maybe_erased) {
            // An erase writes the erased kind first: a torn one has it. (One
            // flipped bit cannot change both the kind and the sequence.)
            let erased_kind = matches!(kind, record::K_ERASED | record::K_ERASED_HDR);
            if erased_kind && (tombs.contains(&seq) || seq < floor) {
                log::info!(
                    "{}: offset {at}: an erase of removed message {seq} was cut short",
                    path.display()
                );
            } else {
                scan.damage(&path, at, n as usize);
                if seq <= index.last_seq() && index.get(seq).is_none() {
                    settle.push(seq);
                    scan.candidates.push(seq);
                }
            }
        }
        let mut lost_msgs: Vec<u64> = scan
            .candidates
            .iter()
            .copied()
            .filter(|q| *q >= floor && !tombs.contains(q))
            .collect();
        lost_msgs.sort_unstable();
        lost_msgs.dedup();
        let any = scan.lost_bytes > 0 || !lost_msgs.is_empty() || scan.unexplained;
        let lost = any.then_some(LostData {
            msgs: lost_msgs,
            bytes: scan.lost_bytes,
        });
        if let Some(l) = &lost {
            log::warn!(
                "{}: recovered with damage: {} bytes skipped, messages lost: {:?}",
                dir.display(),
                l.bytes,
                &l.msgs[..l.msgs.len().min(20)]
            );
        }
        if meta_damaged {
            log::warn!("{}: a metadata copy was damaged", dir.display());
        }
        let last = index.last_seq();
        let mut st = FileStore {
            fs,
            dir: dir.to_path_buf(),
            cfg,
            config: config.to_vec(),
            index,
            segs: scan.segs,
            active: 0,
            ops: Vec::new(),
            cache: BTreeMap::new(),
            cached: 0,
            written: last,
            durable: last,
            hwm,
            generation: meta.as_ref().map_or(0, |m| m.generation),
            floor,
            dirty: Vec::new(),
            last_sync: Instant::now(),
            token: 0,
            failed: None,
            lost,
            closed: false,
        };
        // The last segment of the previous run gets its seal, so that a
        // later cut of it is seen; new records go to a new segment. A
        // damaged tail (reported above) is sealed over where it begins, so
        // it is not reported again at every start.
        if let Some(&id) = ids.last()
            && !last_sealed
            && let Some(seg) = st.segs.get_mut(&id)
        {
            if let Some(at) = last_tail {
                seg.len = at as u64;
            }
            st.seal(id);
        }
        st.new_segment();
        for seq in settle {
            let mut rec = Vec::with_capacity(8);
            record::encode_delete(&mut rec, seq);
            st.write_record(&rec);
        }
        st.drop_front();
        Ok(st)
    }

    /// The config bytes last stored for the stream in `dir` (metadata, its
    /// backup, else the newest segment header): what to recreate a stream
    /// from after its metadata was damaged.
    pub fn recover_config(dir: &Path) -> Option<Vec<u8>> {
        Self::recover_config_with(&RealFs::new(), dir)
    }

    /// [`FileStore::recover_config`] on any file system.
    pub fn recover_config_with(fs: &dyn FileSystem, dir: &Path) -> Option<Vec<u8>> {
        if let (Some(m), _) = meta::read_store_meta(fs, &dir.join(META)) {
            return Some(m.config);
        }
        let mut ids: Vec<u32> = fs
            .list_dir(dir)
            .ok()?
            .iter()
            .filter_map(|n| parse_seg_name(n))
            .collect();
        ids.sort_unstable();
        for id in ids.into_iter().rev() {
            let path = dir.join(seg_name(id));
            let mut head = vec![0u8; 16];
            if fs.read_at(&path, 0, &mut head).ok() != Some(16) {
                continue;
            }
            let mut l = [0u8; 4];
            l.copy_from_slice(&head[8..12]);
            let len = u32::from_le_bytes(l) as usize;
            if len > 16 * 1024 * 1024 {
                continue;
            }
            let mut buf = vec![0u8; 16 + len];
            if fs.read_at(&path, 0, &mut buf).ok() != Some(buf.len()) {
                continue;
            }
            if let Some((_, cfg)) = record::parse_seg_header(&buf) {
                return Some(cfg.to_vec());
            }
        }
        None
    }

    /// The directory of the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of memory the index takes per sequence slot.
    pub fn index_bytes_per_slot() -> usize {
        std::mem::size_of::<Slot<Loc>>()
    }

    fn all_dirty(&mut self, mut sync: Vec<PathBuf>) -> Vec<PathBuf> {
        for p in self.dirty.drain(..) {
            if !sync.contains(&p) {
                sync.push(p);
            }
        }
        sync
    }

    /// Queues a metadata write with high-water mark `hwm` (never lowered,
    /// except to the exact last sequence by a clean close).
    fn push_meta(&mut self, hwm: u64, clean: bool) {
        self.generation += 1;
        self.hwm = if clean { hwm } else { self.hwm.max(hwm) };
        let m = StoreMeta {
            generation: self.generation,
            hwm: self.hwm,
            floor: self.floor,
            clean,
            first_seg: self.segs.keys().next().copied().unwrap_or(self.active),
            last_seg: self.active,
            last_ts: self.index.state().last_ts,
            config: self.config.clone(),
        };
        // Only the newest metadata write of a job matters.
        self.ops.retain(|op| {
            !matches!(op, Op::Atomic(p, _) if p.parent() == Some(&self.dir) && p.file_name().is_some_and(|n| n == META || n == "meta.bak"))
        });
        self.ops
            .extend(meta::atomic_ops(&self.dir.join(META), &m.encode()));
    }

    /// Appends the seal record to segment `id`.
    fn seal(&mut self, id: u32) {
        let Some(seg) = self.segs.get_mut(&id) else {
            return;
        };
        let mut rec = Vec::with_capacity(8);
        record::encode_seal(&mut rec, u64::from(id));
        let off = seg.len;
        seg.len += rec.len() as u64;
        let path = seg.path.clone();
        self.overwrite_or_append(&path, off, &rec);
    }

    /// Closes the active segment (if it has records) and begins a new one.
    fn new_segment(&mut self) {
        if self.segs.get(&self.active).is_some_and(|s| s.used) {
            self.seal(self.active);
        }
        let id = self.segs.keys().next_back().map_or(1, |&k| k + 1);
        let path = self.dir.join(seg_name(id));
        let header = record::encode_seg_header(&self.config);
        self.ops.push(Op::Create(path.clone()));
        self.ops.push(Op::WriteAt(path.clone(), 0, header.clone()));
        self.segs.insert(
            id,
            Seg {
                path,
                len: header.len() as u64,
                live: 0,
                used: false,
            },
        );
        self.active = id;
        self.push_meta(self.hwm.max(self.index.last_seq()), false);
    }

    /// Removes leading segments without messages (never the active one).
    /// Their tombstones go with them, so a floor record then says that
    /// everything below the first stored message is gone.
    fn drop_front(&mut self) {
        let mut dropped = Vec::new();
        while let Some((&id, s)) = self.segs.iter().next() {
            if id == self.active || s.live > 0 {
                break;
            }
            if let Some(s) = self.segs.remove(&id) {
                dropped.push(s.path);
            }
        }
        if dropped.is_empty() {
            return;
        }
        // The metadata (first segment) is replaced before the removals.
        self.push_meta(self.hwm.max(self.index.last_seq()), false);
        self.ops.extend(dropped.into_iter().map(Op::Remove));
        let first = self.index.first_live().unwrap_or(self.index.last_seq() + 1);
        if first > self.floor {
            self.floor = first;
            let mut rec = Vec::with_capacity(8);
            record::encode_floor(&mut rec, first);
            self.write_record(&rec);
        }
    }

    /// Appends record bytes to the active segment; where they went.
    fn write_record(&mut self, rec: &[u8]) -> Loc {
        let full = self
            .segs
            .get(&self.active)
            .is_none_or(|s| s.used && s.len + rec.len() as u64 > self.cfg.segment_bytes);
        if full {
            self.new_segment();
        }
        let active = self.active;
        let Some(seg) = self.segs.get_mut(&active) else {
            // new_segment just inserted it.
            return Loc::default();
        };
        let off = seg.len;
        seg.len += rec.len() as u64;
        seg.used = true;
        let path = seg.path.clone();
        self.overwrite_or_append(&path, off, rec);
        Loc {
            seg: active,
            // Segments are at most 2^31 bytes plus one record.
            off: off as u32,
            len: rec.len() as u32,
        }
    }

    fn evict(&mut self) {
        while self.cached > self.cfg.cache_bytes {
            let Some((&q, _)) = self.cache.iter().next() else {
                break;
            };
            if q > self.written {
                break; // pinned: not yet on the file
            }
            if let Some(v) = self.cache.remove(&q) {
                self.cached -= v.len();
            }
        }
    }

    fn uncache(&mut self, seq: u64) {
        if let Some(v) = self.cache.remove(&seq) {
            self.cached -= v.len();
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.closed {
            return Err(StoreError::Closed);
        }
        Ok(())
    }

    /// The record bytes of a stored message (cache, else one read).
    fn record_bytes(&self, seq: u64, loc: Loc) -> Result<Vec<u8>, String> {
        if let Some(v) = self.cache.get(&seq) {
            return Ok(v.clone());
        }
        let seg = self
            .segs
            .get(&loc.seg)
            .ok_or_else(|| "segment missing".to_string())?;
        let mut buf = vec![0u8; loc.len as usize];
        match self.fs.read_at(&seg.path, u64::from(loc.off), &mut buf) {
            Ok(n) if n == buf.len() => Ok(buf),
            Ok(n) => Err(format!("short read ({n} of {} bytes)", buf.len())),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Loads `seq`; damage removes it and reports it.
    fn read(&mut self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        let Some(slot) = self.index.get(seq) else {
            return Ok(None);
        };
        let loc = slot.body;
        let problem = match self.record_bytes(seq, loc) {
            Ok(buf) => match record::decode(&buf) {
                Decoded::Ok(
                    Record::Msg {
                        seq: s,
                        time,
                        subject,
                        headers,
                        payload,
                    },
                    n,
                ) if s == seq && n == buf.len() && subject == self.index.subject_of(slot) => {
                    return Ok(Some(StoredMsg {
                        seq,
                        time_ns: time,
                        subject: subject.to_string(),
                        headers: headers.to_vec(),
                        payload: payload.to_vec(),
                    }));
                }
                _ => "checksum or framing mismatch".to_string(),
            },
            Err(e) => e,
        };
        log::warn!(
            "{}: message {seq} is damaged on disk ({problem}); reported lost",
            self.dir.display()
        );
        let lost = self.lost.get_or_insert_with(LostData::default);
        lost.msgs.push(seq);
        lost.bytes += u64::from(loc.len);
        self.index.remove(seq);
        if let Some(s) = self.segs.get_mut(&loc.seg) {
            s.live = s.live.saturating_sub(1);
        }
        Err(StoreError::Corrupt(seq))
    }

    fn remove_one(&mut self, seq: u64, erase: bool) -> bool {
        let Some(slot) = self.index.get(seq) else {
            return false;
        };
        let loc = slot.body;
        let original = if erase {
            self.record_bytes(seq, loc).ok()
        } else {
            None
        };
        self.index.remove(seq);
        self.uncache(seq);
        if let Some(s) = self.segs.get_mut(&loc.seg) {
            s.live = s.live.saturating_sub(1);
        }
        let mut rec = Vec::with_capacity(8);
        record::encode_delete(&mut rec, seq);
        self.write_record(&rec);
        if let Some(er) = original.as_deref().and_then(record::erased)
            && let Some(path) = self.segs.get(&loc.seg).map(|s| s.path.clone())
        {
            self.overwrite(&path, u64::from(loc.off), &er);
        }
        true
    }

    /// Overwrites bytes of a segment, in a pending write if they are still
    /// buffered, else with a write of its own.
    fn overwrite(&mut self, path: &Path, off: u64, data: &[u8]) {
        for op in self.ops.iter_mut() {
            if let Op::WriteAt(p, o, buf) = op
                && p == path
                && *o <= off
                && off + data.len() as u64 <= *o + buf.len() as u64
            {
                let a = (off - *o) as usize;
                buf[a..a + data.len()].copy_from_slice(data);
                return;
            }
        }
        self.ops
            .push(Op::WriteAt(path.to_path_buf(), off, data.to_vec()));
    }

    /// Queues bytes at the end of a file: joined to the last write if it
    /// ends there.
    fn overwrite_or_append(&mut self, path: &Path, off: u64, rec: &[u8]) {
        match self.ops.last_mut() {
            Some(Op::WriteAt(p, o, buf)) if p == path && *o + buf.len() as u64 == off => {
                buf.extend_from_slice(rec);
            }
            _ => self
                .ops
                .push(Op::WriteAt(path.to_path_buf(), off, rec.to_vec())),
        }
    }

    /// After removals: a floor record if everything below `upto` is gone.
    fn after_removals(&mut self, floor: Option<u64>) {
        if let Some(f) = floor
            && f > self.floor
        {
            self.floor = f;
            if self.index.msgs() == 0 {
                // Start a fresh segment so that every old one can go.
                if self.segs.get(&self.active).is_some_and(|s| s.used) {
                    self.new_segment();
                }
            }
            let mut rec = Vec::with_capacity(8);
            record::encode_floor(&mut rec, f);
            self.write_record(&rec);
        }
        self.drop_front();
    }
}

impl MessageStore for FileStore {
    fn append(
        &mut self,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        time_ns: i64,
    ) -> Result<u64, StoreError> {
        self.check()?;
        if let Some(e) = &self.failed {
            return Err(StoreError::Io(e.clone()));
        }
        let seq = self.index.last_seq() + 1;
        let len = record::msg_len(seq, subject, headers, payload);
        if len > record::MAX_RECORD || subject.is_empty() || subject.len() > record::MAX_SUBJECT {
            return Err(StoreError::Io("message too large for a record".into()));
        }
        let mut rec = Vec::with_capacity(len);
        record::encode_msg(&mut rec, seq, time_ns, subject, headers, payload);
        let loc = self.write_record(&rec);
        let size = StoredMsg::stored_size(subject, headers, payload) as u32;
        if !self.index.insert(seq, subject, loc, size, time_ns) {
            return Err(StoreError::Io("sequence space exhausted".into()));
        }
        if let Some(s) = self.segs.get_mut(&loc.seg) {
            s.live += 1;
        }
        self.cached += rec.len();
        self.cache.insert(seq, rec);
        self.evict();
        Ok(seq)
    }

    fn load(&mut self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        self.check()?;
        self.read(seq)
    }

    fn load_next(
        &mut self,
        from: u64,
        filter: Option<&str>,
    ) -> Result<Option<StoredMsg>, StoreError> {
        self.check()?;
        let mut from = from;
        loop {
            let Some(q) = self.index.next_match(from, Filter::new(filter)) else {
                return Ok(None);
            };
            match self.read(q) {
                Err(StoreError::Corrupt(_)) => from = q + 1,
                r => return r,
            }
        }
    }

    fn load_last(&mut self, filter: &str) -> Result<Option<StoredMsg>, StoreError> {
        self.check()?;
        loop {
            let Some(q) = self.index.last_match(Filter::new(Some(filter))) else {
                return Ok(None);
            };
            match self.read(q) {
                Err(StoreError::Corrupt(_)) => continue,
                r => return r,
            }
        }
    }

    fn remove(&mut self, seq: u64, erase: bool) -> Result<bool, StoreError> {
        self.check()?;
        let r = self.remove_one(seq, erase);
        self.after_removals(None);
        Ok(r)
    }

    fn purge(
        &mut self,
        filter: Option<&str>,
        before_seq: Option<u64>,
        keep: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.check()?;
        let plan = purge_plan(&self.index, filter, before_seq, keep);
        let Some(&top) = plan.last() else {
            return Ok(0);
        };
        // A prefix of the whole stream: one floor record instead of
        // tombstones.
        let prefix = self.index.first_live() == plan.first().copied()
            && self.index.count_from(top + 1, Filter::All) + plan.len() as u64 == self.index.msgs();
        let n = plan.len() as u64;
        if prefix {
            for q in plan {
                if let Some(slot) = self.index.remove(q)
                    && let Some(s) = self.segs.get_mut(&slot.body.seg)
                {
                    s.live = s.live.saturating_sub(1);
                }
                self.uncache(q);
            }
            let floor = self.index.first_live().unwrap_or(self.index.last_seq() + 1);
            self.after_removals(Some(floor));
        } else {
            for q in plan {
                self.remove_one(q, false);
            }
            self.after_removals(None);
        }
        Ok(n)
    }

    fn compact(&mut self, seq: u64) -> Result<u64, StoreError> {
        self.check()?;
        let mut n = 0;
        while let Some(q) = self.index.first_live() {
            if q >= seq {
                break;
            }
            if let Some(slot) = self.index.remove(q)
                && let Some(s) = self.segs.get_mut(&slot.body.seg)
            {
                s.live = s.live.saturating_sub(1);
            }
            self.uncache(q);
            n += 1;
        }
        if seq > self.index.last_seq() + 1 {
            self.index.raise_last(seq - 1);
        }
        if seq > self.floor && seq > 1 {
            self.after_removals(Some(seq));
        }
        Ok(n)
    }

    fn state(&self) -> StoreState {
        let mut st = self.index.state();
        st.lost = self.lost.clone();
        st
    }

    fn subjects(&self, filter: &str) -> Vec<(String, SubjectState)> {
        self.index.subjects(Filter::new(Some(filter)))
    }

    fn subject_state(&self, subject: &str) -> Option<SubjectState> {
        self.index.subject_state(subject)
    }

    fn num_pending(&self, from: u64, filter: Option<&str>) -> u64 {
        self.index.count_from(from, Filter::new(filter))
    }

    fn durable_seq(&self) -> u64 {
        self.durable
    }

    fn take_sync(&mut self) -> Option<SyncJob> {
        if self.failed.is_some() || self.closed {
            return None;
        }
        let lazy_due = match self.cfg.sync {
            SyncPolicy::Always => false,
            SyncPolicy::Interval(d) => !self.dirty.is_empty() && self.last_sync.elapsed() >= d,
        };
        if self.ops.is_empty() && !lazy_due {
            return None;
        }
        let upto = self.index.last_seq();
        if upto > self.hwm {
            self.push_meta(upto + self.cfg.reserve, false);
        }
        let mut job = SyncJob::new(self.fs.clone());
        job.ops = std::mem::take(&mut self.ops);
        let mut written: Vec<PathBuf> = Vec::new();
        for op in &job.ops {
            if let Op::WriteAt(p, _, _) = op
                && !written.contains(p)
            {
                written.push(p.clone());
            }
        }
        match self.cfg.sync {
            SyncPolicy::Always => job.sync = written,
            SyncPolicy::Interval(_) => {
                for p in written {
                    if !self.dirty.contains(&p) {
                        self.dirty.push(p);
                    }
                }
                if lazy_due || self.last_sync.elapsed() >= self.interval() {
                    job.sync = self.all_dirty(Vec::new());
                    self.last_sync = Instant::now();
                }
            }
        }
        // Removed segments need no sync.
        job.sync
            .retain(|p| self.segs.values().any(|s| s.path == *p));
        self.token += 1;
        job.token = self.token;
        job.upto = upto;
        Some(job)
    }

    fn sync_done(&mut self, result: SyncResult) {
        match result.error {
            Some(e) => {
                log::error!(
                    "{}: storage failed, refusing further writes: {e}",
                    self.dir.display()
                );
                self.failed = Some(e);
            }
            None => {
                self.written = self.written.max(result.upto);
                self.durable = self.durable.max(result.upto);
                self.evict();
            }
        }
    }

    fn set_config(&mut self, config: &[u8]) {
        self.config = config.to_vec();
        self.push_meta(self.hwm.max(self.index.last_seq()), false);
    }

    fn close(&mut self) -> Result<(), StoreError> {
        if self.closed {
            return Ok(());
        }
        if self.failed.is_none() {
            self.push_meta(self.index.last_seq(), true);
            if let Some(mut job) = self.take_sync() {
                let sync = std::mem::take(&mut job.sync);
                job.sync = self.all_dirty(sync);
                let r = job.run();
                self.sync_done(r);
            }
        }
        self.closed = true;
        match &self.failed {
            Some(e) => Err(StoreError::Io(e.clone())),
            None => Ok(()),
        }
    }

    fn delete(&mut self) -> Result<(), StoreError> {
        self.closed = true;
        self.ops.clear();
        self.cache.clear();
        self.cached = 0;
        self.index = Index::new();
        let names = self
            .fs
            .list_dir(&self.dir)
            .map_err(|e| StoreError::Io(format!("{}: {e}", self.dir.display())))?;
        for n in names {
            let p = self.dir.join(&n);
            if let Err(e) = self.fs.remove(&p) {
                return Err(StoreError::Io(format!("{}: {e}", p.display())));
            }
        }
        self.fs
            .remove_dir(&self.dir)
            .map_err(|e| StoreError::Io(format!("{}: {e}", self.dir.display())))
    }
}

impl FileStore {
    fn interval(&self) -> Duration {
        match self.cfg.sync {
            SyncPolicy::Always => Duration::ZERO,
            SyncPolicy::Interval(d) => d,
        }
    }
}
