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
