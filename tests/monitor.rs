//! The HTTP monitoring endpoint (`-m`), black-box over real TCP: natrium
//! runs as a binary on 127.0.0.1 with ephemeral ports (`-p -1 -m -1`), the
//! monitoring port is read from its "Starting http monitor on" log line, and
//! every figure is checked against what the test itself did to the server.
//!
//! No sleeps: state that changes asynchronously (a close, a PONG) is polled
//! for with a bounded deadline, then asserted.

#[path = "common/certs.rs"]
mod certs;
mod common;
use common::{Conn, TIMEOUT, TempConf, TestServer};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Instant;

/// A natrium with monitoring on a free port, and that port's address.
fn start(args: &[&str]) -> (TestServer, SocketAddr) {
    let mut all = vec!["-m", "-1"];
    all.extend_from_slice(args);
    let server = TestServer::start(&all);
    let http = http_addr(&server);
    (server, http)
}

/// The monitoring address from the log line (as for the client port).
fn http_addr(server: &TestServer) -> SocketAddr {
    let line = server
        .wait_for_log("Starting http monitor on ")
        .expect("the monitor start is logged");
    line.rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
}

/// One HTTP exchange: status, headers (lower-cased names) and body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` as it is and reads the reply up to the server's close.
fn exchange(http: SocketAddr, request: &[u8]) -> Reply {
    let mut c = Conn::connect(http);
    c.send(request);
    let raw = c.drain_to_eof(16 << 20);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8(raw[..split].to_vec()).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// `GET path`.
fn get(http: SocketAddr, path: &str) -> Reply {
    exchange(
        http,
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes(),
    )
}

/// `GET path`, asserting a JSON 200 with the CORS header, parsed.
fn json(http: SocketAddr, path: &str) -> Value {
    let r = get(http, path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    assert_eq!(r.header("content-type"), Some("application/json"), "{path}");
    assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.text()))
}

/// Polls `path` until `ready` holds (bounded), and returns that document.
fn poll(http: SocketAddr, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let v = json(http, path);
        if ready(&v) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never got there; last: {v:#}"
        );
        std::thread::yield_now();
    }
}

/// A client after CONNECT with `fields` and PING/PONG, with its `client_id`.
fn client(server: &TestServer, fields: &str) -> (Conn, u64) {
    let (mut c, cid) = server.raw_with_cid();
    c.send(format!("CONNECT {{\"verbose\":false,\"pedantic\":false{fields}}}\r\n").as_bytes());
    assert!(c.sync_answering_pings().is_empty());
    (c, cid)
}

/// Publishes about 1 MB at a time (messages of `size` bytes) to `subject`
/// until `/varz` counts a slow consumer; at most 200 rounds. Returns
/// whether one was counted.
fn flood_until_slow_consumer(
    http: SocketAddr,
    publ: &mut Conn,
    subject: &str,
    size: usize,
) -> bool {
    let mut batch = Vec::new();
    for _ in 0..(1 << 20) / size {
        batch.extend_from_slice(format!("PUB {subject} {size}\r\n").as_bytes());
        batch.resize(batch.len() + size, b'x');
        batch.extend_from_slice(b"\r\n");
    }
    for _ in 0..200 {
        publ.send(&batch);
        assert!(publ.sync_answering_pings().is_empty());
        if json(http, "/varz")["slow_consumers"] == 1 {
            return true;
        }
    }
    false
}

/// The connection with `cid` in a connz document.
fn conn_of(connz: &Value, cid: u64) -> &Value {
    connz["connections"]
        .as_array()
        .expect("connections array")
        .iter()
        .find(|c| c["cid"] == cid)
        .unwrap_or_else(|| panic!("cid {cid} not in {connz:#}"))
}

/// The cids of a connz document, in order.
fn cids(connz: &Value) -> Vec<u64> {
    connz["connections"]
        .as_array()
        .expect("connections array")
        .iter()
        .map(|c| c["cid"].as_u64().expect("cid"))
        .collect()
}

/// RFC 3339 with nanoseconds in UTC, as Go writes it.
fn assert_rfc3339(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    let b = s.as_bytes();
    assert!(s.len() >= 20 && s.ends_with('Z'), "{s}");
    assert!(
        b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':',
        "{s}"
    );
    // Go drops the fraction's trailing zeros (and a zero fraction).
    if let Some((_, frac)) = s.split_once('.') {
        assert!(!frac.trim_end_matches('Z').ends_with('0'), "{s}");
    }
}

