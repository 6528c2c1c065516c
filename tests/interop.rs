//! Interop with the official Rust client, `async-nats`: an unmodified NATS
//! client library must work against natrium.
//!
//! Every await is bounded by [`within`] (or an explicit shorter timeout), so
//! a misbehaving server makes a test fail, never hang.

mod common;
#[path = "common/nats.rs"]
mod nats;

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, Event, HeaderMap, PublishErrorKind, RequestErrorKind};
use common::TestServer;
use futures::StreamExt;
use futures::stream::select_all;
use nats::{
    assert_quiet, assert_rejected, assert_works, connect, connect_with, expect_numbered, next,
    opts, publish, publish_numbered, subscribe, sync, user_opts, within,
};

#[tokio::test]
async fn pub_sub_literal_subject_exact_payload() {
    let server = TestServer::start(&[]);
    let sub_client = connect(&server).await;
    let pub_client = connect(&server).await;

    let mut sub = subscribe(&sub_client, "greet.joe").await;
    sync(&sub_client).await;

    // Every byte value, CR/LF included, must arrive unchanged.
    let payload: Vec<u8> = (0..=255u8).chain(*b"\r\n\r\nMSG x 1 2\r\n").collect();
    publish(&pub_client, "greet.joe", payload.clone()).await;
    within("publish empty", pub_client.publish("greet.joe", "".into()))
        .await
        .unwrap();
    sync(&pub_client).await;

    let m = next(&mut sub).await;
    assert_eq!(m.subject.as_str(), "greet.joe");
    assert_eq!(m.payload.as_ref(), payload.as_slice());
    assert!(m.reply.is_none());
    assert!(m.headers.is_none());
    let m = next(&mut sub).await;
    assert_eq!(m.subject.as_str(), "greet.joe");
    assert!(m.payload.is_empty());
    assert_quiet(&mut sub).await;

    // Non-ASCII subjects pass through byte for byte.
    let mut utf8 = subscribe(&sub_client, "grüße.世界").await;
    sync(&sub_client).await;
    publish(&pub_client, "grüße.世界", "hallo").await;
    sync(&pub_client).await;
    let m = next(&mut utf8).await;
    assert_eq!(m.subject.as_str(), "grüße.世界");
    assert_eq!(m.payload.as_ref(), b"hallo");
}

#[tokio::test]
async fn server_info_as_seen_by_the_client() {
    let server = TestServer::start(&[]);
    let client = connect(&server).await;
    let info = client.server_info();
    assert!(!info.server_id.is_empty(), "server_id: {info:?}");
    assert!(!info.version.is_empty(), "version: {info:?}");
    assert_eq!(info.proto, 1, "proto: {info:?}");
    assert!(info.headers, "headers: {info:?}");
    assert_eq!(info.max_payload, 1024 * 1024, "max_payload: {info:?}");
    assert_eq!(info.port, server.addr.port(), "port: {info:?}");
    assert!(!info.auth_required, "auth_required: {info:?}");
    assert!(!info.tls_required, "tls_required: {info:?}");
    assert_eq!(info.client_ip, "127.0.0.1", "client_ip: {info:?}");
    assert_eq!(client.connection_state(), State::Connected);
    sync(&client).await;
}

#[tokio::test]
async fn no_echo_suppresses_own_messages() {
    let server = TestServer::start(&[]);
    let quiet = connect_with(&server, opts().no_echo()).await;
    let listener = connect(&server).await;
    let mut own = subscribe(&quiet, "echo.test").await;
    let mut theirs = subscribe(&listener, "echo.test").await;
    sync(&quiet).await;
    sync(&listener).await;

    publish(&quiet, "echo.test", "mine").await;
    sync(&quiet).await;
    publish(&listener, "echo.test", "yours").await;
    sync(&listener).await;

    assert_eq!(next(&mut theirs).await.payload.as_ref(), b"mine");
    assert_eq!(next(&mut theirs).await.payload.as_ref(), b"yours");
    // The no-echo connection gets the other client's message, not its own.
    assert_eq!(next(&mut own).await.payload.as_ref(), b"yours");
    assert_quiet(&mut own).await;
}

