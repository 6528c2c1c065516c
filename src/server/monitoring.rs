//! The server's side of HTTP monitoring: what the loop does for the
//! monitor (accepting and answering its HTTP connections, its housekeeping,
//! remembering closing clients) and the endpoints' answers filled in from
//! the loop's state. [`crate::monitor`] owns HTTP, the JSON shapes and the
//! closed ring, and knows nothing of the loop; this file is where the two
//! meet.

use super::client::{Client, CloseReason};
use super::{Server, Subscription};
use crate::config::Config;
use crate::monitor::closed::{ConnRecord, SubRecord, Totals};
use crate::monitor::endpoints::*;
use crate::monitor::http::{Method, Request, Response};
use crate::monitor::timefmt::{rfc3339_nano, uptime};
use log::{info, warn};
use mio::Token;
use slab::Slab;
use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

impl Server {
    /// Answers one monitoring request.
    fn http_respond(&mut self, req: &Request) -> Response {
        if req.method == Method::Other {
            return Response::text(405, "405 method not allowed");
        }
        let label = match req.path.as_str() {
            "/" => "/",
            "/varz" => "/varz",
            "/connz" => "/connz",
            "/subsz" => "/subsz",
            "/subscriptionsz" => "/subscriptionsz",
            "/healthz" => "/healthz",
            "/routez" => "/routez",
            "/leafz" => "/leafz",
            "/gatewayz" => "/gatewayz",
            "/jsz" => "/jsz",
            _ => return Response::text(404, "404 page not found"),
        };
        // Counted before answering, so /varz includes itself (as nats-server).
        if let Some(mon) = self.monitor.as_deref_mut() {
            *mon.req_stats.entry(label).or_insert(0) += 1;
        }
        let result = match label {
            "/" => Ok(index_response()),
            "/varz" => Ok(self.varz()),
            "/connz" => self.connz(req),
            "/subsz" | "/subscriptionsz" => self.subsz(req),
            "/routez" | "/leafz" | "/gatewayz" => Ok(self.no_cluster(label)),
            "/jsz" => Ok(pretty(&self.jsz(req))),
            _ => Ok(Response::json(b"{\"status\":\"ok\"}".to_vec())),
        };
        result.unwrap_or_else(|BadParam(text)| Response::text(400, &text))
    }

    /// `/routez`, `/leafz`, `/gatewayz`: natrium has no routes, leaf nodes
    /// or gateways, so these are nats-server's answers for a server
    /// without them (tools that poll every endpoint, such as the
    /// Prometheus exporter, then see zeros rather than a 404).
    fn no_cluster(&self, label: &str) -> Response {
        let now = rfc3339_nano(SystemTime::now());
        let id = self.server_id();
        let name = self.config.server_name.as_deref().unwrap_or(id);
        match label {
            "/routez" => pretty(&Routez {
                server_id: id,
                server_name: name,
                now,
                num_routes: 0,
                routes: [],
            }),
            "/leafz" => pretty(&Leafz {
                server_id: id,
                now,
                leafnodes: 0,
                leafs: [],
            }),
            _ => pretty(&Gatewayz {
                server_id: id,
                now,
                outbound_gateways: Empty {},
                inbound_gateways: Empty {},
            }),
        }
    }

    /// The byte and message totals: closed connections plus open ones.
    fn totals(&self) -> (Totals, usize) {
        let mut t = self
            .monitor
            .as_deref()
            .map(|m| m.closed_totals)
            .unwrap_or_default();
        let mut open = 0;
        for (_, c) in self.clients.iter().filter(|(_, c)| !c.is_closing()) {
            add_client(&mut t, c);
            open += 1;
        }
        (t, open)
    }

