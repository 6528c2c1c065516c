//! What each endpoint reports: routing a request to `/varz`, `/connz`,
//! `/subsz` (`/subscriptionsz`), `/healthz` or the `/` index, and the JSON
//! shapes, field for field as nats-server 2.x writes them (pretty-printed
//! with two-space indents, as nats-server does), so that dashboards and
//! exporters made for nats-server read natrium unchanged.

use super::closed::{ConnRecord, SubRecord, Totals};
use super::http::{Method, Request, Response};
use super::timefmt::{go_duration, rfc3339_nano, uptime};
use crate::server::Server;
use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

/// `limit` when none is given (nats-server's `DefaultConnListSize` and
/// `DefaultSubListSize`).
const DEFAULT_LIMIT: usize = 1024;

/// An empty JSON object, for the sections natrium does not have (cluster,
/// gateway, leaf, ...), so that clients that look into them find them.
#[derive(Serialize)]
struct Empty {}

/// Counts by connection kind (`slow_consumer_stats`, `stale_connection_stats`).
#[derive(Serialize)]
struct ByKind {
    clients: u64,
    routes: u64,
    gateways: u64,
    leafs: u64,
}

impl ByKind {
    fn clients(n: u64) -> ByKind {
        ByKind {
            clients: n,
            routes: 0,
            gateways: 0,
            leafs: 0,
        }
    }
}

/// `/varz`.
#[derive(Serialize)]
struct Varz<'a> {
    server_id: &'a str,
    server_name: &'a str,
    version: &'static str,
    natrium_version: &'static str,
    proto: u8,
    go: &'static str,
    host: &'a str,
    port: u16,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    auth_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_verify: bool,
    max_connections: usize,
    ping_interval: u128,
    ping_max: u32,
    http_host: &'a str,
    http_port: u16,
    http_base_path: &'static str,
    https_port: u16,
    auth_timeout: f64,
    tls_timeout: f64,
    max_control_line: usize,
    max_payload: usize,
    max_pending: usize,
    cluster: Empty,
    gateway: Empty,
    leaf: Empty,
    mqtt: Empty,
    websocket: Empty,
    jetstream: Empty,
    write_deadline: u128,
    start: String,
    now: String,
    uptime: String,
    mem: u64,
    cores: usize,
    gomaxprocs: usize,
    cpu: f64,
    connections: usize,
    total_connections: u64,
    routes: u64,
    remotes: u64,
    leafnodes: u64,
    in_msgs: u64,
    in_bytes: u64,
    in_client_msgs: u64,
    in_client_bytes: u64,
    out_msgs: u64,
    out_bytes: u64,
    out_client_msgs: u64,
    out_client_bytes: u64,
    slow_consumers: u64,
    stale_connections: u64,
    subscriptions: usize,
    http_req_stats: &'a BTreeMap<&'static str, u64>,
    config_load_time: String,
    config_digest: &'static str,
    slow_consumer_stats: ByKind,
    stale_connection_stats: ByKind,
}

/// `/routez` of a server without routes.
#[derive(Serialize)]
struct Routez<'a> {
    server_id: &'a str,
    server_name: &'a str,
    now: String,
    num_routes: u32,
    routes: [u8; 0],
}

/// `/leafz` of a server without leaf nodes.
#[derive(Serialize)]
struct Leafz<'a> {
    server_id: &'a str,
    now: String,
    leafnodes: u32,
    leafs: [u8; 0],
}

/// `/gatewayz` of a server without gateways.
#[derive(Serialize)]
struct Gatewayz<'a> {
    server_id: &'a str,
    now: String,
    outbound_gateways: Empty,
    inbound_gateways: Empty,
}

/// `/connz`.
#[derive(Serialize)]
struct Connz<'a> {
    server_id: &'a str,
    now: String,
    num_connections: usize,
    total: usize,
    offset: usize,
    limit: usize,
    connections: Vec<ConnInfo<'a>>,
}

/// One connection of `/connz`.
#[derive(Serialize)]
struct ConnInfo<'a> {
    cid: u64,
    kind: &'static str,
    #[serde(rename = "type")]
    conn_type: &'static str,
    ip: String,
    port: u16,
    start: String,
    last_activity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    rtt: String,
    uptime: String,
    idle: String,
    pending_bytes: usize,
    in_msgs: u64,
    out_msgs: u64,
    in_bytes: u64,
    out_bytes: u64,
    subscriptions: usize,
    #[serde(skip_serializing_if = "str::is_empty")]
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    lang: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cipher_suite: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list_detail: Vec<SubDetail<'a>>,
}

