//! One client connection: its socket (and TLS session, if any), the partial
//! operation carried between reads, its outbound buffer, the options it sent in CONNECT, its
//! subscriptions by sid, and its keepalive state.
//!
//! A client never touches the sublist or another client: the server reads
//! operations out of it and decides what they do. What lives here is the
//! per-connection bookkeeping and the socket writes.

use crate::auth::permissions::ClientPerms;
use crate::auth::{Credentials, Identity};
use crate::protocol::wire::ConnectInfo;
use crate::sublist::SeededHashMap;
use crate::tls::TlsState;
use mio::net::TcpStream;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

/// Why a connection is being closed (for logs, the closing behaviour, and
/// the `reason` of a closed connection in `/connz`, with nats-server's
/// texts: see [`CloseReason::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed its end.
    ClientClosed,
    /// A socket error while reading.
    ReadError,
    /// A socket error while writing.
    WriteError,
    /// nats-server's state for a client that sent `-ERR` (natrium reports
    /// that as a protocol violation, so this is not used yet).
    ParseError,
    /// Input that is not the protocol (unknown operation, malformed
    /// arguments), or a protocol rule broken (`no_responders` without
    /// `headers`), as nats-server closes them.
    ProtocolViolation,
    /// CONNECT with a `protocol` natrium does not speak.
    BadClientProtocolVersion,
    /// A PUB over `max_payload`.
    MaxPayloadExceeded,
    /// A control line over `max_control_line`.
    MaxControlLineExceeded,
    /// No valid CONNECT within the auth timeout.
    AuthTimeout,
    /// Wrong credentials.
    AuthViolation,
    /// The TLS handshake failed or timed out, or a plain-text client came
    /// to a TLS-only server.
    TlsHandshake,
    /// Unanswered PINGs.
    StaleConnection,
    /// Pending output would pass `max_pending`.
    SlowConsumerPendingBytes,
    /// The socket took nothing for `write_deadline` while output was pending.
    SlowConsumerWriteDeadline,
    /// Over `max_connections`.
    MaxConnections,
    /// The server is shutting down.
    ServerShutdown,
}

impl CloseReason {
    /// Whether output still pending should be flushed before closing.
    /// A slow consumer cannot take it and a broken socket cannot send it.
    /// A client that closed its end may only have half-closed it (as
    /// `printf '...' | nc` does): it still gets its replies, as with
    /// nats-server.
    pub fn flushes(self) -> bool {
        !matches!(
            self,
            CloseReason::ReadError
                | CloseReason::WriteError
                | CloseReason::SlowConsumerPendingBytes
                | CloseReason::SlowConsumerWriteDeadline
        )
    }

    /// nats-server's text for this reason (its `ClosedState` strings, as
    /// `/connz?state=closed` shows them).
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "Client Closed",
            CloseReason::ReadError => "Read Error",
            CloseReason::WriteError => "Write Error",
            CloseReason::ParseError => "Parse Error",
            CloseReason::ProtocolViolation => "Protocol Violation",
            CloseReason::BadClientProtocolVersion => "Bad Client Protocol Version",
            CloseReason::MaxPayloadExceeded => "Maximum Message Payload Exceeded",
            CloseReason::MaxControlLineExceeded => "Maximum Control Line Exceeded",
            CloseReason::AuthTimeout => "Authentication Timeout",
            CloseReason::AuthViolation => "Authentication Failure",
            CloseReason::TlsHandshake => "TLS Handshake Failure",
            CloseReason::StaleConnection => "Stale Connection",
            CloseReason::SlowConsumerPendingBytes => "Slow Consumer (Pending Bytes)",
            CloseReason::SlowConsumerWriteDeadline => "Slow Consumer (Write Deadline)",
            CloseReason::MaxConnections => "Maximum Connections Exceeded",
            CloseReason::ServerShutdown => "Server Shutdown",
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Options a client set in CONNECT, starting from nats-server's defaults.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `+OK` after each command.
    pub verbose: bool,
    /// Strict subject checks on publish.
    pub pedantic: bool,
    /// Receive own messages.
    pub echo: bool,
    /// Understands HPUB/HMSG.
    pub headers: bool,
    /// Wants 503 for requests nobody answers.
    pub no_responders: bool,
    /// Protocol level (0 or 1).
    pub protocol: i64,
    /// Name given by the client, for logs.
    pub name: String,
    /// Client library language and version, for logs.
    pub lang: String,
    /// Client library version, for logs.
    pub version: String,
}

impl Default for ClientOptions {
    /// Before (or without) CONNECT, nats-server treats a client as verbose,
    /// pedantic and echoing: this is what a telnet user sees.
    fn default() -> Self {
        ClientOptions {
            verbose: true,
            pedantic: true,
            echo: true,
            headers: false,
            no_responders: false,
            protocol: 0,
            name: String::new(),
            lang: String::new(),
            version: String::new(),
        }
    }
}

