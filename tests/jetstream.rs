//! JetStream with the official Rust client's `jetstream` API: streams,
//! publish acks and de-duplication, pull consumers, acks, redelivery,
//! retention, and restarts with the same store directory.
//!
//! Every await is bounded by `within`; each test has a store directory of
//! its own, removed at the end.

mod common;
#[path = "common/nats.rs"]
mod nats;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use common::TestServer;
use futures::StreamExt;
use nats::{connect, within};
use std::future::IntoFuture;
use std::path::PathBuf;
use std::time::Duration;

/// A fresh store directory, removed on drop.
struct StoreDir(PathBuf);

impl StoreDir {
    fn new(name: &str) -> StoreDir {
        let dir = std::env::temp_dir().join(format!(
            "natrium-js-{name}-{}-{}",
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

fn start(dir: &StoreDir) -> TestServer {
    TestServer::start(&["-js", "-sd", dir.path()])
}

fn memory_stream(name: &str, subjects: &[&str]) -> stream::Config {
    stream::Config {
        name: name.into(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        storage: stream::StorageType::Memory,
        ..Default::default()
    }
}

async fn fetch(
    consumer: &consumer::Consumer<consumer::pull::Config>,
    n: usize,
) -> Vec<jetstream::Message> {
    let mut batch = within(
        "fetch",
        consumer
            .fetch()
            .max_messages(n)
            .expires(Duration::from_millis(500))
            .messages(),
    )
    .await
    .expect("fetch");
    let mut out = Vec::new();
    while let Some(m) = within("next of batch", batch.next()).await {
        out.push(m.expect("message"));
    }
    out
}

#[tokio::test]
async fn memory_stream_publish_fetch_ack() {
    let dir = StoreDir::new("basic");
    let server = start(&dir);
    let client = connect(&server).await;
    let js = jetstream::new(client);
    let stream = within(
        "create",
        js.create_stream(memory_stream("ORDERS", &["orders.>"])),
    )
    .await
    .expect("create stream");
    assert_eq!(stream.cached_info().config.name, "ORDERS");

    for i in 1..=5u64 {
        let ack = within(
            "publish",
            js.publish(format!("orders.{i}"), format!("o{i}").into()),
        )
        .await
        .expect("publish")
        .await
        .expect("puback");
        assert_eq!(ack.stream, "ORDERS");
        assert_eq!(ack.sequence, i);
        assert!(!ack.duplicate);
    }
    let mut stream = js.get_stream("ORDERS").await.expect("get stream");
    let info = stream.info().await.expect("info");
    assert_eq!(info.state.messages, 5);
    assert_eq!(info.state.first_sequence, 1);
    assert_eq!(info.state.last_sequence, 5);

    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("worker".into()),
            ..Default::default()
        })
        .await
        .expect("create consumer");
    let msgs = fetch(&consumer, 3).await;
    assert_eq!(msgs.len(), 3);
    for (i, m) in msgs.iter().enumerate() {
        assert_eq!(m.payload.as_ref(), format!("o{}", i + 1).as_bytes());
        let meta = m.info().expect("ack metadata");
        assert_eq!(meta.stream_sequence, i as u64 + 1);
        assert_eq!(meta.delivered, 1);
        assert_eq!(meta.pending, 4 - i as u64);
        m.double_ack().await.expect("double ack");
    }
    let msgs = fetch(&consumer, 10).await;
    assert_eq!(msgs.len(), 2);
    for m in &msgs {
        m.ack().await.expect("ack");
    }
    let mut consumer = consumer;
    let info = within("consumer info", consumer.info())
        .await
        .expect("info");
    assert_eq!(info.delivered.stream_sequence, 5);
    assert_eq!(info.num_pending, 0);
}

async fn publish_h(
    js: &jetstream::Context,
    subject: &str,
    headers: &[(&str, &str)],
    payload: &str,
) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.insert(*k, *v);
    }
    within(
        "publish",
        js.publish_with_headers(subject.to_string(), h, payload.to_string().into()),
    )
    .await?
    .await
}

fn api_code(e: &impl std::fmt::Display) -> String {
    e.to_string()
}

#[tokio::test]
async fn dedupe_and_expected_headers() {
    let dir = StoreDir::new("dedupe");
    let server = start(&dir);
    let js = jetstream::new(connect(&server).await);
    js.create_stream(memory_stream("D", &["d.>"]))
        .await
        .expect("create");

    let a = publish_h(&js, "d.1", &[("Nats-Msg-Id", "m1")], "one")
        .await
        .expect("first");
    assert_eq!((a.sequence, a.duplicate), (1, false));
    let b = publish_h(&js, "d.1", &[("Nats-Msg-Id", "m1")], "again")
        .await
        .expect("dupe");
    assert_eq!((b.sequence, b.duplicate), (1, true));

    let e = publish_h(&js, "d.1", &[("Nats-Expected-Stream", "OTHER")], "x")
        .await
        .expect_err("wrong stream");
    assert!(
        api_code(&e).contains("expected stream does not match"),
        "{e}"
    );
    let e = publish_h(&js, "d.1", &[("Nats-Expected-Last-Sequence", "7")], "x")
        .await
        .expect_err("wrong last seq");
    assert!(api_code(&e).contains("wrong last sequence: 1"), "{e}");
    publish_h(&js, "d.1", &[("Nats-Expected-Last-Sequence", "1")], "two")
        .await
        .expect("right last seq");
    let e = publish_h(
        &js,
        "d.2",
        &[("Nats-Expected-Last-Subject-Sequence", "1")],
        "x",
    )
    .await
    .expect_err("wrong subject seq");
    assert!(api_code(&e).contains("wrong last sequence: 0"), "{e}");
    publish_h(
        &js,
        "d.2",
        &[("Nats-Expected-Last-Subject-Sequence", "0")],
        "new key",
    )
    .await
    .expect("subject did not exist");
    let e = publish_h(&js, "d.1", &[("Nats-Expected-Last-Msg-Id", "nope")], "x")
        .await
        .expect_err("wrong msg id");
    assert!(api_code(&e).contains("wrong last msg ID: m1"), "{e}");

    let mut s = js.get_stream("D").await.expect("stream");
    assert_eq!(s.info().await.expect("info").state.messages, 3);
}

#[tokio::test]
async fn limits_discard_old_and_new() {
    let dir = StoreDir::new("limits");
    let server = start(&dir);
    let js = jetstream::new(connect(&server).await);
    js.create_stream(stream::Config {
        max_messages: 3,
        ..memory_stream("OLD", &["old.>"])
    })
    .await
    .expect("create old");
    js.create_stream(stream::Config {
        max_messages: 2,
        discard: stream::DiscardPolicy::New,
        ..memory_stream("NEW", &["new.>"])
    })
    .await
    .expect("create new");
    js.create_stream(stream::Config {
        max_messages_per_subject: 2,
        ..memory_stream("PER", &["per.>"])
    })
    .await
    .expect("create per");
    for i in 0..5 {
        publish_h(&js, "old.x", &[], &i.to_string())
            .await
            .expect("old");
        publish_h(&js, &format!("per.{}", i % 2), &[], &i.to_string())
            .await
            .expect("per");
    }
    let mut old = js.get_stream("OLD").await.expect("old");
    let st = old.info().await.expect("info").state.clone();
    assert_eq!(
        (st.messages, st.first_sequence, st.last_sequence),
        (3, 3, 5)
    );
    let mut per = js.get_stream("PER").await.expect("per");
    assert_eq!(per.info().await.expect("info").state.messages, 4);

    publish_h(&js, "new.a", &[], "1").await.expect("1");
    publish_h(&js, "new.a", &[], "2").await.expect("2");
    let e = publish_h(&js, "new.a", &[], "3").await.expect_err("full");
    assert!(api_code(&e).contains("maximum messages exceeded"), "{e}");
}

#[tokio::test]
async fn get_delete_and_purge() {
    let dir = StoreDir::new("getdel");
    let server = start(&dir);
    let js = jetstream::new(connect(&server).await);
    let stream = js
        .create_stream(stream::Config {
            allow_direct: true,
            ..memory_stream("G", &["g.>"])
        })
        .await
        .expect("create");
    for (s, p) in [("g.a", "1"), ("g.b", "2"), ("g.a", "3"), ("g.c", "4")] {
        publish_h(&js, s, &[("X-Test", p)], p)
            .await
            .expect("publish");
    }
    let m = stream.get_raw_message(2).await.expect("seq 2");
    assert_eq!(
        (m.subject.as_str(), m.payload.as_ref()),
        ("g.b", b"2".as_slice())
    );
    assert_eq!(m.headers.get("X-Test").map(|v| v.as_str()), Some("2"));
    let m = stream
        .get_last_raw_message_by_subject("g.a")
        .await
        .expect("last g.a");
    assert_eq!(m.sequence, 3);
    let m = stream
        .direct_get_last_for_subject("g.a")
        .await
        .expect("direct last");
    assert_eq!(m.payload.as_ref(), b"3");
    let m = stream.direct_get(4).await.expect("direct 4");
    assert_eq!(m.subject.as_str(), "g.c");
    assert!(stream.get_raw_message(99).await.is_err());

    assert!(stream.delete_message(2).await.expect("delete"));
    assert!(
        stream.delete_message(2).await.is_err(),
        "second delete fails"
    );
    let mut stream = stream;
    let st = stream.info().await.expect("info").state.clone();
    assert_eq!((st.messages, st.deleted_count), (3, Some(1)));

    let r = stream.purge().filter("g.a").await.expect("purge g.a");
    assert_eq!(r.purged, 2);
    let r = stream.purge().await.expect("purge all");
    assert_eq!(r.purged, 1);
    let st = stream.info().await.expect("info").state.clone();
    assert_eq!(
        (st.messages, st.first_sequence, st.last_sequence),
        (0, 5, 4)
    );
}

#[tokio::test]
async fn nak_term_progress_redelivery_and_max_deliver() {
    let dir = StoreDir::new("redeliver");
    let server = start(&dir);
    let client = connect(&server).await;
    let js = jetstream::new(client.clone());
    let stream = js
        .create_stream(memory_stream("R", &["r.>"]))
        .await
        .expect("create");
    let mut advisories = client
        .subscribe("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.R.w")
        .await
        .expect("advisory sub");
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("w".into()),
            ack_wait: Duration::from_millis(300),
            max_deliver: 2,
            ..Default::default()
        })
        .await
        .expect("consumer");
    for i in 1..=3 {
        publish_h(&js, "r.x", &[], &i.to_string())
            .await
            .expect("publish");
    }
    let msgs = fetch(&consumer, 3).await;
    assert_eq!(msgs.len(), 3);
    msgs[0]
        .ack_with(jetstream::AckKind::Nak(None))
        .await
        .expect("nak");
    msgs[1]
        .double_ack_with(jetstream::AckKind::Term)
        .await
        .expect("term");
    msgs[2].double_ack().await.expect("ack");
    // The nak'd message comes back at once, delivered a second time.
    let again = fetch(&consumer, 1).await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].payload.as_ref(), b"1");
    assert_eq!(again[0].info().expect("meta").delivered, 2);
    // Not acked: after ack_wait it would be delivered a third time, but
    // max_deliver is 2, so it is dropped and the advisory says so.
    let adv = within("max deliveries advisory", advisories.next())
        .await
        .expect("advisory");
    let v: serde_json::Value = serde_json::from_slice(&adv.payload).expect("json");
    assert_eq!(v["stream_seq"], 1);
    assert_eq!(v["deliveries"], 2);
    assert!(fetch(&consumer, 1).await.is_empty());
}