    fn varz(&mut self) -> Response {
        let now_instant = Instant::now();
        let (totals, connections) = self.totals();
        let cpu = match self.monitor.as_deref_mut() {
            Some(mon) => mon.cpu.sample(now_instant),
            None => return Response::text(404, "404 page not found"),
        };
        let Some(mon) = self.monitor.as_deref() else {
            return Response::text(404, "404 page not found");
        };
        let now = SystemTime::now();
        let c = &self.config;
        let server_id = self.server_id();
        let varz = Varz {
            server_id,
            server_name: c.server_name.as_deref().unwrap_or(server_id),
            // As in INFO: the nats-server release whose protocol natrium
            // speaks (tools gate features on it), natrium's own apart, and
            // "natrium" for the runtime.
            version: crate::protocol::wire::COMPAT_VERSION,
            natrium_version: env!("CARGO_PKG_VERSION"),
            proto: 1,
            go: "natrium",
            host: &c.host,
            port: self.local_addr().port(),
            auth_required: c.auth.announce_required(),
            tls_required: c.tls.is_some(),
            tls_verify: c.tls.as_ref().is_some_and(|t| t.requires_client_cert()),
            max_connections: c.max_connections,
            ping_interval: c.ping_interval.as_nanos(),
            ping_max: c.ping_max,
            http_host: &mon.http_host,
            http_port: if mon.https.is_some() {
                0
            } else {
                mon.addr.port()
            },
            http_base_path: "",
            https_port: if mon.https.is_some() {
                mon.addr.port()
            } else {
                0
            },
            auth_timeout: c.auth.timeout.as_secs_f64(),
            tls_timeout: c
                .tls
                .as_ref()
                .map_or(crate::tls::DEFAULT_TLS_TIMEOUT, |t| t.timeout())
                .as_secs_f64(),
            max_control_line: c.max_control_line,
            max_payload: c.max_payload,
            max_pending: c.max_pending,
            cluster: Empty {},
            gateway: Empty {},
            leaf: Empty {},
            mqtt: Empty {},
            websocket: Empty {},
            jetstream: self.jetstream_varz(),
            write_deadline: c.write_deadline.as_nanos(),
            start: rfc3339_nano(mon.started),
            now: rfc3339_nano(now),
            uptime: uptime(now_instant.saturating_duration_since(mon.started_at)),
            mem: crate::monitor::process::rss_bytes(),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            gomaxprocs: 1,
            cpu,
            connections,
            total_connections: self.stats.total_connections,
            routes: 0,
            remotes: 0,
            leafnodes: 0,
            in_msgs: totals.in_msgs,
            in_bytes: totals.in_bytes,
            in_client_msgs: totals.in_msgs,
            in_client_bytes: totals.in_bytes,
            out_msgs: totals.out_msgs,
            out_bytes: totals.out_bytes,
            out_client_msgs: totals.out_msgs,
            out_client_bytes: totals.out_bytes,
            slow_consumers: self.stats.slow_consumers,
            stale_connections: self.stats.stale_connections,
            subscriptions: self.sublist.len(),
            http_req_stats: &mon.req_stats,
            config_load_time: rfc3339_nano(mon.config_load_time),
            config_digest: "",
            slow_consumer_stats: ByKind::clients(self.stats.slow_consumers),
            stale_connection_stats: ByKind::clients(self.stats.stale_connections),
        };
        pretty(&varz)
    }

