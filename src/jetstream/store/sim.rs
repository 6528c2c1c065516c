//! Deterministic simulation tests of the file store on [`SimFs`]: random
//! appends, removals, purges and syncs, jobs cut in flight, power cuts that
//! drop or tear unsynced writes, failing syncs, and damage to what was
//! synced (bit flips, zeroed ranges, cut and deleted files). After every
//! cut the store is recovered and checked:
//!
//! - recovery succeeds (no panic, no error);
//! - every recovered message is exactly a message that was appended under
//!   that sequence (nothing damaged is returned);
//! - every message durable at the cut (and not removed) is recovered,
//!   unless the simulator damaged segment bytes, and then the store reports
//!   a loss;
//! - a durable removal stays removed unless the simulator damaged
//!   something;
//! - new appends get sequences above every acknowledged one.
//!
//! `NATRIUM_SIM_SEEDS=n` runs more seeds (default 2000),
//! `NATRIUM_SIM_SEED=s` one seed (to replay a failure).
//!
//! Also: the file store against the model of `mem::tests` with clean
//! reopens, as a property test.

use super::file::{FileStore, FileStoreConfig, SyncPolicy};
use super::fs::{FileSystem, Rng, SimFs};
use super::mem::tests::{Model, op_strategy, run_against_model};
use super::record::{self, Decoded};
use super::worker::SyncJob;
use super::{MessageStore, StoreError, StoreState, StoredMsg, SubjectState, SyncResult};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

const CONFIG: &[u8] = b"{\"name\":\"S\",\"subjects\":[\">\"]}";
const SUBJECTS: &[&str] = &["a.b", "a.c", "b", "orders.new1"];

fn dir() -> PathBuf {
    PathBuf::from("/js/S")
}

/// A file store that runs its jobs after each change and now and then
/// closes and reopens cleanly: must behave exactly like the model.
struct Reopening {
    sim: SimFs,
    cfg: FileStoreConfig,
    store: FileStore,
    rng: Rng,
}

impl Reopening {
    fn new(seed: u64, cfg: FileStoreConfig) -> Reopening {
        let sim = SimFs::new(seed);
        let store =
            FileStore::open_with(Arc::new(sim.clone()), &dir(), CONFIG, cfg.clone()).expect("open");
        Reopening {
            sim,
            cfg,
            store,
            rng: Rng::new(seed),
        }
    }

    fn turn(&mut self) {
        if let Some(j) = self.store.take_sync() {
            let r = j.run();
            assert!(r.is_ok());
            self.store.sync_done(r);
        }
        assert_eq!(self.store.durable_seq(), self.store.state().last_seq);
        if self.rng.chance(1, 12) {
            self.store.close().expect("close");
            self.store =
                FileStore::open_with(Arc::new(self.sim.clone()), &dir(), CONFIG, self.cfg.clone())
                    .expect("reopen");
            assert_eq!(self.store.state().lost, None);
        }
    }
}

