//! What `/connz` reports about one connection ([`ConnRecord`], taken from a
//! live [`Client`] on request, or when it closes), and the bounded ring of
//! recently closed connections ([`ClosedRing`], `max_closed_clients` long)
//! that `/connz?state=closed` reads; and the per-client monitoring state
//! those records are made from ([`ClientMon`]: start, last activity, RTT).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// One subscription as `/connz?subs=detail` and `/subsz?subs=1` show it.
#[derive(Debug, Clone)]
pub struct SubRecord {
    /// Subject filter.
    pub subject: String,
    /// Queue group, if any.
    pub queue: Option<String>,
    /// The client's sid.
    pub sid: String,
    /// Messages delivered to it.
    pub msgs: u64,
    /// Auto-unsubscribe limit (UNSUB with max), if any.
    pub max: Option<u64>,
    /// Its connection.
    pub cid: u64,
}

/// Byte and message counters of connections.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Messages received from clients.
    pub in_msgs: u64,
    /// Payload bytes received.
    pub in_bytes: u64,
    /// Messages delivered to clients.
    pub out_msgs: u64,
    /// Payload bytes delivered.
    pub out_bytes: u64,
}

/// One connection as `/connz` reports it.
#[derive(Debug, Clone)]
pub struct ConnRecord {
    /// Connection id.
    pub cid: u64,
    /// Peer address.
    pub ip: IpAddr,
    /// Peer port.
    pub port: u16,
    /// When it was accepted.
    pub start: SystemTime,
    /// When it last sent something.
    pub last_activity: SystemTime,
    /// When it closed and why (nats-server's text), for closed ones.
    pub stop: Option<(SystemTime, &'static str)>,
    /// Round trip of the last server PING, once measured.
    pub rtt: Option<Duration>,
    /// Output queued and not yet written.
    pub pending_bytes: usize,
    /// Its counters.
    pub totals: Totals,
    /// Number of subscriptions.
    pub num_subs: usize,
    /// The subscriptions (filled only when asked for, or when it closed).
    pub subs: Vec<SubRecord>,
    /// CONNECT `name`.
    pub name: String,
    /// CONNECT `lang`.
    pub lang: String,
    /// CONNECT `version`.
    pub version: String,
    /// TLS version (`"1.3"`) and cipher suite, for TLS connections.
    pub tls: Option<(&'static str, &'static str)>,
}

impl ConnRecord {
    /// The end of the period `uptime` and `idle` measure: its stop, or `now`.
    pub fn until(&self, now: SystemTime) -> SystemTime {
        self.stop.map_or(now, |(t, _)| t)
    }
}

/// How many subscriptions the closed connections may keep listed in all
/// (about 100 bytes each, plus their subjects). nats-server keeps every
/// subscription of every closed connection; with `max_closed_clients` of
/// 10,000 and clients holding thousands of subscriptions that would be
/// gigabytes, so the oldest records give their lists up first (their
/// `subscriptions` count stays).
pub const CLOSED_SUBS_BUDGET: usize = 64 * 1024;

/// The most recently closed connections, oldest first, at most `max`,
/// listing at most [`CLOSED_SUBS_BUDGET`] subscriptions between them.
#[derive(Debug)]
pub struct ClosedRing {
    max: usize,
    items: VecDeque<ConnRecord>,
    /// Subscriptions listed in `items`.
    subs_kept: usize,
    /// Records before this index have no list left.
    cleared: usize,
    /// The bound on `subs_kept`.
    subs_budget: usize,
}

impl ClosedRing {
    /// An empty ring keeping at most `max` connections.
    pub fn new(max: usize) -> ClosedRing {
        ClosedRing::with_budget(max, CLOSED_SUBS_BUDGET)
    }

    /// An empty ring with its own bound on listed subscriptions.
    pub fn with_budget(max: usize, subs_budget: usize) -> ClosedRing {
        ClosedRing {
            max,
            items: VecDeque::new(),
            subs_kept: 0,
            cleared: 0,
            subs_budget,
        }
    }