    fn connz(&self, req: &Request) -> Result<Response, BadParam> {
        let subs = subs_param(req)?;
        let (offset, mut limit) = paging(req)?;
        let cid = uint_param(req, "cid")?.map(|c| c as u64);
        let sort_text = req.param("sort").unwrap_or("");
        let sort = SortBy::parse(sort_text)
            .ok_or_else(|| BadParam(format!("invalid sorting option: {sort_text}")))?;
        let (open, closed) = match req.param("state").unwrap_or("open") {
            "" | "open" => (true, false),
            "closed" => (false, true),
            "all" | "any" => (true, true),
            other => {
                return Err(BadParam(format!(
                    "Error decoding connection state for {other:?}"
                )));
            }
        };
        if open && matches!(sort, SortBy::Stop | SortBy::Reason) {
            return Err(BadParam(format!(
                "sort by {sort_text} only valid on closed connections"
            )));
        }
        let now = SystemTime::now();
        let with_subs = subs != SubsDetail::None;
        let mut records: Vec<ConnRecord> = Vec::new();
        if open {
            records.extend(
                self.clients
                    .iter()
                    .filter(|(_, c)| !c.is_closing() && cid.is_none_or(|id| c.cid == id))
                    .map(|(_, c)| conn_record(c, &self.subs, with_subs)),
            );
        }
        if closed && let Some(mon) = self.monitor.as_deref() {
            records.extend(
                mon.closed
                    .iter()
                    .filter(|r| cid.is_none_or(|id| r.cid == id))
                    .cloned(),
            );
        }
        if cid.is_some() {
            limit = 1;
        }
        records.sort_by(|a, b| sort.compare(a, b, now));
        let total = records.len();
        let connections: Vec<ConnInfo<'_>> = records
            .iter()
            .skip(offset)
            .take(limit)
            .map(|r| conn_info(r, subs, now))
            .collect();
        Ok(pretty(&Connz {
            server_id: self.server_id(),
            now: rfc3339_nano(now),
            num_connections: connections.len(),
            total,
            offset,
            limit,
            connections,
        }))
    }

    fn subsz(&self, req: &Request) -> Result<Response, BadParam> {
        let (offset, limit) = paging(req)?;
        let list = subs_param(req)? != SubsDetail::None;
        let test = match req.param("test") {
            None | Some("") => None,
            Some(t) if crate::sublist::is_valid_literal_subject(t.as_bytes()) => Some(t),
            Some(_) => return Err(BadParam("invalid subject in test for subsz".into())),
        };
        let st = self.sublist.stats();
        let records: Vec<SubRecord> = if list {
            self.subs
                .iter()
                .filter(|(_, s)| {
                    test.is_none_or(|t| crate::sublist::subject_matches(&s.subject, t.as_bytes()))
                })
                .filter_map(|(_, s)| {
                    let client = self.clients.get(s.client)?;
                    Some(sub_record(s, client.cid))
                })
                .collect()
        } else {
            Vec::new()
        };
        let matches = st.cache_hits + st.cache_misses;
        Ok(pretty(&Subsz {
            server_id: self.server_id(),
            now: rfc3339_nano(SystemTime::now()),
            num_subscriptions: st.count,
            num_cache: st.cache_len,
            num_inserts: st.inserts,
            num_removes: st.removes,
            num_matches: matches,
            cache_hit_rate: if matches == 0 {
                0.0
            } else {
                st.cache_hits as f64 / matches as f64
            },
            max_fanout: st.max_fanout,
            avg_fanout: st.avg_fanout,
            total: records.len(),
            offset,
            limit,
            subscriptions_list: records
                .iter()
                .skip(offset)
                .take(limit)
                .map(|s| SubDetail::of(s, Some("$G")))
                .collect(),
        }))
    }
}

