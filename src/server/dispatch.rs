//! What each client operation does: CONNECT, SUB, UNSUB, PUB/HPUB and the
//! fan-out of a message to its subscribers, PING/PONG.
//!
//! These are methods on [`Server`] because an operation of one client
//! reaches the sublist, the subscription slab and other clients' outbound
//! buffers. I/O stays in the `server` module: here bytes are only appended to
//! buffers, and every client written to is put on the turn's flush list.

use crate::protocol::error::ProtoError;
use crate::protocol::parser::{Op, Publish};
use crate::protocol::wire::{self, ConnectInfo};
use crate::server::client::CloseReason;
use crate::server::{Server, Subscription};
use crate::sublist::{self, SubId};
use log::debug;
use std::num::NonZeroU64;
use std::time::Instant;

/// Bytes a MSG frame adds around subject, sid, reply and data.
const MSG_FRAME_OVERHEAD: usize = 40;

impl Server {
    /// Carries out one operation of client `key`.
    pub(crate) fn dispatch(&mut self, key: usize, op: Op<'_>) -> Result<(), ProtoError> {
        let auth_required = self.config.auth.required();
        let Some(client) = self.clients.get_mut(key) else {
            return Ok(());
        };
        if auth_required && !client.connected && !matches!(op, Op::Connect(_)) {
            // With a no_auth_user, a first operation other than CONNECT
            // logs in as that user (nats-server, for telnet demos).
            self.no_auth_login(key)?;
        }
        let Some(client) = self.clients.get_mut(key) else {
            return Ok(());
        };
        match op {
            Op::Pub(p) => self.publish(key, &p),
            Op::Ping => {
                client.out.extend_from_slice(wire::PONG);
                self.mark_dirty(key);
                Ok(())
            }
            Op::Pong => {
                client.mon.pong(Instant::now());
                client.pings_out = 0;
                client.answered_ping = true;
                Ok(())
            }
            Op::Sub {
                subject,
                queue,
                sid,
            } => self.subscribe(key, subject, queue, sid),
            Op::Unsub { sid, max } => {
                self.unsubscribe(key, sid, max);
                self.ok(key);
                Ok(())
            }
            Op::Connect(json) => self.connect(key, json),
            Op::Info(json) => {
                // A client's INFO is ignored when it is valid JSON.
                match serde_json::from_slice::<serde::de::IgnoredAny>(json) {
                    Ok(_) => Ok(()),
                    Err(_) => Err(ProtoError::Malformed),
                }
            }
            Op::Ok => Ok(()),
            Op::Err(text) => {
                debug!(
                    "{} sent -ERR {}; closing",
                    client.describe(),
                    String::from_utf8_lossy(text)
                );
                Err(ProtoError::Malformed)
            }
        }
    }

    /// `+OK` for a verbose client.
    fn ok(&mut self, key: usize) {
        if let Some(client) = self.clients.get_mut(key)
            && client.opts.verbose
        {
            client.out.extend_from_slice(wire::OK);
            self.mark_dirty(key);
        }
    }

    /// CONNECT: options, protocol checks and authentication.
    fn connect(&mut self, key: usize, json: &[u8]) -> Result<(), ProtoError> {
        let info = ConnectInfo::decode(json).ok_or(ProtoError::Malformed)?;
        let Some(client) = self.clients.get_mut(key) else {
            return Ok(());
        };
        if info.account.is_some() || info.new_account.is_some() {
            return Err(ProtoError::AuthorizationViolation);
        }
        let mut creds = crate::auth::Credentials::from_connect(&info);
        if let Some(tls) = &client.tls {
            creds.cert_names = tls.peer_names.clone();
        }
        if let Some(hash) = client.verified_hash.take() {
            creds.mark_verified(&hash);
        }
        let Some(authenticated) = self
            .config
            .auth
            .authenticate_nonblocking(&mut creds, client.nonce.as_deref())
        else {
            return match creds.bcrypt_needed.take() {
                Some((hash, given)) => self.defer_connect(key, json, hash, given),
                None => Err(ProtoError::AuthorizationViolation),
            };
        };
        let Some(client) = self.clients.get_mut(key) else {
            return Ok(());
        };
        let mut opts = client.opts.clone();
        opts.merge(&info);
        if !(0..=1).contains(&opts.protocol) {
            return Err(ProtoError::InvalidClientProtocol);
        }
        if opts.no_responders && !opts.headers {
            return Err(ProtoError::NoRespondersRequiresHeaders);
        }
        let reconnect = client.connected;
        client.opts = opts;
        client.connected = true;
        client.creds = Some(Box::new(creds));
        crate::server::access::apply_login(client, authenticated);
        client.auth_deadline = None;
        client.next_ping =
            Instant::now() + crate::server::FIRST_PING.min(self.config.ping_interval);
        debug!(
            "{} CONNECT lang={} version={}",
            client.describe(),
            client.opts.lang,
            client.opts.version
        );
        if reconnect {
            // nats-server drops a connection's subscriptions on a second CONNECT.
            self.remove_all_subs(key);
        }
        self.ok(key);
        Ok(())
    }