#[tokio::test]
async fn ack_wait_redelivers_and_progress_extends() {
    let dir = StoreDir::new("ackwait");
    let server = start(&dir);
    let js = jetstream::new(connect(&server).await);
    let stream = js
        .create_stream(memory_stream("W", &["w.>"]))
        .await
        .expect("create");
    let consumer = stream
        .create_consumer(consumer::pull::Config {
            durable_name: Some("w".into()),
            ack_wait: Duration::from_millis(200),
            ..Default::default()
        })
        .await
        .expect("consumer");
    publish_h(&js, "w.1", &[], "job").await.expect("publish");
    let first = fetch(&consumer, 1).await;
    assert_eq!(first.len(), 1);
    // No ack: a later fetch gets it again, with the delivery count raised.
    let mut redelivered = None;
    for _ in 0..20 {
        let m = fetch(&consumer, 1).await;
        if let Some(m) = m.into_iter().next() {
            redelivered = Some(m);
            break;
        }
    }
    let m = redelivered.expect("redelivered after ack_wait");
    assert_eq!(m.info().expect("meta").delivered, 2);
    m.double_ack().await.expect("ack");
    let mut consumer = consumer;
    let info = consumer.info().await.expect("info");
    assert_eq!(info.num_ack_pending, 0);
    assert_eq!(info.num_redelivered, 0);
}

