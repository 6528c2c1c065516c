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
//!
//! # Hashing
//!
//! Every key this module hashes (trie tokens, subjects in the match cache)
//! was chosen by a client, and so are the keys of most of the server's
//! other tables (sids, subjects in the permission caches, reply subjects).
//! With an unseeded hash a client can compute, offline, thousands of keys
//! that land in one bucket; each insert then compares against all the
//! others, and the one thread that serves everyone stalls: 60,000 crafted
//! SUBs took 47 s against 0.08 s for random ones (issue 15).
//!
//! So every hash table keyed by data from the network or from disk uses
//! [`SeededState`]: foldhash (the hasher hashbrown itself defaults to, as
//! fast as the Fx hash used before on short tokens) with a secret seed
//! drawn from the OS once per process and a seed of its own per table.
//! Without the seed no one can predict which keys collide. The aliases
//! [`SeededHashMap`] and [`SeededHashSet`] are what new code should use for
//! such tables (JetStream's per-subject indexes, leaf-node interest, ...);
//! std's SipHash `RandomState` is as safe where speed does not matter.
//! No table keyed by peer or disk data may use an unseeded hasher.

use hashbrown::HashTable;
use slab::Slab;
use smallvec::SmallVec;
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies a subscription; the caller owns the mapping to its details.
pub type SubId = u32;

/// Most cached match results.
const CACHE_MAX: usize = 4096;

/// Once the cache is full, misses are served from a reused scratch result
/// instead of being cached; after this many such misses the cache is
/// emptied so that it follows a workload whose subjects change.
const CACHE_REFRESH_MISSES: u32 = 4 * CACHE_MAX as u32;

/// The hasher of every hash table keyed by data a peer or a file chose
/// (see the module doc): foldhash, seeded from the OS once per process and
/// made distinct per table.
///
/// Use it through [`SeededHashMap`] / [`SeededHashSet`], or build hashes
/// with it directly as the trie does for its edges.
#[derive(Clone, Debug)]
pub struct SeededState(foldhash::fast::SeedableRandomState);

/// The process-wide secret behind every [`SeededState`].
struct ProcessSeed {
    shared: foldhash::SharedSeed,
    /// Mixed with a counter into each table's own seed.
    per_table: u64,
}

/// The process's seed, drawn from the OS on first use.
fn process_seed() -> &'static ProcessSeed {
    static SEED: OnceLock<ProcessSeed> = OnceLock::new();
    SEED.get_or_init(|| {
        let mut bytes = [0u8; 16];
        if getrandom::fill(&mut bytes).is_err() {
            // No OS randomness (not seen on Linux): std's RandomState
            // keys, which the standard library takes from the OS its own way.
            for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
                let word = std::hash::RandomState::new().hash_one(i);
                chunk.copy_from_slice(&word.to_le_bytes());
            }
        }
        let (a, b) = bytes.split_at(8);
        let word = |half: &[u8]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(half);
            u64::from_le_bytes(w)
        };
        ProcessSeed {
            shared: foldhash::SharedSeed::from_u64(word(a)),
            per_table: word(b),
        }
    })
}

impl Default for SeededState {
    /// A new table's state: the process's secret, and a seed of its own (so
    /// the order of one table says nothing about another's).
    fn default() -> Self {
        static TABLES: AtomicU64 = AtomicU64::new(0);
        let seed = process_seed();
        let n = TABLES.fetch_add(1, Ordering::Relaxed);
        // An odd multiplier: distinct counters give distinct seeds.
        let table = seed.per_table ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        SeededState(foldhash::fast::SeedableRandomState::with_seed(
            table,
            &seed.shared,
        ))
    }
}

impl BuildHasher for SeededState {
    type Hasher = foldhash::fast::FoldHasher<'static>;

