//! Interest bookkeeping for leaf links: how many subscriptions (or queue
//! members) stand behind each subject and queue group, and how many of them
//! came from each link.
//!
//! What a link is told (`LS+`/`LS-`) is the interest of everything *except*
//! that link: local clients and the other links. So each entry keeps a total
//! and the part each link contributed; the server asks, after every change,
//! how the number seen by each link moved, and sends `LS+` when it leaves
//! zero (or, for a queue group, whenever the weight changes) and `LS-` when
//! it returns to zero. Pure data: no sockets, no subscriptions.

use smallvec::SmallVec;
use std::collections::HashMap;

/// A leaf link, by the server's connection key.
pub type LinkId = usize;

/// Subject and optional queue group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    subject: Box<[u8]>,
    queue: Option<Box<[u8]>>,
}

#[derive(Debug, Default)]
struct Entry {
    total: u32,
    by_link: SmallVec<[(LinkId, u32); 2]>,
}

impl Entry {
    fn part_of(&self, link: LinkId) -> u32 {
        self.by_link
            .iter()
            .find(|(l, _)| *l == link)
            .map_or(0, |(_, n)| *n)
    }
}

/// The outcome of one change, for working out what each link must hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Interest before the change.
    pub total_before: u32,
    /// Interest after it.
    pub total_after: u32,
    /// Where the change came from (`None`: a local client).
    pub origin: Option<LinkId>,
    /// What each link contributes after the change.
    pub by_link: SmallVec<[(LinkId, u32); 2]>,
}

impl Applied {
    /// How the interest seen by `link` moved: `(before, after)`, or `None`
    /// when it did not (the change came from that very link).
    pub fn seen_by(&self, link: LinkId) -> Option<(u32, u32)> {
        self.seen_by_except(link, |_| false)
    }

    /// Like [`Applied::seen_by`], also leaving out what the links for which
    /// `hidden` is true contribute (a hub does not hear of another hub's
    /// interest).
    pub fn seen_by_except(
        &self,
        link: LinkId,
        hidden: impl Fn(LinkId) -> bool,
    ) -> Option<(u32, u32)> {
        if self.origin == Some(link) || self.origin.is_some_and(&hidden) {
            return None;
        }
        let own: u32 = self
            .by_link
            .iter()
            .filter(|(l, _)| *l == link || hidden(*l))
            .map(|(_, n)| *n)
            .sum();
        let before = self.total_before.saturating_sub(own);
        let after = self.total_after.saturating_sub(own);
        (before != after).then_some((before, after))
    }
}

/// Subject, queue group and the interest a link sees in them.
pub type Seen<'a> = (&'a [u8], Option<&'a [u8]>, u32);

/// Interest by subject and queue group.
#[derive(Debug, Default)]
pub struct Interest {
    /// std's randomly keyed hasher: the keys come from peers, and this is
    /// off the message path (subscription changes only).
    map: HashMap<Key, Entry>,
}

impl Interest {
    /// An empty book.
    pub fn new() -> Interest {
        Interest::default()
    }

    /// Number of distinct subject/queue keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there is no interest at all.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// A local subscription came (`add`) or went (`!add`).
    pub fn local(&mut self, subject: &[u8], queue: Option<&[u8]>, add: bool) -> Applied {
        let key = Key {
            subject: subject.into(),
            queue: queue.map(Into::into),
        };
        let entry = self.map.entry(key.clone()).or_default();
        let before = entry.total;
        entry.total = if add {
            entry.total.saturating_add(1)
        } else {
            entry.total.saturating_sub(1)
        };
        let applied = Applied {
            total_before: before,
            total_after: entry.total,
            origin: None,
            by_link: entry.by_link.clone(),
        };
        if entry.total == 0 {
            self.map.remove(&key);
        }
        applied
    }

    /// Link `link` now stands for `count` members of this subject/queue
    /// (0: its interest is gone).
    pub fn set_link(
        &mut self,
        subject: &[u8],
        queue: Option<&[u8]>,
        link: LinkId,
        count: u32,
    ) -> Applied {
        let key = Key {
            subject: subject.into(),
            queue: queue.map(Into::into),
        };
        let entry = self.map.entry(key.clone()).or_default();
        let before = entry.total;
        let old = entry.part_of(link);
        entry.total = entry.total.saturating_sub(old).saturating_add(count);
        entry.by_link.retain(|(l, _)| *l != link);
        if count > 0 {
            entry.by_link.push((link, count));
        }
        let applied = Applied {
            total_before: before,
            total_after: entry.total,
            origin: Some(link),
            by_link: entry.by_link.clone(),
        };
        if entry.total == 0 {
            self.map.remove(&key);
        }
        applied
    }

    /// What `link` contributes to this subject/queue.
    pub fn link_part(&self, subject: &[u8], queue: Option<&[u8]>, link: LinkId) -> u32 {
        let key = Key {
            subject: subject.into(),
            queue: queue.map(Into::into),
        };
        self.map.get(&key).map_or(0, |e| e.part_of(link))
    }

