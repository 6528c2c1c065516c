//! The event loop: one thread, one `mio::Poll`, no locks.
//!
//! The server owns the listener, every [`Client`] (in a slab whose keys make
//! the poll tokens), every [`Subscription`] (in a second slab whose keys are
//! the sublist's ids), the [`Sublist`], the timers and the signal source.
//! This module is about I/O and life cycle, with four parts in files of
//! their own:
//! `backpressure` (slow consumers, and slowing a publisher for a subscriber
//! that is still reading), `auth_defer` (CONNECTs waiting for the bcrypt
//! worker), `reload` (SIGHUP), `ops` (pid and ports files, SIGUSR1's log
//! reopen, SIGUSR2's lame duck mode), `logging` (the process log sink) and
//! `tls_io` (reading TLS clients, their handshake and its timers). The connection state is in `client`, what
//! each operation does in `dispatch`, applying auth and permissions to
//! connections in `access`. HTTP monitoring connections are
//! `crate::monitor`'s and share this loop; `monitoring` is the glue that
//! serves them from the loop's state.
//!
//! The server is the top layer: it may use every other subsystem, and
//! none may use it. Here:
//!
//! - reads are drained until `WouldBlock` (at most [`READ_BUDGET`] reads per
//!   connection per turn, so one fast publisher cannot starve the rest);
//! - output is appended to each client's buffer during a turn and flushed
//!   once at the end of the turn, with WRITABLE interest only while output
//!   is pending;
//! - closing goes through one path: `Server::begin_close` removes the
//!   client's subscriptions at once; the socket is flushed, shut down and
//!   dropped at the end of the turn (or after a short grace period).

pub(crate) mod access;
mod auth_defer;
mod backpressure;
pub mod client;
mod dispatch;
mod jetstream;
mod leaf;
pub mod logging;
mod monitoring;
mod ops;
mod reload;
mod tls_io;

use backpressure::Stall;
pub(crate) use backpressure::{STALL_DENOMINATOR, STALL_NUMERATOR, STALL_PROGRESS};

use crate::auth::bcrypt_worker::AuthWorker;
use crate::config::Config;
use crate::protocol::error::ProtoError;
use crate::protocol::parser::{Limits, Need, Op, Parsed, parse};
use crate::protocol::trace;
use crate::protocol::wire::{self, InfoTemplate, ServerInfo};
use crate::server::client::{Client, CloseReason, Phase};
use crate::sublist::Sublist;
use crate::tls::{TlsPhase, TlsState};
use log::{debug, error, info, log_enabled, trace, warn};
use memchr::memchr;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use signal_hook_mio::v1_0::Signals;
use slab::Slab;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The listening socket.
const LISTENER: Token = Token(0);
/// Unix signals.
const SIGNALS: Token = Token(1);
/// Wake-ups from the bcrypt worker.
const WAKER: Token = Token(2);
/// The leafnode listener (`server/leaf.rs`).
pub(crate) const LEAF_LISTENER: Token = Token(3);
/// Client `k` of the slab has token `FIRST_CLIENT + k`.
pub(crate) const FIRST_CLIENT: usize = 4;

/// Size of the shared read buffer (one read syscall's worth).
pub const READ_SIZE: usize = 64 * 1024;
/// Reads per connection per loop turn before it yields to the others.
pub const READ_BUDGET: usize = 16;
/// How long a closing connection may take to flush and see the peer close.
const CLOSE_GRACE: Duration = Duration::from_millis(500);
/// How long shutdown waits for clients to take their last bytes.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Pause before accepting again after running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// nats-server sends the first PING this soon after CONNECT (to measure RTT).
pub(crate) const FIRST_PING: Duration = Duration::from_secs(2);

/// Bytes that are usually short (sids, subjects): inline up to 16 bytes,
/// so most subscriptions cost no allocation beyond their slab slot.
pub type ShortBytes = smallvec::SmallVec<[u8; 16]>;

/// One subscription, owned by the server; the sublist holds its slab key.
#[derive(Debug)]
pub struct Subscription {
    /// Slab key of the subscribing client.
    pub client: usize,
    /// The client's id for it, echoed in MSG.
    pub sid: ShortBytes,
    /// Subject filter.
    pub subject: ShortBytes,
    /// Queue group, if any.
    pub queue: Option<Box<[u8]>>,
    /// Messages delivered so far.
    pub delivered: u64,
    /// Remove after this many deliveries (UNSUB with max).
    pub max: Option<std::num::NonZeroU64>,
}

/// Server-wide counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    /// Connections accepted since start.
    pub total_connections: u64,
    /// Connections closed as slow consumers.
    pub slow_consumers: u64,
    /// Connections closed as stale.
    pub stale_connections: u64,
}

pub(crate) use ops::LameDuck;