impl MessageStore for Reopening {
    fn append(&mut self, s: &str, h: &[u8], p: &[u8], t: i64) -> Result<u64, StoreError> {
        let r = self.store.append(s, h, p, t);
        self.turn();
        r
    }
    fn load(&mut self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        self.store.load(seq)
    }
    fn load_next(&mut self, f: u64, x: Option<&str>) -> Result<Option<StoredMsg>, StoreError> {
        self.store.load_next(f, x)
    }
    fn load_last(&mut self, f: &str) -> Result<Option<StoredMsg>, StoreError> {
        self.store.load_last(f)
    }
    fn remove(&mut self, seq: u64, erase: bool) -> Result<bool, StoreError> {
        let r = self.store.remove(seq, erase);
        self.turn();
        r
    }
    fn purge(
        &mut self,
        f: Option<&str>,
        b: Option<u64>,
        k: Option<u64>,
    ) -> Result<u64, StoreError> {
        let r = self.store.purge(f, b, k);
        self.turn();
        r
    }
    fn compact(&mut self, seq: u64) -> Result<u64, StoreError> {
        let r = self.store.compact(seq);
        self.turn();
        r
    }
    fn state(&self) -> StoreState {
        self.store.state()
    }
    fn subjects(&self, f: &str) -> Vec<(String, SubjectState)> {
        self.store.subjects(f)
    }
    fn subject_state(&self, s: &str) -> Option<SubjectState> {
        self.store.subject_state(s)
    }
    fn num_pending(&self, from: u64, f: Option<&str>) -> u64 {
        self.store.num_pending(from, f)
    }
    fn durable_seq(&self) -> u64 {
        self.store.durable_seq()
    }
    fn take_sync(&mut self) -> Option<SyncJob> {
        self.store.take_sync()
    }
    fn sync_done(&mut self, r: SyncResult) {
        self.store.sync_done(r)
    }
    fn delete(&mut self) -> Result<(), StoreError> {
        self.store.delete()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]
    #[test]
    fn filestore_matches_model(seed: u64, seg in 200u64..3000, cache in 0usize..800,
                               ops in proptest::collection::vec(op_strategy(), 1..120)) {
        let cfg = FileStoreConfig {
            segment_bytes: seg,
            cache_bytes: cache,
            sync: SyncPolicy::Always,
            reserve: 3,
        };
        let mut s = Reopening::new(seed, cfg);
        run_against_model(&mut s, &ops);
    }
}

/// Every message the store returns from 1 on.
fn all(store: &mut FileStore) -> Vec<StoredMsg> {
    let mut out = Vec::new();
    let mut from = 1;
    while let Some(m) = store.load_next(from, None).expect("load_next") {
        from = m.seq + 1;
        out.push(m);
    }
    out
}

/// Offsets at which records of a segment end (a cut there is clean).
fn record_ends(data: &[u8]) -> HashSet<usize> {
    let mut ends = HashSet::new();
    let Some((mut pos, _)) = record::parse_seg_header(data) else {
        return ends;
    };
    ends.insert(pos);
    while let Decoded::Ok(_, n) = record::decode(&data[pos..]) {
        pos += n;
        ends.insert(pos);
    }
    ends
}

fn seg_files(sim: &SimFs) -> Vec<(PathBuf, u64)> {
    sim.files()
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "seg"))
        .collect()
}

/// What a seed's run found, for the totals.
#[derive(Default, Debug)]
struct Tally {
    rounds: u64,
    damaged_rounds: u64,
    lost_reports: u64,
    recovered: u64,
}

/// Runs a job to its end; on success its removals are durable.
fn finish(
    store: &mut FileStore,
    job: SyncJob,
    removed: Vec<u64>,
    removed_durable: &mut HashSet<u64>,
    max_acked: &mut u64,
    created: &mut bool,
    appended: u64,
) -> bool {
    let r = job.run();
    let ok = r.is_ok();
    store.sync_done(r);
    if ok {
        *created = true;
        removed_durable.extend(removed);
        // The highest sequence appended since this store was opened (so
        // not a recovery's high-water-mark jump) and now durable.
        *max_acked = (*max_acked).max(store.durable_seq().min(appended));
    }
    ok
}

