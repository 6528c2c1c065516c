//! Per-user publish and subscribe permissions, with nats-server's semantics.
//!
//! [`Permissions`] is what the configuration says for one user (shared by
//! every connection of that user through an `Arc`); [`ClientPerms`] is the
//! per-connection state built from it: the publish-check cache, the reply
//! subjects the connection may answer (`allow_responses`), and the
//! delivery-time deny filter.
//!
//! The rules, as nats-server applies them (server/client.go):
//!
//! - **Publish**: with an allow list the subject must match one of its
//!   entries; then it must match no deny entry. Results are cached per
//!   connection. A subject refused this way may still be published when it
//!   is the reply subject of a message the connection received and the user
//!   has `allow_responses` (at most `max` replies, within `expires`).
//! - **Subscribe**: the subscription's subject is *matched* against the
//!   entries, its own wildcards taken as literal tokens: allowing `foo.>`
//!   permits `SUB foo.*`, allowing `foo.bar` does not. An entry may carry a
//!   queue group (`"foo.* workers"`): when a queue subscription matches any
//!   queue-scoped entry, its queue must match one of them. Deny wins.
//! - A wildcard subscription that is allowed although a deny entry lies
//!   inside it (`SUB foo.*` with deny `foo.secret`) is accepted, and from
//!   then on messages on denied subjects are filtered out at delivery.

use crate::sublist::SeededHashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Replies a responder may send per request when `allow_responses` gives no `max`.
pub const DEFAULT_RESPONSE_MAX: u64 = 1;
/// How long a reply subject stays open when `allow_responses` gives no `expires`.
pub const DEFAULT_RESPONSE_EXPIRES: Duration = Duration::from_secs(120);

/// Longest subject remembered inline as the connection's last publish.
const LAST_MAX: usize = 64;
/// Cached publish decisions per connection before the cache is cleared.
const PUB_CACHE_MAX: usize = 256;
/// Cached delivery-filter decisions per connection before the cache is cleared.
const DENY_CACHE_MAX: usize = 256;
/// Reply subjects recorded between two prunes of expired or used ones.
const REPLY_PRUNE_COUNT: usize = 4096;
/// Longest time between two prunes of the reply subjects.
const REPLY_PRUNE_INTERVAL: Duration = Duration::from_secs(1);
/// Most reply subjects a connection may hold open at once. Beyond it, the
/// oldest half is forgotten (answering those then is a permissions
/// violation): the map cannot grow with the request rate.
pub const REPLY_MAX: usize = 65_536;

/// One `publish` or `subscribe` section: `allow` and `deny` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectPermission {
    /// Subjects allowed; `None` allows everything not denied. (An empty
    /// list for publish allows nothing, as in nats-server.)
    pub allow: Option<Vec<String>>,
    /// Subjects denied; deny wins over allow.
    pub deny: Vec<String>,
}

/// `allow_responses`: answering the reply subjects of received messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePermission {
    /// Replies allowed per received reply subject; `None` is unlimited.
    pub max: Option<u64>,
    /// How long after receipt a reply is allowed; `None` is forever.
    pub expires: Option<Duration>,
}

impl Default for ResponsePermission {
    fn default() -> Self {
        ResponsePermission {
            max: Some(DEFAULT_RESPONSE_MAX),
            expires: Some(DEFAULT_RESPONSE_EXPIRES),
        }
    }
}

/// A subscribe rule: a subject pattern and, for queue-scoped rules, the
/// queue group (itself possibly a pattern).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SubRule {
    subject: Box<[u8]>,
    queue: Option<Box<[u8]>>,
}

impl SubRule {
    fn parse(entry: &str) -> SubRule {
        let entry = entry.trim();
        match entry.split_once(char::is_whitespace) {
            Some((subject, queue)) => SubRule {
                subject: subject.as_bytes().into(),
                queue: Some(queue.trim().as_bytes().into()),
            },
            None => SubRule {
                subject: entry.as_bytes().into(),
                queue: None,
            },
        }
    }
}