    /// Remembers a closed connection, forgetting the oldest when full.
    pub fn push(&mut self, mut record: ConnRecord) {
        if self.max == 0 {
            return;
        }
        while self.items.len() >= self.max {
            self.pop_oldest();
        }
        record.subs.truncate(self.subs_budget);
        // Make room by clearing the oldest lists first.
        while self.subs_kept + record.subs.len() > self.subs_budget
            && self.cleared < self.items.len()
        {
            let old = &mut self.items[self.cleared];
            self.subs_kept -= old.subs.len();
            old.subs = Vec::new();
            self.cleared += 1;
        }
        self.subs_kept += record.subs.len();
        self.items.push_back(record);
    }

    fn pop_oldest(&mut self) {
        if let Some(old) = self.items.pop_front() {
            self.subs_kept -= old.subs.len();
            self.cleared = self.cleared.saturating_sub(1);
        }
    }

    /// Changes the bound (on reload), forgetting the oldest if needed.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
        while self.items.len() > max {
            self.pop_oldest();
        }
    }

    /// The connections, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &ConnRecord> {
        self.items.iter()
    }
}

/// The monitoring state each client carries: when it started, when it was
/// last heard from, and the round trip of the server's PINGs. It sits in
/// every connection's slab slot, so it is kept to 32 bytes: each time is
/// nanoseconds since one process-wide anchor (`clock`).
#[derive(Debug, Clone)]
pub struct ClientMon {
    /// The accept.
    start: u64,
    /// When the last bytes were read from it.
    last_activity: u64,
    /// When the oldest unanswered server PING was sent, plus one (0: none).
    ping_sent: u64,
    /// Round trip of the last answered server PING in nanoseconds (0: not
    /// measured yet).
    rtt: u64,
}

/// The instant and wall-clock time every [`ClientMon`] time counts from
/// (taken once, at the first use).
fn clock() -> (Instant, SystemTime) {
    static ANCHOR: OnceLock<(Instant, SystemTime)> = OnceLock::new();
    *ANCHOR.get_or_init(|| (Instant::now(), SystemTime::now()))
}

/// `t` as nanoseconds since the anchor (saturating at both ends: 584 years
/// fit in a u64).
fn since_anchor(t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(clock().0).as_nanos()).unwrap_or(u64::MAX)
}

/// The wall-clock time of `nanos` after the anchor.
fn wall(nanos: u64) -> SystemTime {
    clock().1 + Duration::from_nanos(nanos)
}

impl ClientMon {
    /// A connection accepted at `now`.
    pub fn new(now: Instant) -> ClientMon {
        let t = since_anchor(now);
        ClientMon {
            start: t,
            last_activity: t,
            ping_sent: 0,
            rtt: 0,
        }
    }

    /// Bytes were read from it at `now`.
    #[inline]
    pub fn touch(&mut self, now: Instant) {
        self.last_activity = since_anchor(now);
    }

    /// The server sent a PING at `now`.
    pub fn ping_sent(&mut self, now: Instant) {
        if self.ping_sent == 0 {
            self.ping_sent = since_anchor(now).saturating_add(1);
        }
    }

    /// The client answered with PONG at `now`: the round trip is measured.
    pub fn pong(&mut self, now: Instant) {
        if self.ping_sent != 0 {
            let sent = self.ping_sent - 1;
            // At least a nanosecond: 0 means "not measured".
            self.rtt = since_anchor(now).saturating_sub(sent).max(1);
            self.ping_sent = 0;
        }
    }

    /// Wall-clock time of the accept.
    pub fn start(&self) -> SystemTime {
        wall(self.start)
    }

    /// Wall-clock time of the last read.
    pub fn last_activity(&self) -> SystemTime {
        wall(self.last_activity)
    }