impl ClientOptions {
    /// Merges a CONNECT onto the current options: absent fields keep their value.
    pub fn merge(&mut self, c: &ConnectInfo) {
        let set = |field: &mut bool, v: Option<bool>| {
            if let Some(v) = v {
                *field = v;
            }
        };
        set(&mut self.verbose, c.verbose);
        set(&mut self.pedantic, c.pedantic);
        set(&mut self.echo, c.echo);
        set(&mut self.headers, c.headers);
        set(&mut self.no_responders, c.no_responders);
        if let Some(p) = c.protocol {
            self.protocol = p;
        }
        for (field, v) in [
            (&mut self.name, &c.name),
            (&mut self.lang, &c.lang),
            (&mut self.version, &c.version),
        ] {
            if let Some(v) = v {
                *field = v.clone();
            }
        }
    }
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading and writing normally.
    Open,
    /// Closing: pending output is flushed, then the write side is shut and
    /// input is discarded until the peer closes or `deadline` passes (so
    /// that unread input does not turn the close into a reset that could
    /// destroy the final `-ERR` in flight).
    Closing {
        /// Why it closes.
        reason: CloseReason,
        /// When to give up waiting and drop the socket.
        deadline: Instant,
        /// Whether the write side has been shut down already.
        shut: bool,
    },
}

/// One connection.
#[derive(Debug)]
pub struct Client {
    /// Server-assigned id (INFO `client_id`), unique for the server's life.
    pub cid: u64,
    /// The socket.
    pub stream: TcpStream,
    /// The TLS session, when the server requires TLS (`None` otherwise:
    /// plain connections pay one branch for it).
    pub tls: Option<Box<TlsState>>,
    /// The peer's address.
    pub addr: SocketAddr,
    /// An operation split across reads: its bytes so far (empty almost always).
    pub carry: Vec<u8>,
    /// Bytes queued for the socket; `out[out_pos..]` is still pending.
    pub out: Vec<u8>,
    /// How much of `out` has been written.
    pub out_pos: usize,
    /// How much of `out` has been traced (`-V`): `out[trace_mark..]` is
    /// new since the last flush.
    pub trace_mark: usize,
    /// Whether the server has this client on its list to flush this turn.
    pub dirty: bool,
    /// Whether WRITABLE interest is registered (only while output is pending).
    pub write_interest: bool,
    /// Last time the socket accepted bytes or the buffer was empty.
    pub last_write_progress: Instant,
    /// Whether the socket has taken only part of the queued output, so the
    /// byte stream may stop inside a frame (nothing may be written around
    /// the buffer then).
    pub mid_frame: bool,
    /// CONNECT options.
    pub opts: ClientOptions,
    /// Whether reads are deferred because this client's messages nearly
    /// filled a subscriber's buffer (see `Server::stall`).
    pub read_stalled: bool,
    /// A CONNECT waiting for the bcrypt worker's verdict; while it waits,
    /// nothing more is read or processed for this client (what already
    /// arrived waits in `carry`).
    pub pending_connect: Option<Box<[u8]>>,
    /// The bcrypt hash the worker verified for the pending CONNECT.
    pub verified_hash: Option<String>,
    /// Whether a CONNECT has been accepted.
    pub connected: bool,
    /// Who the client authenticated as.
    pub identity: Option<Identity>,
    /// The credentials of its CONNECT (checked again on reload).
    pub creds: Option<Box<Credentials>>,
    /// The nonce sent in its INFO (only when nkey users are configured).
    pub nonce: Option<Box<str>>,
    /// Its permissions; `None` (the common case) allows everything at no cost.
    pub perms: Option<Box<ClientPerms>>,
    /// Must send a valid CONNECT before this instant (when auth is required).
    pub auth_deadline: Option<Instant>,
    /// Subscriptions by sid, pointing into the server's subscription slab.
    pub subs: SeededHashMap<crate::server::ShortBytes, usize>,
    /// Read from the loop's backlog this turn (so not again for an event).
    pub read_from_backlog: bool,
    /// PINGs sent and not answered.
    pub pings_out: u32,
    /// When the next keepalive PING is due.
    pub next_ping: Instant,
    /// Whether the client sent anything since the last keepalive check.
    pub active: bool,
    /// Whether the client ever answered a server PING (until it has, every
    /// due PING is sent, as nats-server does to measure the round trip).
    pub answered_ping: bool,
    /// Whether anything was read or written since the last housekeeping tick
    /// (idle clients give their buffers back).
    pub busy: bool,
    /// Life cycle.
    pub phase: Phase,
    /// Messages received from this client.
    pub in_msgs: u64,
    /// Payload bytes received.
    pub in_bytes: u64,
    /// Messages delivered to this client.
    pub out_msgs: u64,
    /// Payload bytes delivered.
    pub out_bytes: u64,
    /// Start, last activity and RTT, for monitoring.
    pub mon: crate::monitor::ClientMon,
    /// Set when this slot is a leaf-node link, not a client (`server/leaf.rs`).
    pub(crate) leaf: Option<Box<crate::server::leaf::LeafLink>>,
}