/// Publishes `payloads` to `subject` and syncs: every delivery is counted then.
fn publish(c: &mut Conn, subject: &str, payloads: &[&[u8]]) {
    for p in payloads {
        c.send(format!("PUB {subject} {}\r\n", p.len()).as_bytes());
        c.send(p);
        c.send(b"\r\n");
    }
    assert!(c.sync_answering_pings().is_empty());
}

#[test]
fn varz_reports_the_configuration_and_exact_counters() {
    let (server, http) = start(&["--max_payload", "2KB", "-n", "mon-test"]);
    let (c, _) = server.raw_with_info();
    drop(c);
    let v = json(http, "/varz");
    let (_, info) = server.raw_with_info();
    assert_eq!(v["server_id"], info["server_id"]);
    assert_eq!(v["server_name"], "mon-test");
    assert_eq!(v["proto"], 1);
    // The same identity as INFO's.
    for k in ["version", "natrium_version", "go", "proto"] {
        assert_eq!(v[k], info[k], "{k}");
    }
    assert_eq!(v["go"], "natrium");
    assert_eq!(v["host"], "127.0.0.1");
    assert_eq!(v["port"], server.addr.port());
    assert_eq!(v["http_host"], "127.0.0.1");
    assert_eq!(v["http_port"], http.port());
    assert_eq!(v["max_payload"], 2048);
    assert_eq!(v["max_control_line"], 4096);
    assert_eq!(v["max_pending"], 64 * 1024 * 1024);
    assert_eq!(v["max_connections"], 65536);
    assert_eq!(v["ping_interval"], 120_000_000_000u64);
    assert_eq!(v["write_deadline"], 10_000_000_000u64);
    assert_eq!(v["ping_max"], 2);
    assert_eq!(v["auth_timeout"].as_f64(), Some(2.0));
    for k in ["routes", "remotes", "leafnodes"] {
        assert_eq!(v[k], 0, "{k}");
    }
    assert_rfc3339(&v["start"]);
    assert_rfc3339(&v["now"]);
    assert_rfc3339(&v["config_load_time"]);
    assert!(v["uptime"].as_str().is_some_and(|u| u.ends_with('s')));
    assert!(v["mem"].as_u64().is_some_and(|m| m > 0));
    assert!(v["cores"].as_u64().is_some_and(|c| c >= 1));
    assert!(v["cpu"].as_f64().is_some());
    assert_eq!(v["http_req_stats"]["/varz"], 1);
    assert_eq!(v["slow_consumer_stats"]["clients"], 0);

    // Two subscribers (one with two matching subscriptions), one publisher.
    let (mut a, _) = client(&server, "");
    a.send(b"SUB foo 1\r\n");
    assert!(a.sync_answering_pings().is_empty());
    let (mut b, _) = client(&server, "");
    b.send(b"SUB foo 1\r\nSUB * 2\r\n");
    assert!(b.sync_answering_pings().is_empty());
    let (mut p, _) = client(&server, "");
    publish(&mut p, "foo", &[b"abc", b"hello", b"hello world"]);
    let v = json(http, "/varz");
    assert_eq!(v["connections"], 3);
    // The two raw connections of the start count too.
    assert_eq!(v["total_connections"], 5);
    assert_eq!(v["subscriptions"], 3);
    assert_eq!(v["in_msgs"], 3);
    assert_eq!(v["in_bytes"], 19);
    assert_eq!(v["out_msgs"], 9);
    assert_eq!(v["out_bytes"], 57);
    assert_eq!(v["in_client_msgs"], 3);
    assert_eq!(v["out_client_bytes"], 57);
    assert_eq!(v["http_req_stats"]["/varz"], 2);

    // Counters of closed connections stay in the totals.
    drop(b);
    let v = poll(http, "/varz", |v| v["connections"] == 2);
    assert_eq!(v["out_msgs"], 9);
    assert_eq!(v["out_bytes"], 57);
    assert_eq!(v["subscriptions"], 1);
    drop((a, p));
}