/// The server: listener, clients, subscriptions and loop state.
pub struct Server {
    /// Options in force.
    pub(crate) config: Config,
    /// Parser limits derived from the config.
    pub(crate) limits: Limits,
    poll: Poll,
    /// `None` once shutdown has started.
    listener: Option<TcpListener>,
    local_addr: SocketAddr,
    /// The listen address as logged (`0.0.0.0:4222` for a dual-stack bind).
    listen_display: String,
    signals: Option<Signals>,
    /// Every connection, open or closing.
    pub(crate) clients: Slab<Client>,
    /// Every subscription; keys are the sublist's ids.
    pub(crate) subs: Slab<Subscription>,
    /// Subject trie over `subs`.
    pub(crate) sublist: Sublist,
    /// INFO shared by all connections.
    info: InfoTemplate,
    server_id: String,
    next_cid: u64,
    /// Shared read buffer: data is parsed in place, only a split operation's
    /// tail is copied into the client's `carry`.
    read_buf: Vec<u8>,
    /// Clients with output appended this turn.
    pub(crate) dirty: Vec<usize>,
    /// Clients that started closing this turn.
    closing: Vec<usize>,
    /// Clients that used their read budget and must be read again.
    readable_backlog: Vec<usize>,
    /// Set by a delivery that left a reading subscriber's buffer nearly
    /// full (to that subscriber's key): the client being read is paused
    /// after the current chunk.
    pub(crate) stall_reader: Option<usize>,
    /// Publishers whose reads are deferred.
    stalled: Vec<Stall>,
    /// Runs bcrypt off the loop (started on first use).
    auth_worker: Option<AuthWorker>,
    /// The rustls configuration when clients must use TLS.
    tls_config: Option<Arc<rustls::ServerConfig>>,
    /// Decrypted bytes from TLS clients (allocated when first needed).
    plain_buf: Vec<u8>,
    /// New TLS connections in the current second (`connection_rate_limit`).
    tls_rate: crate::tls::RateCounter,
    accept_paused_until: Option<Instant>,
    /// Set when shutdown starts: the moment to stop waiting for clients.
    shutdown_deadline: Option<Instant>,
    /// Connections not closing.
    open_clients: usize,
    /// Counters.
    pub(crate) stats: Stats,
    tick: Duration,
    next_tick: Instant,
    /// HTTP monitoring, when enabled (`src/monitor/`).
    pub(crate) monitor: Option<Box<crate::monitor::Monitor>>,
    /// Lame duck mode, once entered (SIGUSR2).
    lame_duck: Option<LameDuck>,
    /// The pid and ports files written at start, removed at exit.
    process_files: Vec<std::path::PathBuf>,
    /// Leaf-node links and their interest books, when configured (`server/leaf.rs`).
    pub(crate) leaf: Option<Box<leaf::LeafState>>,
    /// Wakes the loop for the worker threads (bcrypt, storage): mio allows
    /// one waker per poll, so they share it.
    waker: Arc<mio::Waker>,
    /// JetStream, when enabled.
    pub(crate) jetstream: Option<Box<jetstream::JetStream>>,
}

/// What handling signals asks the loop to do.
enum SignalAction {
    Continue,
    ExitNow,
}

