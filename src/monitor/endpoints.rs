//! What each endpoint reports: routing a request to `/varz`, `/connz`,
//! `/subsz` (`/subscriptionsz`), `/healthz` or the `/` index, and the JSON
//! shapes, field for field as nats-server 2.x writes them (pretty-printed
//! with two-space indents, as nats-server does), so that dashboards and
//! exporters made for nats-server read natrium unchanged.

use super::closed::{ConnRecord, SubRecord};
use super::http::{Request, Response};
use super::timefmt::{go_duration, rfc3339_nano, uptime};

use serde::Serialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::SystemTime;

/// `limit` when none is given (nats-server's `DefaultConnListSize` and
/// `DefaultSubListSize`).
pub(crate) const DEFAULT_LIMIT: usize = 1024;

/// An empty JSON object, for the sections natrium does not have (cluster,
/// gateway, leaf, ...), so that clients that look into them find them.
#[derive(Serialize)]
pub(crate) struct Empty {}

/// Counts by connection kind (`slow_consumer_stats`, `stale_connection_stats`).
#[derive(Serialize)]
pub(crate) struct ByKind {
    pub(crate) clients: u64,
    pub(crate) routes: u64,
    pub(crate) gateways: u64,
    pub(crate) leafs: u64,
}

impl ByKind {
    pub(crate) fn clients(n: u64) -> ByKind {
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
pub(crate) struct Varz<'a> {
    pub(crate) server_id: &'a str,
    pub(crate) server_name: &'a str,
    pub(crate) version: &'static str,
    pub(crate) natrium_version: &'static str,
    pub(crate) proto: u8,
    pub(crate) go: &'static str,
    pub(crate) host: &'a str,
    pub(crate) port: u16,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) auth_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) tls_required: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) tls_verify: bool,
    pub(crate) max_connections: usize,
    pub(crate) ping_interval: u128,
    pub(crate) ping_max: u32,
    pub(crate) http_host: &'a str,
    pub(crate) http_port: u16,
    pub(crate) http_base_path: &'static str,
    pub(crate) https_port: u16,
    pub(crate) auth_timeout: f64,
    pub(crate) tls_timeout: f64,
    pub(crate) max_control_line: usize,
    pub(crate) max_payload: usize,
    pub(crate) max_pending: usize,
    pub(crate) cluster: Empty,
    pub(crate) gateway: Empty,
    pub(crate) leaf: Empty,
    pub(crate) mqtt: Empty,
    pub(crate) websocket: Empty,
    pub(crate) jetstream: serde_json::Value,
    pub(crate) write_deadline: u128,
    pub(crate) start: String,
    pub(crate) now: String,
    pub(crate) uptime: String,
    pub(crate) mem: u64,
    pub(crate) cores: usize,
    pub(crate) gomaxprocs: usize,
    pub(crate) cpu: f64,
    pub(crate) connections: usize,
    pub(crate) total_connections: u64,
    pub(crate) routes: u64,
    pub(crate) remotes: u64,
    pub(crate) leafnodes: u64,
    pub(crate) in_msgs: u64,
    pub(crate) in_bytes: u64,
    pub(crate) in_client_msgs: u64,
    pub(crate) in_client_bytes: u64,
    pub(crate) out_msgs: u64,
    pub(crate) out_bytes: u64,
    pub(crate) out_client_msgs: u64,
    pub(crate) out_client_bytes: u64,
    pub(crate) slow_consumers: u64,
    pub(crate) stale_connections: u64,
    pub(crate) subscriptions: usize,
    pub(crate) http_req_stats: &'a BTreeMap<&'static str, u64>,
    pub(crate) config_load_time: String,
    pub(crate) config_digest: &'static str,
    pub(crate) slow_consumer_stats: ByKind,
    pub(crate) stale_connection_stats: ByKind,
}

/// `/routez` of a server without routes.
#[derive(Serialize)]
pub(crate) struct Routez<'a> {
    pub(crate) server_id: &'a str,
    pub(crate) server_name: &'a str,
    pub(crate) now: String,
    pub(crate) num_routes: u32,
    pub(crate) routes: [u8; 0],
}

/// `/leafz` of a server without leaf nodes.
#[derive(Serialize)]
pub(crate) struct Leafz<'a> {
    pub(crate) server_id: &'a str,
    pub(crate) now: String,
    pub(crate) leafnodes: u32,
    pub(crate) leafs: [u8; 0],
}

/// `/gatewayz` of a server without gateways.
#[derive(Serialize)]
pub(crate) struct Gatewayz<'a> {
    pub(crate) server_id: &'a str,
    pub(crate) now: String,
    pub(crate) outbound_gateways: Empty,
    pub(crate) inbound_gateways: Empty,
}

