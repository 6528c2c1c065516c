//! Leaf-node links in the loop: one more connection kind.
//!
//! A link is a [`Client`] slot whose `leaf` field is set: it shares the
//! slab, the poll tokens, the read and write paths, the outbound buffer with
//! its `max_pending` limit (a stalled link is cut as a slow consumer), the
//! keepalive PINGs and the close path with clients. What differs is here:
//!
//! - **soliciting** (`leafnodes.remotes`): every housekeeping tick, a remote
//!   without a link whose retry time has come is dialled (non-blocking
//!   connect; its URLs, then the `leafnode_urls` the hub announced, in
//!   turn). The hub's INFO is checked (non-zero `client_id` and
//!   `leafnode_urls`, else it is not a leafnode port), CONNECT is sent, and
//!   once the second INFO (`connect_info`) arrives the link is established;
//! - **accepting** (`leafnodes.port`): INFO as nats-server sends it, CONNECT
//!   checked (credentials, no `lang`, only the global account), the second
//!   INFO, established;
//! - **established**, both sides alike: all interest the peer should see
//!   goes out as `LS+` (plus this server's `$LDS` loop-detection subject),
//!   then every change of local interest as `LS+`/`LS-`
//!   ([`crate::leaf::interest`]); the peer's `LS+` become subscriptions of
//!   the link in the sublist, so a publish finds them like any other;
//!   `LMSG`/`HMSG` from the peer are routed locally (and to other links,
//!   never back to the one they came from);
//! - routing with links ([`Server::route_with_leafs`]): one `LMSG` per link
//!   however many of its subscriptions match, carrying the queue groups
//!   picked for that link; queue groups serve local members first.
//!
//! When a link closes its interest goes at once (so requests get
//! no-responders) and a soliciting side retries after `reconnect`.

use crate::leaf::interest::{self, Applied, Interest};
use crate::leaf::options::{self, LeafOptions, RemoteUrl};
use crate::leaf::parser::{self, LeafMsg, LeafOp, Parsed};
use crate::leaf::wire as lwire;
use crate::protocol::error::ProtoError;
use crate::protocol::parser::{Limits, Publish};
use crate::protocol::wire;
use crate::server::client::{Client, CloseReason};
use crate::server::{FIRST_CLIENT, LEAF_LISTENER, Server, Subscription};
use crate::sublist::{self, MatchResult, SubId};
use log::{debug, error, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Interest as Ready, Token};
use smallvec::SmallVec;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Control lines on a link may be longer than a client's (INFO with URL
/// lists, LMSG with queue lists): bounded all the same.
const LEAF_CONTROL_LINE: usize = 64 * 1024;
/// Largest message a link may carry (nats-server's hard `max_payload` limit).
const MAX_LINK_PAYLOAD: usize = 64 * 1024 * 1024;
/// Most interest entries one link may hold (or `max_subscriptions`, if higher).
const MAX_LINK_SUBS: usize = 1 << 21;
/// Time a dialled hub has to connect and send its INFO, and an accepted
/// leaf to send CONNECT when no authorization timeout is set.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// Which end of the link natrium is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// natrium dialled a hub for remote number `.0`.
    Solicited(usize),
    /// A leaf dialled natrium's leafnode port.
    Accepted,
}

impl Role {
    fn is_solicited(self) -> bool {
        matches!(self, Role::Solicited(_))
    }
}

/// Where a link's handshake is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkPhase {
    /// Soliciting: waiting for the hub's INFO.
    AwaitInfo,
    /// Soliciting: CONNECT sent, waiting for the `connect_info` INFO.
    AwaitConnectInfo,
    /// Accepting: INFO sent, waiting for CONNECT.
    AwaitConnect,
    /// Interest and messages flow.
    Established,
}

/// The leaf part of a link's [`Client`] slot.
#[derive(Debug)]
pub(crate) struct LeafLink {
    pub role: Role,
    pub phase: LinkPhase,
    /// The handshake must be done by then.
    pub deadline: Instant,
    /// The peer's server id and name.
    pub remote_id: String,
    pub remote_name: String,
    /// The URL dialled (soliciting side).
    pub url: Option<String>,
    /// Whether the peer takes HMSG (else headers are stripped).
    pub headers: bool,
    /// Messages on these subjects never go out on this link
    /// (deny_exports of a remote; deny_pub of an accepted leaf's CONNECT).
    pub deny_out: Vec<String>,
    /// Interest in these is not sent and messages on them are dropped
    /// (deny_imports of a remote).
    pub deny_in: Vec<String>,
    /// Set when the peer reported a loop or a permission error: the next
    /// attempt waits [`options::LOOP_DELAY`].
    pub delay_retry: bool,
}

/// A remote's connection state.
#[derive(Debug)]
struct RemoteState {
    link: Option<usize>,
    next_attempt: Instant,
    /// Index of the next URL to try in `urls ++ discovered`.
    next_url: usize,
    /// URLs learnt from the hub's `leafnode_urls`.
    discovered: Vec<RemoteUrl>,
    /// rustls client configuration, when the remote has a `tls` block.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

/// One link a message goes to, and the queue groups picked behind it.
#[derive(Debug)]
struct Target {
    link: usize,
    queues: SmallVec<[SubId; 2]>,
}

/// Everything the loop keeps for leaf links.
#[derive(Debug)]
pub(crate) struct LeafState {
    pub opts: LeafOptions,
    listener: Option<TcpListener>,
    pub listen_addr: Option<SocketAddr>,
    /// Interest by subject/queue and the part each link holds.
    pub interest: Interest,
    /// Open links (in any phase), by client key.
    pub links: Vec<usize>,
    remotes: Vec<RemoteState>,
    /// `$LDS.<id>`: seeing it come back means a loop.
    lds: String,
    /// Scratch for routing.
    targets: Vec<Target>,
    /// TLS for accepted leaves.
    tls_config: Option<std::sync::Arc<rustls::ServerConfig>>,
    /// Parser limits on links.
    pub limits: Limits,
}

impl LeafState {
    /// Binds the leafnode port (when configured) and prepares the remotes;
    /// `None` when leaf nodes are not configured.
    pub(crate) fn new(
        config: &crate::Config,
        poll: &mio::Poll,
    ) -> io::Result<Option<Box<LeafState>>> {
        let opts = config.leafnodes.clone();
        if !opts.enabled() {
            return Ok(None);
        }
        let mut listener = None;
        let mut listen_addr = None;
        if let Some(port) = opts.port {
            let host = opts.host.as_deref().unwrap_or(&config.host);
            let addr = (host, port).to_socket_addrs()?.next().ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "no address for leafnodes host")
            })?;
            let mut l = TcpListener::bind(addr)?;
            poll.registry()
                .register(&mut l, LEAF_LISTENER, Ready::READABLE)?;
            listen_addr = Some(l.local_addr()?);
            listener = Some(l);
        }
        let tls_config = match &opts.tls {
            Some(t) if opts.port.is_some() => Some(
                t.server_config()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
            ),
            _ => None,
        };
        let now = Instant::now();
        let mut remotes = Vec::with_capacity(opts.remotes.len());
        for r in &opts.remotes {
            let tls = match &r.tls {
                Some(t) => Some(
                    t.client_config()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?,
                ),
                None => None,
            };
            remotes.push(RemoteState {
                link: None,
                next_attempt: now,
                next_url: 0,
                discovered: Vec::new(),
                tls,
            });
        }
        let lds = format!(
            "$LDS.{:016x}{:08x}",
            crate::random_u64(),
            crate::random_u64() as u32
        );
        Ok(Some(Box::new(LeafState {
            opts,
            listener,
            listen_addr,
            interest: Interest::new(),
            links: Vec::new(),
            remotes,
            lds,
            targets: Vec::new(),
            tls_config,
            limits: Limits {
                max_control_line: config.max_control_line.max(LEAF_CONTROL_LINE),
                // A hub may allow larger messages than natrium's clients
                // may publish: they are delivered, up to nats-server's own
                // hard limit, rather than closing the link over and over.
                max_payload: config.max_payload.max(MAX_LINK_PAYLOAD),
            },
        })))
    }
}