impl Server {
    /// Binds the listener and prepares the loop (nothing is accepted until [`Server::run`]).
    pub fn bind(config: Config) -> io::Result<Server> {
        let addr = (config.host.as_str(), config.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address for host"))?;
        let poll = Poll::new()?;
        let context = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("Cannot listen for client connections on {addr}: {e}"),
            )
        };
        let (mut listener, dual_stack) = bind_clients(addr).map_err(context)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let local_addr = listener.local_addr()?;
        // A dual-stack listener is still "0.0.0.0:port" to the operator.
        let listen_display = if dual_stack {
            SocketAddr::new(addr.ip(), local_addr.port()).to_string()
        } else {
            local_addr.to_string()
        };
        let tls_config = match &config.tls {
            Some(tls) => Some(
                tls.server_config()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            ),
            None => None,
        };
        let monitor = crate::monitor::Monitor::bind(&config, poll.registry(), tls_config.as_ref())
            .map_err(|e| {
                let host = config.monitor.http_host.as_deref().unwrap_or(&config.host);
                let port = config.monitor.http_port.unwrap_or_default();
                io::Error::new(
                    e.kind(),
                    format!("Can't start monitoring: listen tcp {host}:{port}: {e}"),
                )
            })?;
        let leaf = leaf::LeafState::new(&config, &poll)?;
        let server_id = new_server_id();
        let info = info_template(&config, &server_id, local_addr.port(), false);
        // Timers are checked on a housekeeping tick, fine enough for the
        // shortest of them.
        let mut shortest = config
            .ping_interval
            .min(config.auth.timeout)
            .min(config.write_deadline);
        if let Some(tls) = &config.tls {
            shortest = shortest.min(tls.timeout());
            if let crate::tls::HandshakeFirst::Fallback(delay) = tls.handshake_first {
                // The fallback INFO is due after `delay`: tick at a fraction of it.
                shortest = shortest.min(delay.saturating_mul(4));
            }
        }
        let mut tick = (shortest / 8).clamp(Duration::from_millis(5), Duration::from_millis(250));
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
        let jetstream = match &config.jetstream {
            Some(opts) => {
                // Pull expiries and heartbeats are checked on the tick.
                tick = tick.min(Duration::from_millis(20));
                Some(Box::new(jetstream::JetStream::start(opts, waker.clone())?))
            }
            None => None,
        };
        Ok(Server {
            limits: Limits {
                max_control_line: config.max_control_line,
                max_payload: config.max_payload,
            },
            config,
            poll,
            listener: Some(listener),
            local_addr,
            listen_display,
            signals: None,
            clients: Slab::new(),
            subs: Slab::new(),
            sublist: Sublist::new(),
            info,
            server_id,
            next_cid: 1,
            read_buf: vec![0; READ_SIZE],
            dirty: Vec::new(),
            closing: Vec::new(),
            readable_backlog: Vec::new(),
            stall_reader: None,
            stalled: Vec::new(),
            auth_worker: None,
            tls_config,
            plain_buf: Vec::new(),
            tls_rate: crate::tls::RateCounter::default(),
            accept_paused_until: None,
            shutdown_deadline: None,
            open_clients: 0,
            stats: Stats::default(),
            tick,
            next_tick: Instant::now() + tick,
            monitor,
            lame_duck: None,
            process_files: Vec::new(),
            leaf,
            waker,
            jetstream,
        })
    }

    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// This process's server id, as sent in INFO.
    pub fn server_id(&self) -> &str {
        &self.server_id
    }

    /// Handles, inside the loop, SIGINT/SIGTERM (graceful shutdown; a
    /// second one exits at once), SIGHUP (configuration reload), SIGUSR1
    /// (reopen the log file) and SIGUSR2 (lame duck mode).
    pub fn handle_signals(&mut self) -> io::Result<()> {
        let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2])?;
        self.poll
            .registry()
            .register(&mut signals, SIGNALS, Interest::READABLE)?;
        self.signals = Some(signals);
        Ok(())
    }

    /// Runs the loop until shutdown completes; the pid and ports files
    /// exist while it runs.
    pub fn run(&mut self) -> io::Result<()> {
        info!("Starting natrium {}", env!("CARGO_PKG_VERSION"));
        self.log_monitor_start();
        info!(
            "Listening for client connections on {}",
            self.listen_display
        );
        self.write_process_files();
        if let Some(addr) = self.leaf_addr() {
            info!("Listening for leafnode connections on {addr}");
        }
        info!("Server is ready");
        let result = self.run_loop();
        self.jetstream_shutdown();
        self.remove_process_files();
        result
    }

    fn run_loop(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let now = Instant::now();
            let timeout = if self.readable_backlog.is_empty() {
                let wake = self
                    .stalled
                    .iter()
                    .map(|stall| stall.until)
                    .chain(self.lame_duck_wake())
                    .fold(self.next_tick, Instant::min);
                wake.saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let backlog = std::mem::take(&mut self.readable_backlog);
            for &key in &backlog {
                if let Some(client) = self.clients.get_mut(key) {
                    client.read_from_backlog = true;
                }
                self.read_client(key, false);
            }
            self.resume_stalled(Instant::now());
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    LEAF_LISTENER => self.accept_leafs(),
                    WAKER => {
                        self.on_auth_verdicts();
                        self.jetstream_completions();
                    }
                    SIGNALS => {
                        if let SignalAction::ExitNow = self.on_signals() {
                            info!("Exiting now");
                            return Ok(());
                        }
                    }
                    token if crate::monitor::is_http_token(token) => self.on_http_event(token),
                    Token(t) => {
                        let key = t - FIRST_CLIENT;
                        if event.is_writable() {
                            self.mark_dirty(key);
                        }
                        // A client read from the backlog this turn has had
                        // its budget, and that read saw every byte this event
                        // (polled before it) announces: one budget per turn.
                        let had_its_turn =
                            self.clients.get(key).is_some_and(|c| c.read_from_backlog);
                        if !had_its_turn
                            && (event.is_readable() || event.is_read_closed() || event.is_error())
                        {
                            // When the peer's FIN is already here, a short
                            // read is not the end: read on to see the EOF.
                            let may_stop_short = !event.is_read_closed() && !event.is_error();
                            self.read_client(key, may_stop_short);
                        }
                    }
                }
            }
            for key in backlog {
                if let Some(client) = self.clients.get_mut(key) {
                    client.read_from_backlog = false;
                }
            }
            let now = Instant::now();
            if now >= self.next_tick {
                self.housekeeping(now);
                self.next_tick = now + self.tick;
            }
            self.end_of_turn(now);
            if let Some(deadline) = self.shutdown_deadline
                && (self.clients.is_empty() || now >= deadline)
            {
                info!("Server Exiting..");
                return Ok(());
            }
        }
    }

    // ----- accepting -----

    /// Accepts every pending connection.
    fn accept_all(&mut self) {
        if self.accept_paused_until.is_some() {
            return;
        }
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, addr)) => self.admit(stream, addr),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // EMFILE/ENFILE/ENOBUFS/ENOMEM: the pending connection stays
                    // in the backlog; retrying at once would spin. Try again
                    // after a pause (the listener is edge-triggered, so the
                    // housekeeping tick does the retry).
                    warn!(
                        "Error accepting client connection: {e} (open connections: {}); pausing accepts for {:?}",
                        self.open_clients, ACCEPT_BACKOFF
                    );
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                    return;
                }
            }
        }
    }

    /// Registers a new connection and greets it with INFO.
    fn admit(&mut self, mut stream: TcpStream, addr: SocketAddr) {
        let now = Instant::now();
        if let Err(e) = stream.set_nodelay(true) {
            debug!("set_nodelay failed for {addr}: {e}");
        }
        let entry = self.clients.vacant_entry();
        let key = entry.key();
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(key + FIRST_CLIENT),
            Interest::READABLE,
        ) {
            warn!("Cannot register connection from {addr}: {e}");
            return;
        }
        let cid = self.next_cid;
        self.next_cid += 1;
        let mut client = Client::new(cid, stream, addr, now);
        if self.config.auth.needs_nonce() {
            // A fresh nonce per connection, for nkey users to sign.
            match crate::auth::new_nonce() {
                Ok(nonce) => client.nonce = Some(nonce.into_boxed_str()),
                Err(e) => {
                    error!("Cannot generate a nonce for {addr}: {e}; dropping the connection");
                    let _ = self.poll.registry().deregister(&mut client.stream);
                    return;
                }
            }
        }
        let mut info_now = true;
        let throttled = match (&self.tls_config, &self.config.tls) {
            (Some(_), Some(tls_opts)) => !self.tls_rate.allow(tls_opts.connection_rate_limit, now),
            _ => false,
        };
        if let (Some(tls_config), Some(tls_opts)) = (&self.tls_config, &self.config.tls)
            && !throttled
        {
            match TlsState::new(tls_config, tls_opts, now) {
                Ok(tls) => {
                    // With handshake_first, INFO waits for the handshake.
                    info_now = !tls.info_owed;
                    client.tls = Some(Box::new(tls));
                }
                Err(e) => {
                    error!("Cannot start TLS for {addr}: {e}; dropping the connection");
                    let _ = self.poll.registry().deregister(&mut client.stream);
                    return;
                }
            }
        }
        if info_now {
            self.info.push(
                &mut client.out,
                cid,
                &addr.ip().to_string(),
                client.nonce.as_deref(),
            );
        }
        if self.config.auth.required() {
            client.auth_deadline = Some(now + self.config.auth.timeout);
        }
        client.next_ping = now + self.config.ping_interval;
        entry.insert(client);
        self.open_clients += 1;
        self.stats.total_connections += 1;
        self.mark_dirty(key);
        debug!("cid:{cid} {addr} Client connection created");
        if throttled {
            // As nats-server: INFO, then the refusal, before any handshake.
            debug!("cid:{cid} {addr} TLS connection rate limit reached; refusing");
            self.on_error(key, ProtoError::ConnectionThrottling);
            return;
        }
        // Leaf links are not clients: they do not count against the limit.
        let links = self.leaf.as_ref().map_or(0, |l| l.links.len());
        if self.open_clients.saturating_sub(links) > self.config.max_connections {
            warn!(
                "Maximum connections exceeded ({}); refusing {addr}",
                self.config.max_connections
            );
            self.on_error(key, ProtoError::MaxConnections);
        }
    }

    // ----- reading -----

    /// Reads from a client until `WouldBlock`, its budget, or its end.
    ///
    /// With `may_stop_short`, a read that returns less than asked ends the
    /// draining (see below); without it, reads go on until `WouldBlock`/EOF.
    fn read_client(&mut self, key: usize, may_stop_short: bool) {
        if self.clients.get(key).is_some_and(|c| c.tls.is_some()) {
            self.read_tls_client(key);
            return;
        }
        for _ in 0..READ_BUDGET {
            let Some(client) = self.clients.get_mut(key) else {
                return;
            };
            if client.read_stalled || client.pending_connect.is_some() {
                return; // read again when the pause or the bcrypt check is over
            }
            let closing = client.is_closing();
            match client.stream.read(&mut self.read_buf) {
                Ok(0) => {
                    self.read_eof(key);
                    return;
                }
                Ok(n) => {
                    if closing {
                        continue; // discard input while closing
                    }
                    client.active = true;
                    client.busy = true;
                    let buf = std::mem::take(&mut self.read_buf);
                    let drained = may_stop_short && n < buf.len();
                    self.ingest(key, &buf[..n]);
                    self.read_buf = buf;
                    if let Some(subscriber) = self.stall_reader.take() {
                        self.stall(key, subscriber);
                        return;
                    }
                    if drained {
                        // A short read emptied the socket's queue. With
                        // edge-triggered epoll every later arrival (data or
                        // FIN) raises a new event, so the read that would
                        // only say WouldBlock can be skipped: one syscall
                        // less per wakeup when the server keeps up. (A FIN
                        // that came with this data raised no later event;
                        // the caller passes may_stop_short = false then.)
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.read_failed(key, &e);
                    return;
                }
            }
        }
        self.readable_backlog.push(key);
    }

    /// The peer ended its stream: a closing client is dropped (after the
    /// socket took what it can of what is still queued, the final -ERR
    /// say); an open one starts closing (it may only have half-closed, so
    /// it still gets its replies).
    pub(super) fn read_eof(&mut self, key: usize) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        match client.phase {
            Phase::Closing { reason, .. } => {
                if reason.flushes() {
                    let _ = client.write_pending(Instant::now());
                }
                self.remove_client(key);
            }
            Phase::Open => self.begin_close(key, CloseReason::ClientClosed),
        }
    }

    /// A read failed: the connection is dropped, or starts closing.
    pub(super) fn read_failed(&mut self, key: usize, e: &io::Error) {
        let Some(client) = self.clients.get(key) else {
            return;
        };
        debug!("cid:{} read error: {e}", client.cid);
        if client.is_closing() {
            self.remove_client(key);
        } else {
            self.begin_close(key, CloseReason::ReadError);
        }
    }

    /// Parses and dispatches everything in `data` for client `key`.
    ///
    /// An operation left incomplete by the previous read sits in the
    /// client's `carry`; it is completed first by appending only the bytes
    /// it still needs. The rest is parsed in place.
    fn ingest(&mut self, key: usize, data: &[u8]) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        if client.leaf.is_some() {
            self.ingest_leaf(key, data);
            return;
        }
        // As nats-server: a PONG answering the server's keepalive PING is
        // not activity (/connz last_activity, idle), so quiet devices sort
        // as idle.
        if !only_pongs(data) {
            client.mon.touch(Instant::now());
        }
        let mut carry = std::mem::take(&mut client.carry);
        let mut pos = 0;
        let limits = self.limits;
        if !carry.is_empty() {
            match complete_carry(&mut carry, data, &mut pos, &limits) {
                Ok(true) => {
                    let result = match parse(&carry, &limits) {
                        Ok(Parsed::Complete { op: Some(op), .. }) => {
                            self.trace_op(key, &carry);
                            self.dispatch(key, op)
                        }
                        Ok(_) => Ok(()),
                        Err(e) => {
                            self.log_parse_error(key, &e, &carry);
                            Err(e)
                        }
                    };
                    carry.clear();
                    if let Err(e) = result
                        && !self.handle_error(key, e)
                    {
                        return;
                    }
                    if self.connect_pending(key) {
                        // Everything after the CONNECT waits for its verdict.
                        carry.extend_from_slice(&data[pos..]);
                        self.put_carry(key, carry);
                        return;
                    }
                }
                Ok(false) => {
                    if self.refuses_hpub(key, &carry) {
                        self.on_error(key, ProtoError::Malformed);
                        return;
                    }
                    self.put_carry(key, carry);
                    return;
                }
                Err(e) => {
                    let mut input = carry;
                    input.extend_from_slice(&data[pos..data.len().min(pos + trace::PROTO_SNIPPET)]);
                    self.log_parse_error(key, &e, &input);
                    self.on_error(key, e);
                    return;
                }
            }
        }
        let mut awaiting_auth = self.awaiting_auth(key);
        while pos < data.len() {
            // Like nats-server, refuse on the first byte of any operation
            // but CONNECT before authentication, however the rest looks
            // (blank lines excepted: natrium ignores them).
            if awaiting_auth && !matches!(data[pos], b'C' | b'c' | b'\r' | b'\n') {
                // ...unless a no_auth_user takes the client in (nats-server).
                if let Err(e) = self.no_auth_login(key) {
                    self.on_error(key, e);
                    return;
                }
                awaiting_auth = false;
            }
            match parse(&data[pos..], &limits) {
                Ok(Parsed::Complete { op, len }) => {
                    let is_connect = matches!(op, Some(Op::Connect(_)));
                    if let Some(op) = op {
                        self.trace_op(key, &data[pos..pos + len]);
                        if let Err(e) = self.dispatch(key, op)
                            && !self.handle_error(key, e)
                        {
                            return;
                        }
                        awaiting_auth = awaiting_auth && self.awaiting_auth(key);
                    }
                    pos += len;
                    if is_connect && self.connect_pending(key) {
                        // Everything after the CONNECT waits for its verdict.
                        carry.extend_from_slice(&data[pos..]);
                        break;
                    }
                }
                Ok(Parsed::Partial(_)) => {
                    if self.refuses_hpub(key, &data[pos..]) {
                        self.on_error(key, ProtoError::Malformed);
                        return;
                    }
                    carry.extend_from_slice(&data[pos..]);
                    break;
                }
                Err(e) => {
                    self.log_parse_error(key, &e, &data[pos..]);
                    self.on_error(key, e);
                    return;
                }
            }
        }
        self.put_carry(key, carry);
    }

    /// Whether `pending` is an HPUB whose control line is complete (only its
    /// payload is missing) from a client that did not declare `headers`:
    /// nats-server closes such a client at the control line, without waiting
    /// for the payload.
    fn refuses_hpub(&self, key: usize, pending: &[u8]) -> bool {
        pending.len() > 4
            && pending[..4].eq_ignore_ascii_case(b"HPUB")
            && self.clients.get(key).is_some_and(|c| !c.opts.headers)
            && matches!(
                parse(pending, &self.limits),
                Ok(Parsed::Partial(Need::Total(_)))
            )
    }

    /// Whether client `key` must still authenticate with CONNECT.
    fn awaiting_auth(&self, key: usize) -> bool {
        self.config.auth.required() && self.clients.get(key).is_some_and(|c| !c.connected)
    }

    /// Gives a client its carry buffer back.
    fn put_carry(&mut self, key: usize, carry: Vec<u8>) {
        if let Some(client) = self.clients.get_mut(key) {
            client.carry = carry;
        }
    }

    /// Handles an error from an operation; returns whether to keep reading.
    fn handle_error(&mut self, key: usize, e: ProtoError) -> bool {
        let fatal = e.is_fatal();
        self.on_error(key, e);
        !fatal && self.clients.get(key).is_some_and(|c| !c.is_closing())
    }

    /// Traces an operation from a client (`-V`): its control line, and
    /// the payload of a PUB or HPUB, as nats-server does.
    fn trace_op(&self, key: usize, bytes: &[u8]) {
        if log_enabled!(log::Level::Trace)
            && let Some(client) = self.clients.get(key)
        {
            let max = self.config.max_traced_msg_len;
            let who = client.describe();
            let line_end = memchr(b'\n', bytes).unwrap_or(bytes.len());
            trace!("{who} - <<- {}", trace::control_line(&bytes[..line_end]));
            if let Some(payload) = trace::in_payload(bytes) {
                trace!("{who} - <<- MSG_PAYLOAD: {}", trace::payload(payload, max));
            }
        }
    }

    /// Logs input that did not parse, with the client and its first bytes
    /// (nats-server's `Client parser ERROR`), at the default level: whoever
    /// typed `SUB foo` into telnet can see why the connection closed.
    fn log_parse_error(&self, key: usize, e: &ProtoError, input: &[u8]) {
        if let Some(client) = self.clients.get(key) {
            error!(
                "{} - Client parser ERROR ({e:?}): proto={}",
                client.describe(),
                trace::snippet(input)
            );
        }
    }

    // ----- writing -----

    /// Puts a client on this turn's flush list.
    #[inline]
    pub(crate) fn mark_dirty(&mut self, key: usize) {
        if let Some(client) = self.clients.get_mut(key)
            && !client.dirty
        {
            client.dirty = true;
            self.dirty.push(key);
        }
    }

    /// Flushes every client written to this turn, then moves closing clients on.
    fn end_of_turn(&mut self, now: Instant) {
        self.jetstream_end_of_turn();
        let mut dirty = std::mem::take(&mut self.dirty);
        for &key in &dirty {
            self.flush(key, now);
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
        let closing = std::mem::take(&mut self.closing);
        for key in closing {
            self.advance_close(key, now);
        }
    }

    /// Writes a client's pending output and sets WRITABLE interest to match.
    fn flush(&mut self, key: usize, now: Instant) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        client.dirty = false;
        if client.is_closing() {
            self.closing.push(key);
            return;
        }
        if log_enabled!(log::Level::Trace) {
            trace_out(client, self.config.max_traced_msg_len);
        }
        let written = client.write_pending(now);
        client.trace_mark = client.out.len();
        match written {
            Ok(done) => {
                if done == client.write_interest {
                    let interest = if done {
                        Interest::READABLE
                    } else {
                        Interest::READABLE | Interest::WRITABLE
                    };
                    let token = Token(key + FIRST_CLIENT);
                    if let Err(e) =
                        self.poll
                            .registry()
                            .reregister(&mut client.stream, token, interest)
                    {
                        debug!("cid:{} reregister failed: {e}", client.cid);
                        self.begin_close(key, CloseReason::WriteError);
                        return;
                    }
                    client.write_interest = !done;
                }
            }
            Err(e) => {
                debug!("cid:{} write error: {e}", client.cid);
                self.begin_close(key, CloseReason::WriteError);
            }
        }
    }

    // ----- closing -----

    /// Starts closing a client: its subscriptions go at once; the socket is
    /// flushed (when the reason allows), shut down and dropped later.
    pub(crate) fn begin_close(&mut self, key: usize, reason: CloseReason) {
        self.monitor_closing(key, reason);
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        if client.is_closing() {
            return;
        }
        if self.leaf.is_some() {
            // Interest leaves the links' books (and the links hear of it).
            self.leaf_closing(key, reason);
        }
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        client.phase = Phase::Closing {
            reason,
            deadline: Instant::now() + CLOSE_GRACE,
            shut: false,
        };
        self.open_clients -= 1;
        for (_, sub_key) in client.subs.drain() {
            if let Some(sub) = self.subs.try_remove(sub_key) {
                self.sublist
                    .remove(&sub.subject, sub.queue.as_deref(), sub_key as u32);
            }
        }
        client.subs.shrink_to_fit();
        if !reason.flushes() {
            client.out.clear();
            client.out_pos = 0;
            client.trace_mark = 0;
        }
        let level = match reason {
            CloseReason::ClientClosed | CloseReason::ServerShutdown => log::Level::Debug,
            CloseReason::ReadError | CloseReason::WriteError | CloseReason::ProtocolViolation => {
                log::Level::Debug
            }
            _ => log::Level::Info,
        };
        log::log!(
            level,
            "{} Client connection closing: {}",
            client.describe(),
            reason
        );
        self.closing.push(key);
    }

    /// Moves a closing client along: flush, shut the write side, or drop it.
    fn advance_close(&mut self, key: usize, now: Instant) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        let Phase::Closing { reason, shut, .. } = client.phase else {
            return;
        };
        if !reason.flushes() {
            self.remove_client(key);
            return;
        }
        if log_enabled!(log::Level::Trace) {
            trace_out(client, self.config.max_traced_msg_len);
        }
        let mut written = client.write_pending(now);
        client.trace_mark = client.out.len();
        if matches!(written, Ok(true))
            && client
                .tls
                .as_ref()
                .is_some_and(|t| !t.close_notified && !t.is_plain())
        {
            // Everything is out: say goodbye inside TLS before the socket closes.
            client.notify_close();
            written = client.write_pending(now);
        }
        match written {
            Ok(true) if reason == CloseReason::ClientClosed => {
                // Its EOF was read already: nothing to wait for.
                self.remove_client(key);
            }
            Ok(true) => {
                if !shut {
                    // Errors here only mean the peer is gone already.
                    let _ = client.stream.shutdown(Shutdown::Write);
                    if let Phase::Closing { shut, .. } = &mut client.phase {
                        *shut = true;
                    }
                }
                if client.write_interest {
                    let token = Token(key + FIRST_CLIENT);
                    let _ = self.poll.registry().reregister(
                        &mut client.stream,
                        token,
                        Interest::READABLE,
                    );
                    client.write_interest = false;
                }
            }
            Ok(false) => {
                if !client.write_interest {
                    let token = Token(key + FIRST_CLIENT);
                    let _ = self.poll.registry().reregister(
                        &mut client.stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    );
                    client.write_interest = true;
                }
            }
            Err(_) => self.remove_client(key),
        }
    }

    /// Drops a client for good.
    fn remove_client(&mut self, key: usize) {
        let Some(mut client) = self.clients.try_remove(key) else {
            return;
        };
        if !client.is_closing() {
            // Not expected (every path goes through begin_close), but keep
            // the books straight if it happens.
            self.open_clients -= 1;
            for (_, sub_key) in client.subs.drain() {
                if let Some(sub) = self.subs.try_remove(sub_key) {
                    self.sublist
                        .remove(&sub.subject, sub.queue.as_deref(), sub_key as u32);
                }
            }
        }
        let _ = self.poll.registry().deregister(&mut client.stream);
        debug!(
            "{} Client connection closed (connections: {}, subscriptions: {})",
            client.describe(),
            self.clients.len(),
            self.sublist.len()
        );
    }

    /// Sends an error's `-ERR` (if it has one) and closes when it is fatal.
    pub(crate) fn on_error(&mut self, key: usize, e: ProtoError) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        if client.is_closing() {
            return;
        }
        if let Some(text) = e.err_text() {
            wire::push_err(&mut client.out, &text);
            debug!("{} -ERR '{text}'", client.describe());
            self.mark_dirty(key);
        } else {
            debug!("{} closing on malformed input", client.describe());
        }
        if e.is_fatal() {
            let reason = match e {
                ProtoError::AuthorizationViolation => CloseReason::AuthViolation,
                ProtoError::AuthenticationTimeout => CloseReason::AuthTimeout,
                ProtoError::StaleConnection => CloseReason::StaleConnection,
                // nats-server records a throttled TLS connection so too.
                ProtoError::MaxConnections | ProtoError::ConnectionThrottling => {
                    CloseReason::MaxConnections
                }
                ProtoError::SlowConsumer => CloseReason::SlowConsumerPendingBytes,
                ProtoError::SecureConnectionRequired => CloseReason::TlsHandshake,
                ProtoError::MaxPayload => CloseReason::MaxPayloadExceeded,
                ProtoError::MaxControlLine => CloseReason::MaxControlLineExceeded,
                ProtoError::InvalidClientProtocol => CloseReason::BadClientProtocolVersion,
                ProtoError::NoRespondersRequiresHeaders => CloseReason::ProtocolViolation,
                // nats-server closes on any other parse error as a
                // protocol violation (its "Parse Error" is for a client's -ERR).
                _ => CloseReason::ProtocolViolation,
            };
            self.begin_close(key, reason);
        }
    }

    // ----- timers -----

    /// Auth timeouts, keepalive PINGs and stale connections, stalled
    /// writes, closing deadlines, idle buffers, and paused accepts.
    fn housekeeping(&mut self, now: Instant) {
        self.jetstream_tick(now);
        if self.accept_paused_until.is_some_and(|t| now >= t) {
            self.accept_paused_until = None;
            self.accept_all();
        }
        let mut errors: Vec<(usize, ProtoError)> = Vec::new();
        let mut expired = Vec::new();
        let mut stalled = Vec::new();
        let mut tls_pending = Vec::new();
        for (key, client) in self.clients.iter_mut() {
            if let Phase::Closing { deadline, .. } = client.phase {
                if now >= deadline {
                    expired.push(key);
                }
                continue;
            }
            if client
                .tls
                .as_ref()
                .is_some_and(|t| t.phase != TlsPhase::Established)
            {
                // Until the handshake is done, only its timers apply (a
                // PING now would break the handshake).
                tls_pending.push(key);
                continue;
            }
            if client.auth_deadline.is_some_and(|d| now >= d) {
                errors.push((key, ProtoError::AuthenticationTimeout));
                continue;
            }
            if client.pending() > 0
                && now.duration_since(client.last_write_progress) >= self.config.write_deadline
            {
                stalled.push(key);
                continue;
            }
            if now >= client.next_ping {
                client.next_ping = now + self.config.ping_interval;
                if client.active && client.pings_out == 0 && client.answered_ping {
                    // Recently heard from: no need to ask.
                } else if client.pings_out + 1 > self.config.ping_max {
                    errors.push((key, ProtoError::StaleConnection));
                    continue;
                } else {
                    client.pings_out += 1;
                    client.out.extend_from_slice(wire::PING);
                    client.mon.ping_sent(now);
                    if !client.dirty {
                        client.dirty = true;
                        self.dirty.push(key);
                    }
                }
                client.active = false;
            }
            if !client.busy && !client.dirty {
                client.shrink_idle();
            }
            client.busy = false;
        }
        for key in expired {
            self.remove_client(key);
        }
        for key in tls_pending {
            match self.tls_timers(key, now) {
                Some(tls_io::Timeout::NoHandshake) => {
                    if let Some(client) = self.clients.get_mut(key) {
                        // Nothing was encrypted: the error goes out in plain text.
                        client.tls = None;
                    }
                    self.on_error(key, ProtoError::SecureConnectionRequired);
                }
                Some(tls_io::Timeout::Handshake) => {
                    self.begin_close(key, CloseReason::TlsHandshake)
                }
                None => {
                    if let Some(client) = self.clients.get_mut(key)
                        && client.auth_deadline.is_some_and(|d| now >= d)
                    {
                        self.on_error(key, ProtoError::AuthenticationTimeout);
                    }
                }
            }
        }
        for (key, e) in errors {
            if e == ProtoError::StaleConnection {
                self.stats.stale_connections += 1;
            }
            self.on_error(key, e);
        }
        for key in stalled {
            self.slow_consumer_write_deadline(key);
        }
        self.lame_duck_tick(now);
        self.monitor_tick(now);
        self.leaf_tick(now);
    }

    // ----- signals -----

    fn on_signals(&mut self) -> SignalAction {
        let Some(signals) = &mut self.signals else {
            return SignalAction::Continue;
        };
        let pending: Vec<i32> = signals.pending().collect();
        for signal in pending {
            match signal {
                SIGINT | SIGTERM => {
                    if self.shutdown_deadline.is_some() {
                        return SignalAction::ExitNow;
                    }
                    info!("Trapped signal {signal}; shutting down");
                    self.begin_shutdown();
                }
                SIGHUP => self.reload(),
                SIGUSR1 => self.reopen_log(),
                SIGUSR2 => self.enter_lame_duck(),
                _ => {}
            }
        }
        SignalAction::Continue
    }

    /// Stops accepting and closes every client after flushing what it has
    /// (ending lame duck mode, if it was on).
    pub fn begin_shutdown(&mut self) {
        self.leaf_shutdown();
        self.lame_duck = None;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let grace = Instant::now() + SHUTDOWN_GRACE;
        self.shutdown_deadline = Some(grace);
        let keys: Vec<usize> = self.clients.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.begin_close(key, CloseReason::ServerShutdown);
            // The whole shutdown grace to take their last bytes, not just
            // the close grace of a single connection.
            if let Some(Phase::Closing {
                reason: CloseReason::ServerShutdown,
                deadline,
                ..
            }) = self.clients.get_mut(key).map(|c| &mut c.phase)
            {
                *deadline = grace;
            }
        }
    }
}

