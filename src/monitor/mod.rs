//! HTTP monitoring (`-m PORT`): nats-server's `/varz`, `/connz`, `/subsz`,
//! `/healthz` and `/` index, served from the server's own `mio` loop (no
//! threads).
//!
//! This module owns the HTTP listener and the HTTP connections: accepting
//! (at most [`MAX_HTTP_CONNS`] at once), reading one request (bounded by
//! [`http::MAX_REQUEST`]), answering it with `Connection: close`, and
//! closing; an idle or lingering connection is dropped by the housekeeping
//! tick. Every failure closes that one HTTP connection and nothing else.
//! Children: `http` (request parsing, responses), `endpoints` (the JSON
//! shape of each endpoint and its query parameters), `closed` (connection snapshots, the closed ring, the
//! per-client monitoring state), `process` (memory and CPU), `timefmt`
//! (Go's time formats).
//!
//! Tokens: the HTTP listener is `HTTP_LISTENER` (`HTTP_BASE`) and HTTP
//! connection `k` is `HTTP_BASE + 1 + k`, far above any client token
//! (`FIRST_CLIENT + key`), so the loop routes them here first.
//!
//! Boundaries: monitoring knows no loop and no connection. It may use
//! [`crate::config`] (its options), [`crate::protocol`], [`crate::sublist`]
//! and [`crate::tls`]. The server fills in what the endpoints report from
//! its own state (`server/monitoring.rs`: `monitor_closing` in
//! `begin_close`, `monitor_tick` in housekeeping, the answers of each
//! endpoint); each connection carries a [`ClientMon`] (start, last activity,
//! RTT) for the records. Nothing here may call into the server.

pub(crate) mod closed;
pub(crate) mod endpoints;
pub mod http;
pub(crate) mod process;
pub mod timefmt;

pub use closed::ClientMon;

use crate::config::Config;

