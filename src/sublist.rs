//! Subjects and the subscription trie.
//!
//! This module owns subject syntax (which SUB and PUB subjects are valid) and
//! the [`Sublist`]: a trie of subject tokens whose nodes hold subscription
//! ids, plain ones and queue groups. Matching a published subject returns a
//! shared [`MatchResult`]; results are cached per subject and the cache is
//! dropped whenever a subscription is added or removed (tracked by a
//! generation counter, so the steady-state publish path is one hash lookup).
//!
//! The sublist knows nothing of connections or the wire: a subscription is
//! an opaque [`SubId`] chosen by the caller, and choosing which member of a
//! queue group gets a message is left to the caller (with a rotation
//! counter kept in the result to make that cheap and fair).

use smallvec::SmallVec;
use std::cell::Cell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

/// Identifies a subscription; the caller owns the mapping to its details.
pub type SubId = u32;

/// Most cached match results before the cache is emptied and refilled.
const CACHE_MAX: usize = 4096;

/// A small, fast, non-cryptographic hasher (the "Fx" hash used inside
/// rustc) for trie tokens and the match cache. Subjects are chosen by
/// clients, but a collision only costs time, and a client can only slow down
/// its own publishes with crafted subjects.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

/// `HashMap` with [`FxHasher`].
pub type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// Splits a subject into its `.`-separated tokens (empty tokens included).
fn tokens(subject: &[u8]) -> impl Iterator<Item = &[u8]> {
    subject.split(|&b| b == b'.')
}

/// Whether `subject` may be subscribed to: no empty token, and `>` only as
/// the last token. (`*` and `>` are wildcards only as whole tokens.)
pub fn is_valid_subject(subject: &[u8]) -> bool {
    if subject.is_empty() {
        return false;
    }
    let mut after_fwc = false;
    for token in tokens(subject) {
        if token.is_empty() || after_fwc {
            return false;
        }
        after_fwc = token == b">";
    }
    true
}

/// Whether `subject` is a valid literal subject (what pedantic PUB requires):
/// no empty token and no wildcard token.
pub fn is_valid_literal_subject(subject: &[u8]) -> bool {
    !subject.is_empty() && tokens(subject).all(|t| !t.is_empty() && t != b"*" && t != b">")
}

/// Whether a subscription `filter` (valid per [`is_valid_subject`]) matches a
/// published `subject`. The straightforward definition, used for
/// permissions and as the reference the trie is tested against.
pub fn subject_matches(filter: &[u8], subject: &[u8]) -> bool {
    let mut subj = tokens(subject);
    for f in tokens(filter) {
        match subj.next() {
            None => return false,
            Some(b"") => return false,
            Some(s) => {
                if f == b">" {
                    return subj.all(|t| !t.is_empty());
                }
                if f != b"*" && f != s {
                    return false;
                }
            }
        }
    }
    subj.next().is_none()
}

/// The subscriptions a subject matches.
#[derive(Debug, Default)]
pub struct MatchResult {
    /// Plain subscriptions: each gets a copy.
    pub plain: Vec<SubId>,
    /// Queue groups (merged by name): one member of each gets a copy.
    pub queues: Vec<QueueGroup>,
}

impl MatchResult {
    /// True when nothing matches.
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_empty()
    }
}

/// The members of one queue group that match a subject.
#[derive(Debug)]
pub struct QueueGroup {
    /// The group's name.
    pub name: Box<[u8]>,
    /// Matching members (never empty).
    pub members: Vec<SubId>,
    /// Where the next rotation starts.
    next: Cell<u32>,
}

impl QueueGroup {
    /// Index of the member to try first for the next message; advances the
    /// rotation so consecutive messages go to consecutive members.
    #[inline]
    pub fn next_start(&self) -> usize {
        let n = self.next.get();
        self.next.set(n.wrapping_add(1));
        n as usize % self.members.len()
    }
}

/// A trie node: the subscriptions whose subject ends here, and the level
/// below for longer subjects.
#[derive(Debug, Default)]
struct Node {
    plain: Vec<SubId>,
    queues: Vec<(Box<[u8]>, Vec<SubId>)>,
    next: Option<Box<Level>>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.plain.is_empty() && self.queues.is_empty() && self.next.is_none()
    }
}

