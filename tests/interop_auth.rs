//! Interop with the official Rust client, `async-nats`, for configured
//! users: user/password, token (plain and bcrypt) and nkey logins, and a
//! permission violation arriving as the client's server-error event while
//! the connection stays usable.
//!
//! Every await is bounded by [`within`], so a misbehaving server makes a
//! test fail, never hang.

mod common;
#[path = "common/nats.rs"]
mod nats;

use std::time::Duration;

use async_nats::{ConnectOptions, Event, ServerError};
use common::{TempConf, TestServer};
use nats::{
    assert_rejected, assert_works, connect_with, next, opts, publish, subscribe, sync, user_opts,
    within,
};

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
    let plain = connect_with(&server, user_opts("plain", "pw")).await;
    assert!(plain.server_info().auth_required);
    assert_works(&plain, "u.plain").await;
    let hashed = connect_with(&server, user_opts("hashed", "s3cret")).await;
    assert_works(&hashed, "u.hashed").await;
    assert_rejected(&server, user_opts("plain", "nope"), "wrong password").await;
    assert_rejected(&server, user_opts("hashed", &hash), "the hash as password").await;
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
        user_opts("limited", "p").event_callback(move |e| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(e);
            }
        }),
    )
    .await;
    let mut watch = subscribe(&client, "ok.>").await;

    publish(&client, "ok.secret", "x").await;
    assert_eq!(
        next_server_error(&mut events).await,
        "Permissions Violation for Publish to \"ok.secret\""
    );
    let _forbidden = subscribe(&client, "forbidden.x").await;
    assert_eq!(
        next_server_error(&mut events).await,
        "Permissions Violation for Subscription to \"forbidden.x\""
    );

    // Still connected and working; the denied message was not delivered.
    publish(&client, "ok.fine", "y").await;
    sync(&client).await;
    let m = next(&mut watch).await;
    assert_eq!(m.subject.as_str(), "ok.fine");
    assert_eq!(
        client.connection_state(),
        async_nats::connection::State::Connected
    );

    // allow_responses: a service answers a request without publish rights to _INBOX.>.
    let service = connect_with(&server, user_opts("service", "p")).await;
    let mut requests = subscribe(&service, "svc.echo").await;
    sync(&service).await;
    let requester = connect_with(&server, user_opts("anyone", "p")).await;
    let pending = tokio::spawn(async move { requester.request("svc.echo", "hi".into()).await });
    let req = next(&mut requests).await;
    let reply = req.reply.clone().expect("request has a reply subject");
    within("reply", service.publish(reply, req.payload.clone()))
        .await
        .unwrap();
    let answer = within("answer", pending).await.unwrap().expect("answer");
    assert_eq!(answer.payload.as_ref(), b"hi");
}
