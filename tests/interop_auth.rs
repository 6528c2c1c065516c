//! Interop with the official Rust client, `async-nats`, for configured
//! users: user/password, token (plain and bcrypt) and nkey logins, and a
//! permission violation arriving as the client's server-error event while
//! the connection stays usable.
//!
//! Every await is bounded by [`within`], so a misbehaving server makes a
//! test fail, never hang.

mod common;

use std::future::Future;
use std::time::Duration;

use async_nats::{
    Client, ConnectErrorKind, ConnectOptions, Event, Message, RequestErrorKind, ServerError,
    Subscriber,
};
use common::{TempConf, TestServer};
use futures::StreamExt;

/// Longest any single await may take.
const T: Duration = Duration::from_secs(10);

async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(T, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {T:?}: {what}"),
    }
}

fn opts() -> ConnectOptions {
    ConnectOptions::new().connection_timeout(Duration::from_secs(5))
}

async fn connect_with(server: &TestServer, options: ConnectOptions) -> Client {
    within("connect", options.connect(server.addr.to_string()))
        .await
        .unwrap_or_else(|e| panic!("connect to natrium at {} failed: {e}", server.addr))
}

async fn assert_rejected(server: &TestServer, options: ConnectOptions, what: &str) {
    match within(what, options.connect(server.addr.to_string())).await {
        Ok(_) => panic!("{what}: connect unexpectedly succeeded"),
        Err(e) => assert_eq!(
            e.kind(),
            ConnectErrorKind::AuthorizationViolation,
            "{what}: {e}"
        ),
    }
}

/// Once this returns, the server has handled everything `client` sent
/// before, and `client` has read everything the server sent before the
/// answer (a request nobody listens to, answered by no-responders).
async fn sync(client: &Client) {
    let subject = format!("sync.barrier.{}", client.new_inbox());
    match within("sync barrier", client.request(subject, "".into())).await {
        Err(e) if e.kind() == RequestErrorKind::NoResponders => {}
        other => panic!("sync barrier: expected no-responders, got {other:?}"),
    }
}

async fn next(sub: &mut Subscriber) -> Message {
    within("next message", sub.next())
        .await
        .expect("subscription ended unexpectedly")
}

/// Subscribes, publishes to the subscription and gets the message back.
async fn assert_works(client: &Client, subject: &str) {
    let mut sub = within("subscribe", client.subscribe(subject.to_string()))
        .await
        .unwrap();
    within("publish", client.publish(subject.to_string(), "ok".into()))
        .await
        .unwrap();
    sync(client).await;
    assert_eq!(next(&mut sub).await.payload.as_ref(), b"ok");
}

fn start(tag: &str, text: &str) -> (TestServer, TempConf) {
    let conf = TempConf::new(tag, text);
    let server = TestServer::start(&["-c", conf.arg()]);
    (server, conf)
}

#[tokio::test]
async fn user_and_password_from_the_config_file() {
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let (server, _conf) = start(
        "interop-users",
        &format!(
            "authorization {{ users: [ {{user: plain, password: pw}}, {{user: hashed, password: \"{hash}\"}} ] }}\n"
        ),
    );
    let plain = connect_with(
        &server,
        opts().user_and_password("plain".into(), "pw".into()),
    )
    .await;
    assert!(plain.server_info().auth_required);
    assert_works(&plain, "u.plain").await;
    let hashed = connect_with(
        &server,
        opts().user_and_password("hashed".into(), "s3cret".into()),
    )
    .await;
    assert_works(&hashed, "u.hashed").await;
    assert_rejected(
        &server,
        opts().user_and_password("plain".into(), "nope".into()),
        "wrong password",
    )
    .await;
    assert_rejected(
        &server,
        opts().user_and_password("hashed".into(), hash.clone()),
        "the hash as password",
    )
    .await;
    assert_rejected(&server, opts(), "no credentials").await;
}