#[tokio::test]
async fn wildcards_star_and_gt() {
    let server = TestServer::start(&[]);
    let sub_client = connect(&server).await;
    let pub_client = connect(&server).await;

    let mut star = within("subscribe *", sub_client.subscribe("foo.*"))
        .await
        .unwrap();
    let mut gt = within("subscribe >", sub_client.subscribe("foo.>"))
        .await
        .unwrap();
    sync(&sub_client).await;

    // In publish order: "foo" matches neither ("foo.>" needs at least one
    // more token), "other.bar" matches neither, "foo.bar.baz" matches only
    // ">", "foo.bar" matches both.
    for subject in ["foo", "other.bar", "foo.bar.baz", "foo.bar"] {
        publish(&pub_client, subject, subject).await;
    }
    sync(&pub_client).await;

    let m = next(&mut star).await;
    assert_eq!(m.subject.as_str(), "foo.bar", "first message on foo.*");
    assert_eq!(m.payload.as_ref(), b"foo.bar");
    assert_quiet(&mut star).await;

    let m = next(&mut gt).await;
    assert_eq!(m.subject.as_str(), "foo.bar.baz", "first message on foo.>");
    assert_eq!(m.payload.as_ref(), b"foo.bar.baz");
    let m = next(&mut gt).await;
    assert_eq!(m.subject.as_str(), "foo.bar", "second message on foo.>");
    assert_quiet(&mut gt).await;
}

#[tokio::test]
async fn queue_group_shares_plain_subscriber_gets_all() {
    let server = TestServer::start(&[]);
    let plain_client = connect(&server).await;
    let mut plain = subscribe(&plain_client, "jobs.new").await;
    sync(&plain_client).await;

    // Three members, each on its own connection.
    let mut members = Vec::new();
    let mut member_clients = Vec::new();
    for _ in 0..3 {
        let c = connect(&server).await;
        let s = within(
            "queue subscribe",
            c.queue_subscribe("jobs.new", "workers".to_string()),
        )
        .await
        .unwrap();
        sync(&c).await;
        members.push(s);
        member_clients.push(c);
    }

    let pub_client = connect(&server).await;
    publish_numbered(&pub_client, "jobs.new", 30).await;

    // The plain subscriber sees every message, in order.
    expect_numbered(&mut plain, 30).await;
    assert_quiet(&mut plain).await;

    // The group as a whole sees each message exactly once.
    let mut group = select_all(
        members
            .into_iter()
            .enumerate()
            .map(|(idx, s)| s.map(move |m| (idx, m)).boxed()),
    );
    let mut seen = HashSet::new();
    let mut per_member = [0usize; 3];
    for _ in 0..30 {
        let (idx, m) = within("queue delivery", group.next())
            .await
            .expect("queue subscriptions ended");
        let id: u32 = std::str::from_utf8(&m.payload).unwrap().parse().unwrap();
        assert!(seen.insert(id), "message {id} delivered twice to the group");
        per_member[idx] += 1;
    }
    if let Ok(extra) = tokio::time::timeout(Duration::from_millis(300), group.next()).await {
        panic!("group got more than 30 messages: {extra:?}");
    }
    assert_eq!(seen, (0..30).collect::<HashSet<u32>>());
    assert!(
        per_member.iter().all(|&n| n >= 1),
        "every member should get at least one of 30 messages: {per_member:?}"
    );
}

#[tokio::test]
async fn request_reply_with_concurrent_requests() {
    let server = TestServer::start(&[]);
    let responder = connect(&server).await;
    let mut service = subscribe(&responder, "svc.echo").await;
    sync(&responder).await;

    let replier = responder.clone();
    let task = tokio::spawn(async move {
        while let Some(req) = service.next().await {
            let reply = req.reply.expect("request carries a reply subject");
            let mut body = b"re:".to_vec();
            body.extend_from_slice(&req.payload);
            replier.publish(reply, body.into()).await.unwrap();
        }
    });

    let requester = connect(&server).await;
    let one = within("request", requester.request("svc.echo", "ping".into()))
        .await
        .expect("request");
    assert_eq!(one.payload.as_ref(), b"re:ping");

    // Many requests in flight at once on one connection (async-nats
    // multiplexes them over one wildcard inbox subscription).
    let requests = (0..20).map(|i| {
        let c = requester.clone();
        async move {
            let body = format!("req-{i}");
            let reply = c.request("svc.echo", body.clone().into()).await;
            (body, reply)
        }
    });
    let results = within("concurrent requests", futures::future::join_all(requests)).await;
    for (body, reply) in results {
        let reply = reply.unwrap_or_else(|e| panic!("request {body} failed: {e}"));
        assert_eq!(reply.payload.as_ref(), format!("re:{body}").as_bytes());
    }

    // Requests from several connections at once.
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(connect(&server).await);
    }
    let requests = clients.iter().enumerate().map(|(i, c)| async move {
        let body = format!("conn-{i}");
        let reply = c.request("svc.echo", body.clone().into()).await;
        (body, reply)
    });
    for (body, reply) in within(
        "multi-connection requests",
        futures::future::join_all(requests),
    )
    .await
    {
        let reply = reply.unwrap_or_else(|e| panic!("request {body} failed: {e}"));
        assert_eq!(reply.payload.as_ref(), format!("re:{body}").as_bytes());
    }
    task.abort();
}