#[tokio::test]
async fn workqueue_and_interest_retention() {
    let dir = StoreDir::new("retention");
    let server = start(&dir);
    let js = jetstream::new(connect(&server).await);
    let wq = js
        .create_stream(stream::Config {
            retention: stream::RetentionPolicy::WorkQueue,
            ..memory_stream("WQ", &["wq.>"])
        })
        .await
        .expect("wq");
    let c = wq
        .create_consumer(consumer::pull::Config {
            durable_name: Some("a".into()),
            ..Default::default()
        })
        .await
        .expect("consumer a");
    let e = wq
        .create_consumer(consumer::pull::Config {
            durable_name: Some("b".into()),
            ..Default::default()
        })
        .await
        .expect_err("second unfiltered consumer");
    assert!(
        e.to_string()
            .contains("multiple non-filtered consumers not allowed"),
        "{e}"
    );
    for i in 0..4 {
        publish_h(&js, "wq.job", &[], &i.to_string())
            .await
            .expect("publish");
    }
    for m in fetch(&c, 4).await {
        m.double_ack().await.expect("ack");
    }
    let mut wq = wq;
    assert_eq!(
        wq.info().await.expect("info").state.messages,
        0,
        "acked work is removed"
    );

    let mut interest = js
        .create_stream(stream::Config {
            retention: stream::RetentionPolicy::Interest,
            ..memory_stream("INT", &["int.>"])
        })
        .await
        .expect("interest");
    let ack = publish_h(&js, "int.x", &[], "nobody")
        .await
        .expect("publish");
    assert_eq!(ack.sequence, 1);
    let st = interest.info().await.expect("info").state.clone();
    assert_eq!(
        (st.messages, st.first_sequence, st.last_sequence),
        (0, 2, 1)
    );
    let c1 = interest
        .create_consumer(consumer::pull::Config {
            durable_name: Some("c1".into()),
            ..Default::default()
        })
        .await
        .expect("c1");
    let c2 = interest
        .create_consumer(consumer::pull::Config {
            durable_name: Some("c2".into()),
            ..Default::default()
        })
        .await
        .expect("c2");
    publish_h(&js, "int.x", &[], "both").await.expect("publish");
    for m in fetch(&c1, 1).await {
        m.double_ack().await.expect("ack");
    }
    assert_eq!(
        interest.info().await.expect("info").state.messages,
        1,
        "c2 has not acked"
    );
    for m in fetch(&c2, 1).await {
        m.double_ack().await.expect("ack");
    }
    assert_eq!(interest.info().await.expect("info").state.messages, 0);
}