/// The `-ERR` for a loop, as nats-server words it.
const LOOP_ERR: &str =
    "Loop detected for leafnode account=\"$G\". Delaying attempt to reconnect for 30s";

impl Server {
    /// Whether client slot `key` is a leaf link.
    #[inline]
    pub(crate) fn is_link(&self, key: usize) -> bool {
        self.clients.get(key).is_some_and(|c| c.leaf.is_some())
    }

    /// The address of the leafnode listener, if any.
    pub fn leaf_addr(&self) -> Option<SocketAddr> {
        self.leaf.as_ref().and_then(|l| l.listen_addr)
    }

    // ----- accepting -----

    /// Accepts every pending leaf connection.
    pub(crate) fn accept_leafs(&mut self) {
        loop {
            let Some(listener) = self.leaf.as_ref().and_then(|l| l.listener.as_ref()) else {
                return;
            };
            match listener.accept() {
                Ok((stream, addr)) => self.admit_leaf(stream, addr),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    warn!("Error accepting leafnode connection: {e}");
                    return;
                }
            }
        }
    }

    fn admit_leaf(&mut self, stream: TcpStream, addr: SocketAddr) {
        let now = Instant::now();
        let timeout = self
            .leaf
            .as_ref()
            .and_then(|l| l.opts.authorization.as_ref())
            .and_then(|a| a.timeout)
            .unwrap_or(HANDSHAKE_TIMEOUT);
        let link = LeafLink {
            role: Role::Accepted,
            phase: LinkPhase::AwaitConnect,
            deadline: now + timeout,
            remote_id: String::new(),
            remote_name: String::new(),
            url: None,
            headers: false,
            deny_out: Vec::new(),
            deny_in: Vec::new(),
            delay_retry: false,
        };
        let Some(key) = self.insert_link(stream, addr, link, false) else {
            return;
        };
        let own_users = self
            .leaf
            .as_ref()
            .and_then(|l| l.opts.authorization.as_ref())
            .is_none_or(|a| a.users.is_empty());
        if own_users && self.config.auth.needs_nonce() {
            // nkey users of the server may log leaves in: they sign this.
            match crate::auth::new_nonce() {
                Ok(nonce) => {
                    if let Some(c) = self.clients.get_mut(key) {
                        c.nonce = Some(nonce.into_boxed_str());
                    }
                }
                Err(e) => {
                    error!("Cannot generate a nonce for leafnode {addr}: {e}");
                    self.begin_close(key, CloseReason::ServerShutdown);
                    return;
                }
            }
        }
        let tls_config = self.leaf.as_ref().and_then(|l| l.tls_config.clone());
        if let (Some(cfg), Some(opts)) = (
            tls_config,
            self.leaf.as_ref().and_then(|l| l.opts.tls.clone()),
        ) {
            match crate::tls::TlsState::new(&cfg, &opts, now) {
                Ok(tls) => {
                    if let Some(c) = self.clients.get_mut(key) {
                        c.tls = Some(Box::new(tls));
                    }
                }
                Err(e) => {
                    error!("Cannot start TLS for leafnode {addr}: {e}");
                    self.begin_close(key, CloseReason::TlsHandshake);
                    return;
                }
            }
        }
        self.push_hub_info(key, false);
        info!("Leafnode connection accepted from {addr}");
    }

    /// Appends the accepting side's INFO (`connect_info`: the second one).
    fn push_hub_info(&mut self, key: usize, connect_info: bool) {
        let Some(leaf) = self.leaf.as_ref() else {
            return;
        };
        let port = leaf.listen_addr.map_or(0, |a| a.port());
        // The address the leaf reached us on is one it can reach again
        // (a wildcard listen address is not).
        let reached = self
            .clients
            .get(key)
            .and_then(|c| c.stream.local_addr().ok())
            .map(|a| a.ip().to_string());
        let host = leaf
            .opts
            .host
            .clone()
            .filter(|h| h != "0.0.0.0" && h != "::")
            .or(reached)
            .unwrap_or_else(|| self.config.host.clone());
        let tls_required = leaf.tls_config.is_some();
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        let nonce = if connect_info {
            None
        } else {
            client.nonce.clone()
        };
        lwire::push_hub_info(
            &mut client.out,
            &lwire::HubInfo {
                server_id: &self.server_id,
                server_name: self
                    .config
                    .server_name
                    .as_deref()
                    .unwrap_or(&self.server_id),
                host: &host,
                port,
                max_payload: self.config.max_payload,
                client_id: client.cid,
                tls_required,
                nonce: nonce.as_deref(),
                connect_info,
            },
        );
        self.mark_dirty(key);
    }

    /// Registers a link's socket and puts it in the slab.
    fn insert_link(
        &mut self,
        mut stream: TcpStream,
        addr: SocketAddr,
        link: LeafLink,
        connecting: bool,
    ) -> Option<usize> {
        let now = Instant::now();
        let _ = stream.set_nodelay(true);
        let entry = self.clients.vacant_entry();
        let key = entry.key();
        let ready = if connecting {
            Ready::READABLE | Ready::WRITABLE
        } else {
            Ready::READABLE
        };
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, Token(key + FIRST_CLIENT), ready)
        {
            warn!("Cannot register leafnode connection {addr}: {e}");
            return None;
        }
        let cid = self.next_cid;
        self.next_cid += 1;
        let mut client = Client::new(cid, stream, addr, now);
        client.write_interest = connecting;
        client.connected = true;
        client.opts.echo = false;
        client.opts.verbose = false;
        client.opts.pedantic = false;
        client.next_ping = now + self.config.ping_interval;
        client.leaf = Some(Box::new(link));
        entry.insert(client);
        self.open_clients += 1;
        if let Some(leaf) = self.leaf.as_mut() {
            leaf.links.push(key);
        }
        Some(key)
    }

    // ----- soliciting -----

    /// Timers of links and remotes: handshake deadlines, connection attempts.
    pub(crate) fn leaf_tick(&mut self, now: Instant) {
        let Some(leaf) = self.leaf.as_ref() else {
            return;
        };
        let late: Vec<usize> = leaf
            .links
            .iter()
            .copied()
            .filter(|&k| {
                self.clients.get(k).is_some_and(|c| {
                    !c.is_closing()
                        && c.leaf
                            .as_ref()
                            .is_some_and(|l| l.phase != LinkPhase::Established && now >= l.deadline)
                })
            })
            .collect();
        for key in late {
            if let Some(c) = self.clients.get(key) {
                warn!("{} Leafnode handshake timed out", c.describe());
            }
            self.on_error(key, ProtoError::AuthenticationTimeout);
        }
        if self.shutdown_deadline.is_some() {
            return;
        }
        let due: Vec<usize> = self.leaf.as_ref().map_or_else(Vec::new, |leaf| {
            leaf.remotes
                .iter()
                .enumerate()
                .filter(|(i, r)| {
                    r.link.is_none()
                        && now >= r.next_attempt
                        && leaf.opts.remotes.get(*i).is_some_and(|o| !o.disabled)
                })
                .map(|(i, _)| i)
                .collect()
        });
        for remote in due {
            self.solicit(remote, now);
        }
    }

    /// The pause before remote `i` tries again.
    fn retry_delay(&self, i: usize) -> Duration {
        self.leaf.as_ref().map_or(options::DEFAULT_RECONNECT, |l| {
            l.opts
                .remotes
                .get(i)
                .and_then(|r| r.reconnect)
                .or(l.opts.reconnect)
                .unwrap_or(options::DEFAULT_RECONNECT)
        })
    }

    /// Dials the next URL of remote `i`.
    fn solicit(&mut self, i: usize, now: Instant) {
        let delay = self.retry_delay(i);
        let Some(leaf) = self.leaf.as_mut() else {
            return;
        };
        let (Some(remote), Some(state)) = (leaf.opts.remotes.get(i), leaf.remotes.get_mut(i))
        else {
            return;
        };
        state.next_attempt = now + delay;
        let all: Vec<&RemoteUrl> = remote.urls.iter().chain(state.discovered.iter()).collect();
        if all.is_empty() {
            return;
        }
        let url = all[state.next_url % all.len()].clone();
        state.next_url = state.next_url.wrapping_add(1);
        if url.tls && state.tls.is_none() {
            warn!(
                "Leafnode remote {}: a tls:// URL needs a tls {{ ca_file }} block on the remote; not connecting",
                url.host_port()
            );
            return;
        }
        let deny_in = remote.deny_imports.clone();
        let deny_out = remote.deny_exports.clone();
        // Resolution of a host name may block briefly; addresses do not.
        let addr = match (url.host.as_str(), url.port).to_socket_addrs() {
            Ok(mut addrs) => match addrs.next() {
                Some(a) => a,
                None => {
                    debug!("Leafnode remote {}: no address", url.host_port());
                    return;
                }
            },
            Err(e) => {
                debug!("Leafnode remote {}: {e}", url.host_port());
                return;
            }
        };
        let stream = match TcpStream::connect(addr) {
            Ok(s) => s,
            Err(e) => {
                debug!("Error trying to connect as leafnode to remote server {addr}: {e}");
                return;
            }
        };
        debug!("Trying to connect as leafnode to remote server on {addr}");
        let link = LeafLink {
            role: Role::Solicited(i),
            phase: LinkPhase::AwaitInfo,
            deadline: now + HANDSHAKE_TIMEOUT.max(options::FIRST_INFO_TIMEOUT),
            remote_id: String::new(),
            remote_name: String::new(),
            url: Some(url.host_port()),
            headers: true,
            deny_out,
            deny_in,
            delay_retry: false,
        };
        if let Some(key) = self.insert_link(stream, addr, link, true)
            && let Some(state) = self.leaf.as_mut().and_then(|l| l.remotes.get_mut(i))
        {
            state.link = Some(key);
        }
    }

    // ----- closing -----

    /// A link starts closing: it leaves the link list, its interest goes
    /// (telling the other links), and a remote schedules its retry.
    pub(crate) fn leaf_closing(&mut self, key: usize, reason: CloseReason) {
        let Some(link) = self.clients.get(key).and_then(|c| c.leaf.as_deref()) else {
            // A client: its subscriptions go through remove_sub, so that
            // the links hear LS- for interest that ends with it.
            let ids: Vec<usize> = self
                .clients
                .get(key)
                .map(|c| c.subs.values().copied().collect())
                .unwrap_or_default();
            for id in ids {
                self.remove_sub(id);
            }
            return;
        };
        let role = link.role;
        let established = link.phase == LinkPhase::Established;
        let delay_retry = link.delay_retry;
        if let Some(c) = self.clients.get(key) {
            if established {
                warn!(
                    "{} Leafnode connection closed: {reason} (remote {:?})",
                    c.describe(),
                    link_name(c)
                );
            } else {
                debug!("{} Leafnode connection closed: {reason}", c.describe());
            }
        }
        if let Some(leaf) = self.leaf.as_mut() {
            leaf.links.retain(|&k| k != key);
        }
        let ids: Vec<usize> = self
            .clients
            .get(key)
            .map(|c| c.subs.values().copied().collect())
            .unwrap_or_default();
        for id in ids {
            self.remove_sub(id);
        }
        if let Role::Solicited(i) = role {
            let delay = if delay_retry {
                options::LOOP_DELAY
            } else {
                self.retry_delay(i)
            };
            if let Some(state) = self.leaf.as_mut().and_then(|l| l.remotes.get_mut(i))
                && state.link == Some(key)
            {
                state.link = None;
                let now = Instant::now();
                if delay_retry || established {
                    // A failed attempt keeps the schedule set when it started.
                    state.next_attempt = now + delay;
                }
            }
        }
    }

    // ----- reading -----

    /// Parses and handles everything in `data` from link `key` (the leaf
    /// counterpart of `ingest`, with the same carry logic).
    pub(crate) fn ingest_leaf(&mut self, key: usize, data: &[u8]) {
        let Some(limits) = self.leaf.as_ref().map(|l| l.limits) else {
            return;
        };
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        let mut carry = std::mem::take(&mut client.carry);
        let mut pos = 0;
        if !carry.is_empty() {
            match parser::complete_carry(&mut carry, data, &mut pos, &limits) {
                Ok(true) => {
                    let result = match parser::parse(&carry, &limits) {
                        Ok(Parsed::Complete { op: Some(op), .. }) => self.dispatch_leaf(key, op),
                        Ok(_) => Ok(()),
                        Err(e) => Err(e),
                    };
                    carry.clear();
                    if let Err(e) = result {
                        self.leaf_error(key, e);
                        return;
                    }
                }
                Ok(false) => {
                    self.put_carry(key, carry);
                    return;
                }
                Err(e) => {
                    self.leaf_error(key, e);
                    return;
                }
            }
        }
        while pos < data.len() {
            if self.clients.get(key).is_none_or(|c| c.is_closing()) {
                return;
            }
            match parser::parse(&data[pos..], &limits) {
                Ok(Parsed::Complete { op, len }) => {
                    if let Some(op) = op
                        && let Err(e) = self.dispatch_leaf(key, op)
                    {
                        self.leaf_error(key, e);
                        return;
                    }
                    pos += len;
                }
                Ok(Parsed::Partial(_)) => {
                    carry.extend_from_slice(&data[pos..]);
                    break;
                }
                Err(e) => {
                    self.leaf_error(key, e);
                    return;
                }
            }
        }
        self.put_carry(key, carry);
    }

    /// Every error on a link closes it (nats-server closes a leaf
    /// connection on any protocol error), after its `-ERR` if it has one.
    fn leaf_error(&mut self, key: usize, e: ProtoError) {
        if let Some(c) = self.clients.get(key) {
            warn!("{} Leafnode error: {e:?}", c.describe());
        }
        let fatal = e.is_fatal();
        self.on_error(key, e);
        if !fatal {
            self.begin_close(key, CloseReason::ProtocolViolation);
        }
    }

    /// Closes a link with an `-ERR` of our own words.
    fn leaf_refuse(&mut self, key: usize, text: &str, reason: CloseReason) {
        if let Some(c) = self.clients.get_mut(key) {
            warn!("{} Leafnode connection refused: {text}", c.describe());
            wire::push_err(&mut c.out, text);
        }
        self.mark_dirty(key);
        self.begin_close(key, reason);
    }

    /// Carries out one operation from link `key`.
    fn dispatch_leaf(&mut self, key: usize, op: LeafOp<'_>) -> Result<(), ProtoError> {
        let Some(client) = self.clients.get_mut(key) else {
            return Ok(());
        };
        let Some(link) = client.leaf.as_deref() else {
            return Ok(());
        };
        let phase = link.phase;
        let role = link.role;
        match op {
            LeafOp::Ping => {
                client.out.extend_from_slice(wire::PONG);
                self.mark_dirty(key);
            }
            LeafOp::Pong => {
                client.mon.pong(Instant::now());
                client.pings_out = 0;
                client.answered_ping = true;
            }
            LeafOp::Ok => {}
            LeafOp::Err(text) => {
                let text = String::from_utf8_lossy(text).into_owned();
                warn!("{} Leafnode peer sent -ERR {text}", client.describe());
                if let Some(link) = client.leaf.as_deref_mut()
                    && (text.contains("Loop detected") || text.contains("Permissions Violation"))
                {
                    link.delay_retry = true;
                }
                self.begin_close(key, CloseReason::ClientClosed);
            }
            LeafOp::Info(json) => self.leaf_info(key, json)?,
            LeafOp::Connect(json) => {
                if role != Role::Accepted || phase != LinkPhase::AwaitConnect {
                    return Err(ProtoError::Malformed);
                }
                self.leaf_connect(key, json);
            }
            _ if phase == LinkPhase::AwaitConnect || phase == LinkPhase::AwaitInfo => {
                // Nothing but the handshake before the handshake.
                return Err(ProtoError::AuthorizationViolation);
            }
            LeafOp::Sub {
                subject,
                queue,
                weight,
            } => self.leaf_sub(key, subject, queue, weight),
            LeafOp::Unsub { subject, queue } => {
                let sid = link_sid(subject, queue);
                if let Some(&id) = client.subs.get(&sid[..]) {
                    self.remove_sub(id);
                }
            }
            LeafOp::Msg(m) => self.leaf_msg(key, &m),
        }
        Ok(())
    }

    /// INFO from the peer: the hub's greeting, its `connect_info`, or an update.
    fn leaf_info(&mut self, key: usize, json: &[u8]) -> Result<(), ProtoError> {
        let info: serde_json::Value =
            serde_json::from_slice(json).map_err(|_| ProtoError::Malformed)?;
        let Some(client) = self.clients.get_mut(key) else {
            return Ok(());
        };
        let desc = client.describe();
        let Some(link) = client.leaf.as_deref_mut() else {
            return Ok(());
        };
        let Role::Solicited(remote) = link.role else {
            // An accepted leaf's INFO (compression negotiation): ignored.
            return Ok(());
        };
        let urls: Vec<RemoteUrl> = info
            .get("leafnode_urls")
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str())
                    .filter_map(|u| RemoteUrl::parse(u).ok())
                    .collect()
            })
            .unwrap_or_default();
        match link.phase {
            LinkPhase::AwaitInfo => {
                let cid = info.get("client_id").and_then(|v| v.as_u64()).unwrap_or(0);
                if cid == 0 || info.get("leafnode_urls").is_none_or(|v| !v.is_array()) {
                    error!(
                        "{} Leafnode remote is not a leafnode port (INFO without client_id and leafnode_urls); closing",
                        desc
                    );
                    self.begin_close(key, CloseReason::ProtocolViolation);
                    return Ok(());
                }
                let tls_required = info.get("tls_required").and_then(|v| v.as_bool()) == Some(true);
                let tls_config = self
                    .leaf
                    .as_ref()
                    .and_then(|l| l.remotes.get(remote))
                    .and_then(|r| r.tls.clone());
                let tls_timeout = self
                    .leaf
                    .as_ref()
                    .and_then(|l| l.opts.remotes.get(remote))
                    .and_then(|r| r.tls.as_ref())
                    .map_or(crate::tls::DEFAULT_TLS_TIMEOUT, |t| t.timeout());
                let Some(client) = self.clients.get_mut(key) else {
                    return Ok(());
                };
                if tls_required || tls_config.is_some() {
                    let Some(cfg) = tls_config else {
                        error!(
                            "{desc} Leafnode hub requires TLS: the remote needs a tls {{ ca_file }} block; closing"
                        );
                        self.begin_close(key, CloseReason::TlsHandshake);
                        return Ok(());
                    };
                    let host = client
                        .leaf
                        .as_deref()
                        .and_then(|l| l.url.as_deref())
                        .and_then(|u| u.rsplit_once(':').map(|(h, _)| h.trim_matches(['[', ']'])))
                        .unwrap_or("localhost")
                        .to_string();
                    match crate::tls::TlsState::client(&cfg, &host, tls_timeout, Instant::now()) {
                        Ok(tls) => client.tls = Some(Box::new(tls)),
                        Err(e) => {
                            error!("{desc} Leafnode TLS: {e}; closing");
                            self.begin_close(key, CloseReason::TlsHandshake);
                            return Ok(());
                        }
                    }
                }
                let Some(link) = client.leaf.as_deref_mut() else {
                    return Ok(());
                };
                link.remote_id = json_str(&info, "server_id");
                link.remote_name = json_str(&info, "server_name");
                link.headers = info.get("headers").and_then(|v| v.as_bool()) != Some(false);
                let info_on_connect =
                    info.get("info_on_connect").and_then(|v| v.as_bool()) == Some(true);
                let nonce = info
                    .get("nonce")
                    .and_then(|v| v.as_str())
                    .map(str::to_string);
                self.learn_urls(remote, urls);
                self.send_leaf_connect(key, remote, nonce.as_deref());
                if info_on_connect {
                    if let Some(link) = self
                        .clients
                        .get_mut(key)
                        .and_then(|c| c.leaf.as_deref_mut())
                    {
                        link.phase = LinkPhase::AwaitConnectInfo;
                    }
                } else {
                    self.establish(key);
                }
            }
            LinkPhase::AwaitConnectInfo => {
                if let Some(acc) = info.get("remote_account").and_then(|v| v.as_str())
                    && acc != "$G"
                {
                    error!(
                        "{} Leafnode hub bound this link to account {acc:?}: natrium has only the global account; closing",
                        desc
                    );
                    link.delay_retry = true;
                    self.begin_close(key, CloseReason::AuthViolation);
                    return Ok(());
                }
                self.learn_urls(remote, urls);
                self.establish(key);
            }
            _ => self.learn_urls(remote, urls),
        }
        Ok(())
    }

    /// Keeps the hub's `leafnode_urls` for failover.
    fn learn_urls(&mut self, remote: usize, urls: Vec<RemoteUrl>) {
        let Some(leaf) = self.leaf.as_mut() else {
            return;
        };
        let (Some(opts), Some(state)) =
            (leaf.opts.remotes.get(remote), leaf.remotes.get_mut(remote))
        else {
            return;
        };
        let template = opts.urls.first();
        for mut u in urls {
            if let Some(t) = template {
                // Announced URLs carry no credentials: use the configured ones.
                u.user = t.user.clone();
                u.pass = t.pass.clone();
                u.tls = t.tls;
            }
            let known = opts
                .urls
                .iter()
                .chain(state.discovered.iter())
                .any(|k| k.host_port() == u.host_port());
            if !known && state.discovered.len() < 64 {
                state.discovered.push(u);
            }
        }
    }

    /// Sends CONNECT on a solicited link.
    fn send_leaf_connect(&mut self, key: usize, remote: usize, nonce: Option<&str>) {
        let Some(leaf) = self.leaf.as_ref() else {
            return;
        };
        let Some(opts) = leaf.opts.remotes.get(remote) else {
            return;
        };
        let url_str = self
            .clients
            .get(key)
            .and_then(|c| c.leaf.as_ref())
            .and_then(|l| l.url.clone());
        let Some(state) = leaf.remotes.get(remote) else {
            return;
        };
        let url = opts
            .urls
            .iter()
            .chain(state.discovered.iter())
            .find(|u| Some(u.host_port()) == url_str)
            .or(opts.urls.first());
        let signed = match (&opts.seed, nonce) {
            (Some(seed), Some(nonce)) => match nkeys::KeyPair::from_seed(seed) {
                Ok(kp) => match kp.sign(nonce.as_bytes()) {
                    Ok(sig) => {
                        use base64::Engine;
                        Some((
                            kp.public_key(),
                            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig),
                        ))
                    }
                    Err(e) => {
                        error!("Leafnode remote: cannot sign the nonce: {e}");
                        None
                    }
                },
                Err(e) => {
                    error!("Leafnode remote: invalid nkey seed: {e}");
                    None
                }
            },
            _ => None,
        };
        let name = self
            .config
            .server_name
            .clone()
            .unwrap_or_else(|| self.server_id.clone());
        let mut out = Vec::new();
        lwire::push_connect(
            &mut out,
            &lwire::LeafConnect {
                server_id: &self.server_id,
                name: &name,
                user: url.and_then(|u| u.user.as_deref()),
                pass: url.and_then(|u| u.pass.as_deref()),
                nkey_sig: signed.as_ref().map(|(k, s)| (k.as_str(), s.as_str())),
                deny_pub: &opts.deny_imports,
            },
        );
        if let Some(c) = self.clients.get_mut(key) {
            c.out.extend_from_slice(&out);
        }
        self.mark_dirty(key);
    }

    /// CONNECT from an accepted leaf: checks, the second INFO, established.
    fn leaf_connect(&mut self, key: usize, json: &[u8]) {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(json) else {
            self.leaf_refuse(key, "Authorization Violation", CloseReason::AuthViolation);
            return;
        };
        if v.get("lang").is_some() {
            self.leaf_refuse(
                key,
                "attempted to connect to leaf node port",
                CloseReason::ProtocolViolation,
            );
            return;
        }
        if let Some(acc) = v.get("remote_account").and_then(|a| a.as_str())
            && acc != "$G"
        {
            self.leaf_refuse(
                key,
                &format!(
                    "Authorization Violation: account {acc:?} does not exist (natrium has only the global account $G)"
                ),
                CloseReason::AuthViolation,
            );
            return;
        }
        if !self.leaf_authorized(key, &v, json) {
            self.leaf_refuse(key, "Authorization Violation", CloseReason::AuthViolation);
            return;
        }
        if v.get("server_id").and_then(|s| s.as_str()) == Some(self.server_id.as_str()) {
            self.leaf_refuse(key, LOOP_ERR, CloseReason::ProtocolViolation);
            return;
        }
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        let Some(link) = client.leaf.as_deref_mut() else {
            return;
        };
        link.remote_id = json_str(&v, "server_id");
        link.remote_name = json_str(&v, "name");
        link.headers = v.get("headers").and_then(|h| h.as_bool()) == Some(true);
        link.deny_out = v
            .get("deny_pub")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .take(1024)
                    .collect()
            })
            .unwrap_or_default();
        client.opts.name = link.remote_name.clone();
        self.push_hub_info(key, true);
        self.establish(key);
    }

    /// Whether an accepted leaf's CONNECT carries acceptable credentials:
    /// the `leafnodes.authorization` users when set, else the server's own
    /// users (as nats-server falls back to), else anyone.
    fn leaf_authorized(&self, key: usize, v: &serde_json::Value, json: &[u8]) -> bool {
        let user = v.get("user").and_then(|u| u.as_str()).unwrap_or("");
        let pass = v.get("pass").and_then(|u| u.as_str()).unwrap_or("");
        if let Some(auth) = self
            .leaf
            .as_ref()
            .and_then(|l| l.opts.authorization.as_ref())
            && !auth.users.is_empty()
        {
            return auth.users.iter().any(|(u, p)| {
                crate::auth::constant_time_eq(u.as_bytes(), user.as_bytes())
                    & crate::auth::constant_time_eq(p.as_bytes(), pass.as_bytes())
            });
        }
        if self.config.auth.required() {
            let Some(info) = wire::ConnectInfo::decode(json) else {
                return false;
            };
            let mut creds = crate::auth::Credentials::from_connect(&info);
            // bcrypt would block the loop: such users are refused on links.
            return self
                .config
                .auth
                .authenticate_nonblocking(
                    &mut creds,
                    self.clients.get(key).and_then(|c| c.nonce.as_deref()),
                )
                .is_some();
        }
        true
    }

    /// The handshake is done: send all the interest the peer should see,
    /// then a PING to measure the round trip.
    fn establish(&mut self, key: usize) {
        let Some(leaf) = self.leaf.as_ref() else {
            return;
        };
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        let Some(link) = client.leaf.as_deref_mut() else {
            return;
        };
        link.phase = LinkPhase::Established;
        let role = match link.role {
            Role::Solicited(_) => "solicited",
            Role::Accepted => "accepted",
        };
        let name = if link.remote_name.is_empty() {
            link.remote_id.clone()
        } else {
            link.remote_name.clone()
        };
        let solicited = matches!(link.role, Role::Solicited(_));
        // A hub hears of local interest and of the leaves' behind natrium,
        // not of another hub's (nats-server's spokes do the same).
        let hubs: Vec<usize> = if solicited {
            leaf.links
                .iter()
                .copied()
                .filter(|&k| k != key && self.link_role(k).is_some_and(|r| r.is_solicited()))
                .collect()
        } else {
            Vec::new()
        };
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        let Some(link) = client.leaf.as_deref_mut() else {
            return;
        };
        for (subject, queue, n) in leaf.interest.seen_by_except(key, |l| hubs.contains(&l)) {
            if !interest::denied_filter(&link.deny_in, subject) {
                lwire::push_sub(&mut client.out, subject, queue, n);
            }
        }
        lwire::push_sub(&mut client.out, leaf.lds.as_bytes(), None, 1);
        client.out.extend_from_slice(wire::PING);
        client.mon.ping_sent(Instant::now());
        client.pings_out += 1;
        info!(
            "{} Leafnode connection established ({role}, remote {name:?}, {} interest entries sent)",
            client.describe(),
            leaf.interest.len()
        );
        self.mark_dirty(key);
    }

    // ----- interest -----

    /// LS+ from link `key`.
    fn leaf_sub(&mut self, key: usize, subject: &[u8], queue: Option<&[u8]>, weight: u32) {
        let Some(leaf) = self.leaf.as_ref() else {
            return;
        };
        if subject == leaf.lds.as_bytes() {
            // Our own loop-detection subject came back: a cycle.
            if let Some(link) = self
                .clients
                .get_mut(key)
                .and_then(|c| c.leaf.as_deref_mut())
            {
                link.delay_retry = true;
            }
            self.leaf_refuse(key, LOOP_ERR, CloseReason::ProtocolViolation);
            return;
        }
        if !sublist::is_valid_subject(subject) || queue.is_some_and(|q| q.is_empty()) {
            debug!("Leafnode LS+ with an invalid subject ignored");
            return;
        }
        let max_subs = self.config.max_subscriptions;
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        let Some(link) = client.leaf.as_deref() else {
            return;
        };
        if interest::denied_filter(&link.deny_out, subject) {
            // We may not send there: the peer's interest is not taken.
            return;
        }
        let sid = link_sid(subject, queue);
        let weight = weight.max(1);
        if client.subs.contains_key(&sid[..]) {
            if queue.is_some() {
                let applied = self
                    .leaf
                    .as_mut()
                    .map(|l| l.interest.set_link(subject, queue, key, weight));
                if let Some(applied) = applied {
                    self.propagate(subject, queue, &applied);
                }
            }
            return;
        }
        if client.subs.len() >= max_subs.max(MAX_LINK_SUBS) {
            // Bounded like everything a peer can grow.
            warn!(
                "{} Leafnode interest beyond {} subscriptions ignored",
                client.describe(),
                max_subs.max(MAX_LINK_SUBS)
            );
            return;
        }
        let entry = self.subs.vacant_entry();
        let id = entry.key();
        let Ok(sub_id) = SubId::try_from(id) else {
            return;
        };
        if self.sublist.insert(subject, queue, sub_id).is_err() {
            return;
        }
        entry.insert(Subscription {
            client: key,
            sid: sid[..].into(),
            subject: subject.into(),
            queue: queue.map(Into::into),
            delivered: 0,
            max: None,
        });
        client.subs.insert(sid[..].into(), id);
        let applied = self
            .leaf
            .as_mut()
            .map(|l| l.interest.set_link(subject, queue, key, weight));
        if let Some(applied) = applied {
            self.propagate(subject, queue, &applied);
        }
    }

    /// A subscription of client (or link) `owner` came or went: the
    /// interest books change and the links hear of it.
    pub(crate) fn leaf_interest(
        &mut self,
        owner: usize,
        subject: &[u8],
        queue: Option<&[u8]>,
        add: bool,
    ) {
        let from_link = self.is_link(owner);
        let Some(leaf) = self.leaf.as_mut() else {
            return;
        };
        let applied = if from_link {
            if add {
                return; // links add interest through leaf_sub
            }
            leaf.interest.set_link(subject, queue, owner, 0)
        } else {
            leaf.interest.local(subject, queue, add)
        };
        self.propagate(subject, queue, &applied);
    }

    /// Tells every established link how the interest it sees changed.
    fn propagate(&mut self, subject: &[u8], queue: Option<&[u8]>, applied: &Applied) {
        let Some(leaf) = self.leaf.as_ref() else {
            return;
        };
        let hubs: SmallVec<[usize; 4]> = leaf
            .links
            .iter()
            .copied()
            .filter(|&k| self.link_role(k).is_some_and(|r| r.is_solicited()))
            .collect();
        for &link_key in &leaf.links {
            let hidden = |l: usize| hubs.contains(&l);
            let seen = if hubs.contains(&link_key) {
                applied.seen_by_except(link_key, hidden)
            } else {
                applied.seen_by(link_key)
            };
            let Some((before, after)) = seen else {
                continue;
            };
            let Some(client) = self.clients.get_mut(link_key) else {
                continue;
            };
            let Some(link) = client.leaf.as_deref() else {
                continue;
            };
            if link.phase != LinkPhase::Established || client.is_closing() {
                continue;
            }
            if interest::denied_filter(&link.deny_in, subject) {
                continue;
            }
            if after == 0 {
                lwire::push_unsub(&mut client.out, subject, queue);
            } else if queue.is_some() || before == 0 {
                lwire::push_sub(&mut client.out, subject, queue, after);
            } else {
                continue;
            }
            if !client.dirty {
                client.dirty = true;
                self.dirty.push(link_key);
            }
        }
    }

    // ----- messages -----

    /// LMSG/HMSG from link `key`.
    fn leaf_msg(&mut self, key: usize, m: &LeafMsg<'_>) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        client.in_msgs += 1;
        client.in_bytes += m.data.len() as u64;
        if client
            .leaf
            .as_deref()
            .is_some_and(|l| interest::denied(&l.deny_in, m.subject))
        {
            return;
        }
        let p = Publish {
            subject: m.subject,
            reply: m.reply,
            header_len: m.header_len,
            data: m.data,
        };
        let result = self.sublist.matches(m.subject);
        if result.is_empty() {
            return;
        }
        self.route_with_leafs(key, false, &p, &result, Some(m));
    }

    /// Routes a message when leaf links exist: local subscribers get MSG as
    /// usual; each link with matching interest gets one LMSG carrying the
    /// queue groups picked for it. Queue groups serve local members first.
    /// `from_leaf`: the message came from link `from` (only its listed queue
    /// groups are served, and it never goes back, nor from a hub to a hub).
    pub(crate) fn route_with_leafs(
        &mut self,
        from: usize,
        echo: bool,
        p: &Publish<'_>,
        result: &MatchResult,
        from_leaf: Option<&LeafMsg<'_>>,
    ) -> usize {
        let Some(leaf) = self.leaf.as_mut() else {
            return 0;
        };
        let mut targets = std::mem::take(&mut leaf.targets);
        targets.clear();
        let from_hub = from_leaf.is_some()
            && self
                .clients
                .get(from)
                .and_then(|c| c.leaf.as_deref())
                .is_some_and(|l| matches!(l.role, Role::Solicited(_)));
        let mut delivered = 0;
        for &id in &result.plain {
            match self.link_of(id) {
                Some((link, solicited)) => {
                    if link != from && !(from_hub && solicited) {
                        add_target(&mut targets, link, None);
                    }
                }
                None => {
                    if self.deliver(from, echo, id, p) {
                        delivered += 1;
                    }
                }
            }
        }
        for group in &result.queues {
            if let Some(m) = from_leaf
                && !m.lists_queue(&group.name)
            {
                continue;
            }
            let n = group.members.len();
            let start = group.next_start();
            let mut served = false;
            for i in 0..n {
                let id = group.members[(start + i) % n];
                if self.link_of(id).is_none() && self.deliver(from, echo, id, p) {
                    delivered += 1;
                    served = true;
                    break;
                }
            }
            if served {
                continue;
            }
            for i in 0..n {
                let id = group.members[(start + i) % n];
                if let Some((link, solicited)) = self.link_of(id)
                    && link != from
                    && !(from_hub && solicited)
                {
                    add_target(&mut targets, link, Some(id));
                    break;
                }
            }
        }
        for t in &targets {
            if self.deliver_link(t, p) {
                delivered += 1;
            }
        }
        if let Some(leaf) = self.leaf.as_mut() {
            leaf.targets = targets;
        }
        delivered
    }

    /// The role of link `key`, if it is one.
    fn link_role(&self, key: usize) -> Option<Role> {
        Some(self.clients.get(key)?.leaf.as_deref()?.role)
    }

    /// The link owning subscription `id` (and whether natrium solicited it).
    #[inline]
    fn link_of(&self, id: SubId) -> Option<(usize, bool)> {
        let owner = self.subs.get(id as usize)?.client;
        let link = self.clients.get(owner)?.leaf.as_deref()?;
        Some((owner, matches!(link.role, Role::Solicited(_))))
    }

    /// Appends one LMSG/HMSG to a link, within its `max_pending`.
    fn deliver_link(&mut self, t: &Target, p: &Publish<'_>) -> bool {
        let queue_bytes: usize = t
            .queues
            .iter()
            .filter_map(|&id| self.subs.get(id as usize)?.queue.as_deref())
            .map(|q| q.len() + 1)
            .sum();
        let Some(client) = self.clients.get_mut(t.link) else {
            return false;
        };
        if client.is_closing() {
            return false;
        }
        let Some(link) = client.leaf.as_deref() else {
            return false;
        };
        if !link.deny_out.is_empty() && interest::denied(&link.deny_out, p.subject) {
            return false;
        }
        let (header_len, data) = match p.header_len {
            Some(h) if link.headers => (Some(h), p.data),
            _ => (None, p.payload()),
        };
        let frame =
            p.subject.len() + p.reply.map_or(0, <[u8]>::len) + queue_bytes + data.len() + 40;
        if client.pending() + frame > self.config.max_pending {
            if client.write_pending(Instant::now()).is_err() {
                self.begin_close(t.link, CloseReason::WriteError);
                return false;
            }
            if client.pending() + frame > self.config.max_pending {
                self.slow_consumer(t.link);
                return false;
            }
        }
        let mut queues: SmallVec<[&[u8]; 2]> = SmallVec::new();
        for &id in &t.queues {
            if let Some(q) = self.subs.get(id as usize).and_then(|s| s.queue.as_deref()) {
                queues.push(q);
            }
        }
        let Some(client) = self.clients.get_mut(t.link) else {
            return false;
        };
        lwire::push_msg(
            &mut client.out,
            p.subject,
            p.reply,
            &queues,
            header_len,
            data,
        );
        client.out_msgs += 1;
        client.out_bytes += data.len() as u64;
        let nearly_full = client.pending()
            > self.config.max_pending / crate::server::STALL_DENOMINATOR
                * crate::server::STALL_NUMERATOR
            && client.last_write_progress.elapsed() < crate::server::STALL_PROGRESS;
        if !client.dirty {
            client.dirty = true;
            self.dirty.push(t.link);
        }
        if nearly_full {
            self.stall_reader = Some(t.link);
        }
        true
    }

    /// Shutdown: stop accepting leaves.
    pub(crate) fn leaf_shutdown(&mut self) {
        if let Some(leaf) = self.leaf.as_mut()
            && let Some(mut l) = leaf.listener.take()
        {
            let _ = self.poll.registry().deregister(&mut l);
        }
    }
}