impl Client {
    /// A new connection, not yet greeted.
    pub fn new(cid: u64, stream: TcpStream, addr: SocketAddr, now: Instant) -> Client {
        Client {
            cid,
            stream,
            tls: None,
            addr,
            carry: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            trace_mark: 0,
            dirty: false,
            write_interest: false,
            last_write_progress: now,
            mid_frame: false,
            opts: ClientOptions::default(),
            read_stalled: false,
            pending_connect: None,
            verified_hash: None,
            connected: false,
            identity: None,
            creds: None,
            nonce: None,
            perms: None,
            auth_deadline: None,
            subs: SeededHashMap::default(),
            read_from_backlog: false,
            pings_out: 0,
            next_ping: now,
            active: false,
            answered_ping: false,
            busy: true,
            phase: Phase::Open,
            in_msgs: 0,
            in_bytes: 0,
            out_msgs: 0,
            out_bytes: 0,
            mon: crate::monitor::ClientMon::new(now),
            leaf: None,
        }
    }

    /// Bytes queued and not yet written.
    #[inline]
    pub fn pending(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Whether the connection is on its way out.
    #[inline]
    pub fn is_closing(&self) -> bool {
        matches!(self.phase, Phase::Closing { .. })
    }

    /// A short description for logs: `cid - name - addr`.
    pub fn describe(&self) -> String {
        if self.opts.name.is_empty() {
            format!("cid:{} {}", self.cid, self.addr)
        } else {
            format!("cid:{} \"{}\" {}", self.cid, self.opts.name, self.addr)
        }
    }

    /// Writes pending output until done or the socket is full.
    /// Returns `Ok(true)` when nothing is left pending.
    pub fn write_pending(&mut self, now: Instant) -> io::Result<bool> {
        if self.tls.as_ref().is_some_and(|tls| !tls.is_plain()) {
            return self.write_pending_tls(now);
        }
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out_pos += n;
                    self.last_write_progress = now;
                    self.busy = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            self.last_write_progress = now;
            self.mid_frame = false;
            Ok(true)
        } else {
            self.mid_frame |= self.out_pos > 0;
            self.compact_out();
            Ok(false)
        }
    }

    /// [`Client::write_pending`] through the TLS session: plaintext from
    /// `out` is handed to rustls (which holds at most its buffer limit) and
    /// the records it makes are written to the socket.
    fn write_pending_tls(&mut self, now: Instant) -> io::Result<bool> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return Ok(true);
        };
        loop {
            while tls.session.wants_write() {
                match tls.session.write_tls(&mut self.stream) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(_) => {
                        self.last_write_progress = now;
                        self.busy = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // rustls may hold part of a frame: never assume a
                        // frame boundary while anything is pending.
                        self.mid_frame = true;
                        self.compact_out();
                        return Ok(false);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            if self.out_pos == self.out.len() {
                self.out.clear();
                self.out_pos = 0;
                self.last_write_progress = now;
                self.mid_frame = false;
                return Ok(true);
            }
            let taken = tls.session.writer().write(&self.out[self.out_pos..])?;
            if taken == 0 {
                // rustls's buffer is full and nothing can be sent yet
                // (the handshake is still going): wait for the socket.
                self.mid_frame = true;
                self.compact_out();
                return Ok(false);
            }
            self.out_pos += taken;
        }
    }

    /// Keeps the buffer from creeping while the socket is full: drops the
    /// written prefix once it is at least half of it (amortised, one
    /// memmove per halving, and only when a write stops short).
    fn compact_out(&mut self) {
        if self.out_pos >= self.out.len() / 2 {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// Queues a TLS close_notify (once) before the write side is shut.
    pub fn notify_close(&mut self) {
        if let Some(tls) = self.tls.as_deref_mut()
            && !tls.is_plain()
            && !tls.close_notified
        {
            tls.session.send_close_notify();
            tls.close_notified = true;
        }
    }

    /// Gives buffers back to the allocator when the connection is idle, so
    /// that many quiet connections cost little memory.
    pub fn shrink_idle(&mut self) {
        if self.pending() == 0 && self.out.capacity() > 0 {
            self.out = Vec::new();
            self.out_pos = 0;
            self.trace_mark = 0;
        }
        if self.carry.is_empty() && self.carry.capacity() > 0 {
            self.carry = Vec::new();
        }
    }
}