/// `/connz`.
#[derive(Serialize)]
pub(crate) struct Connz<'a> {
    pub(crate) server_id: &'a str,
    pub(crate) now: String,
    pub(crate) num_connections: usize,
    pub(crate) total: usize,
    pub(crate) offset: usize,
    pub(crate) limit: usize,
    pub(crate) connections: Vec<ConnInfo<'a>>,
}

/// One connection of `/connz`.
#[derive(Serialize)]
pub(crate) struct ConnInfo<'a> {
    pub(crate) cid: u64,
    pub(crate) kind: &'static str,
    #[serde(rename = "type")]
    pub(crate) conn_type: &'static str,
    pub(crate) ip: String,
    pub(crate) port: u16,
    pub(crate) start: String,
    pub(crate) last_activity: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stop: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'static str>,
    pub(crate) rtt: String,
    pub(crate) uptime: String,
    pub(crate) idle: String,
    pub(crate) pending_bytes: usize,
    pub(crate) in_msgs: u64,
    pub(crate) out_msgs: u64,
    pub(crate) in_bytes: u64,
    pub(crate) out_bytes: u64,
    pub(crate) subscriptions: usize,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(crate) name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(crate) lang: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub(crate) version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tls_version: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tls_cipher_suite: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) subscriptions_list: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) subscriptions_list_detail: Vec<SubDetail<'a>>,
}

/// One subscription of `subscriptions_list_detail` (connz) or
/// `subscriptions_list` (subsz, which adds the account).
#[derive(Serialize)]
pub(crate) struct SubDetail<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) account: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) account_tag: Option<&'static str>,
    pub(crate) subject: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) qgroup: Option<&'a str>,
    pub(crate) sid: &'a str,
    pub(crate) msgs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) max: Option<u64>,
    pub(crate) cid: u64,
}

impl<'a> SubDetail<'a> {
    pub(crate) fn of(s: &'a SubRecord, account: Option<&'static str>) -> SubDetail<'a> {
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
pub(crate) struct Subsz<'a> {
    pub(crate) server_id: &'a str,
    pub(crate) now: String,
    pub(crate) num_subscriptions: usize,
    pub(crate) num_cache: usize,
    pub(crate) num_inserts: u64,
    pub(crate) num_removes: u64,
    pub(crate) num_matches: u64,
    pub(crate) cache_hit_rate: f64,
    pub(crate) max_fanout: usize,
    pub(crate) avg_fanout: f64,
    pub(crate) total: usize,
    pub(crate) offset: usize,
    pub(crate) limit: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) subscriptions_list: Vec<SubDetail<'a>>,
}

/// A request that names a bad option: 400 with this text.
pub(crate) struct BadParam(pub(crate) String);

/// `offset`/`limit`/`cid` style parameters.
pub(crate) fn uint_param(req: &Request, name: &str) -> Result<Option<usize>, BadParam> {
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
pub(crate) enum SubsDetail {
    None,
    Subjects,
    Detail,
}

pub(crate) fn subs_param(req: &Request) -> Result<SubsDetail, BadParam> {
    match req.param("subs").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("0") | Some("false") => Ok(SubsDetail::None),
        Some("1") | Some("true") => Ok(SubsDetail::Subjects),
        Some("detail") => Ok(SubsDetail::Detail),
        Some(v) => Err(BadParam(format!("Error decoding bool for 'subs': {v:?}"))),
    }
}

/// `offset` and `limit` (a missing or zero limit is the default).
pub(crate) fn paging(req: &Request) -> Result<(usize, usize), BadParam> {
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
pub(crate) enum SortBy {
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
    pub(crate) fn parse(v: &str) -> Option<SortBy> {
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

    pub(crate) fn compare(self, a: &ConnRecord, b: &ConnRecord, now: SystemTime) -> Ordering {
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
pub(crate) const INDEX: &[(&str, &str)] = &[
    ("varz", "General"),
    ("connz", "Connections"),
    ("subsz", "Subscriptions"),
    ("routez", "Routes"),
    ("leafz", "Leaf Nodes"),
    ("gatewayz", "Gateways"),
    ("healthz", "Health Probe"),
];

/// The `/` page: links to the endpoints.
pub(crate) fn index_page() -> String {
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
pub(crate) fn pretty<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => Response::json(body),
        // Only plain structs of numbers and strings are serialized here.
        Err(e) => Response::text(500, &format!("cannot encode: {e}")),
    }
}

pub(crate) fn index_response() -> Response {
    Response {
        status: 200,
        content_type: super::http::HTML,
        body: index_page().into_bytes(),
    }
}

/// One connection as `/connz` writes it.
pub(crate) fn conn_info(r: &ConnRecord, subs: SubsDetail, now: SystemTime) -> ConnInfo<'_> {
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