#[test]
fn connz_lists_clients_with_their_connect_options_counters_and_subscriptions() {
    let (server, http) = start(&[]);
    let (mut sub, sub_cid) = client(
        &server,
        r#","name":"watcher","lang":"rust","version":"1.2.3""#,
    );
    sub.send(b"SUB foo 1\r\nSUB bar.* workers 2\r\nSUB baz 3\r\nUNSUB 3 5\r\n");
    assert!(sub.sync_answering_pings().is_empty());
    let (mut publ, pub_cid) = client(&server, r#","name":"pub""#);
    publish(&mut publ, "foo", &[b"12345", b"1234567890"]);
    publish(&mut publ, "bar.x", &[b"1"]);

    let v = json(http, "/connz");
    assert_eq!(v["num_connections"], 2);
    assert_eq!(v["total"], 2);
    assert_eq!(v["offset"], 0);
    assert_eq!(v["limit"], 1024);
    assert_rfc3339(&v["now"]);
    assert_eq!(cids(&v), [sub_cid, pub_cid]);
    let s = conn_of(&v, sub_cid);
    assert_eq!(s["kind"], "Client");
    assert_eq!(s["type"], "nats");
    assert_eq!(s["ip"], "127.0.0.1");
    assert_eq!(s["port"], sub.stream.local_addr().unwrap().port());
    assert_eq!(s["name"], "watcher");
    assert_eq!(s["lang"], "rust");
    assert_eq!(s["version"], "1.2.3");
    assert_eq!(s["subscriptions"], 3);
    assert_eq!(s["out_msgs"], 3);
    assert_eq!(s["out_bytes"], 16);
    assert_eq!(s["in_msgs"], 0);
    assert_eq!(s["pending_bytes"], 0);
    assert_rfc3339(&s["start"]);
    assert_rfc3339(&s["last_activity"]);
    for k in ["rtt", "uptime", "idle"] {
        assert!(s[k].as_str().is_some_and(|x| x.ends_with('s')), "{k}: {s}");
    }
    assert!(s.get("subscriptions_list").is_none());
    assert!(s.get("stop").is_none() && s.get("reason").is_none());
    let p = conn_of(&v, pub_cid);
    assert_eq!(p["in_msgs"], 3);
    assert_eq!(p["in_bytes"], 16);
    assert_eq!(p["out_msgs"], 0);
    assert_eq!(p["subscriptions"], 0);
    assert!(p.get("lang").is_none(), "empty strings are left out: {p}");

    // subs=1: the subjects.
    let v = json(http, &format!("/connz?subs=1&cid={sub_cid}"));
    assert_eq!(v["limit"], 1);
    assert_eq!(cids(&v), [sub_cid]);
    let mut subjects: Vec<&str> = conn_of(&v, sub_cid)["subscriptions_list"]
        .as_array()
        .expect("subscriptions_list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["bar.*", "baz", "foo"]);

    // subs=detail: subject, queue, sid, deliveries, auto-unsubscribe max, cid.
    let v = json(http, "/connz?subs=detail");
    let detail = conn_of(&v, sub_cid)["subscriptions_list_detail"]
        .as_array()
        .expect("detail")
        .clone();
    let by_sid = |sid: &str| {
        detail
            .iter()
            .find(|d| d["sid"] == sid)
            .unwrap_or_else(|| panic!("sid {sid} in {detail:?}"))
            .clone()
    };
    let foo = by_sid("1");
    assert_eq!(foo["subject"], "foo");
    assert_eq!(foo["msgs"], 2);
    assert_eq!(foo["cid"], sub_cid);
    assert!(foo.get("qgroup").is_none() && foo.get("max").is_none());
    let bar = by_sid("2");
    assert_eq!(bar["subject"], "bar.*");
    assert_eq!(bar["qgroup"], "workers");
    assert_eq!(bar["msgs"], 1);
    assert_eq!(by_sid("3")["max"], 5);
    assert!(
        conn_of(&v, pub_cid)
            .get("subscriptions_list_detail")
            .is_none()
    );

    // Sorting and paging.
    let (_third, third_cid) = client(&server, "");
    let v = json(http, "/connz?sort=msgs_from");
    assert_eq!(cids(&v)[0], pub_cid);
    let v = json(http, "/connz?sort=msgs_to");
    assert_eq!(cids(&v)[0], sub_cid);
    let v = json(http, "/connz?sort=subs");
    assert_eq!(cids(&v)[0], sub_cid);
    let v = json(http, "/connz?offset=1&limit=1");
    assert_eq!(v["total"], 3);
    assert_eq!(v["num_connections"], 1);
    assert_eq!(
        (v["offset"].as_u64(), v["limit"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(cids(&v), [pub_cid]);
    let v = json(http, "/connz?offset=2");
    assert_eq!(cids(&v), [third_cid]);
    let v = json(http, "/connz?offset=5");
    assert_eq!(v["num_connections"], 0);
    assert_eq!(v["total"], 3);

    // Bad options are 400s, as with nats-server.
    for bad in [
        "/connz?sort=bogus",
        "/connz?sort=stop",
        "/connz?limit=abc",
        "/connz?state=sideways",
    ] {
        assert_eq!(get(http, bad).status, 400, "{bad}");
    }
    drop((sub, publ));
}

#[test]
fn connz_rtt_is_measured_from_the_servers_ping() {
    let (server, http) = start(&[]);
    let (mut c, cid) = client(&server, "");
    // natrium sends its first PING 2 s after CONNECT; answer it.
    assert_eq!(c.line(), "PING");
    c.send(b"PONG\r\n");
    let v = poll(http, &format!("/connz?cid={cid}"), |v| {
        v["connections"][0]["rtt"] != "0s"
    });
    let rtt = v["connections"][0]["rtt"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let unit = rtt.trim_start_matches(|ch: char| ch.is_ascii_digit() || ch == '.');
    assert!(["ns", "µs", "ms", "s"].contains(&unit), "{rtt}");
}

#[test]
fn closed_connections_carry_nats_server_reasons() {
    let (server, http) = start(&["--max_pending", "256KB", "--max_payload", "64KB"]);
    // A client that closes normally.
    let (mut bye, bye_cid) = client(&server, r#","name":"leaver""#);
    bye.send(b"SUB gone 1\r\n");
    assert!(bye.sync_answering_pings().is_empty());
    drop(bye);
    // A client that sends garbage.
    let (mut junk, junk_cid) = client(&server, "");
    junk.send(b"HELLO\r\n");
    junk.expect_err_and_eof("Unknown Protocol Operation");
    // A subscriber that never reads, and a publisher that floods it.
    let (mut slow, slow_cid) = client(&server, "");
    slow.send(b"SUB flood 1\r\n");
    assert!(slow.sync_answering_pings().is_empty());
    let (mut publ, _) = client(&server, "");
    assert!(
        flood_until_slow_consumer(http, &mut publ, "flood", 32 * 1024),
        "the subscriber that never reads was cut off"
    );

    let v = poll(http, "/connz?state=closed&subs=1", |v| {
        v["total"].as_u64() >= Some(3)
    });
    assert_eq!(v["num_connections"], 3);
    assert_eq!(cids(&v), [bye_cid, junk_cid, slow_cid]);
    let closed = conn_of(&v, bye_cid);
    assert_eq!(closed["reason"], "Client Closed");
    assert_eq!(closed["name"], "leaver");
    assert_rfc3339(&closed["stop"]);
    assert_eq!(closed["subscriptions"], 1);
    assert_eq!(closed["subscriptions_list"][0], "gone");
    assert_eq!(conn_of(&v, junk_cid)["reason"], "Protocol Violation");
    let s = conn_of(&v, slow_cid);
    assert_eq!(s["reason"], "Slow Consumer (Pending Bytes)");
    assert!(s["out_msgs"].as_u64().is_some_and(|n| n > 0), "{s}");

    let varz = json(http, "/varz");
    assert_eq!(varz["slow_consumers"], 1);
    assert_eq!(varz["slow_consumer_stats"]["clients"], 1);
    assert_eq!(varz["connections"], 1);
    // Closed ones are not among the open, and all=both.
    let open = json(http, "/connz");
    assert_eq!(open["total"], 1);
    let all = json(http, "/connz?state=all");
    assert_eq!(all["total"], 4);
    let newest_stop = json(http, "/connz?state=closed&sort=stop&limit=1");
    assert_eq!(cids(&newest_stop), [slow_cid]);
    // As in nats-server, stop and reason order closed connections only.
    assert_eq!(get(http, "/connz?state=all&sort=stop").status, 400);
    let by_reason = json(http, "/connz?state=closed&sort=reason");
    assert_eq!(cids(&by_reason), [bye_cid, junk_cid, slow_cid]);
    drop((slow, publ));
}

#[test]
fn an_authentication_failure_is_recorded() {
    let (server, http) = start(&["--user", "u", "--pass", "p"]);
    let (mut c, cid) = server.raw_with_cid();
    c.send(b"CONNECT {\"verbose\":false,\"user\":\"u\",\"pass\":\"wrong\"}\r\n");
    c.expect_err_and_eof("Authorization Violation");
    let v = poll(http, "/connz?state=closed", |v| v["total"] == 1);
    let closed = conn_of(&v, cid);
    assert_eq!(closed["reason"], "Authentication Failure");
    assert_eq!(json(http, "/varz")["auth_required"], true);
}

#[test]
fn the_closed_ring_keeps_max_closed_clients() {
    let conf = TempConf::new("monitor-ring", "max_closed_clients: 2\n");
    let (server, http) = start(&["-c", conf.arg()]);
    let mut closed = Vec::new();
    for _ in 0..3 {
        let (c, cid) = client(&server, "");
        drop(c);
        closed.push(cid);
    }
    let last = closed[2];
    let v = poll(http, "/connz?state=closed", |v| cids(v).contains(&last));
    assert_eq!(cids(&v), closed[1..]);
    assert_eq!(v["total"], 2);
}

#[test]
fn subsz_counts_lists_and_tests_subjects() {
    let (server, http) = start(&[]);
    let (mut a, a_cid) = client(&server, "");
    a.send(b"SUB foo.bar 1\r\nSUB foo.* 2\r\nSUB other q 3\r\nSUB tmp 4\r\nUNSUB 4\r\n");
    assert!(a.sync_answering_pings().is_empty());
    let (mut p, _) = client(&server, "");
    publish(&mut p, "foo.bar", &[b"1", b"2", b"3"]);
    let v = json(http, "/subsz");
    assert_rfc3339(&v["now"]);
    assert_eq!(v["num_subscriptions"], 3);
    assert_eq!(v["num_inserts"], 4);
    assert_eq!(v["num_removes"], 1);
    assert_eq!(v["num_matches"], 3);
    // The first publish walked the trie, the next two hit the cache.
    assert_eq!(v["num_cache"], 1);
    let rate = v["cache_hit_rate"].as_f64().expect("rate");
    assert!((rate - 2.0 / 3.0).abs() < 1e-9, "{rate}");
    assert_eq!(v["max_fanout"], 2);
    assert_eq!(v["avg_fanout"].as_f64(), Some(2.0));
    assert_eq!(v["total"], 0);
    assert!(v.get("subscriptions_list").is_none());

    let v = json(http, "/subsz?subs=1");
    assert_eq!(v["total"], 3);
    let list = v["subscriptions_list"].as_array().expect("list");
    assert_eq!(list.len(), 3);
    for s in list {
        assert_eq!(s["account"], "$G");
        assert_eq!(s["cid"], a_cid);
    }
    let other = list
        .iter()
        .find(|s| s["subject"] == "other")
        .expect("other");
    assert_eq!(other["qgroup"], "q");
    assert_eq!(other["sid"], "3");

    // test=: the subscriptions a literal subject would reach.
    let v = json(http, "/subsz?subs=1&test=foo.bar");
    assert_eq!(v["total"], 2);
    let mut subjects: Vec<&str> = v["subscriptions_list"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|s| s["subject"].as_str())
        .collect();
    subjects.sort_unstable();
    assert_eq!(subjects, ["foo.*", "foo.bar"]);
    let v = json(http, "/subscriptionsz?subs=1&offset=1&limit=1");
    assert_eq!(
        (v["total"].as_u64(), v["offset"].as_u64()),
        (Some(3), Some(1))
    );
    assert_eq!(v["subscriptions_list"].as_array().map(Vec::len), Some(1));
    assert_eq!(get(http, "/subsz?test=foo.*").status, 400);
    drop((a, p));
}

#[test]
fn healthz_index_not_found_and_methods() {
    let (_server, http) = start(&[]);
    let r = get(http, "/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), r#"{"status":"ok"}"#);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("connection"), Some("close"));

    let index = get(http, "/");
    assert_eq!(index.status, 200);
    assert!(
        index
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html"))
    );
    for endpoint in ["varz", "connz", "subsz", "healthz"] {
        assert!(
            index.text().contains(&format!("href=./{endpoint}")),
            "{endpoint}"
        );
    }

    let missing = get(http, "/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.text(), "404 page not found\n");
    assert_eq!(get(http, "/varz/extra").status, 404);

    let post = exchange(http, b"POST /varz HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));

    let head = exchange(http, b"HEAD /varz HTTP/1.1\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(head.header("content-length").is_some_and(|n| n != "0"));

    // A request split over many writes is still one request.
    let mut c = Conn::connect(http);
    c.send_split(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        &[1, 5, 10, 20, 30],
    );
    let raw = String::from_utf8(c.drain_to_eof(4096)).expect("utf-8");
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n") && raw.ends_with(r#"{"status":"ok"}"#));
}

#[test]
fn malformed_http_gets_400_and_the_nats_port_keeps_working() {
    let (server, http) = start(&[]);
    let bad = exchange(http, b"GARBAGE\r\n\r\n");
    assert_eq!(bad.status, 400);
    // Not HTTP at all (a TLS hello): 400 and closed.
    assert_eq!(
        exchange(http, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03").status,
        400
    );
    // An endless head: 431 once it passes 8 KiB.
    let mut long = b"GET /varz HTTP/1.1\r\nX-Long: ".to_vec();
    long.resize(9 * 1024, b'a');
    assert_eq!(exchange(http, &long).status, 431);
    // NATS is unaffected, and so is the next HTTP request.
    let (mut sub, _) = client(&server, "");
    sub.send(b"SUB a 1\r\n");
    assert!(sub.sync_answering_pings().is_empty());
    let (mut p, _) = client(&server, "");
    publish(&mut p, "a", &[b"ok"]);
    assert_eq!(sub.msg_answering_pings().payload, b"ok");
    assert_eq!(json(http, "/varz")["in_msgs"], 1);
}

#[test]
fn http_connections_are_bounded_and_idle_ones_are_closed() {
    let (_server, http) = start(&[]);
    // 128 connections that say nothing hold every slot...
    let idle: Vec<Conn> = (0..128).map(|_| Conn::connect(http)).collect();
    // ...so the next is closed at once, unanswered.
    let mut extra = Conn::connect(http);
    let _ = extra.try_send(b"GET /healthz HTTP/1.1\r\n\r\n");
    assert!(extra.drain_to_eof(4096).is_empty());
    // The idle ones are closed by the idle timeout, unanswered...
    for mut c in idle {
        assert!(c.drain_to_eof(4096).is_empty());
    }
    // ...and then a request is served again.
    assert_eq!(get(http, "/healthz").status, 200);
}

#[test]
fn the_http_key_sets_host_and_port() {
    let conf = TempConf::new("monitor-http", "http: \"127.0.0.1:-1\"\n");
    let server = TestServer::start(&["-c", conf.arg()]);
    let http = http_addr(&server);
    assert_eq!(http.ip().to_string(), "127.0.0.1");
    let v = json(http, "/varz");
    assert_eq!(v["http_port"], http.port());
}

#[test]
fn stale_and_over_the_limit_closes_are_recorded() {
    let (server, http) = start(&["--ping_interval", "100ms", "--max_payload", "1KB"]);
    // Never answers the server's PINGs.
    let (mut silent, silent_cid) = server.raw_with_cid();
    silent.send(b"CONNECT {\"verbose\":false}\r\n");
    // Publishes more than max_payload.
    let (mut big, big_cid) = server.raw_with_cid();
    big.send(b"CONNECT {\"verbose\":false}\r\nPUB x 2000\r\n");
    let v = poll(http, "/connz?state=closed", |v| v["total"] == 2);
    assert_eq!(conn_of(&v, silent_cid)["reason"], "Stale Connection");
    assert_eq!(
        conn_of(&v, big_cid)["reason"],
        "Maximum Message Payload Exceeded"
    );
    let varz = json(http, "/varz");
    assert_eq!(varz["stale_connections"], 1);
    assert_eq!(varz["stale_connection_stats"]["clients"], 1);
    assert_eq!(varz["ping_interval"], 100_000_000);
}

#[test]
fn tls_connections_show_their_version_and_cipher_and_handshake_failures_their_reason() {
    use std::io::Write;
    let dir = certs::CertDir::new("monitor-tls");
    let ca = certs::Ca::new(&dir.path, "mon");
    let pair = ca.server();
    let (server, http) = start(&[
        "--tls",
        "--tlscert",
        pair.cert_arg(),
        "--tlskey",
        pair.key_arg(),
    ]);
    let varz = json(http, "/varz");
    assert_eq!(varz["tls_required"], true);
    assert!(varz.get("tls_verify").is_none());
    assert_eq!(varz["tls_timeout"], 2.0);
    assert_eq!(varz["auth_timeout"], 3.0);

    let (mut tls, info) = certs::raw_tls(&server, &ca.cert);
    let cid = info["client_id"].as_u64().unwrap();
    tls.write_all(b"CONNECT {\"verbose\":false,\"name\":\"secure\"}\r\nPING\r\n")
        .unwrap();
    assert_eq!(certs::tls_read_until(&mut tls, b"PONG\r\n"), b"PONG\r\n");
    let connz = json(http, "/connz");
    let conn = conn_of(&connz, cid);
    assert_eq!(conn["name"], "secure");
    assert_eq!(conn["tls_version"], "1.3");
    // The server's preference (AES-128-GCM, as Go's) decides.
    assert_eq!(conn["tls_cipher_suite"], "TLS_AES_128_GCM_SHA256");

    // A plain-text client is refused; /connz says why.
    let (mut plain, plain_cid) = server.raw_with_cid();
    plain.send(b"CONNECT {}\r\n");
    plain.expect_err("Secure Connection - TLS Required");
    let closed = poll(http, "/connz?state=closed", |v| {
        cids(v).contains(&plain_cid)
    });
    assert_eq!(
        conn_of(&closed, plain_cid)["reason"],
        "TLS Handshake Failure"
    );
    assert!(conn_of(&closed, plain_cid).get("tls_version").is_none());
}

#[test]
fn a_write_deadline_cut_is_recorded_as_such() {
    // max_pending far above what is sent: only the stalled socket can
    // decide, after write_deadline.
    let (server, http) = start(&["--write_deadline", "300ms", "--max_pending", "512MB"]);
    let (mut stalled, stalled_cid) = client(&server, "");
    stalled.send(b"SUB deadline 1\r\n");
    assert!(stalled.sync_answering_pings().is_empty());
    let (mut publ, _) = client(&server, "");
    assert!(
        flood_until_slow_consumer(http, &mut publ, "deadline", 1000),
        "the stalled subscriber was cut off"
    );
    let v = poll(http, "/connz?state=closed", |v| {
        cids(v).contains(&stalled_cid)
    });
    assert_eq!(
        conn_of(&v, stalled_cid)["reason"],
        "Slow Consumer (Write Deadline)"
    );
    drop(stalled);
}

#[test]
fn cluster_endpoints_answer_as_a_server_without_a_cluster() {
    let (server, http) = start(&["-n", "solo"]);
    let id = json(http, "/varz")["server_id"].clone();
    let routez = json(http, "/routez");
    assert_eq!(routez["server_id"], id);
    assert_eq!(routez["server_name"], "solo");
    assert_eq!(routez["num_routes"], 0);
    assert_eq!(routez["routes"], serde_json::json!([]));
    assert_rfc3339(&routez["now"]);
    let leafz = json(http, "/leafz");
    assert_eq!(leafz["server_id"], id);
    assert_eq!(leafz["leafnodes"], 0);
    assert_eq!(leafz["leafs"], serde_json::json!([]));
    let gatewayz = json(http, "/gatewayz");
    assert_eq!(gatewayz["server_id"], id);
    assert_eq!(gatewayz["outbound_gateways"], serde_json::json!({}));
    assert_eq!(gatewayz["inbound_gateways"], serde_json::json!({}));
    let index = get(http, "/").text();
    for endpoint in ["routez", "leafz", "gatewayz"] {
        assert!(index.contains(&format!("href=./{endpoint}")), "{endpoint}");
    }
    assert_eq!(json(http, "/varz")["http_req_stats"]["/routez"], 1);
    drop(server);
}

#[test]
fn https_monitoring_serves_the_same_endpoints_over_tls() {
    use std::io::{Read, Write};
    let dir = certs::CertDir::new("monitor-https");
    let ca = certs::Ca::new(&dir.path, "mons");
    let pair = ca.server();
    let server = TestServer::start(&[
        "--tls",
        "--tlscert",
        pair.cert_arg(),
        "--tlskey",
        pair.key_arg(),
        "-ms",
        "-1",
    ]);
    let line = server
        .wait_for_log("Starting https monitor on ")
        .expect("the https monitor start is logged");
    let https: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();

    // A GET over TLS, read to the end (the server closes with close_notify).
    let get = |path: &str| -> String {
        let sock = std::net::TcpStream::connect(https).unwrap();
        sock.set_read_timeout(Some(TIMEOUT)).unwrap();
        let session = rustls::ClientConnection::new(
            certs::client_config(&ca.cert, None),
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let mut tls = rustls::StreamOwned::new(session, sock);
        tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
            .unwrap();
        let mut reply = Vec::new();
        tls.read_to_end(&mut reply).expect("a clean TLS close");
        String::from_utf8(reply).unwrap()
    };
    let varz = get("/varz");
    assert!(varz.starts_with("HTTP/1.1 200 OK\r\n"), "{varz}");
    let body = &varz[varz.find("\r\n\r\n").unwrap() + 4..];
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["tls_required"], true);
    assert_eq!(v["https_port"], https.port());
    assert_eq!(v["http_port"], 0);
    assert!(get("/healthz").ends_with(r#"{"status":"ok"}"#));
    assert!(get("/nope").starts_with("HTTP/1.1 404"));

    // Plain HTTP on the HTTPS port gets no HTTP answer, and the port
    // keeps serving TLS.
    let mut plain = std::net::TcpStream::connect(https).unwrap();
    plain.set_read_timeout(Some(TIMEOUT)).unwrap();
    plain.write_all(b"GET /varz HTTP/1.1\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(get("/varz").starts_with("HTTP/1.1 200 OK"));
}

#[test]
fn a_pong_to_the_servers_ping_is_not_activity() {
    // nats-server's rule: /connz last_activity (and idle) ignore the
    // answer to a keepalive PING, so sort=idle finds quiet devices.
    let (server, http) = start(&[]);
    let (mut c, cid) = client(&server, "");
    let path = format!("/connz?cid={cid}");
    let before = json(http, &path)["connections"][0]["last_activity"].clone();
    // natrium sends its first PING 2 s after CONNECT; answer it.
    assert_eq!(c.line(), "PING");
    c.send(b"PONG\r\n");
    let after = poll(http, &path, |v| v["connections"][0]["rtt"] != "0s");
    assert_eq!(after["connections"][0]["last_activity"], before, "{after}");
    // Anything else is activity.
    c.send(b"PING\r\n");
    c.expect("PONG");
    poll(http, &path, |v| {
        v["connections"][0]["last_activity"] != before
    });
}

#[test]
fn varz_writes_whole_numbers_as_go_does() {
    let (_server, http) = start(&[]);
    let text = get(http, "/varz").text();
    assert!(text.contains("\"auth_timeout\": 2,"), "{text}");
    for key in ["auth_timeout", "tls_timeout", "cpu"] {
        let at = text.find(&format!("\"{key}\": ")).unwrap() + key.len() + 4;
        let value: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        assert!(!value.ends_with(".0"), "{key}: {value}");
    }
}

#[test]
fn a_busy_monitoring_port_is_reported_as_the_monitoring_port() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let exit = common::run_natrium(&["-a", "127.0.0.1", "-p", "-1", "-m", &port]);
    assert_eq!(exit.code, Some(1), "{exit:?}");
    assert!(
        exit.stderr.contains(&format!(
            "Can't start monitoring: listen tcp 127.0.0.1:{port}: "
        )),
        "{exit:?}"
    );
    assert!(!exit.stderr.contains("client connections"), "{exit:?}");
}
