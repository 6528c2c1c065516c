//! What happens when a subscriber cannot keep up with its publishers.
//!
//! Two mechanisms, both per connection and never holding up the loop:
//! - a subscriber that is still reading but falls behind (over 3/4 of
//!   `max_pending`) slows its publisher down: the publisher's reads are
//!   deferred a few milliseconds at a time, so TCP makes it wait;
//! - a subscriber whose pending output would pass `max_pending` (one that
//!   stopped reading, or is slower for longer) is cut off as a slow
//!   consumer, and nobody else is slowed down by it.

use super::Server;
use crate::protocol::wire;
use crate::server::client::CloseReason;
use log::warn;
use std::io;
use std::time::{Duration, Instant};

/// How long a publisher's reads are deferred when it has filled a
/// subscriber's buffer past [`STALL_NUMERATOR`]/[`STALL_DENOMINATOR`] of
/// `max_pending` (nats-server pauses such a publisher for 2 ms too). The
/// pause is renewed while that subscriber stays that full, up to
/// [`STALL_MAX`] in all; then the publisher is read again regardless.
pub(super) const STALL: Duration = Duration::from_millis(2);
/// Longest a publisher is held back in one episode.
pub(super) const STALL_MAX: Duration = Duration::from_millis(20);
/// A subscriber counts as reading (and worth waiting for) when its socket
/// took bytes this recently; one that stopped reading is not waited for,
/// and is cut off when it reaches `max_pending`.
pub(crate) const STALL_PROGRESS: Duration = Duration::from_millis(250);
/// The fill level of a subscriber's pending output (as a fraction of
/// `max_pending`) above which its publishers are slowed down.
pub(crate) const STALL_NUMERATOR: usize = 3;
/// See [`STALL_NUMERATOR`].
pub(crate) const STALL_DENOMINATOR: usize = 4;
/// A publisher whose reads are deferred for a subscriber's sake.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stall {
    /// The publisher.
    pub(super) publisher: usize,
    /// The subscriber it nearly filled.
    pub(super) subscriber: usize,
    /// When to look again.
    pub(super) until: Instant,
    /// When the episode started (it lasts at most [`STALL_MAX`]).
    pub(super) since: Instant,
}

impl Server {
    /// Defers reading from a publisher that has nearly filled a subscriber's
    /// buffer, so that the subscriber can catch up instead of being cut off
    /// as a slow consumer. The loop goes on serving everyone else; the
    /// publisher's unread bytes wait in its socket (TCP slows it down), and
    /// it is read again after [`STALL`]. A subscriber that does not read at
    /// all still reaches `max_pending` and is cut off.
    pub(super) fn stall(&mut self, key: usize, subscriber: usize) {
        if let Some(client) = self.clients.get_mut(key) {
            client.read_stalled = true;
            let now = Instant::now();
            self.stalled.push(Stall {
                publisher: key,
                subscriber,
                until: now + STALL,
                since: now,
            });
        }
    }

    /// Reads again from publishers whose pause is over, or renews the
    /// pause while the subscriber is still nearly full, still reading, and
    /// the episode is not too long.
    pub(super) fn resume_stalled(&mut self, now: Instant) {
        if self.stalled.is_empty() {
            return;
        }
        let mut due = Vec::new();
        let mut waiting = Vec::new();
        for stall in std::mem::take(&mut self.stalled) {
            if stall.until > now {
                waiting.push(stall);
            } else if now.duration_since(stall.since) < STALL_MAX
                && self.clients.get(stall.subscriber).is_some_and(|c| {
                    !c.is_closing()
                        && self.nearly_full(c.pending())
                        && now.duration_since(c.last_write_progress) < STALL_PROGRESS
                })
            {
                waiting.push(Stall {
                    until: now + STALL,
                    ..stall
                });
            } else {
                due.push(stall.publisher);
            }
        }
        self.stalled = waiting;
        for key in due {
            if let Some(client) = self.clients.get_mut(key) {
                client.read_stalled = false;
                // Its data may have arrived while paused (no new edge will come).
                self.read_client(key, false);
            }
        }
    }

    /// Whether a subscriber's pending output is high enough to slow its
    /// publishers down.
    #[inline]
    pub(crate) fn nearly_full(&self, pending: usize) -> bool {
        pending > self.config.max_pending / STALL_DENOMINATOR * STALL_NUMERATOR
    }

    /// Cuts off a client whose pending output would pass `max_pending`.
    pub(crate) fn slow_consumer(&mut self, key: usize) {
        self.cut_off_slow(key, CloseReason::SlowConsumerPendingBytes);
    }

    /// Cuts off a client whose socket took nothing for `write_deadline`.
    pub(crate) fn slow_consumer_write_deadline(&mut self, key: usize) {
        self.cut_off_slow(key, CloseReason::SlowConsumerWriteDeadline);
    }

    /// Cuts off a client that cannot keep up. Its pending output is dropped;
    /// one best-effort write tells it why.
    fn cut_off_slow(&mut self, key: usize, reason: CloseReason) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        if client.is_closing() {
            return;
        }
        self.stats.slow_consumers += 1;
        warn!(
            "{} Slow Consumer Detected: {} bytes pending, max_pending {} (slow consumers so far: {})",
            client.describe(),
            client.pending(),
            self.config.max_pending,
            self.stats.slow_consumers
        );
        client.out.clear();
        client.out_pos = 0;
        client.trace_mark = 0;
        if !client.mid_frame && client.tls.is_none() {
            // Only at a frame boundary, or the client would read garbage
            // (and never around a TLS session: it would break the stream).
            let mut note = Vec::new();
            wire::push_err(&mut note, "Slow Consumer");
            let _ = io::Write::write(&mut client.stream, &note);
        }
        self.begin_close(key, reason);
    }
}
