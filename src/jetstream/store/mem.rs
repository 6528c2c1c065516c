//! [`MemStore`]: storage `memory`. Every message lives in the shared
//! [`Index`](super::index::Index) slot of its sequence; nothing touches a
//! disk, so every message is durable as soon as it is appended and
//! [`MessageStore::take_sync`] never has work.

use super::index::{Filter, Index, Slot};
use super::{MessageStore, StoreError, StoreState, StoredMsg, SubjectState, SyncJob, SyncResult};

/// A message body: headers then payload in one allocation.
#[derive(Debug, Clone, Default)]
pub(crate) struct MemBody {
    hdr_len: u32,
    data: Box<[u8]>,
}

/// A stream kept in memory.
#[derive(Debug, Default)]
pub struct MemStore {
    index: Index<MemBody>,
    closed: bool,
}

impl MemStore {
    /// An empty store; the first message gets sequence 1.
    pub fn new() -> MemStore {
        MemStore::default()
    }

    /// An empty store whose first message gets sequence `first_seq` (a
    /// stream's `first_seq` setting); 0 and 1 both mean 1.
    pub fn with_first_seq(first_seq: u64) -> MemStore {
        let mut s = MemStore::new();
        s.index.raise_last(first_seq.saturating_sub(1));
        s
    }

    fn msg(&self, seq: u64, slot: &Slot<MemBody>) -> StoredMsg {
        let h = (slot.body.hdr_len as usize).min(slot.body.data.len());
        StoredMsg {
            seq,
            time_ns: slot.time,
            subject: self.index.subject_of(slot).to_string(),
            headers: slot.body.data[..h].to_vec(),
            payload: slot.body.data[h..].to_vec(),
        }
    }

    fn loaded(&self, seq: Option<u64>) -> Option<StoredMsg> {
        let seq = seq?;
        let slot = self.index.get(seq)?;
        Some(self.msg(seq, slot))
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.closed {
            Err(StoreError::Closed)
        } else {
            Ok(())
        }
    }
}

/// Purge as the contract describes it, over any index (shared with the file
/// store): the sequences to remove, oldest first.
pub(crate) fn purge_plan<B: Default>(
    index: &Index<B>,
    filter: Option<&str>,
    before_seq: Option<u64>,
    keep: Option<u64>,
) -> Vec<u64> {
    let f = Filter::new(filter);
    let all = index.matching_below(f, u64::MAX);
    let mut n = all.len();
    if let Some(k) = keep {
        n = n.saturating_sub(usize::try_from(k).unwrap_or(usize::MAX));
    }
    let mut plan: Vec<u64> = all.into_iter().take(n).collect();
    if let Some(b) = before_seq {
        plan.retain(|&q| q < b);
    }
    plan
}

impl MessageStore for MemStore {
    fn append(
        &mut self,
        subject: &str,
        headers: &[u8],
        payload: &[u8],
        time_ns: i64,
    ) -> Result<u64, StoreError> {
        self.check()?;
        let size = u32::try_from(StoredMsg::stored_size(subject, headers, payload))
            .map_err(|_| StoreError::Io("message too large".into()))?;
        let mut data = Vec::with_capacity(headers.len() + payload.len());
        data.extend_from_slice(headers);
        data.extend_from_slice(payload);
        let body = MemBody {
            // Fits: size (which includes it) fits in u32.
            hdr_len: headers.len() as u32,
            data: data.into_boxed_slice(),
        };
        let seq = self.index.last_seq() + 1;
        if !self.index.insert(seq, subject, body, size, time_ns) {
            return Err(StoreError::Io("sequence space exhausted".into()));
        }
        Ok(seq)
    }

    fn load(&mut self, seq: u64) -> Result<Option<StoredMsg>, StoreError> {
        self.check()?;
        Ok(self.loaded(Some(seq)))
    }

    fn load_next(
        &mut self,
        from: u64,
        filter: Option<&str>,
    ) -> Result<Option<StoredMsg>, StoreError> {
        self.check()?;
        Ok(self.loaded(self.index.next_match(from, Filter::new(filter))))
    }

    fn load_last(&mut self, filter: &str) -> Result<Option<StoredMsg>, StoreError> {
        self.check()?;
        Ok(self.loaded(self.index.last_match(Filter::new(Some(filter)))))
    }

    fn remove(&mut self, seq: u64, _erase: bool) -> Result<bool, StoreError> {
        self.check()?;
        Ok(self.index.remove(seq).is_some())
    }