    #[inline]
    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

/// `HashMap` with [`SeededState`]: the map for keys from the network or disk.
pub type SeededHashMap<K, V> = HashMap<K, V, SeededState>;

/// `HashSet` with [`SeededState`].
pub type SeededHashSet<K> = HashSet<K, SeededState>;

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

/// Key of a node in [`Sublist::nodes`]; the root is 0, so 0 also means
/// "no node" in the wildcard links.
type NodeId = u32;

/// The root node's id.
const ROOT: NodeId = 0;

/// A subject token, stored inline when it is short (most are) so that the
/// trie makes no allocation per token.
#[derive(Debug, Clone)]
enum Token {
    Inline { len: u8, bytes: [u8; 22] },
    Heap(Box<[u8]>),
}

impl Token {
    fn new(token: &[u8]) -> Token {
        let mut bytes = [0u8; 22];
        match bytes.get_mut(..token.len()) {
            Some(prefix) => {
                prefix.copy_from_slice(token);
                Token::Inline {
                    len: token.len() as u8,
                    bytes,
                }
            }
            None => Token::Heap(token.into()),
        }
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            Token::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Token::Heap(b) => b,
        }
    }
}

/// The plain subscriptions of a node: none or one without allocating, and
/// only a pointer in the node otherwise (16 bytes instead of a `Vec`'s 24:
/// there are two nodes per typical subscription).
#[derive(Debug, Default)]
enum Members {
    #[default]
    None,
    One(SubId),
    // The Box is the point: it keeps the enum at 16 bytes.
    Many(Box<IdList>),
}

/// Lists this long get a position index.
const INDEX_FROM: usize = 32;

/// Subscription ids in no particular order: a `Vec`, plus a position index
/// once it is [`INDEX_FROM`] long, so that removing one of many costs O(1)
/// rather than a scan (a connection with tens of thousands of
/// subscriptions on one subject closing would otherwise cost the square).
#[derive(Debug, Default, Clone)]
struct IdList {
    ids: Vec<SubId>,
    pos: Option<SeededHashMap<SubId, u32>>,
}

impl IdList {
    fn of(ids: Vec<SubId>) -> IdList {
        let mut l = IdList { ids, pos: None };
        l.index_if_long();
        l
    }

    fn index_if_long(&mut self) {
        if self.pos.is_none() && self.ids.len() >= INDEX_FROM {
            let mut pos = SeededHashMap::default();
            for (i, &id) in self.ids.iter().enumerate() {
                pos.insert(id, i as u32);
            }
            self.pos = Some(pos);
        }
    }

    fn push(&mut self, id: SubId) {
        if let Some(p) = &mut self.pos {
            p.insert(id, self.ids.len() as u32);
        }
        self.ids.push(id);
        self.index_if_long();
    }

    /// Removes `id`; whether it was there.
    fn remove(&mut self, id: SubId) -> bool {
        let i = match &self.pos {
            Some(p) => match p.get(&id) {
                Some(&i) => i as usize,
                None => return false,
            },
            None => match self.ids.iter().position(|&x| x == id) {
                Some(i) => i,
                None => return false,
            },
        };
        self.ids.swap_remove(i);
        if let Some(p) = &mut self.pos {
            p.remove(&id);
            if let Some(&moved) = self.ids.get(i) {
                p.insert(moved, i as u32);
            }
        }
        true
    }