#[tokio::test]
async fn headers_round_trip() {
    let server = TestServer::start(&[]);
    let sub_client = connect(&server).await;
    let pub_client = connect(&server).await;
    let mut sub = subscribe(&sub_client, "hdr.test").await;
    sync(&sub_client).await;

    let mut headers = HeaderMap::new();
    headers.insert("X-Single", "one");
    headers.append("X-Multi", "first");
    headers.append("X-Multi", "second");
    headers.insert("X-Spaces", "a value with spaces");
    within(
        "publish_with_headers",
        pub_client.publish_with_headers("hdr.test", headers, "body bytes".into()),
    )
    .await
    .unwrap();
    // Headers with an empty payload.
    let mut only = HeaderMap::new();
    only.insert("X-Only", "yes");
    within(
        "publish_with_headers (empty payload)",
        pub_client.publish_with_headers("hdr.test", only, "".into()),
    )
    .await
    .unwrap();
    sync(&pub_client).await;

    let m = next(&mut sub).await;
    assert_eq!(m.payload.as_ref(), b"body bytes");
    assert!(m.status.is_none(), "no status on a plain message");
    let h = m.headers.expect("message carries headers");
    assert_eq!(h.get("X-Single").map(|v| v.as_str()), Some("one"));
    let multi: Vec<&str> = h.get_all("X-Multi").map(|v| v.as_str()).collect();
    assert_eq!(multi, ["first", "second"]);
    assert_eq!(
        h.get("X-Spaces").map(|v| v.as_str()),
        Some("a value with spaces")
    );

    let m = next(&mut sub).await;
    assert!(m.payload.is_empty());
    let h = m.headers.expect("message carries headers");
    assert_eq!(h.get("X-Only").map(|v| v.as_str()), Some("yes"));
    assert_quiet(&mut sub).await;
}

#[tokio::test]
async fn request_with_headers_and_reply() {
    let server = TestServer::start(&[]);
    let responder = connect(&server).await;
    let mut service = subscribe(&responder, "svc.hdr").await;
    sync(&responder).await;
    let replier = responder.clone();
    let task = tokio::spawn(async move {
        while let Some(req) = service.next().await {
            let trace = req
                .headers
                .as_ref()
                .and_then(|h| h.get("Trace-Id"))
                .map(|v| v.as_str().to_string())
                .unwrap_or_default();
            let mut h = HeaderMap::new();
            h.insert("Trace-Id", trace.as_str());
            replier
                .publish_with_headers(req.reply.unwrap(), h, req.payload)
                .await
                .unwrap();
        }
    });

    let requester = connect(&server).await;
    let mut h = HeaderMap::new();
    h.insert("Trace-Id", "abc-123");
    let reply = within(
        "request_with_headers",
        requester.request_with_headers("svc.hdr", h, "data".into()),
    )
    .await
    .expect("request_with_headers");
    assert_eq!(reply.payload.as_ref(), b"data");
    assert_eq!(
        reply
            .headers
            .as_ref()
            .and_then(|h| h.get("Trace-Id"))
            .map(|v| v.as_str()),
        Some("abc-123")
    );
    task.abort();
}