    /// SUB: checks, then into the sublist.
    fn subscribe(
        &mut self,
        key: usize,
        subject: &[u8],
        queue: Option<&[u8]>,
        sid: &[u8],
    ) -> Result<(), ProtoError> {
        let max_subs = self.config.max_subscriptions;
        let Some(client) = self.clients.get_mut(key) else {
            return Ok(());
        };
        if let Some(perms) = client.perms.as_deref_mut()
            && !perms.can_subscribe(subject, queue)
        {
            return Err(crate::server::access::subscribe_violation(
                client, subject, queue, sid,
            ));
        }
        // nats-server checks the limit first, even for a duplicate sid.
        if max_subs > 0 && client.subs.len() >= max_subs {
            return Err(ProtoError::MaxSubscriptions);
        }
        if client.subs.contains_key(sid) {
            // Duplicate sid: nats-server keeps the first and still says +OK.
            self.ok(key);
            return Ok(());
        }
        if !sublist::is_valid_subject(subject) {
            return Err(ProtoError::InvalidSubject);
        }
        let entry = self.subs.vacant_entry();
        let id = entry.key();
        let Ok(sub_id) = SubId::try_from(id) else {
            return Err(ProtoError::MaxSubscriptions);
        };
        if self.sublist.insert(subject, queue, sub_id).is_err() {
            return Err(ProtoError::InvalidSubject);
        }
        entry.insert(Subscription {
            client: key,
            sid: sid.into(),
            subject: subject.into(),
            queue: queue.map(Into::into),
            delivered: 0,
            max: None,
        });
        client.subs.insert(sid.into(), id);
        client.busy = true;
        self.ok(key);
        if self.jetstream.is_some() {
            self.jetstream_interest(subject);
        }
        Ok(())
    }