fn run_seed(seed: u64, tally: &mut Tally) {
    let verbose = std::env::var("NATRIUM_SIM_SEED").is_ok();
    macro_rules! say {
        ($($t:tt)*) => { if verbose { eprintln!($($t)*); } };
    }
    let sim = SimFs::new(seed);
    let fs: Arc<dyn FileSystem> = Arc::new(sim.clone());
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 7);
    let cfg = FileStoreConfig {
        segment_bytes: 150 + rng.below(1500),
        cache_bytes: rng.below(500) as usize,
        sync: SyncPolicy::Always,
        reserve: 1 + rng.below(30),
    };
    let d = dir();
    let open = |fs: &Arc<dyn FileSystem>| {
        FileStore::open_with(fs.clone(), &d, CONFIG, cfg.clone())
            .unwrap_or_else(|e| panic!("seed {seed}: recovery failed: {e}"))
    };
    let mut store = open(&fs);
    let mut ever: HashMap<u64, StoredMsg> = HashMap::new();
    let mut model = Model::default();
    let mut max_acked = 0u64;
    let mut removed_durable: HashSet<u64> = HashSet::new();
    let mut damaged_ever = false;
    let mut meta_intact = true;
    // Whether any job finished (before that, a cut may leave nothing).
    let mut created = false;
    let mut t = 1_000_000i64;
    let rounds = 2 + rng.below(4);
    for round in 0..rounds {
        tally.rounds += 1;
        let ctx = format!("seed {seed} round {round}");
        let mut pending_removed: Vec<u64> = Vec::new();
        let mut inflight: Vec<(SyncJob, Vec<u64>)> = Vec::new();
        let mut failed = false;
        let mut first_append = true;
        let mut appended = 0u64;
        for _ in 0..(5 + rng.below(45)) {
            match rng.below(100) {
                0..=49 => {
                    t += 1 + rng.below(1000) as i64;
                    let subj = SUBJECTS[rng.below(SUBJECTS.len() as u64) as usize];
                    let hdr: &[u8] = if rng.chance(1, 4) {
                        b"NATS/1.0\r\nX: y\r\n\r\n"
                    } else {
                        b""
                    };
                    let len = rng.below(48) as usize;
                    let payload: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                    match store.append(subj, hdr, &payload, t) {
                        Ok(seq) => {
                            assert!(!failed, "{ctx}: append accepted after a failed sync");
                            if first_append && meta_intact {
                                assert!(
                                    seq > max_acked,
                                    "{ctx}: sequence {seq} reused (acked up to {max_acked})"
                                );
                            }
                            first_append = false;
                            appended = seq;
                            assert_eq!(model.append(subj, hdr, &payload, t), seq, "{ctx}");
                            ever.insert(
                                seq,
                                StoredMsg {
                                    seq,
                                    time_ns: t,
                                    subject: subj.into(),
                                    headers: hdr.to_vec(),
                                    payload,
                                },
                            );
                        }
                        Err(_) => assert!(failed, "{ctx}: append refused"),
                    }
                }
                50..=59 => {
                    let seq = match model.msgs.len() {
                        0 => rng.below(5),
                        n => model.msgs[rng.below(n as u64) as usize].seq,
                    };
                    let r = store.remove(seq, rng.chance(1, 3)).expect("remove");
                    assert_eq!(r, model.remove(seq), "{ctx}: remove {seq}");
                    if r {
                        pending_removed.push(seq);
                    }
                }
                60..=63 => {
                    let f = [None, Some("a.*"), Some("b"), Some(">")][rng.below(4) as usize];
                    let keep = rng.chance(1, 2).then(|| rng.below(4));
                    let before = (keep.is_none() && rng.chance(1, 2))
                        .then(|| model.last_seq.saturating_sub(rng.below(6)));
                    let was: HashSet<u64> = model.msgs.iter().map(|m| m.seq).collect();
                    let n = store.purge(f, before, keep).expect("purge");
                    assert_eq!(n, model.purge(f, before, keep), "{ctx}: purge");
                    let now: HashSet<u64> = model.msgs.iter().map(|m| m.seq).collect();
                    pending_removed.extend(was.difference(&now));
                }
                64..=65 => {
                    let first = model.msgs.first().map_or(model.last_seq + 1, |m| m.seq);
                    let seq = first + rng.below(4);
                    let was: HashSet<u64> = model.msgs.iter().map(|m| m.seq).collect();
                    assert_eq!(store.compact(seq).expect("compact"), model.compact(seq));
                    let now: HashSet<u64> = model.msgs.iter().map(|m| m.seq).collect();
                    pending_removed.extend(was.difference(&now));
                }
                66..=89 => {
                    if let Some(job) = store.take_sync() {
                        inflight.push((job, std::mem::take(&mut pending_removed)));
                    }
                    while inflight.len() > usize::from(rng.chance(1, 3)) {
                        let (job, removed) = inflight.remove(0);
                        finish(
                            &mut store,
                            job,
                            removed,
                            &mut removed_durable,
                            &mut max_acked,
                            &mut created,
                            appended,
                        );
                    }
                }
                90..=91 => {
                    // A failing disk: the store must stop accepting.
                    if let Some(job) = store.take_sync() {
                        inflight.push((job, std::mem::take(&mut pending_removed)));
                    }
                    sim.set_failing(true);
                    let durable = store.durable_seq();
                    for (job, removed) in inflight.drain(..) {
                        let ok = finish(
                            &mut store,
                            job,
                            removed,
                            &mut removed_durable,
                            &mut max_acked,
                            &mut created,
                            appended,
                        );
                        failed |= !ok;
                    }
                    sim.set_failing(false);
                    if failed {
                        assert_eq!(store.durable_seq(), durable, "{ctx}");
                        assert!(store.append("a.b", b"", b"x", t).is_err(), "{ctx}");
                        assert!(store.take_sync().is_none());
                    }
                }
                _ => {
                    let seq = rng.below(model.last_seq + 2);
                    assert_eq!(store.load(seq).expect("load"), model.load(seq), "{ctx}");
                    let f = ["a.*", "b", ">", "orders.*"][rng.below(4) as usize];
                    assert_eq!(
                        store.load_last(f).expect("load_last"),
                        model.last(f),
                        "{ctx}"
                    );
                    assert_eq!(store.num_pending(seq, Some(f)), model.pending(seq, Some(f)));
                }
            }
            let mut st = store.state();
            st.lost = None;
            assert_eq!(st, model.state(), "{ctx}");
        }
        // The cut: jobs in flight got some of their writes out.
        let durable_at_cut = store.durable_seq();
        // (The storage thread runs jobs in order: a prefix of them.)
        let mut torn = false;
        for (job, _) in inflight.drain(..) {
            if !rng.chance(1, 2) {
                break;
            }
            job.apply_writes_only();
            torn = true;
        }
        drop(store);
        let tear = rng.chance(1, 2);
        torn |= tear;
        sim.power_cut(tear);
        // Damage to what was synced.
        let mut seg_damage = false;
        let mut meta_damage = false;
        let mut silent_cut = false;
        for _ in 0..rng.below(3) {
            if !rng.chance(1, 3) {
                continue;
            }
            let segs = seg_files(&sim);
            let metas: Vec<PathBuf> = sim
                .files()
                .into_iter()
                .map(|(p, _)| p)
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n == "meta" || n == "meta.bak")
                })
                .collect();
            let kind = rng.below(5);
            say!("damage kind {kind}");
            if kind == 4 {
                if let Some(p) = metas.get(rng.below(metas.len() as u64) as usize) {
                    if rng.chance(1, 2) {
                        sim.delete_file(p);
                    } else {
                        let len = fs.len(p).unwrap_or(0);
                        sim.flip_bit(p, rng.below(len * 8));
                    }
                    meta_damage = true;
                }
                continue;
            }
            let Some((p, len)) = segs.get(rng.below(segs.len() as u64) as usize).cloned() else {
                continue;
            };
            if len == 0 {
                continue;
            }
            seg_damage = true;
            match kind {
                0 => {
                    sim.flip_bit(&p, rng.below(len * 8));
                }
                1 => {
                    let at = rng.below(len);
                    sim.zero_range(&p, at, 1 + rng.below(300));
                }
                2 => {
                    let at = rng.below(len);
                    let data = fs.read_all(&p).unwrap_or_default();
                    let last = segs.last().map(|(q, _)| q == &p).unwrap_or(false);
                    if last && record_ends(&data).contains(&(at as usize)) {
                        silent_cut = true;
                    }
                    sim.cut(&p, at);
                }
                _ => {
                    sim.delete_file(&p);
                }
            }
        }
        say!(
            "cut: durable {durable_at_cut} torn {torn} seg_damage {seg_damage} meta_damage {meta_damage} files {:?}",
            sim.files()
        );
        if seg_damage || meta_damage {
            tally.damaged_rounds += 1;
            damaged_ever = true;
        }
        if meta_damage {
            meta_intact = false;
        }
        if seg_damage && !meta_intact {
            // Both the high-water mark and the data: sequences may repeat.
            max_acked = 0;
        }
        // Recovery.
        store = open(&fs);
        let st = store.state();
        say!("recovered: {st:?}");
        if st.lost.is_some() {
            tally.lost_reports += 1;
        }
        let got = all(&mut store);
        tally.recovered += got.len() as u64;
        assert_eq!(st.msgs, got.len() as u64, "{ctx}: state counts what loads");
        let got_seqs: HashSet<u64> = got.iter().map(|m| m.seq).collect();
        for m in &got {
            assert_eq!(
                Some(m),
                ever.get(&m.seq),
                "{ctx}: recovered a wrong message"
            );
        }
        for m in &model.msgs {
            if m.seq <= durable_at_cut && !got_seqs.contains(&m.seq) {
                assert!(
                    (seg_damage && st.lost.is_some()) || silent_cut,
                    "{ctx}: durable message {} lost without damage report ({:?})",
                    m.seq,
                    st.lost
                );
            }
        }
        if !damaged_ever {
            for q in &removed_durable {
                assert!(!got_seqs.contains(q), "{ctx}: removed message {q} is back");
            }
            if !torn {
                assert_eq!(st.lost, None, "{ctx}: loss reported without damage");
            }
        }
        if created && !(seg_damage && meta_damage) {
            assert!(
                FileStore::recover_config_with(fs.as_ref(), &d).is_some(),
                "{ctx}: config lost"
            );
        }
        assert!(st.last_seq >= got.last().map_or(0, |m| m.seq));
        // The model continues from what was recovered.
        model = Model {
            msgs: got,
            last_seq: st.last_seq,
            last_ts: st.last_ts,
        };
        // Recovery must have been complete and consistent.
        let mut st2 = store.state();
        st2.lost = None;
        assert_eq!(st2, model.state(), "{ctx}: recovered state");
        // A store reopened without a sync keeps a missing metadata file
        // missing; only a finished job restores it.
        if let Some(job) = store.take_sync()
            && finish(
                &mut store,
                job,
                Vec::new(),
                &mut removed_durable,
                &mut max_acked,
                &mut created,
                0,
            )
        {
            meta_intact = true;
        }
    }
}