/// Adds a link (and maybe a queue member behind it) to the targets.
fn add_target(targets: &mut Vec<Target>, link: usize, queue: Option<SubId>) {
    let t = match targets.iter_mut().position(|t| t.link == link) {
        Some(i) => &mut targets[i],
        None => {
            targets.push(Target {
                link,
                queues: SmallVec::new(),
            });
            let last = targets.len() - 1;
            &mut targets[last]
        }
    };
    if let Some(q) = queue {
        t.queues.push(q);
    }
}

/// The key of a link's subscription in its `subs` map: subject and queue.
fn link_sid(subject: &[u8], queue: Option<&[u8]>) -> SmallVec<[u8; 32]> {
    let mut sid: SmallVec<[u8; 32]> = SmallVec::from_slice(subject);
    if let Some(q) = queue {
        sid.push(b' ');
        sid.extend_from_slice(q);
    }
    sid
}

fn json_str(v: &serde_json::Value, field: &str) -> String {
    v.get(field)
        .and_then(|s| s.as_str())
        .unwrap_or("")
        .chars()
        .take(256)
        .collect()
}

/// The peer's name for logs.
fn link_name(c: &Client) -> String {
    c.leaf.as_deref().map_or_else(String::new, |l| {
        if l.remote_name.is_empty() {
            l.remote_id.clone()
        } else {
            l.remote_name.clone()
        }
    })
}