#[tokio::test]
async fn no_responders_is_reported_quickly() {
    let server = TestServer::start(&[]);
    let client = connect(&server).await;
    let started = Instant::now();
    let err = within(
        "request to nobody",
        client.request("nobody.home", "?".into()),
    )
    .await
    .expect_err("a request nobody listens to must fail");
    assert_eq!(err.kind(), RequestErrorKind::NoResponders, "{err}");
    // The default request timeout is 10 s; the 503 must come long before.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no-responders took {:?}",
        started.elapsed()
    );

    // The connection is still usable afterwards, and a responder that shows
    // up later is reached.
    let mut service = subscribe(&client, "nobody.home").await;
    sync(&client).await;
    let replier = client.clone();
    let task = tokio::spawn(async move {
        if let Some(req) = service.next().await {
            replier
                .publish(req.reply.unwrap(), "here".into())
                .await
                .unwrap();
        }
    });
    let reply = within("request", client.request("nobody.home", "?".into()))
        .await
        .expect("request after a responder subscribed");
    assert_eq!(reply.payload.as_ref(), b"here");
    within("responder task", task).await.unwrap();
}

#[tokio::test]
async fn unsubscribe_after_n_messages() {
    let server = TestServer::start(&[]);
    let sub_client = connect(&server).await;
    let pub_client = connect(&server).await;
    let mut sub = subscribe(&sub_client, "limited").await;
    // A second, unlimited subscription on the same connection shows the
    // connection keeps receiving after the first one is gone.
    let mut other = subscribe(&sub_client, "limited").await;
    within("unsubscribe_after", sub.unsubscribe_after(3))
        .await
        .unwrap();
    sync(&sub_client).await;
    let stats = sub_client.statistics();
    let before = stats.in_messages.load(Ordering::Relaxed);

    publish_numbered(&pub_client, "limited", 5).await;

    expect_numbered(&mut sub, 3).await;
    assert!(
        within("end of limited subscription", sub.next())
            .await
            .is_none(),
        "stream must end after 3 messages"
    );
    expect_numbered(&mut other, 5).await;
    assert_quiet(&mut other).await;

    // async-nats ends the stream by counting on its side and silently drops
    // MSGs for sids it no longer knows, but counts every MSG it reads: 3 for
    // the limited sid + 5 for the other one (+ 1 for the sync barrier's
    // status message) proves the server itself stopped delivering to the
    // limited sid after 3.
    sync(&sub_client).await;
    let received = stats.in_messages.load(Ordering::Relaxed) - before;
    assert_eq!(
        received,
        3 + 5 + 1,
        "MSGs sent to the subscribing connection"
    );
}