#[tokio::test]
async fn token_from_the_config_file() {
    let (server, _conf) = start("interop-token", "authorization { token: \"t0k3n\" }\n");
    let client = connect_with(&server, opts().token("t0k3n".into())).await;
    assert_works(&client, "t.x").await;
    assert_rejected(&server, opts().token("t0k3".into()), "wrong token").await;
}

#[tokio::test]
async fn nkey_login_signs_the_nonce() {
    let kp = nkeys::KeyPair::new_user();
    let seed = kp.seed().unwrap();
    let (server, _conf) = start(
        "interop-nkey",
        &format!(
            "authorization {{ users: [ {{ nkey: {} }} ] }}\n",
            kp.public_key()
        ),
    );
    let client = connect_with(
        &server,
        ConnectOptions::with_nkey(seed).connection_timeout(Duration::from_secs(5)),
    )
    .await;
    assert!(client.server_info().nonce.len() == 15, "INFO nonce");
    assert_works(&client, "nk.x").await;
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    assert_rejected(
        &server,
        ConnectOptions::with_nkey(stranger).connection_timeout(Duration::from_secs(5)),
        "unknown nkey",
    )
    .await;
}

/// Waits for the next server error the client reports.
async fn next_server_error(events: &mut tokio::sync::mpsc::UnboundedReceiver<Event>) -> String {
    loop {
        match within("server error event", events.recv()).await {
            Some(Event::ServerError(ServerError::Other(text))) => return text,
            Some(Event::ServerError(other)) => panic!("unexpected server error {other:?}"),
            Some(_) => continue,
            None => panic!("event channel closed"),
        }
    }
}

#[tokio::test]
async fn permission_violations_are_client_errors_and_the_connection_survives() {
    let (server, _conf) = start(
        "interop-perms",
        r#"
authorization {
  users = [
    { user: limited, password: p,
      permissions: {
        publish: { allow: ["ok.>", "sync.>"], deny: "ok.secret" }
        subscribe: { allow: [">"], deny: ["forbidden.>"] }
      } }
    { user: service, password: p,
      permissions: { subscribe: ["svc.>", "_INBOX.>"], publish: "sync.>", allow_responses: true } }
    { user: anyone, password: p }
  ]
}
"#,
    );
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let client = connect_with(
        &server,
        opts()
            .user_and_password("limited".into(), "p".into())
            .event_callback(move |e| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(e);
                }
            }),
    )
    .await;
    let mut watch = within("subscribe", client.subscribe("ok.>")).await.unwrap();

    within("publish", client.publish("ok.secret", "x".into()))
        .await
        .unwrap();
    assert_eq!(
        next_server_error(&mut events).await,
        "Permissions Violation for Publish to \"ok.secret\""
    );
    let _forbidden = within("subscribe", client.subscribe("forbidden.x"))
        .await
        .unwrap();
    assert_eq!(
        next_server_error(&mut events).await,
        "Permissions Violation for Subscription to \"forbidden.x\""
    );

    // Still connected and working; the denied message was not delivered.
    within("publish", client.publish("ok.fine", "y".into()))
        .await
        .unwrap();
    sync(&client).await;
    let m = next(&mut watch).await;
    assert_eq!(m.subject.as_str(), "ok.fine");
    assert_eq!(
        client.connection_state(),
        async_nats::connection::State::Connected
    );

    // allow_responses: a service answers a request without publish rights to _INBOX.>.
    let service = connect_with(
        &server,
        opts().user_and_password("service".into(), "p".into()),
    )
    .await;
    let mut requests = within("subscribe", service.subscribe("svc.echo"))
        .await
        .unwrap();
    sync(&service).await;
    let requester = connect_with(
        &server,
        opts().user_and_password("anyone".into(), "p".into()),
    )
    .await;
    let pending = tokio::spawn(async move { requester.request("svc.echo", "hi".into()).await });
    let req = next(&mut requests).await;
    let reply = req.reply.clone().expect("request has a reply subject");
    within("reply", service.publish(reply, req.payload.clone()))
        .await
        .unwrap();
    let answer = within("answer", pending).await.unwrap().expect("answer");
    assert_eq!(answer.payload.as_ref(), b"hi");
}