#[tokio::test]
async fn stream_and_consumer_listing_update_delete() {
    let dir = StoreDir::new("admin");
    let server = start(&dir);
    let js = jetstream::new(connect(&server).await);
    for n in ["A", "B", "C"] {
        js.create_stream(memory_stream(n, &[&format!("{}.>", n.to_lowercase())]))
            .await
            .expect("create");
    }
    let e = js
        .create_stream(memory_stream("X", &["a.b"]))
        .await
        .expect_err("overlap");
    assert!(
        e.to_string()
            .contains("subjects overlap with an existing stream"),
        "{e}"
    );
    let mut names: Vec<String> = js.stream_names().map(|n| n.expect("name")).collect().await;
    names.sort();
    assert_eq!(names, vec!["A", "B", "C"]);
    let found = within("stream by subject", js.stream_by_subject("b.x"))
        .await
        .expect("by subject");
    assert_eq!(found, "B");
    let updated = js
        .update_stream(stream::Config {
            max_messages: 10,
            ..memory_stream("A", &["a.>"])
        })
        .await
        .expect("update");
    assert_eq!(updated.config.max_messages, 10);
    let a = js.get_stream("A").await.expect("A");
    for n in ["x", "y"] {
        a.create_consumer(consumer::pull::Config {
            durable_name: Some(n.into()),
            ..Default::default()
        })
        .await
        .expect("consumer");
    }
    let mut consumers: Vec<String> = a.consumer_names().map(|n| n.expect("name")).collect().await;
    consumers.sort();
    assert_eq!(consumers, vec!["x", "y"]);
    assert!(a.delete_consumer("x").await.expect("delete").success);
    assert!(a.consumer_info("x").await.is_err());
    assert!(js.delete_stream("B").await.expect("delete").success);
    assert!(js.get_stream("B").await.is_err());
    let info = js.query_account().await.expect("account");
    assert_eq!(info.streams, 2);
    assert_eq!(info.consumers, 1);
}