/// One user's permissions, as configured, with the rules prepared for matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    /// The `publish` section as written.
    pub publish: Option<SubjectPermission>,
    /// The `subscribe` section as written.
    pub subscribe: Option<SubjectPermission>,
    /// `allow_responses`.
    pub response: Option<ResponsePermission>,
    pub_allow: Option<Vec<Box<[u8]>>>,
    pub_deny: Vec<Box<[u8]>>,
    /// Only when the allow list is non-empty (an empty one allows all, as in nats-server).
    sub_allow: Option<Vec<SubRule>>,
    sub_deny: Vec<SubRule>,
}

impl Permissions {
    /// Prepares the rules. With `allow_responses` and no publish allow
    /// list, publishing becomes "only what is allowed, plus replies", as
    /// nats-server's `validateResponsePermissions` does it.
    pub fn new(
        publish: Option<SubjectPermission>,
        subscribe: Option<SubjectPermission>,
        response: Option<ResponsePermission>,
    ) -> Permissions {
        let mut publish = publish;
        if response.is_some() {
            let p = publish.get_or_insert_with(SubjectPermission::default);
            p.allow.get_or_insert_with(Vec::new);
        }
        let bytes = |list: &[String]| -> Vec<Box<[u8]>> {
            list.iter().map(|s| s.as_bytes().into()).collect()
        };
        let pub_allow = publish.as_ref().and_then(|p| p.allow.as_deref()).map(bytes);
        let pub_deny = publish.as_ref().map_or_else(Vec::new, |p| bytes(&p.deny));
        let sub_allow = subscribe
            .as_ref()
            .and_then(|s| s.allow.as_deref())
            .filter(|a| !a.is_empty())
            .map(|a| a.iter().map(|e| SubRule::parse(e)).collect());
        let sub_deny = subscribe.as_ref().map_or_else(Vec::new, |s| {
            s.deny.iter().map(|e| SubRule::parse(e)).collect()
        });
        Permissions {
            publish,
            subscribe,
            response,
            pub_allow,
            pub_deny,
            sub_allow,
            sub_deny,
        }
    }

    /// Whether publishing is restricted at all.
    pub fn restricts_publish(&self) -> bool {
        self.pub_allow.is_some() || !self.pub_deny.is_empty()
    }

    /// The publish decision from the allow and deny lists alone.
    pub fn publish_rules_allow(&self, subject: &[u8]) -> bool {
        if let Some(allow) = &self.pub_allow
            && !allow.iter().any(|r| rule_matches(r, subject))
        {
            return false;
        }
        !self.pub_deny.iter().any(|r| rule_matches(r, subject))
    }

    /// nats-server's `canSubscribe`: whether `subject` (with `queue`) may be
    /// subscribed to. The second value says whether the subscription is a
    /// wildcard that contains a denied subject (so deliveries must be filtered).
    pub fn subscribe_check(&self, subject: &[u8], queue: Option<&[u8]>) -> (bool, bool) {
        let mut allowed = true;
        if let Some(allow) = &self.sub_allow {
            let (plain, queues) = match_rules(allow, subject);
            allowed = plain;
            if let Some(q) = queue
                && !queues.is_empty()
            {
                allowed = queue_matches(q, &queues);
            }
        }
        let mut needs_filter = false;
        if allowed && !self.sub_deny.is_empty() {
            let (plain, queues) = match_rules(&self.sub_deny, subject);
            allowed = !plain;
            if let Some(q) = queue
                && !queues.is_empty()
            {
                allowed = !queue_matches(q, &queues);
            }
            if allowed && has_wildcard(subject) {
                needs_filter = self
                    .sub_deny
                    .iter()
                    .any(|d| is_subset_match(&d.subject, subject));
            }
        }
        (allowed, needs_filter)
    }

    /// Whether a message on `subject` is caught by a subscribe deny entry
    /// (the delivery-time filter).
    fn delivery_denied(&self, subject: &[u8]) -> bool {
        self.sub_deny
            .iter()
            .any(|d| d.queue.is_none() && rule_matches(&d.subject, subject))
    }