/// One token position: literal children by token, and the `*` and `>`
/// children apart so matching never hashes a wildcard.
#[derive(Debug, Default)]
struct Level {
    literal: FxHashMap<Box<[u8]>, Node>,
    pwc: Option<Box<Node>>,
    fwc: Option<Box<Node>>,
}

impl Level {
    fn is_empty(&self) -> bool {
        self.literal.is_empty() && self.pwc.is_none() && self.fwc.is_none()
    }

    /// The child node for `token`, created if missing.
    fn child_mut(&mut self, token: &[u8]) -> &mut Node {
        match token {
            b"*" => self.pwc.get_or_insert_with(Default::default),
            b">" => self.fwc.get_or_insert_with(Default::default),
            _ => self.literal.entry(token.into()).or_default(),
        }
    }

    /// The child node for `token` if it exists.
    fn child(&mut self, token: &[u8]) -> Option<&mut Node> {
        match token {
            b"*" => self.pwc.as_deref_mut(),
            b">" => self.fwc.as_deref_mut(),
            _ => self.literal.get_mut(token),
        }
    }

    /// Drops the child for `token` if it no longer holds anything.
    fn prune(&mut self, token: &[u8]) {
        match token {
            b"*" => {
                if self.pwc.as_ref().is_some_and(|n| n.is_empty()) {
                    self.pwc = None;
                }
            }
            b">" => {
                if self.fwc.as_ref().is_some_and(|n| n.is_empty()) {
                    self.fwc = None;
                }
            }
            _ => {
                if self.literal.get(token).is_some_and(Node::is_empty) {
                    self.literal.remove(token);
                    if self.literal.is_empty() {
                        self.literal.shrink_to_fit();
                    }
                }
            }
        }
    }
}

/// The error for a subject that cannot be subscribed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidSubject;

/// Counters for monitoring and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct SublistStats {
    /// Subscriptions currently in the trie.
    pub count: usize,
    /// Match results currently cached.
    pub cache_len: usize,
    /// Matches answered from the cache.
    pub cache_hits: u64,
    /// Matches that walked the trie.
    pub cache_misses: u64,
}

/// The subscription trie with its match cache.
#[derive(Debug, Default)]
pub struct Sublist {
    root: Level,
    count: usize,
    /// Bumped on every insert and remove; the cache belongs to one generation.
    generation: u64,
    cache: FxHashMap<Box<[u8]>, Rc<MatchResult>>,
    /// Seeds the rotation of new queue-group results so that a rebuilt
    /// cache entry does not always start with the same member.
    rotation_seed: u32,
    cache_enabled: bool,
    cache_hits: u64,
    cache_misses: u64,
}

impl Sublist {
    /// An empty sublist with the match cache on.
    pub fn new() -> Self {
        Sublist {
            cache_enabled: true,
            ..Default::default()
        }
    }

    /// An empty sublist that walks the trie on every match (for benchmarks
    /// and tests of the trie itself).
    pub fn without_cache() -> Self {
        Sublist::default()
    }

    /// Number of subscriptions held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no subscription is held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Changes with every insert and remove.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Counters for monitoring.
    pub fn stats(&self) -> SublistStats {
        SublistStats {
            count: self.count,
            cache_len: self.cache.len(),
            cache_hits: self.cache_hits,
            cache_misses: self.cache_misses,
        }
    }

    fn changed(&mut self) {
        self.generation += 1;
        if !self.cache.is_empty() {
            self.cache.clear();
        }
    }

    /// Adds subscription `id` on `subject` (in queue group `queue`, if any).
    pub fn insert(
        &mut self,
        subject: &[u8],
        queue: Option<&[u8]>,
        id: SubId,
    ) -> Result<(), InvalidSubject> {
        if !is_valid_subject(subject) {
            return Err(InvalidSubject);
        }
        let mut toks = tokens(subject);
        let mut token = toks.next().unwrap_or_default();
        let mut level = &mut self.root;
        for next in toks {
            level = level
                .child_mut(token)
                .next
                .get_or_insert_with(Default::default);
            token = next;
        }
        let node = level.child_mut(token);
        match queue {
            None => node.plain.push(id),
            Some(q) => match node.queues.iter_mut().find(|(name, _)| &name[..] == q) {
                Some((_, members)) => members.push(id),
                None => node.queues.push((q.into(), vec![id])),
            },
        }
        self.count += 1;
        self.changed();
        Ok(())
    }