fn file_stream(name: &str, subjects: &[&str]) -> stream::Config {
    stream::Config {
        name: name.into(),
        subjects: subjects.iter().map(|s| s.to_string()).collect(),
        storage: stream::StorageType::File,
        ..Default::default()
    }
}

#[tokio::test]
async fn file_stream_survives_restart_with_consumer_state() {
    let dir = StoreDir::new("restart");
    {
        let mut server = start(&dir);
        let js = jetstream::new(connect(&server).await);
        let stream = js
            .create_stream(file_stream("F", &["f.>"]))
            .await
            .expect("create");
        for i in 1..=20u64 {
            let ack = publish_h(
                &js,
                &format!("f.{}", i % 3),
                &[("Nats-Msg-Id", &format!("id{i}"))],
                &format!("m{i}"),
            )
            .await
            .expect("publish");
            assert_eq!(ack.sequence, i);
        }
        let c = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some("c".into()),
                ..Default::default()
            })
            .await
            .expect("consumer");
        for m in fetch(&c, 5).await {
            if let Err(e) = m.double_ack().await {
                panic!("ack: {e}");
            }
        }
        drop((c, stream, js));
        server.signal("TERM");
        assert!(server.wait_exit().is_some(), "clean exit after SIGTERM");
    }
    let server = start(&dir);
    let js = jetstream::new(connect(&server).await);
    let mut stream = js.get_stream("F").await.expect("stream after restart");
    let st = stream.info().await.expect("info").state.clone();
    assert_eq!(
        (st.messages, st.first_sequence, st.last_sequence),
        (20, 1, 20)
    );
    // The de-duplication window survived.
    let dupe = publish_h(&js, "f.1", &[("Nats-Msg-Id", "id3")], "again")
        .await
        .expect("dupe");
    assert!(dupe.duplicate);
    assert_eq!(dupe.sequence, 3);
    // New messages continue the sequence.
    let ack = publish_h(&js, "f.9", &[], "new").await.expect("publish");
    assert_eq!(ack.sequence, 21);
    // The consumer continues after what was acked.
    let c: consumer::PullConsumer = stream
        .get_consumer("c")
        .await
        .expect("consumer after restart");
    let msgs = fetch(&c, 100).await;
    assert_eq!(msgs.len(), 16);
    assert_eq!(msgs[0].payload.as_ref(), b"m6");
    let m = stream.get_raw_message(7).await.expect("message 7");
    assert_eq!(m.payload.as_ref(), b"m7");
}