    /// Round trip of the last answered server PING, once measured.
    pub fn rtt(&self) -> Option<Duration> {
        (self.rtt != 0).then(|| Duration::from_nanos(self.rtt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(cid: u64) -> ConnRecord {
        ConnRecord {
            cid,
            ip: IpAddr::from([127, 0, 0, 1]),
            port: 1,
            start: SystemTime::UNIX_EPOCH,
            last_activity: SystemTime::UNIX_EPOCH,
            stop: Some((SystemTime::UNIX_EPOCH, "Client Closed")),
            rtt: None,
            pending_bytes: 0,
            totals: Totals::default(),
            num_subs: 0,
            subs: Vec::new(),
            name: String::new(),
            lang: String::new(),
            version: String::new(),
            tls: None,
        }
    }

    #[test]
    fn ring_keeps_the_newest() {
        let mut ring = ClosedRing::new(3);
        for cid in 1..=5 {
            ring.push(record(cid));
        }
        let cids: Vec<u64> = ring.iter().map(|r| r.cid).collect();
        assert_eq!(cids, [3, 4, 5]);
        ring.set_max(1);
        assert_eq!(ring.iter().map(|r| r.cid).collect::<Vec<_>>(), [5]);
        ring.set_max(0);
        ring.push(record(6));
        assert_eq!(ring.iter().count(), 0);
    }

    fn with_subs(cid: u64, n: usize) -> ConnRecord {
        let mut r = record(cid);
        r.num_subs = n;
        r.subs = (0..n)
            .map(|i| SubRecord {
                subject: format!("s.{i}"),
                queue: None,
                sid: i.to_string(),
                msgs: 0,
                max: None,
                cid,
            })
            .collect();
        r
    }

    #[test]
    fn listed_subscriptions_are_bounded_oldest_lists_go_first() {
        let mut ring = ClosedRing::with_budget(10, 100);
        ring.push(with_subs(1, 40));
        ring.push(with_subs(2, 40));
        ring.push(with_subs(3, 40));
        let lists: Vec<usize> = ring.iter().map(|r| r.subs.len()).collect();
        assert_eq!(lists, [0, 40, 40], "the oldest list went first");
        assert!(ring.iter().all(|r| r.num_subs == 40), "counts stay");
        ring.push(with_subs(4, 500));
        let lists: Vec<usize> = ring.iter().map(|r| r.subs.len()).collect();
        assert_eq!(lists, [0, 0, 0, 100], "one huge list is cut to the budget");
        assert_eq!(ring.subs_kept, 100);
        // Evicting records keeps the books straight.
        for cid in 5..20 {
            ring.push(with_subs(cid, 10));
        }
        assert_eq!(ring.iter().count(), 10);
        let kept: usize = ring.iter().map(|r| r.subs.len()).sum();
        assert_eq!(kept, ring.subs_kept);
        assert!(kept <= 100);
        assert_eq!(ring.iter().last().map(|r| r.subs.len()), Some(10));
    }

    #[test]
    fn rtt_from_ping_to_pong() {
        // The anchor first: instants before it count as the anchor itself.
        let _ = clock();
        let t0 = Instant::now();
        let mut m = ClientMon::new(t0);
        m.pong(t0 + Duration::from_secs(1));
        assert_eq!(m.rtt(), None, "a PONG without a PING measures nothing");
        m.ping_sent(t0 + Duration::from_millis(10));
        m.ping_sent(t0 + Duration::from_millis(20));
        m.pong(t0 + Duration::from_millis(13));
        assert_eq!(m.rtt(), Some(Duration::from_millis(3)));
        // A second PONG without a new PING changes nothing.
        m.pong(t0 + Duration::from_millis(50));
        assert_eq!(m.rtt(), Some(Duration::from_millis(3)));
        m.touch(t0 + Duration::from_secs(2));
        assert_eq!(
            m.last_activity().duration_since(m.start()).unwrap(),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn client_mon_stays_small() {
        // It is in every connection's slab slot.
        assert_eq!(std::mem::size_of::<ClientMon>(), 32);
    }
}