fn seeds() -> Box<dyn Iterator<Item = u64>> {
    if let Some(s) = std::env::var("NATRIUM_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return Box::new(std::iter::once(s));
    }
    let n = std::env::var("NATRIUM_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000u64);
    Box::new(0..n)
}

#[test]
fn simulated_power_cuts_and_damage() {
    let mut tally = Tally::default();
    for seed in seeds() {
        run_seed(seed, &mut tally);
    }
    // The simulation must actually exercise damage and recovery.
    assert!(tally.rounds > 0);
    eprintln!("simulation: {tally:?}");
}

#[test]
fn lazy_mode_writes_without_syncing() {
    let sim = SimFs::new(1);
    let fs: Arc<dyn FileSystem> = Arc::new(sim.clone());
    let cfg = FileStoreConfig {
        sync: SyncPolicy::Interval(std::time::Duration::from_secs(3600)),
        ..FileStoreConfig::default()
    };
    let mut s = FileStore::open_with(fs.clone(), &dir(), CONFIG, cfg.clone()).unwrap();
    let j = s.take_sync().unwrap();
    let r = j.run();
    s.sync_done(r);
    let before = sim.syncs();
    for i in 0..10 {
        s.append("a", b"", &[i], i64::from(i)).unwrap();
    }
    let j = s.take_sync().unwrap();
    assert!(j.sync.is_empty(), "no fdatasync inside the interval");
    let r = j.run();
    s.sync_done(r);
    assert_eq!(s.durable_seq(), 10, "written to the OS");
    // The reservation of the high-water mark was synced.
    assert!(sim.syncs() > before);
    sim.power_cut(false);
    let mut s = FileStore::open_with(fs, &dir(), CONFIG, cfg).unwrap();
    assert_eq!(all(&mut s).len(), 0, "unsynced data is gone in lazy mode");
    assert!(
        s.append("a", b"", b"x", 1).unwrap() > 10,
        "but no sequence repeats"
    );
}

#[test]
fn cache_bound_and_cold_reads() {
    let sim = SimFs::new(2);
    let fs: Arc<dyn FileSystem> = Arc::new(sim.clone());
    let cfg = FileStoreConfig {
        cache_bytes: 1000,
        segment_bytes: 4096,
        ..FileStoreConfig::default()
    };
    let mut s = FileStore::open_with(fs.clone(), &dir(), CONFIG, cfg).unwrap();
    for i in 0..500u32 {
        s.append("orders.new1", b"", &i.to_le_bytes(), i64::from(i))
            .unwrap();
        if i % 50 == 0 {
            let j = s.take_sync().unwrap();
            let r = j.run();
            s.sync_done(r);
        }
    }
    let j = s.take_sync().unwrap();
    let r = j.run();
    s.sync_done(r);
    for i in 0..500u64 {
        let m = s.load(i + 1).unwrap().unwrap();
        assert_eq!(m.payload, (i as u32).to_le_bytes());
    }
    // A damaged record read cold is reported, never returned.
    let (p, _) = seg_files(&sim)[0].clone();
    sim.flip_bit(&p, 8 * 200);
    let mut bad = 0;
    for q in 1..=500 {
        match s.load(q) {
            Err(StoreError::Corrupt(x)) => {
                assert_eq!(x, q);
                bad += 1;
            }
            Ok(Some(m)) => assert_eq!(m.seq, q),
            r => panic!("{r:?}"),
        }
    }
    assert_eq!(bad, 1);
    assert_eq!(s.state().msgs, 499);
    assert_eq!(s.state().lost.unwrap().msgs.len(), 1);
}

#[test]
fn damaged_middle_keeps_what_follows() {
    let sim = SimFs::new(3);
    let fs: Arc<dyn FileSystem> = Arc::new(sim.clone());
    let cfg = FileStoreConfig::default();
    let mut s = FileStore::open_with(fs.clone(), &dir(), CONFIG, cfg.clone()).unwrap();
    for i in 0..200u32 {
        s.append("a.b", b"", &[7u8; 16], i64::from(i)).unwrap();
    }
    let j = s.take_sync().unwrap();
    let r = j.run();
    s.sync_done(r);
    let (p, _) = seg_files(&sim)[0].clone();
    // Zero 1 KiB in the middle.
    sim.zero_range(&p, 2000, 1024);
    let mut s = FileStore::open_with(fs.clone(), &dir(), CONFIG, cfg.clone()).unwrap();
    let st = s.state();
    let lost = st.lost.clone().unwrap();
    let got = all(&mut s);
    assert_eq!(got.len() as u64 + lost.msgs.len() as u64, 200);
    assert!(lost.msgs.len() <= 32, "{lost:?}");
    assert_eq!(
        got.last().unwrap().seq,
        200,
        "records after the damage are kept"
    );
    assert!(st.last_seq >= 200);
    // The metadata is damaged too: the config survives in the segment header.
    sim.delete_file(&dir().join("meta"));
    sim.delete_file(&dir().join("meta.bak"));
    assert_eq!(
        FileStore::recover_config_with(fs.as_ref(), &dir()).as_deref(),
        Some(CONFIG)
    );
}
