//! The `$JS.API` over the raw protocol: the JSON shapes, error codes and
//! status messages nats-server 2.15 sends (the fact sheet in
//! shared/reference/jetstream.md), byte for byte where clients depend on it.

mod common;

use common::{Conn, Msg, TestServer};
use serde_json::Value;
use std::path::PathBuf;

struct StoreDir(PathBuf);

impl StoreDir {
    fn new(name: &str) -> StoreDir {
        let dir = std::env::temp_dir().join(format!(
            "natrium-jsapi-{name}-{}-{}",
            std::process::id(),
            natrium::random_u64()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        StoreDir(dir)
    }
    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for StoreDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A client with headers, subscribed to `_R.>` for replies.
fn client(server: &TestServer) -> Conn {
    let mut c = server.client_with(r#""verbose":false,"headers":true,"no_responders":true"#);
    c.send(b"SUB _R.> 1\r\n");
    c.sync();
    c
}

/// A request with a JSON (or empty) body; returns the reply message.
fn request(c: &mut Conn, subject: &str, body: &str) -> Msg {
    c.send(format!("PUB {subject} _R.x {}\r\n{body}\r\n", body.len()).as_bytes());
    c.msg()
}

/// PUB with a reply subject, the size computed.
fn pubr(c: &mut Conn, subject: &str, reply: &str, body: &str) {
    c.send(format!("PUB {subject} {reply} {}\r\n{body}\r\n", body.len()).as_bytes());
}

/// HPUB with one header block and a body.
fn hpub(c: &mut Conn, subject: &str, reply: &str, headers: &str, body: &str) {
    let block = format!("NATS/1.0\r\n{headers}\r\n");
    c.send(
        format!(
            "HPUB {subject} {reply} {} {}\r\n{block}{body}\r\n",
            block.len(),
            block.len() + body.len()
        )
        .as_bytes(),
    );
}

fn api(c: &mut Conn, subject: &str, body: &str) -> Value {
    let m = request(c, subject, body);
    assert_eq!(m.subject, "_R.x");
    serde_json::from_slice(&m.payload)
        .unwrap_or_else(|e| panic!("{subject}: {e}: {}", String::from_utf8_lossy(&m.payload)))
}

fn error_of(v: &Value) -> (u64, u64, String) {
    let e = &v["error"];
    (
        e["code"].as_u64().unwrap_or(0),
        e["err_code"].as_u64().unwrap_or(0),
        e["description"].as_str().unwrap_or("").to_string(),
    )
}

#[test]
fn without_jetstream_the_api_has_no_responders() {
    let server = TestServer::start(&[]);
    let mut c = client(&server);
    let m = request(&mut c, "$JS.API.INFO", "");
    assert_eq!(m.verb, "HMSG");
    let h = String::from_utf8(m.headers.expect("status headers")).expect("utf-8");
    assert!(h.starts_with("NATS/1.0 503"), "{h}");
    let (mut info_conn, info) = server.raw_with_info();
    assert!(info.get("jetstream").is_none());
    info_conn.send(b"PING\r\n");
}

#[test]
fn api_answers_and_errors_have_nats_server_shapes() {
    let dir = StoreDir::new("shapes");
    let server = TestServer::start(&["-js", "-sd", dir.path()]);
    let (_, info) = server.raw_with_info();
    assert_eq!(info["jetstream"], true);
    let mut c = client(&server);

    let v = api(&mut c, "$JS.API.INFO", "");
    assert_eq!(v["type"], "io.nats.jetstream.api.v1.account_info_response");
    for f in [
        "max_memory",
        "max_storage",
        "max_streams",
        "max_consumers",
        "max_ack_pending",
        "memory_max_stream_bytes",
        "storage_max_stream_bytes",
        "max_bytes_required",
    ] {
        assert!(v["limits"].get(f).is_some(), "limits.{f} missing: {v}");
    }
    assert!(v["api"]["total"].is_u64() && v["api"]["errors"].is_u64());

    // Defaults echoed, and `type` first on the wire.
    let m = request(
        &mut c,
        "$JS.API.STREAM.CREATE.S",
        r#"{"name":"S","max_msgs":-5}"#,
    );
    assert!(
        m.payload
            .starts_with(br#"{"type":"io.nats.jetstream.api.v1.stream_create_response""#),
        "{}",
        String::from_utf8_lossy(&m.payload)
    );
    let v: Value = serde_json::from_slice(&m.payload).expect("json");
    let cfg = &v["config"];
    assert_eq!(cfg["subjects"], serde_json::json!(["S"]));
    assert_eq!(cfg["retention"], "limits");
    assert_eq!(cfg["storage"], "file");
    assert_eq!(cfg["discard"], "old");
    assert_eq!(cfg["max_msgs"], -1);
    assert_eq!(cfg["max_age"], 0);
    assert_eq!(cfg["duplicate_window"], 120_000_000_000u64);
    assert_eq!(cfg["num_replicas"], 1);
    assert_eq!(v["did_create"], true);
    for f in [
        "messages",
        "bytes",
        "first_seq",
        "last_seq",
        "consumer_count",
    ] {
        assert!(v["state"].get(f).is_some(), "state.{f} missing: {v}");
    }
    // The same config again succeeds; another config does not.
    let v = api(&mut c, "$JS.API.STREAM.CREATE.S", r#"{"name":"S"}"#);
    assert!(v.get("error").is_none(), "{v}");
    let v = api(
        &mut c,
        "$JS.API.STREAM.CREATE.S",
        r#"{"name":"S","max_msgs":5}"#,
    );
    assert_eq!(
        error_of(&v),
        (
            400,
            10058,
            "stream name already in use with a different configuration".into()
        )
    );
    let cases: &[(&str, &str, (u64, u64, &str))] = &[
        (
            "$JS.API.STREAM.INFO.NOPE",
            "",
            (404, 10059, "stream not found"),
        ),
        (
            "$JS.API.STREAM.CREATE.T",
            r#"{"name":"T","subjects":["S"]}"#,
            (400, 10065, "subjects overlap with an existing stream"),
        ),
        (
            "$JS.API.STREAM.CREATE.T",
            r#"{"name":"U"}"#,
            (400, 10056, "stream name in subject does not match request"),
        ),
        (
            "$JS.API.STREAM.CREATE.T",
            r#"{"name":"T","subjects":["a.*","a.b"]}"#,
            (500, 10052, r#"subject "a.*" overlaps with "a.b""#),
        ),
        (
            "$JS.API.STREAM.CREATE.T",
            r#"{"name":"T","num_replicas":3}"#,
            (
                500,
                10074,
                "replicas > 1 not supported in non-clustered mode",
            ),
        ),
        (
            "$JS.API.STREAM.CREATE.T",
            r#"{"name":"T","max_age":1000000000,"duplicate_window":2000000000}"#,
            (
                500,
                10052,
                "duplicates window can not be larger then max age",
            ),
        ),
        (
            "$JS.API.STREAM.UPDATE.S",
            r#"{"name":"S","storage":"memory"}"#,
            (
                500,
                10052,
                "stream configuration update can not change storage type",
            ),
        ),
        (
            "$JS.API.STREAM.MSG.GET.S",
            r#"{"seq":9}"#,
            (404, 10037, "no message found"),
        ),
        (
            "$JS.API.STREAM.PURGE.S",
            r#"{"seq":2,"keep":1}"#,
            (400, 10003, "bad request"),
        ),
        (
            "$JS.API.CONSUMER.INFO.S.none",
            "",
            (404, 10014, "consumer not found"),
        ),
        (
            "$JS.API.CONSUMER.CREATE.S",
            r#"{"stream_name":"S","config":{"durable_name":"d"}}"#,
            (
                400,
                10020,
                "consumer expected to be ephemeral but a durable name was set in request",
            ),
        ),
        (
            "$JS.API.CONSUMER.CREATE.S.c",
            r#"{"stream_name":"S","config":{"name":"c","deliver_policy":"by_start_sequence"}}"#,
            (
                400,
                10094,
                "consumer delivery policy is deliver by start sequence, but optional start sequence is not set",
            ),
        ),
    ];
    for (subject, body, (code, err_code, text)) in cases {
        let v = api(&mut c, subject, body);
        assert_eq!(
            error_of(&v),
            (*code, *err_code, text.to_string()),
            "{subject} {body}"
        );
        assert!(
            v["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("io.nats.jetstream.api.v1."))
        );
    }
    let v = api(
        &mut c,
        "$JS.API.STREAM.CREATE.T",
        r#"{"name":"T","retention":"bogus"}"#,
    );
    let (code, err_code, text) = error_of(&v);
    assert_eq!((code, err_code), (400, 10025));
    assert!(text.starts_with("invalid JSON"), "{text}");

    // PubAcks and publish errors.
    pubr(&mut c, "S", "_R.x", "hi");
    assert_eq!(c.msg().payload, br#"{"stream":"S","seq":1}"#);
    hpub(&mut c, "S", "_R.x", "Nats-Msg-Id: a\r\n", "hi");
    assert_eq!(c.msg().payload, br#"{"stream":"S","seq":2}"#);
    hpub(&mut c, "S", "_R.x", "Nats-Msg-Id: a\r\n", "hi");
    assert_eq!(
        c.msg().payload,
        br#"{"stream":"S","seq":2,"duplicate":true}"#
    );
    hpub(
        &mut c,
        "S",
        "_R.x",
        "Nats-Expected-Last-Sequence: 9\r\n",
        "hi",
    );
    assert_eq!(
        c.msg().payload,
        br#"{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 2"},"stream":"S","seq":0}"#
    );
    let v = api(&mut c, "$JS.API.STREAM.MSG.DELETE.S", r#"{"seq":1}"#);
    assert_eq!(v["success"], true);
    let v = api(&mut c, "$JS.API.STREAM.MSG.DELETE.S", r#"{"seq":1}"#);
    assert_eq!(error_of(&v), (500, 10057, "no message found".to_string()));
    let v = api(&mut c, "$JS.API.STREAM.PURGE.S", "");
    assert_eq!(
        (v["success"].clone(), v["purged"].clone()),
        (true.into(), 1.into())
    );
    let v = api(&mut c, "$JS.API.STREAM.INFO.S", "");
    assert_eq!(v["state"]["first_seq"], 3);
    assert_eq!(v["state"]["last_seq"], 2);

    // A subject no stream captures: no responders.
    let m = request(&mut c, "nobody.here", "x");
    assert!(m.headers.is_some_and(|h| h.starts_with(b"NATS/1.0 503")));
}

#[test]
fn pull_requests_end_with_nats_server_status_messages() {
    let dir = StoreDir::new("pull");
    let server = TestServer::start(&["-js", "-sd", dir.path()]);
    let mut c = client(&server);
    api(
        &mut c,
        "$JS.API.STREAM.CREATE.P",
        r#"{"name":"P","subjects":["p.>"],"storage":"memory"}"#,
    );
    let v = api(
        &mut c,
        "$JS.API.CONSUMER.CREATE.P.w",
        r#"{"stream_name":"P","config":{"name":"w","durable_name":"w","ack_policy":"explicit","max_waiting":1}}"#,
    );
    assert_eq!(v["config"]["max_waiting"], 1, "{v}");
    assert_eq!(v["config"]["ack_wait"], 30_000_000_000u64);
    for i in 0..2 {
        pubr(&mut c, &format!("p.{i}"), "_R.x", &i.to_string());
        c.msg();
    }
    // no_wait: what is there, then 404.
    pubr(
        &mut c,
        "$JS.API.CONSUMER.MSG.NEXT.P.w",
        "_R.x",
        r#"{"batch":5,"no_wait":true}"#,
    );
    for i in 0..2u64 {
        let m = c.msg();
        assert_eq!(m.subject, format!("p.{i}"));
        let reply = m.reply.expect("ack subject");
        let parts: Vec<&str> = reply.split('.').collect();
        assert_eq!(&parts[..4], &["$JS", "ACK", "P", "w"]);
        assert_eq!(parts[4], "1", "delivered count");
        assert_eq!(parts[5], (i + 1).to_string(), "stream seq");
        assert_eq!(parts[6], (i + 1).to_string(), "consumer seq");
        assert_eq!(parts[8], (1 - i).to_string(), "pending");
    }
    let m = c.msg();
    assert_eq!(
        m.headers.as_deref(),
        Some(&b"NATS/1.0 404 No Messages\r\n\r\n"[..])
    );
    // expires: a 408 with the pending counts when it runs out.
    pubr(
        &mut c,
        "$JS.API.CONSUMER.MSG.NEXT.P.w",
        "_R.x",
        r#"{"batch":3,"expires":200000000}"#,
    );
    // A second waiting request is over max_waiting.
    pubr(
        &mut c,
        "$JS.API.CONSUMER.MSG.NEXT.P.w",
        "_R.y",
        r#"{"batch":3,"expires":200000000}"#,
    );
    let first = c.msg();
    assert_eq!(first.subject, "_R.y");
    assert_eq!(
        first.headers.as_deref(),
        Some(&b"NATS/1.0 409 Exceeded MaxWaiting\r\n\r\n"[..])
    );
    let m = c.msg();
    assert_eq!(m.subject, "_R.x");
    assert_eq!(
        m.headers.as_deref(),
        Some(&b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 3\r\nNats-Pending-Bytes: 0\r\n\r\n"[..])
    );
    // A consumer that does not exist: no responders.
    let m = request(&mut c, "$JS.API.CONSUMER.MSG.NEXT.P.nope", "");
    assert!(m.headers.is_some_and(|h| h.starts_with(b"NATS/1.0 503")));
}

#[test]
fn monitoring_reports_jetstream() {
    let dir = StoreDir::new("jsz");
    let server = TestServer::start(&["-js", "-sd", dir.path(), "-m", "-1"]);
    let line = server
        .wait_for_log("Starting http monitor on")
        .expect("monitor port in the log");
    let addr: std::net::SocketAddr = line
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("monitor address");
    let mut c = client(&server);
    api(
        &mut c,
        "$JS.API.STREAM.CREATE.M",
        r#"{"name":"M","storage":"memory"}"#,
    );
    pubr(&mut c, "M", "_R.x", "abc");
    c.msg();
    api(
        &mut c,
        "$JS.API.CONSUMER.CREATE.M.c",
        r#"{"stream_name":"M","config":{"durable_name":"c"}}"#,
    );
    let get = |path: &str| -> Value {
        let mut s = std::net::TcpStream::connect(addr).expect("http connect");
        use std::io::{Read, Write};
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("read");
        let at = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
        serde_json::from_slice(&raw[at..]).expect("json body")
    };
    let varz = get("/varz");
    assert!(
        varz["jetstream"]["config"]["store_dir"].is_string(),
        "{}",
        varz["jetstream"]
    );
    let jsz = get("/jsz");
    assert_eq!(
        (
            jsz["streams"].clone(),
            jsz["consumers"].clone(),
            jsz["messages"].clone()
        ),
        (1.into(), 1.into(), 1.into())
    );
    assert!(jsz.get("account_details").is_none());
    let jsz = get("/jsz?streams=1&consumers=1");
    let stream = &jsz["account_details"][0]["stream_detail"][0];
    assert_eq!(stream["name"], "M");
    assert_eq!(stream["state"]["messages"], 1);
    assert_eq!(stream["consumer_detail"][0]["name"], "c");
}

#[test]
fn permissions_apply_to_the_api() {
    let dir = StoreDir::new("perms");
    let conf = dir.0.join("natrium.conf");
    std::fs::write(
        &conf,
        format!(
            r#"
jetstream {{ store_dir: "{}" }}
authorization {{
  users: [
    {{ user: admin, password: a }}
    {{ user: reader, password: r, permissions: {{
        publish: ["$JS.API.STREAM.INFO.>"], subscribe: ["_R.>"] }} }}
  ]
}}
"#,
            dir.path()
        ),
    )
    .expect("write config");
    let server = TestServer::start(&["-c", conf.to_str().expect("path")]);
    let mut admin =
        server.client_with(r#""verbose":false,"headers":true,"user":"admin","pass":"a""#);
    admin.send(b"SUB _R.> 1\r\n");
    admin.sync();
    let v = api(&mut admin, "$JS.API.STREAM.CREATE.S", r#"{"name":"S"}"#);
    assert!(v.get("error").is_none(), "{v}");

    let mut reader =
        server.client_with(r#""verbose":false,"headers":true,"user":"reader","pass":"r""#);
    reader.send(b"SUB _R.> 1\r\n");
    reader.sync();
    let v = api(&mut reader, "$JS.API.STREAM.INFO.S", "");
    assert_eq!(v["config"]["name"], "S");
    pubr(&mut reader, "$JS.API.STREAM.DELETE.S", "_R.x", "");
    reader.expect_err("Permissions Violation for Publish to \"$JS.API.STREAM.DELETE.S\"");
    let v = api(&mut admin, "$JS.API.STREAM.INFO.S", "");
    assert_eq!(v["config"]["name"], "S", "the stream is still there");
}

#[test]
fn account_limits_refuse_streams_and_messages() {
    let dir = StoreDir::new("limits");
    let conf = dir.0.join("natrium.conf");
    std::fs::write(
        &conf,
        format!(
            "jetstream {{ store_dir: \"{}\", max_memory_store: 1000, max_file_store: 10000 }}\n",
            dir.path()
        ),
    )
    .expect("write config");
    let server = TestServer::start(&["-c", conf.to_str().expect("path")]);
    let mut c = client(&server);
    let v = api(
        &mut c,
        "$JS.API.STREAM.CREATE.BIG",
        r#"{"name":"BIG","storage":"memory","max_bytes":5000}"#,
    );
    assert_eq!(
        error_of(&v),
        (500, 10028, "insufficient memory resources available".into())
    );
    let v = api(
        &mut c,
        "$JS.API.STREAM.CREATE.F",
        r#"{"name":"F","max_bytes":20000}"#,
    );
    assert_eq!(
        error_of(&v),
        (
            500,
            10047,
            "insufficient storage resources available".into()
        )
    );
    api(
        &mut c,
        "$JS.API.STREAM.CREATE.M",
        r#"{"name":"M","storage":"memory"}"#,
    );
    let body = "x".repeat(600);
    pubr(&mut c, "M", "_R.x", &body);
    let ok: Value = serde_json::from_slice(&c.msg().payload).expect("json");
    assert_eq!(ok["seq"], 1);
    pubr(&mut c, "M", "_R.x", &body);
    let refused: Value = serde_json::from_slice(&c.msg().payload).expect("json");
    assert_eq!(refused["error"]["code"], 503, "{refused}");
    assert_eq!(refused["seq"], 0);
}
