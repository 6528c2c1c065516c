//! Helpers for the `async-nats` interop suites (tests/interop.rs and
//! tests/interop_auth.rs). Kept apart from `common/mod.rs` so that the
//! raw-socket suites do not compile tokio code; include it with
//! `#[path = "common/nats.rs"] mod nats;` next to `mod common;`.
//!
//! Every await is bounded by [`within`], so a misbehaving server makes a
//! test fail, never hang.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use async_nats::{Client, ConnectErrorKind, ConnectOptions, Message, RequestErrorKind, Subscriber};
use futures::StreamExt;

use crate::common::TestServer;

/// Longest any single await may take.
pub const T: Duration = Duration::from_secs(10);

/// Awaits `fut`, failing the test if it takes longer than [`T`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(T, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {T:?}: {what}"),
    }
}

/// Connect options with a bounded connection timeout (no retry on the
/// initial connect, which is the async-nats default).
pub fn opts() -> ConnectOptions {
    ConnectOptions::new().connection_timeout(Duration::from_secs(5))
}

/// [`opts`] that log in as `user` with `password`.
pub fn user_opts(user: &str, password: &str) -> ConnectOptions {
    opts().user_and_password(user.to_string(), password.to_string())
}

/// Connects with `options` to `server`; panics on failure.
pub async fn connect_with(server: &TestServer, options: ConnectOptions) -> Client {
    within("connect", options.connect(server.addr.to_string()))
        .await
        .unwrap_or_else(|e| panic!("connect to natrium at {} failed: {e}", server.addr))
}

/// Connects without credentials.
pub async fn connect(server: &TestServer) -> Client {
    connect_with(server, opts()).await
}

/// Asserts that connecting with `options` fails with the
/// authorization-violation kind (not a hang, not a success).
pub async fn assert_rejected(server: &TestServer, options: ConnectOptions, what: &str) {
    match within(what, options.connect(server.addr.to_string())).await {
        Ok(_) => panic!("{what}: connect unexpectedly succeeded"),
        Err(e) => assert_eq!(
            e.kind(),
            ConnectErrorKind::AuthorizationViolation,
            "{what}: {e}"
        ),
    }
}

/// A round trip through the server: once it returns, the server has
/// processed everything this client sent before (SUB, UNSUB, PUB), and this
/// client has read everything the server sent it before the answer.
///
/// `Client::flush` is not enough for that: in async-nats it only flushes the
/// socket, it does not wait for a PONG. So this sends a request nobody
/// listens to and waits for the server's no-responders status, which the
/// server produces only after handling all earlier operations.
pub async fn sync(client: &Client) {
    let subject = format!("sync.barrier.{}", client.new_inbox());
    match within("sync barrier", client.request(subject, "".into())).await {
        Err(e) if e.kind() == RequestErrorKind::NoResponders => {}
        other => panic!("sync barrier: expected no-responders, got {other:?}"),
    }
}

/// Subscribes `client` to `subject` (bounded; no barrier, see [`sync`]).
pub async fn subscribe(client: &Client, subject: &str) -> Subscriber {
    within("subscribe", client.subscribe(subject.to_string()))
        .await
        .unwrap()
}

/// Publishes `payload` to `subject` (bounded; no barrier, see [`sync`]).
pub async fn publish(client: &Client, subject: &str, payload: impl Into<Vec<u8>>) {
    within(
        "publish",
        client.publish(subject.to_string(), payload.into().into()),
    )
    .await
    .unwrap();
}

/// Publishes `0..n` as decimal text to `subject`, then waits with [`sync`]
/// until the server has handled them all.
pub async fn publish_numbered(client: &Client, subject: &str, n: u32) {
    for i in 0..n {
        publish(client, subject, i.to_string()).await;
    }
    sync(client).await;
}

/// Asserts the next `n` messages of `sub` carry `0..n` as decimal text, in order.
pub async fn expect_numbered(sub: &mut Subscriber, n: u32) {
    for i in 0..n {
        let m = next(sub).await;
        assert_eq!(m.payload.as_ref(), i.to_string().as_bytes());
    }
}

/// The next message of `sub`; panics on timeout or end of stream.
pub async fn next(sub: &mut Subscriber) -> Message {
    within("next message", sub.next())
        .await
        .expect("subscription ended unexpectedly")
}

/// Asserts nothing more arrives on `sub` within a short grace period.
pub async fn assert_quiet(sub: &mut Subscriber) {
    if let Ok(m) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        panic!("unexpected extra delivery: {m:?}");
    }
}

/// Subscribes `client` to `subject`, publishes to it and gets the message back.
pub async fn assert_works(client: &Client, subject: &str) {
    let mut sub = subscribe(client, subject).await;
    publish(client, subject, "ok").await;
    sync(client).await;
    assert_eq!(next(&mut sub).await.payload.as_ref(), b"ok");
}