/// One subscription of `subscriptions_list_detail` (connz) or
/// `subscriptions_list` (subsz, which adds the account).
#[derive(Serialize)]
struct SubDetail<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_tag: Option<&'static str>,
    subject: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    qgroup: Option<&'a str>,
    sid: &'a str,
    msgs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    max: Option<u64>,
    cid: u64,
}

impl<'a> SubDetail<'a> {
    fn of(s: &'a SubRecord, account: Option<&'static str>) -> SubDetail<'a> {
        SubDetail {
            account,
            account_tag: account,
            subject: &s.subject,
            qgroup: s.queue.as_deref(),
            sid: &s.sid,
            msgs: s.msgs,
            max: s.max,
            cid: s.cid,
        }
    }
}

/// `/subsz`.
#[derive(Serialize)]
struct Subsz<'a> {
    server_id: &'a str,
    now: String,
    num_subscriptions: usize,
    num_cache: usize,
    num_inserts: u64,
    num_removes: u64,
    num_matches: u64,
    cache_hit_rate: f64,
    max_fanout: usize,
    avg_fanout: f64,
    total: usize,
    offset: usize,
    limit: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subscriptions_list: Vec<SubDetail<'a>>,
}

/// A request that names a bad option: 400 with this text.
struct BadParam(String);

/// `offset`/`limit`/`cid` style parameters.
fn uint_param(req: &Request, name: &str) -> Result<Option<usize>, BadParam> {
    match req.param(name) {
        None | Some("") => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) => Ok(Some(n.max(0) as usize)),
            Err(_) => Err(BadParam(format!(
                "Error decoding int for '{name}': invalid syntax: {v:?}"
            ))),
        },
    }
}

/// How much of the subscriptions to list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SubsDetail {
    None,
    Subjects,
    Detail,
}

fn subs_param(req: &Request) -> Result<SubsDetail, BadParam> {
    match req.param("subs").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("0") | Some("false") => Ok(SubsDetail::None),
        Some("1") | Some("true") => Ok(SubsDetail::Subjects),
        Some("detail") => Ok(SubsDetail::Detail),
        Some(v) => Err(BadParam(format!("Error decoding bool for 'subs': {v:?}"))),
    }
}

/// `offset` and `limit` (a missing or zero limit is the default).
fn paging(req: &Request) -> Result<(usize, usize), BadParam> {
    let offset = uint_param(req, "offset")?.unwrap_or(0);
    let limit = match uint_param(req, "limit")? {
        None | Some(0) => DEFAULT_LIMIT,
        Some(n) => n,
    };
    Ok((offset, limit))
}

/// The connection sort orders of nats-server: cid and start ascending,
/// everything else largest first; `stop` and `reason` only for closed ones.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Cid,
    Start,
    Subs,
    Pending,
    MsgsTo,
    MsgsFrom,
    BytesTo,
    BytesFrom,
    Last,
    Idle,
    Uptime,
    Stop,
    Reason,
    Rtt,
}

impl SortBy {
    fn parse(v: &str) -> Option<SortBy> {
        Some(match v {
            "" | "cid" => SortBy::Cid,
            "start" => SortBy::Start,
            "subs" => SortBy::Subs,
            "pending" => SortBy::Pending,
            "msgs_to" => SortBy::MsgsTo,
            "msgs_from" => SortBy::MsgsFrom,
            "bytes_to" => SortBy::BytesTo,
            "bytes_from" => SortBy::BytesFrom,
            "last" => SortBy::Last,
            "idle" => SortBy::Idle,
            "uptime" => SortBy::Uptime,
            "stop" => SortBy::Stop,
            "reason" => SortBy::Reason,
            "rtt" => SortBy::Rtt,
            _ => return None,
        })
    }

    fn compare(self, a: &ConnRecord, b: &ConnRecord, now: SystemTime) -> Ordering {
        let dur = |r: &ConnRecord, from: SystemTime| {
            r.until(now).duration_since(from).unwrap_or_default()
        };
        match self {
            SortBy::Cid => a.cid.cmp(&b.cid),
            SortBy::Start => a.start.cmp(&b.start),
            SortBy::Subs => b.num_subs.cmp(&a.num_subs),
            SortBy::Pending => b.pending_bytes.cmp(&a.pending_bytes),
            SortBy::MsgsTo => b.totals.out_msgs.cmp(&a.totals.out_msgs),
            SortBy::MsgsFrom => b.totals.in_msgs.cmp(&a.totals.in_msgs),
            SortBy::BytesTo => b.totals.out_bytes.cmp(&a.totals.out_bytes),
            SortBy::BytesFrom => b.totals.in_bytes.cmp(&a.totals.in_bytes),
            SortBy::Last => b.last_activity.cmp(&a.last_activity),
            SortBy::Idle => dur(b, b.last_activity).cmp(&dur(a, a.last_activity)),
            SortBy::Uptime => dur(b, b.start).cmp(&dur(a, a.start)),
            SortBy::Stop => b.stop.map(|s| s.0).cmp(&a.stop.map(|s| s.0)),
            SortBy::Reason => a.stop.map(|s| s.1).cmp(&b.stop.map(|s| s.1)),
            SortBy::Rtt => b.rtt.cmp(&a.rtt),
        }
        .then(a.cid.cmp(&b.cid))
    }
}

