//! The in-memory index both stores share: one slot per sequence from the
//! first stored message to the last, the subject table, and the
//! per-subject state (count, first, last) that filters and
//! `max_msgs_per_subject` need.
//!
//! A slot is generic over its body `B`: [`super::mem::MemStore`] keeps the
//! message itself there, [`super::file::FileStore`] where its record lies
//! on disk (12 bytes), which makes a file-store slot 32 bytes.
//!
//! Each slot links to the next slot of the same subject (`next`, a forward
//! distance), so moving a subject's `first` after a removal follows the
//! subject's own chain instead of scanning every message in between.
//! Removed slots keep their link (only their subject is cleared), so a chain
//! stays walkable through interior removals. Leading removed slots are
//! dropped; a chain walk only moves forward from a subject's live first, so
//! it never reaches a dropped slot.

use super::{StoreState, SubjectState};
use crate::sublist::subject_matches;
use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::Arc;

/// Subject id of a removed (or never stored) slot.
pub(crate) const NONE: u32 = u32::MAX;

/// One sequence's slot.
#[derive(Debug, Clone, Default)]
pub(crate) struct Slot<B> {
    /// The body (store specific); `B::default()` once removed.
    pub body: B,
    /// Time stored, ns since the epoch.
    pub time: i64,
    /// Subject id, [`NONE`] when removed.
    pub subj: u32,
    /// Distance to the next slot of the same subject, 0 = none (yet).
    pub next: u32,
    /// Accounted size ([`super::StoredMsg::stored_size`]).
    pub size: u32,
}

impl<B> Slot<B> {
    fn live(&self) -> bool {
        self.subj != NONE
    }
}

#[derive(Debug)]
struct SubjectEntry {
    name: Arc<str>,
    msgs: u64,
    first: u64,
    last: u64,
}