    /// Removes subscription `id` previously inserted with the same subject
    /// and queue. Returns false if it was not there.
    pub fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, id: SubId) -> bool {
        let toks: SmallVec<[&[u8]; 16]> = tokens(subject).collect();
        let removed = remove_from(&mut self.root, &toks, queue, id);
        if removed {
            self.count -= 1;
            self.changed();
        }
        removed
    }

    /// The subscriptions matching a published subject. Every token of
    /// `subject` is literal here (a published `*` is only matched by
    /// wildcard subscriptions); a subject with an empty token matches nothing.
    pub fn matches(&mut self, subject: &[u8]) -> Rc<MatchResult> {
        if self.cache_enabled
            && let Some(hit) = self.cache.get(subject)
        {
            self.cache_hits += 1;
            return Rc::clone(hit);
        }
        self.cache_misses += 1;
        let mut result = MatchResult::default();
        let toks: SmallVec<[&[u8]; 16]> = tokens(subject).collect();
        if toks.iter().all(|t| !t.is_empty()) {
            collect_matches(&self.root, &toks, &mut result);
        }
        for group in &mut result.queues {
            self.rotation_seed = self.rotation_seed.wrapping_add(1);
            group.next.set(self.rotation_seed);
        }
        let result = Rc::new(result);
        if self.cache_enabled {
            if self.cache.len() >= CACHE_MAX {
                self.cache.clear();
            }
            self.cache.insert(subject.into(), Rc::clone(&result));
        }
        result
    }
}

/// Adds a node's subscriptions to a result, merging queue groups by name.
fn add_node(node: &Node, out: &mut MatchResult) {
    out.plain.extend_from_slice(&node.plain);
    for (name, members) in &node.queues {
        match out.queues.iter_mut().find(|g| g.name == *name) {
            Some(group) => group.members.extend_from_slice(members),
            None => out.queues.push(QueueGroup {
                name: name.clone(),
                members: members.clone(),
                next: Cell::new(0),
            }),
        }
    }
}

/// Collects every subscription at or below `level` matching `toks`.
fn collect_matches(level: &Level, toks: &[&[u8]], out: &mut MatchResult) {
    let Some((token, rest)) = toks.split_first() else {
        return;
    };
    if let Some(fwc) = &level.fwc {
        add_node(fwc, out);
    }
    if let Some(pwc) = &level.pwc {
        descend(pwc, rest, out);
    }
    if let Some(node) = level.literal.get(*token) {
        descend(node, rest, out);
    }
}

/// Continues a match into `node`: it matches if no tokens remain.
#[inline]
fn descend(node: &Node, rest: &[&[u8]], out: &mut MatchResult) {
    if rest.is_empty() {
        add_node(node, out);
    } else if let Some(next) = &node.next {
        collect_matches(next, rest, out);
    }
}

/// Removes `id` from the node at `toks` below `level`, pruning emptied nodes.
fn remove_from(level: &mut Level, toks: &[&[u8]], queue: Option<&[u8]>, id: SubId) -> bool {
    let Some((token, rest)) = toks.split_first() else {
        return false;
    };
    let Some(node) = level.child(token) else {
        return false;
    };
    let removed = if rest.is_empty() {
        match queue {
            None => remove_id(&mut node.plain, id),
            Some(q) => match node.queues.iter().position(|(name, _)| &name[..] == q) {
                Some(i) => {
                    let removed = remove_id(&mut node.queues[i].1, id);
                    if node.queues[i].1.is_empty() {
                        node.queues.swap_remove(i);
                    }
                    removed
                }
                None => false,
            },
        }
    } else {
        match node.next.as_deref_mut() {
            Some(next) => {
                let removed = remove_from(next, rest, queue, id);
                if next.is_empty() {
                    node.next = None;
                }
                removed
            }
            None => false,
        }
    };
    if removed {
        level.prune(token);
    }
    removed
}