    fn purge(
        &mut self,
        filter: Option<&str>,
        before_seq: Option<u64>,
        keep: Option<u64>,
    ) -> Result<u64, StoreError> {
        self.check()?;
        let plan = purge_plan(&self.index, filter, before_seq, keep);
        let mut n = 0;
        for q in plan {
            if self.index.remove(q).is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    fn compact(&mut self, seq: u64) -> Result<u64, StoreError> {
        self.check()?;
        let seq = seq.min(super::record::MAX_SEQ + 1);
        let mut n = 0;
        while let Some(q) = self.index.first_live() {
            if q >= seq {
                break;
            }
            if self.index.remove(q).is_some() {
                n += 1;
            }
        }
        if seq > self.index.last_seq() + 1 {
            self.index.raise_last(seq - 1);
        }
        Ok(n)
    }

    fn state(&self) -> StoreState {
        self.index.state()
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
        self.index.last_seq()
    }

    fn take_sync(&mut self) -> Option<SyncJob> {
        None
    }

    fn sync_done(&mut self, _result: SyncResult) {}

    fn delete(&mut self) -> Result<(), StoreError> {
        self.index = Index::new();
        self.closed = true;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::sublist::subject_matches;
    use proptest::prelude::*;

    /// The model: every message ever stored, with a removed flag.
    #[derive(Debug, Default, Clone)]
    pub(crate) struct Model {
        pub msgs: Vec<StoredMsg>,
        pub last_seq: u64,
        pub last_ts: i64,
    }

    fn fmatch(filter: Option<&str>, subj: &str) -> bool {
        match filter {
            None => true,
            Some(f) => subject_matches(f.as_bytes(), subj.as_bytes()),
        }
    }

    impl Model {
        pub fn append(&mut self, subject: &str, h: &[u8], p: &[u8], t: i64) -> u64 {
            self.last_seq += 1;
            self.last_ts = t;
            self.msgs.push(StoredMsg {
                seq: self.last_seq,
                time_ns: t,
                subject: subject.into(),
                headers: h.to_vec(),
                payload: p.to_vec(),
            });
            self.last_seq
        }
        pub fn load(&self, seq: u64) -> Option<StoredMsg> {
            self.msgs.iter().find(|m| m.seq == seq).cloned()
        }
        pub fn remove(&mut self, seq: u64) -> bool {
            let n = self.msgs.len();
            self.msgs.retain(|m| m.seq != seq);
            n != self.msgs.len()
        }
        pub fn purge(&mut self, f: Option<&str>, before: Option<u64>, keep: Option<u64>) -> u64 {
            let matching: Vec<u64> = self
                .msgs
                .iter()
                .filter(|m| fmatch(f, &m.subject))
                .map(|m| m.seq)
                .collect();
            let k = keep.unwrap_or(0) as usize;
            let n = matching.len().saturating_sub(k);
            let kill: Vec<u64> = matching
                .into_iter()
                .take(n)
                .filter(|&q| before.is_none_or(|b| q < b))
                .collect();
            self.msgs.retain(|m| !kill.contains(&m.seq));
            kill.len() as u64
        }
        pub fn compact(&mut self, seq: u64) -> u64 {
            let n = self.msgs.len();
            self.msgs.retain(|m| m.seq >= seq);
            if seq > self.last_seq + 1 {
                self.last_seq = seq - 1;
            }
            (n - self.msgs.len()) as u64
        }
        pub fn next(&self, from: u64, f: Option<&str>) -> Option<StoredMsg> {
            self.msgs
                .iter()
                .find(|m| m.seq >= from && fmatch(f, &m.subject))
                .cloned()
        }
        pub fn last(&self, f: &str) -> Option<StoredMsg> {
            self.msgs
                .iter()
                .rev()
                .find(|m| fmatch(Some(f), &m.subject))
                .cloned()
        }
        pub fn pending(&self, from: u64, f: Option<&str>) -> u64 {
            self.msgs
                .iter()
                .filter(|m| m.seq >= from && fmatch(f, &m.subject))
                .count() as u64
        }
        pub fn state(&self) -> StoreState {
            let first = self.msgs.first();
            let mut subjects: Vec<&str> = self.msgs.iter().map(|m| m.subject.as_str()).collect();
            subjects.sort();
            subjects.dedup();
            StoreState {
                msgs: self.msgs.len() as u64,
                bytes: self
                    .msgs
                    .iter()
                    .map(|m| StoredMsg::stored_size(&m.subject, &m.headers, &m.payload))
                    .sum(),
                first_seq: first.map(|m| m.seq).unwrap_or(self.last_seq + 1),
                first_ts: first.map(|m| m.time_ns).unwrap_or(0),
                last_seq: self.last_seq,
                last_ts: self.last_ts,
                num_deleted: first
                    .map(|m| self.last_seq - m.seq + 1 - self.msgs.len() as u64)
                    .unwrap_or(0),
                num_subjects: subjects.len() as u64,
                lost: None,
            }
        }
        pub fn subject_state(&self, s: &str) -> Option<SubjectState> {
            let v: Vec<u64> = self
                .msgs
                .iter()
                .filter(|m| m.subject == s)
                .map(|m| m.seq)
                .collect();
            Some(SubjectState {
                msgs: v.len() as u64,
                first: *v.first()?,
                last: *v.last()?,
            })
        }
    }

    /// One operation of the model test.
    #[derive(Debug, Clone)]
    pub(crate) enum Op {
        Append(u8, u8, bool),
        Remove(u64),
        Purge(Option<u8>, Option<u64>, Option<u64>),
        Compact(u64),
        Check(u64, u8),
    }

    pub(crate) const SUBJECTS: &[&str] = &["a.b", "a.c", "b.c", "a.b.c", "x"];
    pub(crate) const FILTERS: &[&str] = &["a.*", "a.>", "*.c", "x", "a.b", ">", "b.*", "q"];

    pub(crate) fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..5, any::<u8>(), any::<bool>()).prop_map(|(s, p, h)| Op::Append(s, p, h)),
            2 => (0u64..40).prop_map(Op::Remove),
            1 => (
                proptest::option::of(0u8..8),
                proptest::option::of(0u64..40),
                proptest::option::of(0u64..4)
            )
                .prop_map(|(f, b, k)| Op::Purge(f, b, k)),
            1 => (0u64..45).prop_map(Op::Compact),
            3 => (0u64..42, 0u8..9).prop_map(|(q, f)| Op::Check(q, f)),
        ]
    }