impl Server {
    /// Where the HTTP monitor listens, when monitoring is on (useful with
    /// `-m -1`, a free port).
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.monitor.as_ref().map(|m| m.addr)
    }

    /// Logs where the monitor listens (tests read the port from this line).
    pub(crate) fn log_monitor_start(&self) {
        if let Some(addr) = self.http_addr() {
            let scheme = if self.config.monitor.https {
                "https"
            } else {
                "http"
            };
            info!("Starting {scheme} monitor on {addr}");
        }
    }

    /// Handles a poll event whose token [`crate::monitor::is_http_token`].
    pub(crate) fn on_http_event(&mut self, token: Token) {
        let now = Instant::now();
        let Some(mon) = self.monitor.as_deref_mut() else {
            return;
        };
        let Some((key, req)) = mon.on_event(token, now) else {
            return;
        };
        let resp = self.http_respond(&req);
        if let Some(mon) = self.monitor.as_deref_mut() {
            mon.answer(key, &req, resp, now);
        }
    }

    /// Housekeeping of the HTTP connections.
    pub(crate) fn monitor_tick(&mut self, now: Instant) {
        if let Some(mon) = self.monitor.as_deref_mut() {
            mon.tick(now);
        }
    }

    /// A client starts closing: remember it for `/connz?state=closed` and
    /// add its counters to the totals. Called first thing in `begin_close`
    /// (does nothing for a client already closing).
    pub(crate) fn monitor_closing(&mut self, key: usize, reason: CloseReason) {
        let Some(mon) = self.monitor.as_deref_mut() else {
            return;
        };
        let Some(client) = self.clients.get(key) else {
            return;
        };
        if client.is_closing() {
            return;
        }
        let mut record = conn_record(client, &self.subs, true);
        record.stop = Some((SystemTime::now(), reason.as_str()));
        add_client(&mut mon.closed_totals, client);
        mon.closed.push(record);
    }

    /// A reload: the closed ring's bound and the config load time change;
    /// the HTTP address would need a restart.
    pub(crate) fn monitor_reloaded(&mut self, fresh: &Config) {
        if fresh.monitor.http_port != self.config.monitor.http_port
            || fresh.monitor.http_host != self.config.monitor.http_host
            || fresh.monitor.https != self.config.monitor.https
        {
            warn!("Reload: the http monitor address cannot change without a restart");
        }
        self.config.monitor.max_closed_clients = fresh.monitor.max_closed_clients;
        if let Some(mon) = self.monitor.as_deref_mut() {
            mon.closed.set_max(fresh.monitor.max_closed_clients);
            mon.config_load_time = SystemTime::now();
        }
    }
}

/// A snapshot of `sub`, which belongs to connection `cid`.
fn sub_record(sub: &Subscription, cid: u64) -> SubRecord {
    SubRecord {
        subject: String::from_utf8_lossy(&sub.subject).into_owned(),
        queue: sub
            .queue
            .as_deref()
            .map(|q| String::from_utf8_lossy(q).into_owned()),
        sid: String::from_utf8_lossy(&sub.sid).into_owned(),
        msgs: sub.delivered,
        max: sub.max.map(std::num::NonZeroU64::get),
        cid,
    }
}

/// Adds one client's counters.
fn add_client(totals: &mut Totals, c: &Client) {
    totals.in_msgs += c.in_msgs;
    totals.in_bytes += c.in_bytes;
    totals.out_msgs += c.out_msgs;
    totals.out_bytes += c.out_bytes;
}

/// A snapshot of a live client, with its subscriptions when `with_subs`.
fn conn_record(client: &Client, subs: &Slab<Subscription>, with_subs: bool) -> ConnRecord {
    let mut totals = Totals::default();
    add_client(&mut totals, client);
    let mut list = Vec::new();
    if with_subs {
        let mut keys: Vec<usize> = client.subs.values().copied().collect();
        keys.sort_unstable();
        list = keys
            .into_iter()
            .filter_map(|k| subs.get(k))
            .map(|s| sub_record(s, client.cid))
            .collect();
    }
    ConnRecord {
        cid: client.cid,
        ip: client.addr.ip(),
        port: client.addr.port(),
        start: client.mon.start(),
        last_activity: client.mon.last_activity(),
        stop: None,
        rtt: client.mon.rtt(),
        pending_bytes: client.pending(),
        totals,
        num_subs: client.subs.len(),
        subs: list,
        name: client.opts.name.clone(),
        lang: client.opts.lang.clone(),
        version: client.opts.version.clone(),
        tls: client
            .tls
            .as_deref()
            .and_then(crate::tls::TlsState::describe),
    }
}