    fn as_slice(&self) -> &[SubId] {
        &self.ids
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

impl Members {
    fn push(&mut self, id: SubId) {
        *self = match std::mem::take(self) {
            Members::None => Members::One(id),
            Members::One(first) => Members::Many(Box::new(IdList::of(vec![first, id]))),
            Members::Many(mut v) => {
                v.push(id);
                Members::Many(v)
            }
        };
    }

    fn remove(&mut self, id: SubId) -> bool {
        match self {
            Members::None => false,
            Members::One(x) if *x == id => {
                *self = Members::None;
                true
            }
            Members::One(_) => false,
            Members::Many(v) => {
                if !v.remove(id) {
                    return false;
                }
                if v.len() == 1 {
                    *self = Members::One(v.as_slice()[0]);
                }
                true
            }
        }
    }

    fn as_slice(&self) -> &[SubId] {
        match self {
            Members::None => &[],
            Members::One(x) => std::slice::from_ref(x),
            Members::Many(v) => v.as_slice(),
        }
    }

    fn is_empty(&self) -> bool {
        matches!(self, Members::None)
    }
}

/// The queue groups of a node: name and members.
#[derive(Debug, Default)]
struct QueueGroups {
    list: Vec<(Token, IdList)>,
    /// Name → position, once there are [`INDEX_FROM`] groups (a client
    /// subscribing one subject under thousands of group names would
    /// otherwise make every SUB and UNSUB scan them all).
    by_name: Option<SeededHashMap<Box<[u8]>, u32>>,
}

impl QueueGroups {
    fn find(&self, q: &[u8]) -> Option<usize> {
        match &self.by_name {
            Some(m) => m.get(q).map(|&i| i as usize),
            None => self.list.iter().position(|(name, _)| name.as_bytes() == q),
        }
    }

    fn push(&mut self, name: &[u8], members: IdList) {
        if let Some(m) = &mut self.by_name {
            m.insert(name.into(), self.list.len() as u32);
        }
        self.list.push((Token::new(name), members));
        if self.by_name.is_none() && self.list.len() >= INDEX_FROM {
            let mut m = SeededHashMap::default();
            for (i, (n, _)) in self.list.iter().enumerate() {
                m.insert(n.as_bytes().into(), i as u32);
            }
            self.by_name = Some(m);
        }
    }

    fn swap_remove(&mut self, i: usize) {
        let (name, _) = self.list.swap_remove(i);
        if let Some(m) = &mut self.by_name {
            m.remove(name.as_bytes());
            if let Some((moved, _)) = self.list.get(i) {
                m.insert(moved.as_bytes().into(), i as u32);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    fn iter(&self) -> std::slice::Iter<'_, (Token, IdList)> {
        self.list.iter()
    }
}

/// A trie node: the subscriptions whose subject ends here, and links to
/// the next token position. Literal children are not stored in the node but
/// as edges in the sublist's one edge table, so a node with one child costs
/// no extra map.
#[derive(Debug, Default)]
struct Node {
    plain: Members,
    queues: Option<Box<QueueGroups>>,
    /// The `*` child, or [`ROOT`] for none.
    pwc: NodeId,
    /// The `>` child, or [`ROOT`] for none.
    fwc: NodeId,
    /// Number of literal edges leaving this node.
    literal_children: u32,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.plain.is_empty()
            && self.queues.is_none()
            && self.pwc == ROOT
            && self.fwc == ROOT
            && self.literal_children == 0
    }
}

/// A literal edge: from `parent` through `token` to `child`.
#[derive(Debug)]
struct Edge {
    parent: NodeId,
    child: NodeId,
    token: Token,
}

/// The hash of an edge key.
#[inline]
fn edge_hash(state: &SeededState, parent: NodeId, token: &[u8]) -> u64 {
    let mut h = state.build_hasher();
    h.write_u32(parent);
    h.write(token);
    h.finish()
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
    /// Subscriptions inserted since the start.
    pub inserts: u64,
    /// Subscriptions removed since the start.
    pub removes: u64,
    /// Most subscriptions and queue groups in one cached result.
    pub max_fanout: usize,
    /// Mean subscriptions and queue groups per cached result.
    pub avg_fanout: f64,
}

/// The subscription trie with its match cache.
#[derive(Debug)]
pub struct Sublist {
    /// Every trie node; the root has id 0.
    nodes: Slab<Node>,
    /// Every literal edge of the trie.
    edges: HashTable<Edge>,
    /// Hashes the edges' keys.
    hasher: SeededState,
    count: usize,
    /// Bumped on every insert and remove; the cache belongs to one generation.
    generation: u64,
    cache: SeededHashMap<Box<[u8]>, Rc<MatchResult>>,
    /// Seeds the rotation of new queue-group results so that a rebuilt
    /// cache entry does not always start with the same member.
    rotation_seed: u32,
    cache_enabled: bool,
    /// Misses since the cache was last found full.
    misses_while_full: u32,
    /// The last uncached result, reused when its previous holder dropped it
    /// (so a miss on a full cache allocates nothing).
    scratch: Option<Rc<MatchResult>>,
    cache_hits: u64,
    cache_misses: u64,
    inserts: u64,
    removes: u64,
}

impl Sublist {
    /// An empty sublist with the match cache on.
    pub fn new() -> Self {
        Sublist::with_cache(true)
    }

    /// An empty sublist that walks the trie on every match (for benchmarks
    /// and tests of the trie itself).
    pub fn without_cache() -> Self {
        Sublist::with_cache(false)
    }

    fn with_cache(cache_enabled: bool) -> Self {
        let mut nodes = Slab::new();
        nodes.insert(Node::default());
        Sublist {
            nodes,
            edges: HashTable::new(),
            hasher: SeededState::default(),
            count: 0,
            generation: 0,
            cache: SeededHashMap::default(),
            rotation_seed: 0,
            cache_enabled,
            misses_while_full: 0,
            scratch: None,
            cache_hits: 0,
            cache_misses: 0,
            inserts: 0,
            removes: 0,
        }
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

    /// Counters for monitoring. The fan-out figures walk the cache (as
    /// nats-server's do), so the publish path pays nothing for them.
    pub fn stats(&self) -> SublistStats {
        let (mut total, mut max) = (0usize, 0usize);
        for result in self.cache.values() {
            let fanout = result.plain.len() + result.queues.len();
            total += fanout;
            max = max.max(fanout);
        }
        SublistStats {
            count: self.count,
            cache_len: self.cache.len(),
            cache_hits: self.cache_hits,
            cache_misses: self.cache_misses,
            inserts: self.inserts,
            removes: self.removes,
            max_fanout: max,
            avg_fanout: if self.cache.is_empty() {
                0.0
            } else {
                total as f64 / self.cache.len() as f64
            },
        }
    }

    fn changed(&mut self) {
        self.generation += 1;
        self.misses_while_full = 0;
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
        let mut node = ROOT;
        for token in tokens(subject) {
            node = self.child_or_insert(node, token);
        }
        let Some(leaf) = self.nodes.get_mut(node as usize) else {
            return Err(InvalidSubject);
        };
        match queue {
            None => leaf.plain.push(id),
            Some(q) => {
                let groups = leaf.queues.get_or_insert_with(Default::default);
                match groups.find(q) {
                    Some(i) => groups.list[i].1.push(id),
                    None => groups.push(q, IdList::of(vec![id])),
                }
            }
        }
        self.count += 1;
        self.inserts += 1;
        self.changed();
        Ok(())
    }

    /// Removes subscription `id` previously inserted with the same subject
    /// and queue. Returns false if it was not there.
    pub fn remove(&mut self, subject: &[u8], queue: Option<&[u8]>, id: SubId) -> bool {
        // The path from the root to the subscription's node.
        let mut path: SmallVec<[(NodeId, &[u8]); 16]> = SmallVec::new();
        let mut node = ROOT;
        for token in tokens(subject) {
            let Some(child) = self.child(node, token) else {
                return false;
            };
            path.push((child, token));
            node = child;
        }
        let Some(leaf) = self.nodes.get_mut(node as usize) else {
            return false;
        };
        let removed = match queue {
            None => leaf.plain.remove(id),
            Some(q) => match leaf.queues.as_deref_mut() {
                Some(groups) => match groups.find(q) {
                    Some(i) => {
                        let members = &mut groups.list[i].1;
                        let found = members.remove(id);
                        if members.is_empty() {
                            groups.swap_remove(i);
                        }
                        if groups.is_empty() {
                            leaf.queues = None;
                        }
                        found
                    }
                    None => false,
                },
                None => false,
            },
        };
        if !removed {
            return false;
        }
        self.prune(&path);
        self.count -= 1;
        self.removes += 1;
        self.changed();
        true
    }

    /// The child of `node` for `token`, if any.
    #[inline]
    fn child(&self, node: NodeId, token: &[u8]) -> Option<NodeId> {
        let n = self.nodes.get(node as usize)?;
        let child = match token {
            b"*" => n.pwc,
            b">" => n.fwc,
            _ => {
                if n.literal_children == 0 {
                    return None;
                }
                return self
                    .edges
                    .find(edge_hash(&self.hasher, node, token), |e| {
                        e.parent == node && e.token.as_bytes() == token
                    })
                    .map(|e| e.child);
            }
        };
        (child != ROOT).then_some(child)
    }

    /// The child of `node` for `token`, created if missing.
    fn child_or_insert(&mut self, node: NodeId, token: &[u8]) -> NodeId {
        if let Some(child) = self.child(node, token) {
            return child;
        }
        let child = self.nodes.insert(Node::default()) as NodeId;
        match token {
            b"*" => self.nodes[node as usize].pwc = child,
            b">" => self.nodes[node as usize].fwc = child,
            _ => {
                self.nodes[node as usize].literal_children += 1;
                let edge = Edge {
                    parent: node,
                    child,
                    token: Token::new(token),
                };
                let hasher = &self.hasher;
                self.edges
                    .insert_unique(edge_hash(hasher, node, token), edge, |e| {
                        edge_hash(hasher, e.parent, e.token.as_bytes())
                    });
            }
        }
        child
    }

    /// Removes the emptied nodes at the end of `path` (deepest first).
    fn prune(&mut self, path: &[(NodeId, &[u8])]) {
        for i in (0..path.len()).rev() {
            let (node, token) = path[i];
            if !self.nodes.get(node as usize).is_some_and(Node::is_empty) {
                return;
            }
            self.nodes.remove(node as usize);
            let parent = if i == 0 { ROOT } else { path[i - 1].0 };
            let Some(p) = self.nodes.get_mut(parent as usize) else {
                return;
            };
            match token {
                b"*" => p.pwc = ROOT,
                b">" => p.fwc = ROOT,
                _ => {
                    p.literal_children -= 1;
                    let hash = edge_hash(&self.hasher, parent, token);
                    if let Ok(entry) = self
                        .edges
                        .find_entry(hash, |e| e.parent == parent && e.token.as_bytes() == token)
                    {
                        entry.remove();
                    }
                }
            }
        }
        if self.count == 1 {
            // The last subscription is going: give the tables back.
            let hasher = &self.hasher;
            self.edges
                .shrink_to_fit(|e| edge_hash(hasher, e.parent, e.token.as_bytes()));
            self.nodes.shrink_to_fit();
        }
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
        let cache_it = self.cache_enabled && self.cache_has_room();
        let mut rc = match self.scratch.take() {
            Some(r) if !cache_it && Rc::strong_count(&r) == 1 => r,
            _ => Rc::new(MatchResult::default()),
        };
        let Some(result) = Rc::get_mut(&mut rc) else {
            // Only reachable if someone kept a weak reference; stay correct.
            return Rc::new(self.walk(subject));
        };
        result.plain.clear();
        result.queues.clear();
        let toks: SmallVec<[&[u8]; 16]> = tokens(subject).collect();
        if toks.iter().all(|t| !t.is_empty()) {
            self.collect_matches(ROOT, &toks, result);
        }
        for group in &mut result.queues {
            self.rotation_seed = self.rotation_seed.wrapping_add(1);
            group.next.set(self.rotation_seed);
        }
        if cache_it {
            self.cache.insert(subject.into(), Rc::clone(&rc));
        } else {
            self.scratch = Some(Rc::clone(&rc));
        }
        rc
    }

    /// Whether a new result may go into the cache, refreshing a full cache
    /// now and then.
    fn cache_has_room(&mut self) -> bool {
        if self.cache.len() < CACHE_MAX {
            return true;
        }
        self.misses_while_full += 1;
        if self.misses_while_full >= CACHE_REFRESH_MISSES {
            self.misses_while_full = 0;
            self.cache.clear();
            return true;
        }
        false
    }

    /// The subscriptions matching `subject`, straight from the trie: the
    /// cache is neither read nor filled (for one-off subjects such as the
    /// reply subject of a request nobody answered).
    pub fn matches_uncached(&self, subject: &[u8]) -> MatchResult {
        self.walk(subject)
    }

    /// A fresh result for `subject` straight from the trie.
    fn walk(&self, subject: &[u8]) -> MatchResult {
        let mut result = MatchResult::default();
        let toks: SmallVec<[&[u8]; 16]> = tokens(subject).collect();
        if toks.iter().all(|t| !t.is_empty()) {
            self.collect_matches(ROOT, &toks, &mut result);
        }
        result
    }
}

impl Sublist {
    /// Collects every subscription at or below `node` matching `toks`.
    fn collect_matches(&self, node: NodeId, toks: &[&[u8]], out: &mut MatchResult) {
        let (Some((token, rest)), Some(n)) = (toks.split_first(), self.nodes.get(node as usize))
        else {
            return;
        };
        if n.fwc != ROOT {
            self.add_node(n.fwc, out);
        }
        if n.pwc != ROOT {
            self.descend(n.pwc, rest, out);
        }
        if n.literal_children > 0 {
            let hit = self.edges.find(edge_hash(&self.hasher, node, token), |e| {
                e.parent == node && e.token.as_bytes() == *token
            });
            if let Some(edge) = hit {
                self.descend(edge.child, rest, out);
            }
        }
    }

    /// Continues a match into `node`: it matches if no tokens remain.
    #[inline]
    fn descend(&self, node: NodeId, rest: &[&[u8]], out: &mut MatchResult) {
        if rest.is_empty() {
            self.add_node(node, out);
        } else {
            self.collect_matches(node, rest, out);
        }
    }

    /// Adds a node's subscriptions to a result, merging queue groups by name.
    fn add_node(&self, node: NodeId, out: &mut MatchResult) {
        let Some(n) = self.nodes.get(node as usize) else {
            return;
        };
        out.plain.extend_from_slice(n.plain.as_slice());
        let Some(groups) = n.queues.as_deref() else {
            return;
        };
        if out.queues.is_empty() {
            // A node's group names are distinct: nothing to merge (and no
            // search per group, which made a miss on a subject with many
            // groups quadratic).
            out.queues
                .extend(groups.iter().map(|(name, members)| QueueGroup {
                    name: name.as_bytes().into(),
                    members: members.as_slice().to_vec(),
                    next: Cell::new(0),
                }));
            return;
        }
        for (name, members) in groups.iter() {
            match out
                .queues
                .iter_mut()
                .find(|g| &g.name[..] == name.as_bytes())
            {
                Some(group) => group.members.extend_from_slice(members.as_slice()),
                None => out.queues.push(QueueGroup {
                    name: name.as_bytes().into(),
                    members: members.as_slice().to_vec(),
                    next: Cell::new(0),
                }),
            }
        }
    }
}

impl Default for Sublist {
    fn default() -> Self {
        Sublist::new()
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
    fn id_list_removes_any_member_and_keeps_the_rest() {
        let mut l = IdList::default();
        for id in 0..1000 {
            l.push(id);
        }
        assert!(l.pos.is_some(), "long lists are indexed");
        // Remove in a scrambled order; the rest is always exactly there.
        let mut gone = std::collections::BTreeSet::new();
        for k in 0..1000u32 {
            let id = (k * 617) % 1000;
            assert!(l.remove(id));
            assert!(!l.remove(id), "twice");
            gone.insert(id);
            if k % 97 == 0 {
                let mut left: Vec<SubId> = l.as_slice().to_vec();
                left.sort_unstable();
                let want: Vec<SubId> = (0..1000).filter(|i| !gone.contains(i)).collect();
                assert_eq!(left, want);
            }
        }
        assert!(l.is_empty());
    }

    #[test]
    fn many_subscriptions_on_one_subject_come_and_go() {
        let mut s = Sublist::new();
        for id in 0..5000 {
            s.insert(b"same.subject", None, id).unwrap();
            s.insert(b"same.subject", Some(b"q"), 10_000 + id).unwrap();
        }
        for id in (0..5000).rev().step_by(2) {
            assert!(s.remove(b"same.subject", None, id));
            assert!(s.remove(b"same.subject", Some(b"q"), 10_000 + id));
        }
        let r = s.matches(b"same.subject");
        assert_eq!(r.plain.len(), 2500);
        assert_eq!(r.queues[0].members.len(), 2500);
        assert!(r.plain.iter().all(|id| id % 2 == 0));
    }

    #[test]
    fn many_queue_groups_on_one_subject() {
        let mut s = Sublist::new();
        for id in 0..3000u32 {
            let q = format!("g{id}");
            s.insert(b"one", Some(q.as_bytes()), id).unwrap();
            s.insert(b"one", Some(q.as_bytes()), 10_000 + id).unwrap();
        }
        for id in (0..3000u32).step_by(3) {
            let q = format!("g{id}");
            assert!(s.remove(b"one", Some(q.as_bytes()), id));
            assert!(s.remove(b"one", Some(q.as_bytes()), 10_000 + id));
            assert!(!s.remove(b"one", Some(q.as_bytes()), id));
        }
        let r = s.matches(b"one");
        assert_eq!(r.queues.len(), 2000);
        for g in &r.queues {
            let n: u32 = std::str::from_utf8(&g.name[1..]).unwrap().parse().unwrap();
            assert_ne!(n % 3, 0);
            let mut m = g.members.clone();
            m.sort_unstable();
            assert_eq!(m, vec![n, 10_000 + n]);
        }
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
            assert_eq!(sl.nodes.len(), 1, "trie left nodes behind: {:?}", sl.nodes);
            assert_eq!(sl.edges.len(), 0);
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

    /// The Fx hash the trie used before issue 15, for one edge key: the
    /// parent, then the token in 8-byte little-endian words, then a fold.
    fn old_fx_edge_hash(parent: NodeId, token: &[u8]) -> u64 {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let add = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(K);
        let mut h = add(0, u64::from(parent));
        for chunk in token.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            h = add(h, u64::from_le_bytes(word));
        }
        (h ^ (h >> 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (h >> 29)
    }

    /// 16-byte tokens that all collide under [`old_fx_edge_hash`] below the
    /// root: the second word cancels what the first did to the state.
    fn old_fx_colliding_tokens(n: u64) -> Vec<[u8; 16]> {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        (0..n)
            .map(|i| {
                // An odd multiplier: distinct first words.
                let w0 = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                let w1 = w0.wrapping_mul(K).rotate_left(5) ^ 0x1234_5678;
                let mut t = [0u8; 16];
                t[..8].copy_from_slice(&w0.to_le_bytes());
                t[8..].copy_from_slice(&w1.to_le_bytes());
                t
            })
            .collect()
    }

    #[test]
    fn each_table_has_its_own_seed() {
        let (a, b) = (Sublist::new(), Sublist::new());
        for token in [
            &b"foo"[..],
            b"0123456789abcdef",
            b"x",
            b"a-much-longer-token-than-16",
        ] {
            assert_ne!(
                edge_hash(&a.hasher, ROOT, token),
                edge_hash(&b.hasher, ROOT, token),
                "two tries hash {token:?} alike"
            );
        }
        let (x, y) = (SeededState::default(), SeededState::default());
        assert_ne!(x.hash_one(b"foo"), y.hash_one(b"foo"));
        // One table hashes consistently.
        assert_eq!(x.hash_one(b"foo"), x.hash_one(b"foo"));
    }

    #[test]
    fn keys_built_to_collide_under_fx_spread_out() {
        let tokens = old_fx_colliding_tokens(4096);
        let old: HashSet<u64> = tokens.iter().map(|t| old_fx_edge_hash(ROOT, t)).collect();
        assert_eq!(old.len(), 1, "the generator no longer matches the old hash");
        let sl = Sublist::new();
        let new: Vec<u64> = tokens
            .iter()
            .map(|t| edge_hash(&sl.hasher, ROOT, t))
            .collect();
        let distinct: HashSet<u64> = new.iter().copied().collect();
        assert_eq!(distinct.len(), tokens.len());
        // The low bits pick the bucket: 4096 random keys fill about 2589 of
        // 4096 buckets (1 - 1/e); colliding keys would fill one.
        let buckets: HashSet<u64> = new.iter().map(|h| h & 0xfff).collect();
        assert!(buckets.len() > 2000, "{} buckets", buckets.len());
    }

    #[test]
    fn colliding_tokens_still_match() {
        let mut sl = Sublist::new();
        let tokens: Vec<[u8; 16]> = old_fx_colliding_tokens(2000)
            .into_iter()
            .filter(|t| !t.contains(&b'.'))
            .collect();
        for (id, t) in tokens.iter().enumerate() {
            sl.insert(t, None, id as SubId).unwrap();
        }
        for (id, t) in tokens.iter().enumerate() {
            assert_eq!(sl.matches(t).plain, vec![id as SubId]);
        }
        for (id, t) in tokens.iter().enumerate() {
            assert!(sl.remove(t, None, id as SubId));
        }
        assert!(sl.is_empty());
        assert_eq!(sl.edges.len(), 0);
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