/// Wrong or missing credentials must make `connect` fail (not hang, not
/// retry), with the authorization-violation kind, within 5 s.
async fn assert_connect_rejected(server: &TestServer, options: ConnectOptions, what: &str) {
    let started = Instant::now();
    assert_rejected(server, options, what).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{what}: rejection took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn auth_user_and_password() {
    let server = TestServer::start(&["--user", "u", "--pass", "p"]);

    let good = connect_with(&server, user_opts("u", "p")).await;
    assert!(good.server_info().auth_required, "INFO says auth_required");
    assert_works(&good, "auth.check").await;

    assert_connect_rejected(&server, user_opts("u", "wrong"), "wrong password").await;
    assert_connect_rejected(&server, user_opts("nobody", "p"), "wrong user").await;
    assert_connect_rejected(&server, opts(), "no credentials").await;

    // The good connection is unaffected by the rejected ones.
    assert_works(&good, "auth.check").await;
}

#[tokio::test]
async fn auth_token() {
    let server = TestServer::start(&["--auth", "s3cret"]);

    let good = connect_with(&server, opts().token("s3cret".to_string())).await;
    assert!(good.server_info().auth_required, "INFO says auth_required");
    assert_works(&good, "auth.check").await;

    assert_connect_rejected(&server, opts().token("wrong".to_string()), "wrong token").await;
    assert_connect_rejected(&server, opts(), "no token").await;
    assert_works(&good, "auth.check").await;
}

#[tokio::test]
async fn large_message_round_trip_and_max_payload() {
    let server = TestServer::start(&[]);
    let sub_client = connect(&server).await;
    let pub_client = connect(&server).await;
    assert_eq!(pub_client.server_info().max_payload, 1024 * 1024);

    let mut sub = subscribe(&sub_client, "big").await;
    sync(&sub_client).await;

    // Just under 1 MiB, with a pattern that would expose any shifted or
    // dropped byte.
    let n = 1024 * 1024 - 100;
    let payload: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
    within(
        "publish big",
        pub_client.publish("big", payload.clone().into()),
    )
    .await
    .unwrap();
    // Exactly max_payload is allowed too.
    let exact: Vec<u8> = (0..1024 * 1024).map(|i| (i % 253) as u8).collect();
    within(
        "publish max",
        pub_client.publish("big", exact.clone().into()),
    )
    .await
    .unwrap();
    sync(&pub_client).await;
    let m = next(&mut sub).await;
    assert_eq!(m.payload.len(), payload.len());
    assert!(m.payload.as_ref() == payload.as_slice(), "payload differs");
    let m = next(&mut sub).await;
    assert!(m.payload.as_ref() == exact.as_slice(), "payload differs");

    // A big message with headers (HPUB/HMSG split over many reads).
    let mut h = HeaderMap::new();
    h.insert("X-Big", "yes");
    let half: Vec<u8> = (0..512 * 1024).map(|i| (i % 241) as u8).collect();
    within(
        "publish_with_headers big",
        pub_client.publish_with_headers("big", h, half.clone().into()),
    )
    .await
    .unwrap();
    sync(&pub_client).await;
    let m = next(&mut sub).await;
    assert!(m.payload.as_ref() == half.as_slice(), "payload differs");
    let big_header = m.headers.as_ref().and_then(|h| h.get("X-Big"));
    assert_eq!(big_header.map(|v| v.as_str()), Some("yes"));

    // async-nats checks max_payload (from INFO) locally and refuses.
    let over = vec![b'x'; 1024 * 1024 + 1];
    let err = within("publish oversized", pub_client.publish("big", over.into()))
        .await
        .expect_err("oversized publish must be refused");
    assert_eq!(err.kind(), PublishErrorKind::MaxPayloadExceeded, "{err}");

    // The connection survives and still works.
    within("publish small", pub_client.publish("big", "after".into()))
        .await
        .unwrap();
    sync(&pub_client).await;
    assert_eq!(next(&mut sub).await.payload.as_ref(), b"after");
    assert_eq!(pub_client.connection_state(), State::Connected);
}

#[tokio::test]
async fn configured_max_payload_is_advertised_and_enforced_by_client() {
    let server = TestServer::start(&["--max_payload", "1024"]);
    let client = connect(&server).await;
    assert_eq!(client.server_info().max_payload, 1024);
    assert_eq!(client.max_payload(), 1024);

    let mut sub = subscribe(&client, "mp").await;
    sync(&client).await;
    within("publish 1024", client.publish("mp", vec![7u8; 1024].into()))
        .await
        .expect("a payload of exactly max_payload is fine");
    let err = within("publish 1025", client.publish("mp", vec![7u8; 1025].into()))
        .await
        .expect_err("over max_payload must be refused");
    assert_eq!(err.kind(), PublishErrorKind::MaxPayloadExceeded, "{err}");
    // Headers count towards the limit as well.
    let mut h = HeaderMap::new();
    h.insert("X-Pad", "padding");
    let err = within(
        "publish_with_headers over",
        client.publish_with_headers("mp", h, vec![7u8; 1020].into()),
    )
    .await
    .expect_err("headers + payload over max_payload must be refused");
    assert_eq!(err.kind(), PublishErrorKind::MaxPayloadExceeded, "{err}");
    sync(&client).await;
    assert_eq!(next(&mut sub).await.payload.len(), 1024);
    assert_quiet(&mut sub).await;
}

#[tokio::test]
async fn ten_thousand_messages_arrive_in_order() {
    const N: u32 = 10_000;
    let server = TestServer::start(&[]);
    let sub_client = connect(&server).await;
    let pub_client = connect(&server).await;
    let mut sub = subscribe(&sub_client, "seq").await;
    sync(&sub_client).await;

    let reader = tokio::spawn(async move {
        for want in 0..N {
            let m = sub.next().await.expect("subscription ended");
            let got = u32::from_be_bytes(m.payload.as_ref().try_into().unwrap());
            assert_eq!(got, want, "out of order or lost");
        }
        sub
    });
    for i in 0..N {
        publish(&pub_client, "seq", i.to_be_bytes().to_vec()).await;
    }
    sync(&pub_client).await;
    let mut sub = within("reading 10k messages", reader)
        .await
        .expect("reader task");
    assert_quiet(&mut sub).await;
}

#[tokio::test]
async fn server_pings_keep_client_connected() {
    // -V traces every client operation, so the client's PONGs to the
    // server's PINGs show up in the log.
    let server = TestServer::start(&["--ping_interval", "200ms", "-V"]);
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&events);
    let client = connect_with(
        &server,
        opts().event_callback(move |e| {
            let sink = Arc::clone(&sink);
            async move {
                if !matches!(e, Event::Connected) {
                    sink.lock().unwrap().push(e.to_string());
                }
            }
        }),
    )
    .await;
    let mut sub = subscribe(&client, "alive").await;
    sync(&client).await;

    // Idle first: the server has nothing to go on but its PINGs; with
    // ping_max 2 an unanswered client would be dropped after ~600 ms.
    let idle_until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < idle_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(client.connection_state(), State::Connected);
    }
    // Then busy: keep exchanging messages.
    let busy_until = Instant::now() + Duration::from_millis(1200);
    let mut i = 0u32;
    while Instant::now() < busy_until {
        publish(&client, "alive", i.to_string()).await;
        let m = next(&mut sub).await;
        assert_eq!(m.payload.as_ref(), i.to_string().as_bytes());
        assert_eq!(client.connection_state(), State::Connected);
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sync(&client).await;
    assert_eq!(client.connection_state(), State::Connected);
    assert_eq!(
        client.statistics().connects.load(Ordering::Relaxed),
        1,
        "the client must not have reconnected"
    );

    let pongs = server
        .log_lines()
        .iter()
        .filter(|l| l.contains("<<- [PONG]"))
        .count();
    assert!(
        pongs >= 2,
        "expected the server to PING (and the client to PONG) at least twice; log: {:#?}",
        server.log_lines()
    );
    let events = events.lock().unwrap().clone();
    assert!(
        events.is_empty(),
        "client saw connection trouble: {events:?}"
    );
}