use closed::{ClosedRing, Totals};
use http::{BadRequest, Method, Request, Response};
use log::{debug, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// First token of the monitoring range: far above any client's.
pub(crate) const HTTP_BASE: usize = 1 << (usize::BITS - 2);
/// The HTTP listener's token.
pub(crate) const HTTP_LISTENER: Token = Token(HTTP_BASE);
/// Most HTTP connections open at once; more are accepted and closed at once.
pub const MAX_HTTP_CONNS: usize = 128;
/// How long an HTTP connection may take to send its request.
pub const HTTP_IDLE: Duration = Duration::from_secs(5);
/// After the response, how long to wait for the peer to close before
/// dropping the socket (closing with unread input could reset the
/// connection and destroy the response in flight).
const HTTP_LINGER: Duration = Duration::from_secs(1);

/// Whether a poll token belongs to monitoring.
#[inline]
pub(crate) fn is_http_token(token: Token) -> bool {
    token.0 >= HTTP_BASE
}

/// One HTTP connection.
#[derive(Debug)]
struct HttpConn {
    stream: TcpStream,
    /// The request received so far (at most [`http::MAX_REQUEST`] bytes).
    buf: Vec<u8>,
    /// The response; `out[out_pos..]` is still to be written.
    out: Vec<u8>,
    out_pos: usize,
    /// When to drop it if it is still here.
    deadline: Instant,
    /// A response is queued; further input is read and discarded.
    answered: bool,
    /// The write side is shut (the response is out).
    shut: bool,
    /// The peer closed its side.
    peer_closed: bool,
    /// The TLS session, on an HTTPS monitoring port.
    tls: Option<Box<rustls::ServerConnection>>,
}

/// The monitoring state of the server.
#[derive(Debug)]
pub struct Monitor {
    registry: Registry,
    listener: TcpListener,
    pub(crate) addr: SocketAddr,
    /// The host as configured (reported as `http_host`).
    pub(crate) http_host: String,
    /// The TLS configuration when the port speaks HTTPS.
    pub(crate) https: Option<Arc<rustls::ServerConfig>>,
    conns: Slab<HttpConn>,
    /// Set when accepting failed (out of descriptors, say): retried on the tick.
    accept_retry: bool,
    /// Recently closed connections.
    pub(crate) closed: ClosedRing,
    /// Counters of every connection that has started closing.
    pub(crate) closed_totals: Totals,
    /// Server start, wall clock and monotonic.
    pub(crate) started: SystemTime,
    pub(crate) started_at: Instant,
    /// Start, or the last reload.
    pub(crate) config_load_time: SystemTime,
    pub(crate) cpu: process::CpuSampler,
    /// Requests served per endpoint (`http_req_stats`).
    pub(crate) req_stats: BTreeMap<&'static str, u64>,
}

impl Monitor {
    /// Binds the HTTP listener when the configuration asks for monitoring.
    /// `tls` is the client TLS configuration, used when the port is HTTPS.
    pub(crate) fn bind(
        config: &Config,
        registry: &Registry,
        tls: Option<&Arc<rustls::ServerConfig>>,
    ) -> io::Result<Option<Box<Monitor>>> {
        let Some(port) = config.monitor.http_port else {
            return Ok(None);
        };
        let https = match (config.monitor.https, tls) {
            (false, _) => None,
            (true, Some(tls)) => Some(Arc::clone(tls)),
            (true, None) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "TLS cert and key required for HTTPS",
                ));
            }
        };
        let host = config
            .monitor
            .http_host
            .clone()
            .unwrap_or_else(|| config.host.clone());
        let addr = (host.as_str(), port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "no address for http host")
            })?;
        let mut listener = TcpListener::bind(addr)?;
        registry.register(&mut listener, HTTP_LISTENER, Interest::READABLE)?;
        let addr = listener.local_addr()?;
        let now = SystemTime::now();
        let started_at = Instant::now();
        Ok(Some(Box::new(Monitor {
            registry: registry.try_clone()?,
            listener,
            addr,
            http_host: host,
            https,
            conns: Slab::new(),
            accept_retry: false,
            closed: ClosedRing::new(config.monitor.max_closed_clients),
            closed_totals: Totals::default(),
            started: now,
            started_at,
            config_load_time: now,
            cpu: process::CpuSampler::new(started_at),
            req_stats: BTreeMap::new(),
        })))
    }

    /// A reload read the TLS files again: an HTTPS port uses the new
    /// configuration for its next connections.
    pub(crate) fn tls_reloaded(&mut self, tls: Option<&Arc<rustls::ServerConfig>>) {
        if let (Some(https), Some(tls)) = (self.https.as_mut(), tls) {
            *https = Arc::clone(tls);
        }
    }

    /// Accepts every pending HTTP connection.
    /// Handles a poll event of the listener or of HTTP connection `token`:
    /// accepts, or reads what the connection sent. A complete request is
    /// returned for the caller to answer with [`Monitor::answer`]; a
    /// malformed one is answered here.
    pub(crate) fn on_event(&mut self, token: Token, now: Instant) -> Option<(usize, Request)> {
        if token == HTTP_LISTENER {
            self.accept_all();
            return None;
        }
        let key = token.0 - HTTP_BASE - 1;
        let input = self.conns.get_mut(key)?.read();
        let response = match input {
            Input::Nothing => None,
            Input::Drop => {
                self.drop_conn(key);
                return None;
            }
            Input::Bad(why) => {
                debug!("http: bad request ({why:?})");
                Some(Response::bad_request(why).encode(false, SystemTime::now()))
            }
            Input::Request(req) => return Some((key, req)),
        };
        self.send(key, response, now);
        None
    }

    /// Sends the answer to the request of HTTP connection `key`.
    pub(crate) fn answer(&mut self, key: usize, req: &Request, resp: Response, now: Instant) {
        let head_only = req.method == Method::Head;
        self.send(key, Some(resp.encode(head_only, SystemTime::now())), now);
    }

    /// Queues `response` (if any) and writes what the connection can take.
    fn send(&mut self, key: usize, response: Option<Vec<u8>>, now: Instant) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if let Some(bytes) = response {
            conn.out = bytes;
            conn.out_pos = 0;
            conn.answered = true;
            conn.buf = Vec::new();
        }
        if !conn.write(now) {
            self.drop_conn(key);
        }
    }

    /// Housekeeping: drops HTTP connections past their deadline and retries
    /// a failed accept.
    pub(crate) fn tick(&mut self, now: Instant) {
        let expired: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| now >= c.deadline)
            .map(|(k, _)| k)
            .collect();
        for key in expired {
            self.drop_conn(key);
        }
        if self.accept_retry {
            self.accept_all();
        }
    }

    fn accept_all(&mut self) {
        self.accept_retry = false;
        loop {
            match self.listener.accept() {
                Ok((mut stream, addr)) => {
                    if self.conns.len() >= MAX_HTTP_CONNS {
                        debug!("http: {MAX_HTTP_CONNS} connections open; closing {addr}");
                        continue; // dropped: closed
                    }
                    let tls = match &self.https {
                        None => None,
                        Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
                            Ok(session) => Some(Box::new(session)),
                            Err(e) => {
                                debug!("https: cannot start TLS for {addr}: {e}");
                                continue;
                            }
                        },
                    };
                    let entry = self.conns.vacant_entry();
                    let token = Token(HTTP_BASE + 1 + entry.key());
                    if let Err(e) = self.registry.register(
                        &mut stream,
                        token,
                        Interest::READABLE | Interest::WRITABLE,
                    ) {
                        debug!("http: cannot register {addr}: {e}");
                        continue;
                    }
                    entry.insert(HttpConn {
                        stream,
                        buf: Vec::new(),
                        out: Vec::new(),
                        out_pos: 0,
                        deadline: Instant::now() + HTTP_IDLE,
                        answered: false,
                        shut: false,
                        peer_closed: false,
                        tls,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors, say: the pending ones raise no
                    // new event, so try again on the next tick.
                    warn!("http: error accepting a connection: {e}");
                    self.accept_retry = true;
                    return;
                }
            }
        }
    }

    /// Drops HTTP connection `key`.
    fn drop_conn(&mut self, key: usize) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            let _ = self.registry.deregister(&mut conn.stream);
        }
    }
}