    /// Runs `ops` on `store` and the model, comparing everything.
    pub(crate) fn run_against_model<S: MessageStore>(store: &mut S, ops: &[Op]) {
        let mut model = Model::default();
        let mut t = 1_000i64;
        for op in ops {
            match op {
                Op::Append(s, p, h) => {
                    t += 7;
                    let subj = SUBJECTS[*s as usize];
                    let hdr: &[u8] = if *h { b"NATS/1.0\r\nA: b\r\n\r\n" } else { b"" };
                    let payload = vec![*p; (*p % 17) as usize];
                    let q = store.append(subj, hdr, &payload, t).unwrap();
                    assert_eq!(q, model.append(subj, hdr, &payload, t));
                }
                Op::Remove(q) => {
                    assert_eq!(store.remove(*q, q % 3 == 0).unwrap(), model.remove(*q));
                }
                Op::Purge(f, b, k) => {
                    let f = f.map(|i| FILTERS[i as usize]);
                    assert_eq!(store.purge(f, *b, *k).unwrap(), model.purge(f, *b, *k));
                }
                Op::Compact(q) => {
                    assert_eq!(store.compact(*q).unwrap(), model.compact(*q));
                }
                Op::Check(q, f) => {
                    let f = FILTERS.get(*f as usize).copied();
                    assert_eq!(store.load(*q).unwrap(), model.load(*q));
                    assert_eq!(store.load_next(*q, f).unwrap(), model.next(*q, f));
                    assert_eq!(store.num_pending(*q, f), model.pending(*q, f));
                    if let Some(f) = f {
                        assert_eq!(store.load_last(f).unwrap(), model.last(f));
                    }
                }
            }
            let mut st = store.state();
            st.lost = None;
            assert_eq!(st, model.state(), "after {op:?}");
            for s in SUBJECTS {
                assert_eq!(store.subject_state(s), model.subject_state(s), "{s}");
            }
            for f in FILTERS {
                let mut got = store.subjects(f);
                got.sort_by(|a, b| a.0.cmp(&b.0));
                let mut want: Vec<(String, SubjectState)> = SUBJECTS
                    .iter()
                    .filter(|s| fmatch(Some(f), s))
                    .filter_map(|s| model.subject_state(s).map(|st| (s.to_string(), st)))
                    .collect();
                want.sort_by(|a, b| a.0.cmp(&b.0));
                assert_eq!(got, want, "subjects {f}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn memstore_matches_model(ops in proptest::collection::vec(op_strategy(), 1..120)) {
            let mut s = MemStore::new();
            run_against_model(&mut s, &ops);
        }
    }

    #[test]
    fn full_purge_keeps_last_seq() {
        let mut s = MemStore::new();
        for i in 0..5 {
            s.append("a", b"", &[i], 10 + i as i64).unwrap();
        }
        assert_eq!(s.purge(None, None, None).unwrap(), 5);
        let st = s.state();
        assert_eq!(
            (st.first_seq, st.last_seq, st.last_ts, st.msgs),
            (6, 5, 14, 0)
        );
        assert_eq!(s.append("a", b"", b"x", 20).unwrap(), 6);
        assert_eq!(s.durable_seq(), 6);
        assert!(s.take_sync().is_none());
    }

    #[test]
    fn first_seq_and_delete() {
        let mut s = MemStore::with_first_seq(100);
        assert_eq!(s.append("a", b"", b"x", 1).unwrap(), 100);
        s.delete().unwrap();
        assert_eq!(s.append("a", b"", b"x", 1), Err(StoreError::Closed));
    }
}