    /// UNSUB: now, or after `max` deliveries in total.
    fn unsubscribe(&mut self, key: usize, sid: &[u8], max: Option<u64>) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        let Some(&id) = client.subs.get(sid) else {
            return;
        };
        if let (Some(max), Some(sub)) = (max.and_then(NonZeroU64::new), self.subs.get_mut(id))
            && sub.delivered < max.get()
        {
            sub.max = Some(max);
            return;
        }
        self.remove_sub(id);
    }

    /// Removes one subscription everywhere.
    pub(crate) fn remove_sub(&mut self, id: usize) {
        let Some(sub) = self.subs.try_remove(id) else {
            return;
        };
        self.sublist
            .remove(&sub.subject, sub.queue.as_deref(), id as SubId);
        if let Some(client) = self.clients.get_mut(sub.client) {
            client.subs.remove(&sub.sid);
        }
        if self.jetstream.is_some() {
            self.jetstream_interest(&sub.subject);
        }
    }

    /// Removes every subscription of a client.
    fn remove_all_subs(&mut self, key: usize) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        let ids: Vec<usize> = client.subs.values().copied().collect();
        for id in ids {
            self.remove_sub(id);
        }
    }

    /// PUB/HPUB: checks, `+OK`, then fan-out.
    fn publish(&mut self, key: usize, p: &Publish<'_>) -> Result<(), ProtoError> {
        let Some(client) = self.clients.get_mut(key) else {
            return Ok(());
        };
        if p.header_len.is_some() && !client.opts.headers {
            return Err(ProtoError::Malformed);
        }
        client.in_msgs += 1;
        client.in_bytes += p.data.len() as u64;
        if client.opts.pedantic && !sublist::is_valid_literal_subject(p.subject) {
            // Reported, and the message is still delivered (as nats-server does).
            wire::push_err(&mut client.out, "Invalid Publish Subject");
            if !client.dirty {
                client.dirty = true;
                self.dirty.push(key);
            }
        }
        if let Some(perms) = client.perms.as_deref_mut()
            && !perms.can_publish(p.subject)
        {
            return Err(crate::server::access::publish_violation(client, p.subject));
        }
        self.ok(key);
        let Some(client) = self.clients.get(key) else {
            return Ok(());
        };
        let echo = client.opts.echo;
        let wants_no_responders =
            p.reply.is_some() && client.opts.headers && client.opts.no_responders;
        let answered = self.jetstream.is_some() && self.jetstream_publish(p);
        let delivered = self.route(key, echo, p);
        if delivered == 0 && wants_no_responders && !answered {
            self.no_responders(key, p);
        }
        Ok(())
    }

    /// Delivers a message to every matching plain subscription and one
    /// member of each matching queue group. Returns the number of copies.
    pub(crate) fn route(&mut self, from: usize, echo: bool, p: &Publish<'_>) -> usize {
        self.route_to(from, echo, p.subject, p)
    }

    /// Like [`Server::route`], to the subscribers of `target` while the
    /// message shows `p.subject` (JetStream delivers a stored message to a
    /// pull request's inbox under the subject it was published to).
    pub(crate) fn route_to(
        &mut self,
        from: usize,
        echo: bool,
        target: &[u8],
        p: &Publish<'_>,
    ) -> usize {
        let result = self.sublist.matches(target);
        if result.is_empty() {
            return 0;
        }
        let mut delivered = 0;
        for &id in &result.plain {
            if self.deliver(from, echo, id, p) {
                delivered += 1;
            }
        }
        for group in &result.queues {
            let n = group.members.len();
            let start = group.next_start();
            for i in 0..n {
                let id = group.members[(start + i) % n];
                if self.deliver(from, echo, id, p) {
                    delivered += 1;
                    break;
                }
            }
        }
        delivered
    }

    /// Appends one MSG/HMSG for subscription `id`, if it can take it.
    #[inline]
    fn deliver(&mut self, from: usize, echo: bool, id: SubId, p: &Publish<'_>) -> bool {
        let id = id as usize;
        let Some(sub) = self.subs.get_mut(id) else {
            return false;
        };
        if !echo && sub.client == from {
            return false;
        }
        if sub.max.is_some_and(|max| sub.delivered >= max.get()) {
            return false;
        }
        let target = sub.client;
        let Some(client) = self.clients.get_mut(target) else {
            return false;
        };
        if client.is_closing() {
            return false;
        }
        if let Some(perms) = client.perms.as_deref_mut() {
            // Only for clients with permissions: the deny filter of an
            // overlapping wildcard, and reply subjects for allow_responses.
            if perms.filters_deliveries() && perms.delivery_denied(p.subject) {
                return false;
            }
            if let Some(reply) = p.reply
                && perms.tracks_replies()
            {
                perms.record_reply(reply);
            }
        }
        let (header_len, data) = match p.header_len {
            Some(h) if h > 0 && client.opts.headers => (Some(h), p.data),
            _ => (None, p.payload()),
        };
        let frame = p.subject.len()
            + sub.sid.len()
            + p.reply.map_or(0, <[u8]>::len)
            + data.len()
            + MSG_FRAME_OVERHEAD;
        if client.pending() + frame > self.config.max_pending {
            // Output is flushed once per turn, so what is queued may be
            // only what this turn appended: let the socket take what it
            // can before calling the client slow.
            if client.write_pending(Instant::now()).is_err() {
                self.begin_close(target, CloseReason::WriteError);
                return false;
            }
            if client.pending() + frame > self.config.max_pending {
                self.slow_consumer(target);
                return false;
            }
        }
        wire::push_msg(
            &mut client.out,
            p.subject,
            &sub.sid,
            p.reply,
            header_len,
            data,
        );
        client.out_msgs += 1;
        client.out_bytes += data.len() as u64;
        // A subscriber that is reading but falling behind: slow the
        // publisher down rather than cut the subscriber off (server/backpressure.rs).
        let nearly_full = client.pending()
            > self.config.max_pending / crate::server::STALL_DENOMINATOR
                * crate::server::STALL_NUMERATOR
            && client.last_write_progress.elapsed() < crate::server::STALL_PROGRESS;
        if !client.dirty {
            client.dirty = true;
            self.dirty.push(target);
        }
        if nearly_full {
            self.stall_reader = Some(target);
        }
        sub.delivered += 1;
        if sub.max.is_some_and(|max| max.get() == sub.delivered) {
            self.remove_sub(id);
        }
        true
    }

    /// Answers a request nobody received with the 503 status message, on
    /// the requester's own subscription that matches the reply subject.
    fn no_responders(&mut self, key: usize, p: &Publish<'_>) {
        let Some(reply) = p.reply else {
            return;
        };
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        let subs = &self.subs;
        let sid = client.subs.values().find_map(|&id| {
            let sub = subs.get(id)?;
            (sub.queue.is_none() && sublist::subject_matches(&sub.subject, reply))
                .then(|| sub.sid.clone())
        });
        if let Some(sid) = sid {
            wire::push_no_responders(&mut client.out, reply, &sid, p.subject);
            self.mark_dirty(key);
        }
    }
}