    /// Everything `link` should be told about (for the burst after a
    /// handshake): subject, queue and the interest it sees.
    pub fn seen_by(&self, link: LinkId) -> Vec<Seen<'_>> {
        self.seen_by_except(link, |_| false)
    }

    /// Like [`Interest::seen_by`], leaving out what the links for which
    /// `hidden` is true contribute.
    pub fn seen_by_except(&self, link: LinkId, hidden: impl Fn(LinkId) -> bool) -> Vec<Seen<'_>> {
        self.map
            .iter()
            .filter_map(|(k, e)| {
                let own: u32 = e
                    .by_link
                    .iter()
                    .filter(|(l, _)| *l == link || hidden(*l))
                    .map(|(_, n)| *n)
                    .sum();
                let n = e.total.saturating_sub(own);
                (n > 0).then_some((&*k.subject, k.queue.as_deref(), n))
            })
            .collect()
    }
}

/// Whether every subject `subject` (a filter, possibly with wildcards) can
/// match is also matched by `pattern`: a deny rule covering a whole
/// subscription.
pub fn covers(pattern: &[u8], subject: &[u8]) -> bool {
    let mut p = pattern.split(|&b| b == b'.');
    let mut s = subject.split(|&b| b == b'.');
    loop {
        match (p.next(), s.next()) {
            (Some(b">"), Some(_)) => return true,
            (Some(b"*"), Some(t)) if t != b">" => {}
            (Some(pt), Some(st)) if pt == st && st != b"*" && st != b">" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// Whether any pattern in `list` matches the literal `subject`.
pub fn denied(list: &[String], subject: &[u8]) -> bool {
    list.iter()
        .any(|p| crate::sublist::subject_matches(p.as_bytes(), subject))
}

/// Whether any pattern in `list` covers the whole filter `subject`.
pub fn denied_filter(list: &[String], subject: &[u8]) -> bool {
    list.iter().any(|p| covers(p.as_bytes(), subject))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_interest_is_seen_by_every_link() {
        let mut i = Interest::new();
        let a = i.local(b"foo", None, true);
        assert_eq!(a.seen_by(7), Some((0, 1)));
        let a = i.local(b"foo", None, true);
        assert_eq!(a.seen_by(7), Some((1, 2)));
        i.local(b"foo", None, false);
        let a = i.local(b"foo", None, false);
        assert_eq!(a.seen_by(7), Some((1, 0)));
        assert!(i.is_empty());
    }

    #[test]
    fn a_link_never_hears_its_own_interest() {
        let mut i = Interest::new();
        let a = i.set_link(b"foo", Some(b"q"), 1, 3);
        assert_eq!(a.seen_by(1), None);
        assert_eq!(a.seen_by(2), Some((0, 3)));
        let a = i.local(b"foo", Some(b"q"), true);
        assert_eq!(a.seen_by(1), Some((0, 1)));
        assert_eq!(a.seen_by(2), Some((3, 4)));
        assert_eq!(i.seen_by(1), vec![(&b"foo"[..], Some(&b"q"[..]), 1)]);
        assert_eq!(i.seen_by(2), vec![(&b"foo"[..], Some(&b"q"[..]), 4)]);
        let a = i.set_link(b"foo", Some(b"q"), 1, 0);
        assert_eq!(a.seen_by(2), Some((4, 1)));
        assert_eq!(i.link_part(b"foo", Some(b"q"), 1), 0);
        i.local(b"foo", Some(b"q"), false);
        assert!(i.is_empty());
    }

    #[test]
    fn hidden_links_are_left_out() {
        let mut i = Interest::new();
        i.set_link(b"a", None, 1, 1);
        i.local(b"a", None, true);
        let hub2 = |l: LinkId| l == 1;
        assert_eq!(i.seen_by_except(2, hub2), vec![(&b"a"[..], None, 1)]);
        let a = i.local(b"a", None, false);
        assert_eq!(a.seen_by_except(2, hub2), Some((1, 0)));
        assert_eq!(a.seen_by(2), Some((2, 1)), "link 1 still has interest");
        let a = i.set_link(b"b", None, 1, 1);
        assert_eq!(a.seen_by_except(2, hub2), None);
        assert!(i.seen_by_except(2, hub2).is_empty());
    }

    #[test]
    fn deny_rules() {
        assert!(covers(b"private.>", b"private.x"));
        assert!(covers(b"private.>", b"private.*"));
        assert!(covers(b"private.>", b"private.>"));
        assert!(!covers(b"private.>", b"private"));
        assert!(!covers(b"private.x", b">"));
        assert!(!covers(b"private.x", b"private.*"));
        assert!(covers(b"a.*", b"a.b"));
        assert!(covers(b"a.*", b"a.*"));
        assert!(!covers(b"a.*", b"a.>"));
        assert!(denied(&["a.>".into()], b"a.b"));
        assert!(!denied(&["a.>".into()], b"b"));
        assert!(denied_filter(&["a.>".into()], b"a.*"));
    }
}