/// Whether a read holds nothing but whole `PONG` lines (checked only for
/// short reads, which is what keepalive answers are).
fn only_pongs(data: &[u8]) -> bool {
    !data.is_empty()
        && data.len() <= 64
        && data.ends_with(b"\n")
        && data.split_inclusive(|&b| b == b'\n').all(|line| {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            line.eq_ignore_ascii_case(b"PONG")
        })
}

/// Traces what the server is about to write to `client` (`-V`): each
/// operation's line, and the payload of a MSG or HMSG.
fn trace_out(client: &mut Client, max: usize) {
    let from = client.trace_mark.clamp(client.out_pos, client.out.len());
    client.trace_mark = client.out.len();
    if from == client.out.len() {
        return;
    }
    let who = client.describe();
    for op in trace::out_ops(&client.out[from..]) {
        trace!("{who} - ->> {}", trace::control_line(op.line));
        if let Some(payload) = op.payload {
            trace!("{who} - ->> MSG_PAYLOAD: {}", trace::payload(payload, max));
        }
    }
}

/// Completes the operation held in `carry` with bytes from `data[*pos..]`,
/// appending only what it needs. Returns true once `carry` holds exactly one
/// complete operation, false when `data` ran out first.
///
/// Public so that the parser fuzz target and property tests drive the very
/// carry logic the server uses.
pub fn complete_carry(
    carry: &mut Vec<u8>,
    data: &[u8],
    pos: &mut usize,
    limits: &Limits,
) -> Result<bool, ProtoError> {
    loop {
        let need = match parse(carry, limits)? {
            Parsed::Complete { .. } => return Ok(true),
            Parsed::Partial(need) => need,
        };
        let rest = &data[*pos..];
        if rest.is_empty() {
            return Ok(false);
        }
        let take = match need {
            Need::LineEnd => memchr(b'\n', rest).map_or(rest.len(), |i| i + 1),
            Need::Total(total) => (total - carry.len()).min(rest.len()),
        };
        carry.extend_from_slice(&rest[..take]);
        *pos += take;
    }
}