/// The endpoints and their labels on the index page.
const INDEX: &[(&str, &str)] = &[
    ("varz", "General"),
    ("connz", "Connections"),
    ("subsz", "Subscriptions"),
    ("routez", "Routes"),
    ("leafz", "Leaf Nodes"),
    ("gatewayz", "Gateways"),
    ("healthz", "Health Probe"),
];

/// The `/` page: links to the endpoints.
fn index_page() -> String {
    let mut links = String::new();
    for (path, label) in INDEX {
        links.push_str(&format!(
            "\t<a href=./{path}>{label}<span class=\"endpoint\"> /{path}</span></a>\n"
        ));
    }
    format!(
        "<html lang=\"en\">\n\t<head>\n\t<title>natrium monitoring</title>\n\t<style type=\"text/css\">\n\t\tbody {{ font-family: ui-sans-serif,system-ui,sans-serif; margin-left: 32px }}\n\t\ta {{ display:block; margin-left: 7px; padding-bottom: 6px; text-decoration: none }}\n\t\t.endpoint {{ font-size: 12px; color: #999; font-family: monospace }}\n\t</style>\n\t</head>\n\t<body>\n\t<h2>natrium v{}</h2>\n{links}\t<a href=https://docs.nats.io/running-a-nats-service/nats_admin/monitoring class=\"help\">Help</a>\n\t</body>\n</html>\n",
        env!("CARGO_PKG_VERSION")
    )
}

/// Pretty JSON (two-space indents, as nats-server writes it).
fn pretty<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => Response::json(body),
        // Only plain structs of numbers and strings are serialized here.
        Err(e) => Response::text(500, &format!("cannot encode: {e}")),
    }
}

impl Server {
    /// Answers one monitoring request.
    pub(super) fn http_respond(&mut self, req: &Request) -> Response {
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
            t.add(c);
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
            version: crate::proto::COMPAT_VERSION,
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
            jetstream: Empty {},
            write_deadline: c.write_deadline.as_nanos(),
            start: rfc3339_nano(mon.started),
            now: rfc3339_nano(now),
            uptime: uptime(now_instant.saturating_duration_since(mon.started_at)),
            mem: super::process::rss_bytes(),
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
                    .map(|(_, c)| ConnRecord::of(c, &self.subs, with_subs)),
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
                    Some(SubRecord::of(s, client.cid))
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

fn index_response() -> Response {
    Response {
        status: 200,
        content_type: super::http::HTML,
        body: index_page().into_bytes(),
    }
}

/// One connection as `/connz` writes it.
fn conn_info(r: &ConnRecord, subs: SubsDetail, now: SystemTime) -> ConnInfo<'_> {
    let until = r.until(now);
    ConnInfo {
        cid: r.cid,
        kind: "Client",
        conn_type: "nats",
        ip: r.ip.to_string(),
        port: r.port,
        start: rfc3339_nano(r.start),
        last_activity: rfc3339_nano(r.last_activity),
        stop: r.stop.map(|(t, _)| rfc3339_nano(t)),
        reason: r.stop.map(|(_, why)| why),
        rtt: go_duration(r.rtt.unwrap_or_default()),
        uptime: uptime(until.duration_since(r.start).unwrap_or_default()),
        idle: uptime(until.duration_since(r.last_activity).unwrap_or_default()),
        pending_bytes: r.pending_bytes,
        in_msgs: r.totals.in_msgs,
        out_msgs: r.totals.out_msgs,
        in_bytes: r.totals.in_bytes,
        out_bytes: r.totals.out_bytes,
        subscriptions: r.num_subs,
        name: &r.name,
        lang: &r.lang,
        version: &r.version,
        tls_version: r.tls.map(|(v, _)| v),
        tls_cipher_suite: r.tls.map(|(_, c)| c),
        subscriptions_list: if subs == SubsDetail::Subjects {
            r.subs.iter().map(|s| s.subject.as_str()).collect()
        } else {
            Vec::new()
        },
        subscriptions_list_detail: if subs == SubsDetail::Detail {
            r.subs.iter().map(|s| SubDetail::of(s, None)).collect()
        } else {
            Vec::new()
        },
    }
}