/// What reading an HTTP connection came to.
enum Input {
    /// Nothing to answer (yet, or any more).
    Nothing,
    /// A complete request.
    Request(http::Request),
    /// A request that cannot be parsed.
    Bad(BadRequest),
    /// Gone: drop it.
    Drop,
}

impl HttpConn {
    /// Reads until `WouldBlock`: the request, or input to discard once answered.
    fn read(&mut self) -> Input {
        let mut found = Input::Nothing;
        let mut scratch = [0u8; 1024];
        loop {
            if self.answered || !matches!(found, Input::Nothing) {
                match self.recv(&mut scratch) {
                    Ok(0) => {
                        self.peer_closed = true;
                        return found;
                    }
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return found,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => return Input::Drop,
                }
            }
            let old = self.buf.len();
            let room = http::MAX_REQUEST.saturating_sub(old).clamp(1, 4096);
            self.buf.resize(old + room, 0);
            let mut chunk = std::mem::take(&mut self.buf);
            let got = self.recv(&mut chunk[old..]);
            self.buf = chunk;
            self.buf.truncate(old + *got.as_ref().unwrap_or(&0));
            match got {
                // Closed before a whole request: nothing to answer.
                Ok(0) => return Input::Drop,
                Ok(_) => match http::parse_request(&self.buf) {
                    Ok(Some(req)) => found = Input::Request(req),
                    Ok(None) => {}
                    Err(why) => found = Input::Bad(why),
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return found,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Input::Drop,
            }
        }
    }

    /// Reads request bytes: from the socket, or decrypted from the TLS
    /// session (which reads the socket and answers the handshake as needed).
    fn recv(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(tls) = self.tls.as_deref_mut() else {
            return self.stream.read(buf);
        };
        loop {
            match tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if tls.read_tls(&mut self.stream)? == 0 {
                return Ok(0);
            }
            if let Err(e) = tls.process_new_packets() {
                // Best effort: the alert tells the client why.
                let _ = tls.write_tls(&mut self.stream);
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            flush_tls(tls, &mut self.stream)?;
        }
    }

    /// Writes what it can of the response; shuts the write side once it is
    /// all out. Returns false when the connection should be dropped.
    fn write(&mut self, now: Instant) -> bool {
        if let Some(tls) = self.tls.as_deref_mut() {
            // Handshake records, and the response through the session.
            loop {
                if flush_tls(tls, &mut self.stream).is_err() {
                    return false;
                }
                if tls.wants_write() {
                    return true; // the socket is full: wait for WRITABLE
                }
                if self.out_pos == self.out.len() {
                    break;
                }
                match tls.writer().write(&self.out[self.out_pos..]) {
                    Ok(0) => return true, // still handshaking: wait
                    Ok(n) => self.out_pos += n,
                    Err(_) => return false,
                }
            }
            if self.answered && !self.shut {
                tls.send_close_notify();
                if flush_tls(tls, &mut self.stream).is_err() {
                    return false;
                }
                if tls.wants_write() {
                    return true;
                }
            }
        } else {
            while self.out_pos < self.out.len() {
                match self.stream.write(&self.out[self.out_pos..]) {
                    Ok(0) => return false,
                    Ok(n) => self.out_pos += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return false,
                }
            }
        }
        if self.answered && !self.shut {
            self.shut = true;
            self.deadline = now + HTTP_LINGER;
            // An error only means the peer is gone already.
            let _ = self.stream.shutdown(Shutdown::Write);
        }
        !(self.shut && self.peer_closed)
    }
}

/// Writes the TLS records the session has queued, until it has none or
/// the socket is full.
fn flush_tls(tls: &mut rustls::ServerConnection, stream: &mut TcpStream) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(stream) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