    /// Every configured subject and queue is well formed; the first bad
    /// entry otherwise.
    pub fn validate(&self) -> Result<(), String> {
        let sections = [self.publish.as_ref(), self.subscribe.as_ref()];
        for (i, section) in sections.into_iter().enumerate() {
            let Some(section) = section else { continue };
            let entries = section.allow.iter().flatten().chain(&section.deny);
            for entry in entries {
                let ok = if i == 0 {
                    crate::sublist::is_valid_subject(entry.as_bytes())
                } else {
                    let rule = SubRule::parse(entry);
                    crate::sublist::is_valid_subject(&rule.subject)
                        && rule
                            .queue
                            .as_deref()
                            .is_none_or(|q| !q.is_empty() && !q.iter().any(u8::is_ascii_whitespace))
                };
                if !ok {
                    return Err(format!(
                        "subject {} is not a valid subject",
                        crate::protocol::error::go_quote(entry)
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A reply subject the connection received, and how often it answered it.
#[derive(Debug, Clone, Copy)]
struct ReplyGrant {
    received: Instant,
    sent: u64,
}

/// A connection's permission state. Built only for users that have
/// permissions: a connection without them carries `None` and pays nothing.
#[derive(Debug)]
pub struct ClientPerms {
    rules: Arc<Permissions>,
    /// Whether publishing is restricted (false: every publish is allowed).
    restricts_publish: bool,
    /// The last subject decided by the allow/deny lists (its length, or
    /// `usize::MAX` for none, and its bytes inline), and the decision: a
    /// publisher usually repeats its subject, and comparing a few bytes in
    /// place is cheaper than hashing them.
    last_len: usize,
    last_allowed: bool,
    last_buf: [u8; LAST_MAX],
    /// subject → allowed, for subjects decided by the allow/deny lists.
    pub_cache: SeededHashMap<Box<[u8]>, bool>,
    /// Reply subjects received, when the user has `allow_responses`.
    replies: Option<SeededHashMap<Box<[u8]>, ReplyGrant>>,
    replies_since_prune: usize,
    last_prune: Instant,
    /// Loaded when a wildcard subscription overlaps a deny entry:
    /// subject → denied, for messages about to be delivered.
    deny_filter: Option<SeededHashMap<Box<[u8]>, bool>>,
}

impl ClientPerms {
    /// The state for a connection of a user with `rules`.
    pub fn new(rules: Arc<Permissions>) -> Box<ClientPerms> {
        Box::new(ClientPerms {
            restricts_publish: rules.restricts_publish(),
            replies: rules.response.map(|_| SeededHashMap::default()),
            rules,
            last_len: usize::MAX,
            last_allowed: false,
            last_buf: [0; LAST_MAX],
            pub_cache: SeededHashMap::default(),
            replies_since_prune: 0,
            last_prune: Instant::now(),
            deny_filter: None,
        })
    }

    /// The rules this state was built from.
    pub fn rules(&self) -> &Arc<Permissions> {
        &self.rules
    }

    /// Whether the connection may publish to `subject` (a cache hit almost always).
    #[inline]
    pub fn can_publish(&mut self, subject: &[u8]) -> bool {
        if !self.restricts_publish {
            return true;
        }
        if subject.len() == self.last_len
            && let Some(last) = self.last_buf.get(..subject.len())
            && same_bytes(last, subject)
        {
            return self.last_allowed;
        }
        self.can_publish_slow(subject)
    }

    fn can_publish_slow(&mut self, subject: &[u8]) -> bool {
        let allowed = match self.pub_cache.get(subject) {
            Some(&allowed) => allowed,
            None => self.rules.publish_rules_allow(subject),
        };
        if !allowed && self.replies.is_some() {
            // Answers are decided per message and never cached.
            return self.take_reply(subject);
        }
        if !self.pub_cache.contains_key(subject) {
            if self.pub_cache.len() >= PUB_CACHE_MAX {
                self.pub_cache.clear();
            }
            self.pub_cache.insert(subject.into(), allowed);
        }
        match self.last_buf.get_mut(..subject.len()) {
            Some(buf) => {
                buf.copy_from_slice(subject);
                self.last_len = subject.len();
                self.last_allowed = allowed;
            }
            None => self.last_len = usize::MAX,
        }
        allowed
    }

    /// Uses one reply allowance for `subject`, if it has one left.
    fn take_reply(&mut self, subject: &[u8]) -> bool {
        let Some(response) = self.rules.response else {
            return false;
        };
        let Some(replies) = &mut self.replies else {
            return false;
        };
        let Some(grant) = replies.get_mut(subject) else {
            return false;
        };
        grant.sent += 1;
        let over = response.max.is_some_and(|max| grant.sent > max);
        let expired = response
            .expires
            .is_some_and(|ttl| grant.received.elapsed() > ttl);
        if over || expired {
            replies.remove(subject);
            return false;
        }
        true
    }

    /// nats-server's `canSubscribe` for this connection; loads the delivery
    /// filter when an allowed wildcard overlaps a deny entry.
    pub fn can_subscribe(&mut self, subject: &[u8], queue: Option<&[u8]>) -> bool {
        let (allowed, needs_filter) = self.rules.subscribe_check(subject, queue);
        if needs_filter && self.deny_filter.is_none() {
            self.deny_filter = Some(SeededHashMap::default());
        }
        allowed
    }

    /// Whether deliveries to this connection are filtered at all.
    #[inline]
    pub fn filters_deliveries(&self) -> bool {
        self.deny_filter.is_some()
    }

    /// Whether a message on `subject` must not be delivered to this
    /// connection (only meaningful when [`Self::filters_deliveries`]).
    pub fn delivery_denied(&mut self, subject: &[u8]) -> bool {
        let Some(cache) = &mut self.deny_filter else {
            return false;
        };
        if let Some(&denied) = cache.get(subject) {
            return denied;
        }
        let denied = self.rules.delivery_denied(subject);
        if cache.len() >= DENY_CACHE_MAX {
            cache.clear();
        }
        cache.insert(subject.into(), denied);
        denied
    }

    /// Whether reply subjects of delivered messages are recorded.
    #[inline]
    pub fn tracks_replies(&self) -> bool {
        self.replies.is_some()
    }

    /// Records that the connection received a message with reply subject `reply`.
    pub fn record_reply(&mut self, reply: &[u8]) {
        let Some(replies) = &mut self.replies else {
            return;
        };
        let now = Instant::now();
        replies.insert(
            reply.into(),
            ReplyGrant {
                received: now,
                sent: 0,
            },
        );
        self.replies_since_prune += 1;
        if self.replies_since_prune > REPLY_PRUNE_COUNT
            || now.duration_since(self.last_prune) > REPLY_PRUNE_INTERVAL
            || self.replies.as_ref().is_some_and(|r| r.len() > REPLY_MAX)
        {
            self.prune_replies(now);
        }
    }

    /// Reply subjects currently open (for tests and monitoring).
    pub fn open_replies(&self) -> usize {
        self.replies.as_ref().map_or(0, |r| r.len())
    }

    /// Drops reply subjects that are used up or expired.
    fn prune_replies(&mut self, now: Instant) {
        let (Some(response), Some(replies)) = (self.rules.response, &mut self.replies) else {
            return;
        };
        replies.retain(|_, g| {
            !(response.max.is_some_and(|max| g.sent >= max)
                || response
                    .expires
                    .is_some_and(|ttl| now.duration_since(g.received) > ttl))
        });
        if replies.len() > REPLY_MAX {
            // Still too many live ones: keep the newer half.
            let mut times: Vec<Instant> = replies.values().map(|g| g.received).collect();
            let mid = times.len() / 2;
            let (_, cutoff, _) = times.select_nth_unstable(mid);
            let cutoff = *cutoff;
            replies.retain(|_, g| g.received >= cutoff);
        }
        self.replies_since_prune = 0;
        self.last_prune = now;
    }
}

/// Equality of two slices of the same length, compared eight bytes at a
/// time in place (no call to `memcmp` for the short subjects of the
/// publish path).
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    #[inline(always)]
    fn w2(s: &[u8], i: usize) -> u16 {
        let mut w = [0u8; 2];
        w.copy_from_slice(&s[i..i + 2]);
        u16::from_ne_bytes(w)
    }
    #[inline(always)]
    fn w4(s: &[u8], i: usize) -> u32 {
        let mut w = [0u8; 4];
        w.copy_from_slice(&s[i..i + 4]);
        u32::from_ne_bytes(w)
    }
    #[inline(always)]
    fn w8(s: &[u8], i: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        u64::from_ne_bytes(w)
    }
    let n = a.len();
    if n != b.len() {
        return false;
    }
    // Two overlapping loads cover every length from 2 to 16.
    match n {
        0 => true,
        1 => a[0] == b[0],
        2..=3 => w2(a, 0) == w2(b, 0) && w2(a, n - 2) == w2(b, n - 2),
        4..=7 => w4(a, 0) == w4(b, 0) && w4(a, n - 4) == w4(b, n - 4),
        _ => {
            let mut i = 0;
            while i + 8 < n {
                if w8(a, i) != w8(b, i) {
                    return false;
                }
                i += 8;
            }
            w8(a, n - 8) == w8(b, n - 8)
        }
    }
}

/// Whether a permission entry (with wildcards) matches a subject whose own
/// tokens are all taken literally, as nats-server's sublist `Match` does:
/// `*` matches any one token (even `*` or `>` themselves, or an empty one),
/// `>` one or more.
pub fn rule_matches(rule: &[u8], subject: &[u8]) -> bool {
    let mut tokens = subject.split(|&b| b == b'.');
    for r in rule.split(|&b| b == b'.') {
        if r == b">" {
            return tokens.next().is_some();
        }
        match tokens.next() {
            Some(t) if r == b"*" || r == t => {}
            _ => return false,
        }
    }
    tokens.next().is_none()
}

/// Whether any token of `subject` is a wildcard.
pub fn has_wildcard(subject: &[u8]) -> bool {
    subject
        .split(|&b| b == b'.')
        .any(|t| t == b"*" || t == b">")
}

/// nats-server's `subjectIsSubsetMatch(subject, test)`: whether every
/// subject matched by `subject` is also matched by `test` (both may hold
/// wildcards).
pub fn is_subset_match(subject: &[u8], test: &[u8]) -> bool {
    let tokens: Vec<&[u8]> = subject.split(|&b| b == b'.').collect();
    let test: Vec<&[u8]> = test.split(|&b| b == b'.').collect();
    for (i, t2) in test.iter().enumerate() {
        let Some(t1) = tokens.get(i) else {
            return false;
        };
        if t2.is_empty() {
            return false;
        }
        if *t2 == b">" {
            return true;
        }
        if t1.is_empty() || *t1 == b">" {
            return false;
        }
        if *t1 == b"*" {
            if *t2 != b"*" {
                return false;
            }
            continue;
        }
        if *t2 != b"*" && t1 != t2 {
            return false;
        }
    }
    tokens.len() == test.len()
}

/// Matches `subject` against `rules`: whether a plain rule matched, and
/// the queues of the queue-scoped rules that matched.
fn match_rules<'r>(rules: &'r [SubRule], subject: &[u8]) -> (bool, Vec<&'r [u8]>) {
    let mut plain = false;
    let mut queues = Vec::new();
    for rule in rules {
        if rule_matches(&rule.subject, subject) {
            match &rule.queue {
                Some(q) => queues.push(&q[..]),
                None => plain = true,
            }
        }
    }
    (plain, queues)
}

/// nats-server's `queueMatches`: the queue equals a rule's queue, or lies
/// within a rule's queue pattern.
fn queue_matches(queue: &[u8], rule_queues: &[&[u8]]) -> bool {
    rule_queues
        .iter()
        .any(|q| *q == queue || (has_wildcard(q) && is_subset_match(queue, q)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn perm(allow: Option<&[&str]>, deny: &[&str]) -> Option<SubjectPermission> {
        Some(SubjectPermission {
            allow: allow.map(list),
            deny: list(deny),
        })
    }

    fn client(p: Permissions) -> Box<ClientPerms> {
        ClientPerms::new(Arc::new(p))
    }

    #[test]
    fn rule_matching_takes_subject_wildcards_literally() {
        assert!(rule_matches(b"foo.*", b"foo.bar"));
        assert!(rule_matches(b"foo.*", b"foo.*"));
        assert!(rule_matches(b"foo.*", b"foo.>"));
        assert!(rule_matches(b"foo.>", b"foo.*"));
        assert!(rule_matches(b"foo.>", b"foo.a.b"));
        assert!(!rule_matches(b"foo.>", b"foo"));
        assert!(!rule_matches(b"foo.bar", b"foo.*"));
        assert!(!rule_matches(b"foo.*", b"foo.a.b"));
        assert!(rule_matches(b">", b"a"));
        assert!(rule_matches(b"a.*.c", b"a..c"));
    }

    #[test]
    fn same_bytes_compares_every_length() {
        let text = b"abcdefghijklmnopqrstuvwxyz0123456789";
        for n in 0..text.len() {
            let a = &text[..n];
            assert!(same_bytes(a, a));
            for i in 0..n {
                let mut b = a.to_vec();
                b[i] ^= 1;
                assert!(!same_bytes(a, &b), "{n} {i}");
            }
        }
        assert!(!same_bytes(b"abc", b"abcd"));
        let long: Vec<u8> = (0..100).collect();
        let mut c = client(Permissions::new(perm(Some(&[">"]), &[]), None, None));
        assert!(c.can_publish(&long));
        assert!(c.can_publish(&long));
    }

    #[test]
    fn subset_match_as_nats_server() {
        assert!(is_subset_match(b"foo.secret", b"foo.*"));
        assert!(is_subset_match(b"foo.secret", b">"));
        assert!(is_subset_match(b"foo.*", b"foo.*"));
        assert!(is_subset_match(b"foo.*", b"*.*"));
        assert!(!is_subset_match(b"foo.*", b"foo.bar"));
        assert!(!is_subset_match(b"*.secret", b"foo.*"));
        assert!(!is_subset_match(b"foo.>", b"foo.*"));
    }

    #[test]
    fn publish_allow_deny_and_cache() {
        let mut c = client(Permissions::new(
            perm(Some(&["telemetry.>"]), &["telemetry.admin.*"]),
            None,
            None,
        ));
        assert!(c.can_publish(b"telemetry.a"));
        assert!(c.can_publish(b"telemetry.a")); // cached
        assert!(!c.can_publish(b"telemetry.admin.x"));
        assert!(!c.can_publish(b"other"));
        assert_eq!(c.pub_cache.len(), 3);
        for i in 0..PUB_CACHE_MAX + 10 {
            assert!(c.can_publish(format!("telemetry.{i}").as_bytes()));
        }
        assert!(c.pub_cache.len() <= PUB_CACHE_MAX);
        // Deny only.
        let mut d = client(Permissions::new(perm(None, &["secret.>"]), None, None));
        assert!(d.can_publish(b"anything"));
        assert!(!d.can_publish(b"secret.x"));
        // Empty publish allow list: nothing.
        let mut e = client(Permissions::new(perm(Some(&[]), &[]), None, None));
        assert!(!e.can_publish(b"a"));
        // No publish section: everything, without touching the cache.
        let mut f = client(Permissions::new(None, perm(Some(&["x"]), &[]), None));
        assert!(f.can_publish(b"a"));
        assert!(f.pub_cache.is_empty());
    }

    #[test]
    fn subscribe_allow_matching() {
        let p = Permissions::new(None, perm(Some(&["foo.>", "bar.baz"]), &[]), None);
        assert!(p.subscribe_check(b"foo.*", None).0);
        assert!(p.subscribe_check(b"foo.a.b", None).0);
        assert!(p.subscribe_check(b"bar.baz", None).0);
        assert!(!p.subscribe_check(b"bar.*", None).0);
        assert!(!p.subscribe_check(b">", None).0);
        // An empty subscribe allow list allows everything (nats-server).
        let p = Permissions::new(None, perm(Some(&[]), &[]), None);
        assert!(p.subscribe_check(b"x", None).0);
    }

    #[test]
    fn queue_scoped_rules() {
        let p = Permissions::new(None, perm(Some(&["foo.* workers", "bar.>"]), &[]), None);
        assert!(p.subscribe_check(b"foo.a", Some(b"workers")).0);
        assert!(!p.subscribe_check(b"foo.a", Some(b"others")).0);
        assert!(!p.subscribe_check(b"foo.a", None).0);
        assert!(p.subscribe_check(b"bar.a", Some(b"any")).0);
        // A plain rule plus a queue rule on the same subjects: the queue must match.
        let p = Permissions::new(None, perm(Some(&["foo.*", "foo.* workers"]), &[]), None);
        assert!(p.subscribe_check(b"foo.a", None).0);
        assert!(p.subscribe_check(b"foo.a", Some(b"workers")).0);
        assert!(!p.subscribe_check(b"foo.a", Some(b"other")).0);
        // Queue patterns.
        let p = Permissions::new(None, perm(Some(&["foo v1.*"]), &[]), None);
        assert!(p.subscribe_check(b"foo", Some(b"v1.a")).0);
        assert!(!p.subscribe_check(b"foo", Some(b"v2.a")).0);
        // Queue-scoped deny.
        let p = Permissions::new(None, perm(None, &["foo.* bad"]), None);
        assert!(!p.subscribe_check(b"foo.a", Some(b"bad")).0);
        assert!(p.subscribe_check(b"foo.a", Some(b"good")).0);
        assert!(p.subscribe_check(b"foo.a", None).0);
    }

    #[test]
    fn deny_wins_and_wildcards_are_filtered() {
        let mut c = client(Permissions::new(
            None,
            perm(Some(&["foo.>"]), &["foo.secret"]),
            None,
        ));
        assert!(!c.can_subscribe(b"foo.secret", None));
        assert!(!c.filters_deliveries());
        assert!(c.can_subscribe(b"foo.bar", None));
        assert!(!c.filters_deliveries());
        assert!(c.can_subscribe(b"foo.*", None));
        assert!(c.filters_deliveries());
        assert!(c.delivery_denied(b"foo.secret"));
        assert!(!c.delivery_denied(b"foo.public"));
        assert!(c.delivery_denied(b"foo.secret")); // cached
        // A deny entry that is itself a wildcard covering the subscription.
        let p = Permissions::new(None, perm(None, &["foo.>"]), None);
        assert!(!p.subscribe_check(b"foo.*", None).0);
    }

    #[test]
    fn responses() {
        let mut c = client(Permissions::new(
            None,
            None,
            Some(ResponsePermission::default()),
        ));
        assert!(c.tracks_replies());
        // allow_responses alone turns publishing into "replies only".
        assert!(!c.can_publish(b"_INBOX.a"));
        c.record_reply(b"_INBOX.a");
        assert!(c.can_publish(b"_INBOX.a"));
        assert!(!c.can_publish(b"_INBOX.a")); // max 1
        // Unlimited replies, no expiry.
        let mut c = client(Permissions::new(
            perm(Some(&["svc.>"]), &[]),
            None,
            Some(ResponsePermission {
                max: None,
                expires: None,
            }),
        ));
        assert!(c.can_publish(b"svc.x"));
        c.record_reply(b"r.1");
        for _ in 0..5 {
            assert!(c.can_publish(b"r.1"));
        }
        // Expired.
        let mut c = client(Permissions::new(
            None,
            None,
            Some(ResponsePermission {
                max: Some(5),
                expires: Some(Duration::from_millis(1)),
            }),
        ));
        c.record_reply(b"r.2");
        std::thread::sleep(Duration::from_millis(5));
        assert!(!c.can_publish(b"r.2"));
    }

    #[test]
    fn validation() {
        let ok = Permissions::new(perm(Some(&["a.>"]), &[]), perm(Some(&["b.* q"]), &[]), None);
        assert!(ok.validate().is_ok());
        let bad = Permissions::new(perm(Some(&["a..b"]), &[]), None, None);
        assert_eq!(
            bad.validate(),
            Err("subject \"a..b\" is not a valid subject".to_string())
        );
        let bad = Permissions::new(None, perm(None, &["a.>.b"]), None);
        assert!(bad.validate().is_err());
    }

    /// A responder flooded with requests it does not answer holds at most
    /// REPLY_MAX open reply subjects; the newest stay answerable.
    #[test]
    fn open_replies_are_bounded() {
        let mut c = client(Permissions::new(
            None,
            None,
            Some(ResponsePermission {
                max: None,
                expires: None,
            }),
        ));
        let n = REPLY_MAX * 3;
        for i in 0..n {
            c.record_reply(format!("_INBOX.{i}").as_bytes());
            assert!(
                c.open_replies() <= REPLY_MAX + 1,
                "at {i}: {}",
                c.open_replies()
            );
        }
        let newest = format!("_INBOX.{}", n - 1);
        assert!(c.can_publish(newest.as_bytes()));
    }
}