// ----- monitoring -----

impl Server {
    /// Established links, for `/varz`.
    pub(crate) fn leaf_count(&self) -> usize {
        self.leaf.as_ref().map_or(0, |l| {
            l.links
                .iter()
                .filter(|&&k| {
                    self.clients
                        .get(k)
                        .and_then(|c| c.leaf.as_deref())
                        .is_some_and(|l| l.phase == LinkPhase::Established)
                })
                .count()
        })
    }

    /// The `leaf` section of `/varz`.
    pub(crate) fn leaf_varz(&self) -> crate::monitor::endpoints::LeafVarz {
        let Some(leaf) = self.leaf.as_ref() else {
            return Default::default();
        };
        let Some(addr) = leaf.listen_addr else {
            return Default::default();
        };
        crate::monitor::endpoints::LeafVarz {
            host: Some(
                leaf.opts
                    .host
                    .clone()
                    .unwrap_or_else(|| self.config.host.clone()),
            ),
            port: Some(addr.port()),
            auth_timeout: Some(
                leaf.opts
                    .authorization
                    .as_ref()
                    .and_then(|a| a.timeout)
                    .unwrap_or(HANDSHAKE_TIMEOUT)
                    .as_secs_f64(),
            ),
            tls_timeout: leaf.opts.tls.as_ref().map(|t| t.timeout().as_secs_f64()),
            tls_required: leaf.tls_config.is_some(),
        }
    }