/// A subject filter, classified once.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Filter<'a> {
    /// No filter or `>`.
    All,
    /// A subject without wildcards.
    Literal(&'a str),
    /// A subject with `*` or `>` tokens.
    Wild(&'a str),
}

impl<'a> Filter<'a> {
    pub fn new(filter: Option<&'a str>) -> Filter<'a> {
        match filter {
            None | Some(">") | Some("") => Filter::All,
            Some(f) if f.split('.').any(|t| t == "*" || t == ">") => Filter::Wild(f),
            Some(f) => Filter::Literal(f),
        }
    }
}

/// Remembers, per subject id, whether a wildcard filter matches it (for one
/// call: subject ids are reused after a subject empties).
struct Memo<'a> {
    filter: &'a str,
    seen: HashMap<u32, bool>,
}

impl<'a> Memo<'a> {
    fn new(filter: &'a str) -> Self {
        Memo {
            filter,
            seen: HashMap::new(),
        }
    }
}

/// The index. Sequences are `u64`, slots cover `base ..= last_seq`.
#[derive(Debug)]
pub(crate) struct Index<B> {
    base: u64,
    slots: VecDeque<Slot<B>>,
    last_seq: u64,
    last_ts: i64,
    msgs: u64,
    bytes: u64,
    subjects: Vec<Option<SubjectEntry>>,
    free_ids: Vec<u32>,
    by_name: HashMap<Arc<str>, u32>,
}

impl<B: Default> Default for Index<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Default> Index<B> {
    pub fn new() -> Self {
        Index {
            base: 1,
            slots: VecDeque::new(),
            last_seq: 0,
            last_ts: 0,
            msgs: 0,
            bytes: 0,
            subjects: Vec::new(),
            free_ids: Vec::new(),
            by_name: HashMap::new(),
        }
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    pub fn msgs(&self) -> u64 {
        self.msgs
    }

    /// The first stored sequence, if any.
    pub fn first_live(&self) -> Option<u64> {
        if self.msgs == 0 {
            None
        } else {
            Some(self.base)
        }
    }

    /// Raises `last_seq` (recovery's high-water mark, compaction past the
    /// end) without storing anything. Only when nothing newer is stored.
    pub fn raise_last(&mut self, seq: u64) {
        if seq <= self.last_seq {
            return;
        }
        if self.msgs == 0 {
            self.slots.clear();
            self.base = seq + 1;
        } else {
            self.fill_to(seq);
        }
        self.last_seq = seq;
    }

    /// Sets the time of the last message (recovery).
    pub fn set_last_ts(&mut self, ts: i64) {
        self.last_ts = ts;
    }

    fn fill_to(&mut self, seq: u64) {
        // Slots for last_seq+1 ..= seq, empty.
        while self.base + (self.slots.len() as u64) <= seq {
            self.slots.push_back(Slot {
                body: B::default(),
                time: 0,
                subj: NONE,
                next: 0,
                size: 0,
            });
        }
    }

    fn slot(&self, seq: u64) -> Option<&Slot<B>> {
        let i = seq.checked_sub(self.base)?;
        self.slots.get(usize::try_from(i).ok()?)
    }

    fn slot_mut(&mut self, seq: u64) -> Option<&mut Slot<B>> {
        let i = seq.checked_sub(self.base)?;
        self.slots.get_mut(usize::try_from(i).ok()?)
    }

    /// The live slot of `seq`.
    pub fn get(&self, seq: u64) -> Option<&Slot<B>> {
        self.slot(seq).filter(|s| s.live())
    }

    /// The subject of a live slot.
    pub fn subject_of(&self, slot: &Slot<B>) -> &str {
        match self.subjects.get(slot.subj as usize) {
            Some(Some(e)) => &e.name,
            _ => "",
        }
    }

    /// Stores `seq` (which must be above `last_seq`; false otherwise).
    pub fn insert(&mut self, seq: u64, subject: &str, body: B, size: u32, time: i64) -> bool {
        if seq <= self.last_seq || seq == u64::MAX {
            return false;
        }
        if self.msgs == 0 {
            self.slots.clear();
            self.base = seq;
        } else {
            self.fill_to(seq - 1);
        }
        let id = match self.by_name.get(subject) {
            Some(&id) => id,
            None => {
                let name: Arc<str> = Arc::from(subject);
                let entry = SubjectEntry {
                    name: name.clone(),
                    msgs: 0,
                    first: seq,
                    last: seq,
                };
                let id = match self.free_ids.pop() {
                    Some(id) => {
                        self.subjects[id as usize] = Some(entry);
                        id
                    }
                    None => {
                        self.subjects.push(Some(entry));
                        (self.subjects.len() - 1) as u32
                    }
                };
                self.by_name.insert(name, id);
                id
            }
        };
        let prev_last = match self.subjects.get_mut(id as usize) {
            Some(Some(e)) => {
                let prev = (e.msgs > 0).then_some(e.last);
                if e.msgs == 0 {
                    e.first = seq;
                }
                e.msgs += 1;
                e.last = seq;
                prev
            }
            _ => None,
        };
        if let Some(p) = prev_last {
            let dist = u32::try_from(seq - p).unwrap_or(0);
            if let Some(s) = self.slot_mut(p) {
                s.next = dist;
            }
        }
        self.slots.push_back(Slot {
            body,
            time,
            subj: id,
            next: 0,
            size,
        });
        self.last_seq = seq;
        self.last_ts = time;
        self.msgs += 1;
        self.bytes += u64::from(size);
        true
    }

    /// Removes `seq`; its slot (with the body) if it was stored.
    pub fn remove(&mut self, seq: u64) -> Option<Slot<B>> {
        let slot = self.slot_mut(seq)?;
        if !slot.live() {
            return None;
        }
        let taken = Slot {
            body: std::mem::take(&mut slot.body),
            time: slot.time,
            subj: slot.subj,
            next: slot.next,
            size: slot.size,
        };
        slot.subj = NONE;
        self.msgs -= 1;
        self.bytes -= u64::from(taken.size);
        let id = taken.subj;
        let (msgs, first, last) = match self.subjects.get_mut(id as usize) {
            Some(Some(e)) => {
                e.msgs -= 1;
                (e.msgs, e.first, e.last)
            }
            _ => (0, 0, 0),
        };
        if msgs == 0 {
            if let Some(Some(e)) = self.subjects.get_mut(id as usize).map(Option::take) {
                self.by_name.remove(&e.name);
            }
            self.free_ids.push(id);
        } else if seq == first {
            let nf = self.next_of_subject(seq, id, last);
            if let Some(Some(e)) = self.subjects.get_mut(id as usize) {
                e.first = nf;
            }
        } else if seq == last {
            let nl = self.prev_of_subject(first, seq, id);
            if let Some(Some(e)) = self.subjects.get_mut(id as usize) {
                e.last = nl;
            }
        }
        // Drop leading removed slots.
        while self.slots.front().is_some_and(|s| !s.live()) {
            self.slots.pop_front();
            self.base += 1;
        }
        if self.slots.is_empty() {
            self.base = self.last_seq + 1;
        }
        Some(taken)
    }

    /// The next live slot of subject `id` after `seq` (which has been
    /// removed), at most `last`.
    fn next_of_subject(&self, seq: u64, id: u32, last: u64) -> u64 {
        let mut cur = seq;
        while let Some(s) = self.slot(cur) {
            if s.next == 0 {
                break;
            }
            cur += u64::from(s.next);
            if cur > last {
                break;
            }
            if self.slot(cur).is_some_and(|s| s.subj == id) {
                return cur;
            }
        }
        // A broken chain cannot happen; scan to be safe.
        (seq + 1..=last)
            .find(|&q| self.slot(q).is_some_and(|s| s.subj == id))
            .unwrap_or(last)
    }

    /// The live slot of subject `id` before `seq`, from its `first`.
    fn prev_of_subject(&self, first: u64, seq: u64, id: u32) -> u64 {
        let mut cur = first;
        let mut best = first;
        while cur < seq {
            if self.slot(cur).is_some_and(|s| s.subj == id) {
                best = cur;
            }
            match self.slot(cur) {
                Some(s) if s.next != 0 => cur += u64::from(s.next),
                _ => break,
            }
        }
        if self.slot(best).is_some_and(|s| s.subj == id) {
            return best;
        }
        (first..seq)
            .rev()
            .find(|&q| self.slot(q).is_some_and(|s| s.subj == id))
            .unwrap_or(first)
    }

    fn matches(&self, slot: &Slot<B>, f: Filter<'_>, memo: &mut Option<Memo<'_>>) -> bool {
        if !slot.live() {
            return false;
        }
        match f {
            Filter::All => true,
            Filter::Literal(s) => self.by_name.get(s) == Some(&slot.subj),
            Filter::Wild(_) => {
                let Some(m) = memo.as_mut() else { return false };
                if let Some(&b) = m.seen.get(&slot.subj) {
                    return b;
                }
                let name = self.subject_of(slot);
                let b = subject_matches(m.filter.as_bytes(), name.as_bytes());
                m.seen.insert(slot.subj, b);
                b
            }
        }
    }

    fn memo<'f>(f: Filter<'f>) -> Option<Memo<'f>> {
        match f {
            Filter::Wild(w) => Some(Memo::new(w)),
            _ => None,
        }
    }

    fn entry(&self, name: &str) -> Option<&SubjectEntry> {
        let id = *self.by_name.get(name)?;
        self.subjects.get(id as usize)?.as_ref()
    }

    /// The first stored sequence `>= from` matching `f`.
    pub fn next_match(&self, from: u64, f: Filter<'_>) -> Option<u64> {
        let start = from.max(self.base);
        let end = match f {
            Filter::Literal(s) => {
                let e = self.entry(s)?;
                if start <= e.first {
                    return Some(e.first);
                }
                e.last
            }
            _ => self.last_seq,
        };
        let mut memo = Self::memo(f);
        let mut seq = start;
        while seq <= end {
            let slot = self.slot(seq)?;
            if self.matches(slot, f, &mut memo) {
                return Some(seq);
            }
            seq += 1;
        }
        None
    }

    /// The last stored sequence matching `f`.
    pub fn last_match(&self, f: Filter<'_>) -> Option<u64> {
        match f {
            Filter::All => (self.msgs > 0).then_some(self.last_live()),
            Filter::Literal(s) => self.entry(s).map(|e| e.last),
            Filter::Wild(w) => {
                let span = self.last_seq.saturating_sub(self.base);
                if (self.by_name.len() as u64) < span {
                    self.subjects
                        .iter()
                        .flatten()
                        .filter(|e| subject_matches(w.as_bytes(), e.name.as_bytes()))
                        .map(|e| e.last)
                        .max()
                } else {
                    let mut memo = Self::memo(f);
                    (self.base..=self.last_seq)
                        .rev()
                        .find(|&q| self.slot(q).is_some_and(|s| self.matches(s, f, &mut memo)))
                }
            }
        }
    }

    fn last_live(&self) -> u64 {
        let mut q = self.base + self.slots.len() as u64;
        while q > self.base {
            q -= 1;
            if self.slot(q).is_some_and(|s| s.live()) {
                return q;
            }
        }
        self.base
    }

    /// Stored messages with sequence `>= from` matching `f`.
    pub fn count_from(&self, from: u64, f: Filter<'_>) -> u64 {
        let from = from.max(self.base);
        if self.msgs == 0 || from > self.last_seq {
            return 0;
        }
        match f {
            Filter::All => {
                if from <= self.base {
                    return self.msgs;
                }
                let span = self.last_seq - self.base + 1;
                if span == self.msgs {
                    return self.last_seq - from + 1;
                }
                let before = self.count_range(self.base, from, f);
                let after = self.last_seq - from + 1;
                if from - self.base < after {
                    self.msgs - before
                } else {
                    self.count_range(from, self.last_seq + 1, f)
                }
            }
            Filter::Literal(s) => match self.entry(s) {
                None => 0,
                Some(e) => self.count_subject(e, from, f),
            },
            Filter::Wild(w) => {
                let span = self.last_seq - from + 1;
                if (self.by_name.len() as u64) < span {
                    self.subjects
                        .iter()
                        .flatten()
                        .filter(|e| subject_matches(w.as_bytes(), e.name.as_bytes()))
                        .map(|e| self.count_subject(e, from, Filter::Literal(&e.name)))
                        .sum()
                } else {
                    self.count_range(from, self.last_seq + 1, f)
                }
            }
        }
    }

    fn count_subject(&self, e: &SubjectEntry, from: u64, f: Filter<'_>) -> u64 {
        if from <= e.first {
            e.msgs
        } else if from > e.last {
            0
        } else if from - e.first < e.last - from {
            e.msgs - self.count_range(e.first, from, f)
        } else {
            self.count_range(from, e.last + 1, f)
        }
    }

    /// Matching stored messages in `from .. to`.
    fn count_range(&self, from: u64, to: u64, f: Filter<'_>) -> u64 {
        let mut memo = Self::memo(f);
        (from..to)
            .filter(|&q| self.slot(q).is_some_and(|s| self.matches(s, f, &mut memo)))
            .count() as u64
    }

    /// The stored sequences matching `f` below `before`, oldest first.
    pub fn matching_below(&self, f: Filter<'_>, before: u64) -> Vec<u64> {
        let mut memo = Self::memo(f);
        let (from, to) = match f {
            Filter::Literal(s) => match self.entry(s) {
                None => return Vec::new(),
                Some(e) => (e.first, e.last.saturating_add(1).min(before)),
            },
            _ => (self.base, before.min(self.last_seq.saturating_add(1))),
        };
        (from..to)
            .filter(|&q| self.slot(q).is_some_and(|s| self.matches(s, f, &mut memo)))
            .collect()
    }

    /// Per-subject state of the subjects matching `f`.
    pub fn subjects(&self, f: Filter<'_>) -> Vec<(String, SubjectState)> {
        let st = |e: &SubjectEntry| SubjectState {
            msgs: e.msgs,
            first: e.first,
            last: e.last,
        };
        match f {
            Filter::Literal(s) => self
                .entry(s)
                .map(|e| vec![(e.name.to_string(), st(e))])
                .unwrap_or_default(),
            _ => self
                .subjects
                .iter()
                .flatten()
                .filter(|e| match f {
                    Filter::Wild(w) => subject_matches(w.as_bytes(), e.name.as_bytes()),
                    _ => true,
                })
                .map(|e| (e.name.to_string(), st(e)))
                .collect(),
        }
    }

    pub fn subject_state(&self, name: &str) -> Option<SubjectState> {
        self.entry(name).map(|e| SubjectState {
            msgs: e.msgs,
            first: e.first,
            last: e.last,
        })
    }

    /// The state without `lost`.
    pub fn state(&self) -> StoreState {
        let first = self.first_live();
        StoreState {
            msgs: self.msgs,
            bytes: self.bytes,
            first_seq: first.unwrap_or(self.last_seq + 1),
            first_ts: first
                .and_then(|q| self.slot(q))
                .map(|s| s.time)
                .unwrap_or(0),
            last_seq: self.last_seq,
            last_ts: self.last_ts,
            num_deleted: first
                .map(|f| self.last_seq - f + 1 - self.msgs)
                .unwrap_or(0),
            num_subjects: self.by_name.len() as u64,
            lost: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_survives_interior_removals() {
        let mut ix: Index<()> = Index::new();
        for q in 1..=10u64 {
            let s = if q % 2 == 0 { "a" } else { "b" };
            assert!(ix.insert(q, s, (), 10, q as i64));
        }
        assert!(ix.remove(4).is_some());
        assert!(ix.remove(2).is_some());
        assert_eq!(ix.subject_state("a").unwrap().first, 6);
        assert!(ix.remove(10).is_some());
        assert_eq!(ix.subject_state("a").unwrap().last, 8);
        assert!(ix.insert(11, "a", (), 10, 11));
        assert!(ix.remove(6).is_some());
        assert!(ix.remove(8).is_some());
        let a = ix.subject_state("a").unwrap();
        assert_eq!((a.msgs, a.first, a.last), (1, 11, 11));
        assert_eq!(ix.next_match(1, Filter::Literal("a")), Some(11));
        assert_eq!(ix.count_from(0, Filter::Wild("*")), 6);
        assert!(!ix.insert(11, "a", (), 1, 1));
    }

    #[test]
    fn state_after_full_removal() {
        let mut ix: Index<()> = Index::new();
        for q in 1..=3 {
            ix.insert(q, "x", (), 5, 7);
        }
        for q in 1..=3 {
            ix.remove(q);
        }
        let st = ix.state();
        assert_eq!(
            (st.msgs, st.first_seq, st.last_seq, st.num_deleted),
            (0, 4, 3, 0)
        );
        ix.raise_last(10);
        assert_eq!(ix.state().first_seq, 11);
    }
}