/// The INFO shared by all connections, from the options in force.
pub(crate) fn info_template(
    config: &Config,
    server_id: &str,
    port: u16,
    lame_duck_mode: bool,
) -> InfoTemplate {
    // client_advertise replaces the bind address (checked when read).
    let advertised = config
        .client_advertise
        .as_deref()
        .and_then(|adv| crate::config::advertise_host_port(adv, port).ok());
    let (host, port) = match &advertised {
        Some((host, port)) => (host.as_str(), *port),
        None => (config.host.as_str(), port),
    };
    InfoTemplate::new(&ServerInfo {
        server_id,
        server_name: config.server_name.as_deref().unwrap_or(server_id),
        host,
        port,
        lame_duck_mode,
        max_payload: config.max_payload,
        auth_required: config.auth.announce_required(),
        tls_required: config.tls.is_some(),
        tls_verify: config
            .tls
            .as_ref()
            .is_some_and(|t| t.requires_client_cert()),
        jetstream: config.jetstream.is_some(),
    })
}

/// Binds the client listener. The default `0.0.0.0` binds `[::]` with
/// IPv6-only off instead, so that IPv6 clients (`[::1]:4222`) get in too,
/// as they do with nats-server (Go listens dual-stack for a wildcard); if
/// the machine has no IPv6, plain `0.0.0.0`. Returns whether it is
/// dual-stack.
fn bind_clients(addr: SocketAddr) -> io::Result<(TcpListener, bool)> {
    if addr.ip() == std::net::Ipv4Addr::UNSPECIFIED
        && let Ok(listener) = bind_dual_stack(addr.port())
    {
        return Ok((listener, true));
    }
    Ok((TcpListener::bind(addr)?, false))
}

/// `[::]:port`, IPv6-only off, non-blocking, as mio's own bind would make it.
fn bind_dual_stack(port: u16) -> io::Result<TcpListener> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, sockopt};
    let fd = rustix::net::socket_with(
        AddressFamily::INET6,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    sockopt::set_ipv6_v6only(&fd, false)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    let any = std::net::SocketAddrV6::new(std::net::Ipv6Addr::UNSPECIFIED, port, 0, 0);
    rustix::net::bind(&fd, &any)?;
    rustix::net::listen(&fd, 1024)?;
    Ok(TcpListener::from_std(std::net::TcpListener::from(fd)))
}

/// A random server id in nats-server's shape: `N` and 55 base-32 characters.
fn new_server_id() -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::with_capacity(56);
    id.push('N');
    let mut bits = 0u64;
    let mut left = 0;
    for _ in 0..55 {
        if left < 5 {
            bits = crate::random_u64();
            left = 64;
        }
        id.push(ALPHABET[(bits & 31) as usize] as char);
        bits >>= 5;
        left -= 5;
    }
    id
}