    /// One `/leafz` entry per established link.
    pub(crate) fn leaf_infos(&self, with_subs: bool) -> Vec<crate::monitor::endpoints::LeafInfo> {
        let Some(leaf) = self.leaf.as_ref() else {
            return Vec::new();
        };
        leaf.links
            .iter()
            .filter_map(|&k| {
                let c = self.clients.get(k)?;
                let l = c.leaf.as_deref()?;
                if l.phase != LinkPhase::Established || c.is_closing() {
                    return None;
                }
                let subscriptions_list = with_subs.then(|| {
                    let mut v: Vec<String> = c
                        .subs
                        .values()
                        .filter_map(|&id| self.subs.get(id))
                        .map(|s| match &s.queue {
                            Some(q) => format!(
                                "{} {}",
                                String::from_utf8_lossy(&s.subject),
                                String::from_utf8_lossy(q)
                            ),
                            None => String::from_utf8_lossy(&s.subject).into_owned(),
                        })
                        .collect();
                    v.sort();
                    v
                });
                Some(crate::monitor::endpoints::LeafInfo {
                    name: link_name(c),
                    is_spoke: matches!(l.role, Role::Accepted),
                    account: "$G",
                    ip: c.addr.ip().to_string(),
                    port: c.addr.port(),
                    rtt: c
                        .mon
                        .rtt()
                        .map_or_else(String::new, crate::monitor::timefmt::go_duration),
                    in_msgs: c.in_msgs,
                    out_msgs: c.out_msgs,
                    in_bytes: c.in_bytes,
                    out_bytes: c.out_bytes,
                    subscriptions: c.subs.len(),
                    subscriptions_list,
                    compression: "off",
                })
            })
            .collect()
    }
}