#[tokio::test]
async fn acked_messages_survive_sigkill() {
    let dir = StoreDir::new("kill");
    let acked;
    {
        let server = start(&dir);
        let js = jetstream::new(connect(&server).await);
        js.create_stream(file_stream("K", &["k.>"]))
            .await
            .expect("create");
        // 256 publishes in flight, then every ack awaited.
        let mut futures = Vec::new();
        for i in 0..500u32 {
            futures.push(
                within(
                    "publish",
                    js.publish(format!("k.{}", i % 7), i.to_string().into()),
                )
                .await
                .expect("publish"),
            );
        }
        let mut n = 0;
        for f in futures {
            within("puback", f.into_future()).await.expect("puback");
            n += 1;
        }
        acked = n;
        server.signal("KILL");
    }
    let server = start(&dir);
    let js = jetstream::new(connect(&server).await);
    let mut stream = js.get_stream("K").await.expect("stream after kill");
    let st = stream.info().await.expect("info").state.clone();
    assert_eq!(st.messages, acked, "every acknowledged message is kept");
    for seq in [1, 250, 500] {
        let m = stream.get_raw_message(seq).await.expect("message");
        assert_eq!(m.payload.as_ref(), (seq - 1).to_string().as_bytes());
    }
    let ack = publish_h(&js, "k.x", &[], "after").await.expect("publish");
    // After a crash the store continues above the high-water mark it
    // had reserved: a sequence a consumer may have seen before the crash
    // is never given to another message.
    assert!(
        ack.sequence > 500,
        "sequences never repeat: {}",
        ack.sequence
    );
}

/// Every `*.seg` file under `dir`.
fn segment_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(segment_files(&p));
        } else if p.extension().is_some_and(|x| x == "seg") {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn damaged_record_is_reported_and_never_returned() {
    let dir = StoreDir::new("damage");
    {
        let mut server = start(&dir);
        let js = jetstream::new(connect(&server).await);
        js.create_stream(file_stream("DMG", &["dmg.>"]))
            .await
            .expect("create");
        for i in 0..10 {
            // Payloads easy to find in the file.
            publish_h(
                &js,
                "dmg.x",
                &[],
                &format!("payload-{i}-{}", "z".repeat(40)),
            )
            .await
            .expect("publish");
        }
        drop(js);
        server.signal("TERM");
        assert!(server.wait_exit().is_some());
    }
    let segs = segment_files(&dir.0);
    assert!(!segs.is_empty(), "segment files under the store dir");
    let mut flipped = false;
    for seg in &segs {
        let mut bytes = std::fs::read(seg).expect("read segment");
        if let Some(at) = bytes.windows(9).position(|w| w == b"payload-4") {
            bytes[at + 3] ^= 0x01; // one bit inside message 5's payload
            std::fs::write(seg, &bytes).expect("write segment");
            flipped = true;
        }
    }
    assert!(flipped, "found message 5 on disk");
    let server = start(&dir);
    let js = jetstream::new(connect(&server).await);
    let mut stream = js
        .get_stream("DMG")
        .await
        .expect("the stream is still there");
    let info = stream.info().await.expect("info").clone();
    assert_eq!(info.state.messages, 9, "only the damaged message is gone");
    assert!(stream.get_raw_message(5).await.is_err(), "never returned");
    for seq in [4, 6, 10] {
        let m = stream
            .get_raw_message(seq)
            .await
            .expect("intact neighbours");
        assert!(
            m.payload
                .starts_with(format!("payload-{}", seq - 1).as_bytes())
        );
    }
    // The loss is reported in the raw STREAM.INFO state.
    let client = connect(&server).await;
    let reply = within(
        "stream info",
        client.request("$JS.API.STREAM.INFO.DMG", "".into()),
    )
    .await
    .expect("info");
    let v: serde_json::Value = serde_json::from_slice(&reply.payload).expect("json");
    assert_eq!(v["state"]["lost"]["msgs"], serde_json::json!([5]), "{v}");
    assert!(
        server
            .log_lines()
            .iter()
            .any(|l| l.contains("DMG") && l.contains("damaged")),
        "the damage is logged"
    );
}

#[tokio::test]
async fn push_consumer_with_queue_group_flow_control_and_heartbeats() {
    let dir = StoreDir::new("push");
    let server = start(&dir);
    let client = connect(&server).await;
    let js = jetstream::new(client.clone());
    let stream = js
        .create_stream(memory_stream("PU", &["pu.>"]))
        .await
        .expect("create");
    for i in 0..50 {
        publish_h(&js, "pu.x", &[], &format!("{i}"))
            .await
            .expect("publish");
    }
    let consumer: consumer::PushConsumer = stream
        .create_consumer(consumer::push::Config {
            durable_name: Some("pusher".into()),
            deliver_subject: "deliver.pu".into(),
            deliver_group: Some("grp".into()),
            flow_control: true,
            idle_heartbeat: Duration::from_millis(200),
            ..Default::default()
        })
        .await
        .expect("push consumer");
    // Two members of the group: each message reaches exactly one.
    let mut a = client
        .queue_subscribe("deliver.pu", "grp".into())
        .await
        .expect("sub a");
    let mut b = client
        .queue_subscribe("deliver.pu", "grp".into())
        .await
        .expect("sub b");
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < 50 && tokio::time::Instant::now() < deadline {
        let m = tokio::select! {
            m = a.next() => m,
            m = b.next() => m,
            _ = tokio::time::sleep_until(deadline) => None,
        };
        let Some(m) = m else { break };
        if m.status.is_some() {
            continue; // heartbeats and flow-control requests
        }
        seen.push(String::from_utf8(m.payload.to_vec()).expect("utf-8"));
        if let Some(reply) = m.reply {
            client.publish(reply, "".into()).await.expect("ack");
        }
    }
    let mut sorted: Vec<u32> = seen.iter().map(|s| s.parse().expect("number")).collect();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..50).collect::<Vec<u32>>(),
        "each message exactly once"
    );
    drop(consumer);

    // The async-nats push consumer API, with heartbeats: new messages arrive.
    let c: consumer::PushConsumer = stream
        .create_consumer(consumer::push::Config {
            durable_name: Some("single".into()),
            deliver_subject: "deliver.single".into(),
            deliver_policy: consumer::DeliverPolicy::New,
            flow_control: true,
            idle_heartbeat: Duration::from_millis(200),
            ..Default::default()
        })
        .await
        .expect("push consumer");
    let mut messages = c.messages().await.expect("messages");
    publish_h(&js, "pu.y", &[], "fresh").await.expect("publish");
    let m = within("push delivery", messages.next())
        .await
        .expect("a message")
        .expect("no error");
    assert_eq!(m.payload.as_ref(), b"fresh");
    m.ack().await.expect("ack");
}