/// Removes one `id` from a list (order is not significant).
fn remove_id(list: &mut Vec<SubId>, id: SubId) -> bool {
    match list.iter().position(|&x| x == id) {
        Some(i) => {
            list.swap_remove(i);
            if list.is_empty() {
                *list = Vec::new();
            }
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sorted(mut v: Vec<SubId>) -> Vec<SubId> {
        v.sort_unstable();
        v
    }

    fn plain(sl: &mut Sublist, subject: &str) -> Vec<SubId> {
        sorted(sl.matches(subject.as_bytes()).plain.clone())
    }

    /// Each test runs with and without the cache.
    fn both(test: impl Fn(Sublist)) {
        test(Sublist::new());
        test(Sublist::without_cache());
    }

    #[test]
    fn validity() {
        for ok in [
            "foo", "foo.bar", "foo.*", "foo.>", ">", "*", "foo*.bar", "f>o", "*.*.>",
        ] {
            assert!(is_valid_subject(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "foo..bar", "foo.", ".foo", "foo.>.bar", ">.foo", "."] {
            assert!(!is_valid_subject(bad.as_bytes()), "{bad}");
        }
        assert!(is_valid_literal_subject(b"foo.bar"));
        assert!(is_valid_literal_subject(b"foo*.bar"));
        assert!(!is_valid_literal_subject(b"foo.*"));
        assert!(!is_valid_literal_subject(b"foo.>"));
        assert!(!is_valid_literal_subject(b"foo..bar"));
    }

    #[test]
    fn literal_and_wildcards() {
        both(|mut sl| {
            sl.insert(b"foo.bar", None, 1).unwrap();
            sl.insert(b"foo.*", None, 2).unwrap();
            sl.insert(b"foo.>", None, 3).unwrap();
            sl.insert(b">", None, 4).unwrap();
            sl.insert(b"*.bar", None, 5).unwrap();
            assert_eq!(plain(&mut sl, "foo.bar"), vec![1, 2, 3, 4, 5]);
            assert_eq!(plain(&mut sl, "foo.baz"), vec![2, 3, 4]);
            assert_eq!(plain(&mut sl, "foo.bar.baz"), vec![3, 4]);
            assert_eq!(plain(&mut sl, "foo"), vec![4]);
            assert_eq!(plain(&mut sl, "bar"), vec![4]);
            assert_eq!(plain(&mut sl, "foo..bar"), Vec::<SubId>::new());
            // A published '*' is a literal token that only wildcards match.
            assert_eq!(plain(&mut sl, "foo.*"), vec![2, 3, 4]);
        });
    }

    #[test]
    fn queues_merge_by_name() {
        both(|mut sl| {
            sl.insert(b"foo.*", Some(b"q"), 1).unwrap();
            sl.insert(b"foo.bar", Some(b"q"), 2).unwrap();
            sl.insert(b"foo.bar", Some(b"r"), 3).unwrap();
            sl.insert(b"foo.bar", None, 4).unwrap();
            let r = sl.matches(b"foo.bar");
            assert_eq!(r.plain, vec![4]);
            assert_eq!(r.queues.len(), 2);
            let q = r.queues.iter().find(|g| &g.name[..] == b"q").unwrap();
            assert_eq!(sorted(q.members.clone()), vec![1, 2]);
        });
    }

    #[test]
    fn rotation_visits_every_member() {
        let mut sl = Sublist::new();
        for id in 0..5 {
            sl.insert(b"w", Some(b"g"), id).unwrap();
        }
        let r = sl.matches(b"w");
        let mut seen: Vec<usize> = (0..10).map(|_| r.queues[0].next_start()).collect();
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4]);
    }

    #[test]
    fn remove_prunes_and_invalidates_cache() {
        both(|mut sl| {
            sl.insert(b"a.b.c", None, 1).unwrap();
            sl.insert(b"a.*.c", Some(b"q"), 2).unwrap();
            assert_eq!(plain(&mut sl, "a.b.c"), vec![1]);
            assert!(sl.remove(b"a.b.c", None, 1));
            assert!(!sl.remove(b"a.b.c", None, 1));
            assert!(plain(&mut sl, "a.b.c").is_empty());
            assert!(!sl.remove(b"a.*.c", Some(b"other"), 2));
            assert!(sl.remove(b"a.*.c", Some(b"q"), 2));
            assert!(sl.matches(b"a.b.c").is_empty());
            assert!(sl.is_empty());
            assert!(sl.root.is_empty(), "trie left nodes behind: {:?}", sl.root);
        });
    }

    #[test]
    fn invalid_subjects_are_refused() {
        let mut sl = Sublist::new();
        assert_eq!(sl.insert(b"foo..bar", None, 1), Err(InvalidSubject));
        assert_eq!(sl.insert(b"foo.>.bar", None, 1), Err(InvalidSubject));
        assert!(sl.is_empty());
    }

    #[test]
    fn reference_matcher() {
        assert!(subject_matches(b"foo.*", b"foo.bar"));
        assert!(!subject_matches(b"foo.*", b"foo"));
        assert!(!subject_matches(b"foo.>", b"foo"));
        assert!(subject_matches(b"foo.>", b"foo.a.b"));
        assert!(subject_matches(b">", b"a"));
        assert!(!subject_matches(b"foo.bar", b"foo.*"));
        assert!(subject_matches(b"foo.*", b"foo.*"));
        assert!(!subject_matches(b"foo.*", b"foo."));
    }

    /// Subjects over a small alphabet so that random filters and subjects collide often.
    fn token() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_string()),
            Just("b".to_string()),
            Just("c".to_string()),
            Just("*".to_string()),
        ]
    }

    fn filter() -> impl Strategy<Value = String> {
        (proptest::collection::vec(token(), 1..5), any::<bool>()).prop_map(|(mut t, fwc)| {
            if fwc {
                t.push(">".into());
            }
            t.join(".")
        })
    }

    fn subject() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![Just("a"), Just("b"), Just("c"), Just("*"), Just("")],
            1..6,
        )
        .prop_map(|t| t.join("."))
    }

    proptest! {
        /// The trie agrees with scanning every filter with the reference
        /// matcher, with the cache on and off, across inserts and removes.
        #[test]
        fn trie_agrees_with_reference(
            filters in proptest::collection::vec((filter(), proptest::option::of(0u8..2)), 1..30),
            subjects in proptest::collection::vec(subject(), 1..20),
            remove_mask in any::<u32>(),
        ) {
            for mut sl in [Sublist::new(), Sublist::without_cache()] {
                let mut live = Vec::new();
                for (i, (f, q)) in filters.iter().enumerate() {
                    let q = q.map(|n| format!("q{n}"));
                    sl.insert(f.as_bytes(), q.as_deref().map(str::as_bytes), i as SubId).unwrap();
                    live.push((i as SubId, f.clone(), q));
                }
                for s in &subjects { sl.matches(s.as_bytes()); }
                live.retain(|(id, f, q)| {
                    if remove_mask & (1 << (id % 32)) != 0 {
                        assert!(sl.remove(f.as_bytes(), q.as_deref().map(str::as_bytes), *id));
                        false
                    } else { true }
                });
                prop_assert_eq!(sl.len(), live.len());
                for s in &subjects {
                    let r = sl.matches(s.as_bytes());
                    let want_plain: Vec<SubId> = live.iter()
                        .filter(|(_, f, q)| q.is_none() && subject_matches(f.as_bytes(), s.as_bytes()))
                        .map(|(id, _, _)| *id).collect();
                    prop_assert_eq!(sorted(r.plain.clone()), want_plain);
                    for qn in ["q0", "q1"] {
                        let want: Vec<SubId> = live.iter()
                            .filter(|(_, f, q)| q.as_deref() == Some(qn) && subject_matches(f.as_bytes(), s.as_bytes()))
                            .map(|(id, _, _)| *id).collect();
                        let got = r.queues.iter().find(|g| &g.name[..] == qn.as_bytes())
                            .map(|g| sorted(g.members.clone())).unwrap_or_default();
                        prop_assert_eq!(got, want);
                    }
                }
            }
        }
    }
}