/// Polls (bounded) until the client reports `want`.
async fn wait_for_state(client: &Client, want: State) {
    within(&format!("connection state {want:?}"), async {
        while client.connection_state() != want {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn client_reconnects_and_resubscribes_after_server_restart() {
    let first = TestServer::start(&[]);
    let port = first.addr.port().to_string();
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&events);
    let client = connect_with(
        &first,
        opts()
            .reconnect_delay_callback(|_| Duration::from_millis(50))
            .event_callback(move |e| {
                let sink = Arc::clone(&sink);
                async move { sink.lock().unwrap().push(e.to_string()) }
            }),
    )
    .await;
    let mut sub = subscribe(&client, "after.restart").await;
    sync(&client).await;

    drop(first); // kills the server
    wait_for_state(&client, State::Disconnected).await;

    // A new server on the same port: the client must reconnect by itself
    // and replay its subscription (SUB with the same sid).
    let second = TestServer::start(&["-p", &port]);
    assert_eq!(second.addr.port().to_string(), port);
    wait_for_state(&client, State::Connected).await;
    sync(&client).await;

    let other = connect(&second).await;
    publish(&other, "after.restart", "hello again").await;
    sync(&other).await;
    assert_eq!(next(&mut sub).await.payload.as_ref(), b"hello again");
    assert_eq!(client.statistics().connects.load(Ordering::Relaxed), 2);
    let events = events.lock().unwrap().clone();
    assert!(
        events.iter().any(|e| e == "disconnected"),
        "events: {events:?}"
    );
    assert_eq!(events.last().map(String::as_str), Some("connected"));
}

#[tokio::test]
async fn async_nats_sees_lame_duck_mode() {
    // SIGUSR2: the official client reports "lame duck mode detected" from
    // the INFO with ldm, as it does with nats-server.
    let conf = common::TempConf::new("interop-ldm", "lame_duck_grace_period: \"0s\"\n");
    let mut server = TestServer::start(&["-c", conf.arg()]);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let client = connect_with(
        &server,
        opts().event_callback(move |e| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(e);
            }
        }),
    )
    .await;
    sync(&client).await;
    server.signal("USR2");
    let seen = within("the lame duck event", async {
        while let Some(e) = rx.recv().await {
            if matches!(e, Event::LameDuckMode) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(seen);
    assert_eq!(server.wait_exit(), Some(0));
}