#[tokio::test]
async fn push_consumer_waits_for_interest() {
    let dir = StoreDir::new("interest");
    let server = start(&dir);
    let client = connect(&server).await;
    let js = jetstream::new(client.clone());
    let stream = js
        .create_stream(memory_stream("IN", &["in.>"]))
        .await
        .expect("create");
    stream
        .create_consumer(consumer::push::Config {
            durable_name: Some("late".into()),
            deliver_subject: "deliver.late".into(),
            ack_policy: consumer::AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("push consumer");
    for i in 0..3 {
        publish_h(&js, "in.x", &[], &i.to_string())
            .await
            .expect("publish");
    }
    // A wildcard subscription does not count as interest.
    let mut wild = client.subscribe("deliver.*").await.expect("wildcard");
    nats::sync(&client).await;
    nats::assert_quiet(&mut wild).await;
    // The exact subject does: everything stored so far arrives.
    let mut exact = client.subscribe("deliver.late").await.expect("exact");
    for i in 0..3 {
        let m = within("delivery", exact.next()).await.expect("message");
        assert_eq!(m.payload.as_ref(), i.to_string().as_bytes());
    }
}

#[tokio::test]
async fn ordered_consumer_reads_the_stream_in_order() {
    let dir = StoreDir::new("ordered");
    let server = start(&dir);
    let js = jetstream::new(connect(&server).await);
    let stream = js
        .create_stream(file_stream("ORD", &["ord.>"]))
        .await
        .expect("create");
    for i in 0..300 {
        publish_h(&js, &format!("ord.{}", i % 5), &[], &i.to_string())
            .await
            .expect("publish");
    }
    let c = stream
        .create_consumer(consumer::push::OrderedConfig {
            deliver_subject: "ordered.inbox".into(),
            ..Default::default()
        })
        .await
        .expect("ordered consumer");
    let mut messages = c.messages().await.expect("messages");
    for i in 0..300 {
        let m = within("ordered delivery", messages.next())
            .await
            .expect("a message")
            .expect("no error");
        assert_eq!(m.payload.as_ref(), i.to_string().as_bytes());
    }
}

#[tokio::test]
async fn key_value_put_get_update_delete_watch_and_history() {
    use async_nats::jetstream::kv;
    let dir = StoreDir::new("kv");
    let server = start(&dir);
    let js = jetstream::new(connect(&server).await);
    let store = js
        .create_key_value(kv::Config {
            bucket: "cfg".into(),
            history: 3,
            ..Default::default()
        })
        .await
        .expect("create bucket");
    let r1 = store.put("device.1", "on".into()).await.expect("put");
    assert_eq!(r1, 1);
    assert_eq!(
        store.get("device.1").await.expect("get").as_deref(),
        Some(&b"on"[..])
    );
    let r2 = store
        .update("device.1", "off".into(), r1)
        .await
        .expect("update at revision");
    assert!(
        store.update("device.1", "x".into(), r1).await.is_err(),
        "stale revision"
    );
    assert!(
        store.create("device.1", "x".into()).await.is_err(),
        "exists"
    );
    store
        .create("device.2", "new".into())
        .await
        .expect("create");
    let entry = store.entry("device.1").await.expect("entry").expect("some");
    assert_eq!((entry.revision, entry.value.as_ref()), (r2, &b"off"[..]));
    let mut keys: Vec<String> = store
        .keys()
        .await
        .expect("keys")
        .map(|k| k.expect("key"))
        .collect()
        .await;
    keys.sort();
    assert_eq!(keys, vec!["device.1", "device.2"]);
    let history: Vec<kv::Entry> = store
        .history("device.1")
        .await
        .expect("history")
        .map(|e| e.expect("entry"))
        .collect()
        .await;
    assert_eq!(history.len(), 2);
    let mut watch = store.watch("device.*").await.expect("watch");
    store.put("device.3", "hello".into()).await.expect("put");
    let e = within("watch", watch.next())
        .await
        .expect("update")
        .expect("entry");
    assert_eq!(
        (e.key.as_str(), e.value.as_ref()),
        ("device.3", &b"hello"[..])
    );
    store.delete("device.2").await.expect("delete");
    assert_eq!(store.get("device.2").await.expect("get"), None);
    store.purge("device.1").await.expect("purge");
    assert_eq!(store.get("device.1").await.expect("get"), None);
}

#[tokio::test]
async fn flow_control_pauses_until_answered() {
    let dir = StoreDir::new("flow");
    let server = start(&dir);
    let client = connect(&server).await;
    let js = jetstream::new(client.clone());
    let stream = js
        .create_stream(file_stream("FLOW", &["flow.>"]))
        .await
        .expect("create");
    let big = "b".repeat(64 * 1024);
    for _ in 0..64 {
        publish_h(&js, "flow.x", &[], &big).await.expect("publish");
    }
    // Raw subscriber: count flow-control requests and answer them.
    let consumer: consumer::PushConsumer = stream
        .create_consumer(consumer::push::Config {
            durable_name: Some("fc".into()),
            deliver_subject: "deliver.fc".into(),
            ack_policy: consumer::AckPolicy::None,
            flow_control: true,
            idle_heartbeat: Duration::from_secs(1),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut sub = client.subscribe("deliver.fc").await.expect("sub");
    let mut data = 0;
    let mut fc_requests = 0;
    while data < 64 {
        let m = within("delivery", sub.next()).await.expect("message");
        match m.status {
            Some(s) if s.as_u16() == 100 => {
                let is_fc = m
                    .description
                    .as_deref()
                    .is_some_and(|d| d.contains("FlowControl"));
                if is_fc {
                    fc_requests += 1;
                    // Delivery is paused until this is answered.
                    let reply = m.reply.expect("flow control reply subject");
                    client.publish(reply, "".into()).await.expect("answer");
                }
            }
            _ => {
                assert_eq!(m.payload.len(), big.len());
                data += 1;
            }
        }
    }
    assert!(
        fc_requests >= 3,
        "{fc_requests} flow-control requests for 4 MiB"
    );
    drop(consumer);
}
