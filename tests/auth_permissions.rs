//! Users from the configuration file (plain, bcrypt, nkey, no_auth_user),
//! per-user permissions in every form, allow_responses, default
//! permissions, and reloading all of it on SIGHUP — over real TCP against
//! the `natrium` binary.

mod common;
use base64::Engine;
use common::{Conn, TIMEOUT, TempConf, TestServer, run_natrium};
use std::time::{Duration, Instant};

const QUIET: &str = r#""verbose":false,"pedantic":false"#;

/// A connection logged in as `user`/`pass`.
fn login(server: &TestServer, user: &str, pass: &str) -> Conn {
    server.client_with(&format!(r#"{QUIET},"user":"{user}","pass":"{pass}""#))
}

/// Sends `input` on a fresh connection and expects the auth -ERR then EOF.
fn expect_refused(server: &TestServer, connect_fields: &str) {
    let mut c = server.raw();
    c.send(format!("CONNECT {{{connect_fields}}}\r\nPING\r\n").as_bytes());
    c.expect_err_and_eof("Authorization Violation");
}

/// A connection proves itself with a publish to its own subscription.
fn assert_usable(c: &mut Conn, subject: &str) {
    c.send(format!("SUB {subject} 99\r\nPUB {subject} 2\r\nok\r\n").as_bytes());
    let msgs = c.msgs_until_pong();
    assert_eq!(msgs.len(), 1, "{subject}");
    assert_eq!(msgs[0].payload, b"ok");
    c.send(b"UNSUB 99\r\n");
}

fn publish_violation(subject: &str) -> String {
    format!("-ERR 'Permissions Violation for Publish to \"{subject}\"'")
}

fn subscribe_violation(subject: &str) -> String {
    format!("-ERR 'Permissions Violation for Subscription to \"{subject}\"'")
}

/// How many log lines contain `needle`.
fn log_count(server: &TestServer, needle: &str) -> usize {
    server
        .log_lines()
        .iter()
        .filter(|l| l.contains(needle))
        .count()
}

/// Rewrites the configuration file, sends SIGHUP and waits for the server
/// to log the outcome ("Reloaded server configuration" or "Reload failed").
fn reload(server: &TestServer, conf: &TempConf, text: &str) -> String {
    let count = |s: &TestServer| {
        log_count(s, "Reloaded server configuration") + log_count(s, "Reload failed")
    };
    let before = count(server);
    std::fs::write(&conf.path, text).expect("rewrite config");
    server.signal("HUP");
    let deadline = Instant::now() + TIMEOUT;
    while count(server) == before {
        assert!(
            Instant::now() < deadline,
            "no reload logged: {:?}",
            server.log_lines()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    server
        .log_lines()
        .into_iter()
        .rev()
        .find(|l| l.contains("Reloaded server configuration") || l.contains("Reload failed"))
        .unwrap_or_default()
}

fn start(tag: &str, text: &str) -> (TestServer, TempConf) {
    let conf = TempConf::new(tag, text);
    let server = TestServer::start(&["-c", conf.arg()]);
    (server, conf)
}

// ----- authentication kinds -----

#[test]
fn users_list_accepts_and_refuses() {
    let (server, _conf) = start(
        "users",
        "authorization {\n  users = [\n    {user: alice, password: wonderland}\n    {user: bob, pass: \"b0b\"}\n  ]\n}\n",
    );
    let (_c, info) = server.raw_with_info();
    assert_eq!(info["auth_required"], true);
    assert!(info.get("nonce").is_none(), "no nonce without nkey users");
    assert_usable(&mut login(&server, "alice", "wonderland"), "a");
    assert_usable(&mut login(&server, "bob", "b0b"), "b");
    expect_refused(&server, r#""user":"alice","pass":"b0b""#);
    expect_refused(&server, r#""user":"carol","pass":"x""#);
    expect_refused(&server, r#""user":"alice""#);
    expect_refused(&server, "");
}

#[test]
fn token_accepts_and_refuses() {
    let (server, _conf) = start("token", "authorization { token: \"s3cr3t\" }\n");
    assert_usable(
        &mut server.client_with(&format!(r#"{QUIET},"auth_token":"s3cr3t""#)),
        "t",
    );
    expect_refused(&server, r#""auth_token":"s3cr3""#);
    expect_refused(&server, r#""user":"s3cr3t","pass":"s3cr3t""#);
}

#[test]
fn bcrypt_password_and_token() {
    let hash = bcrypt::hash("hunter2", 4).unwrap();
    assert!(hash.starts_with("$2b$04$"));
    // nats-server's tooling writes $2a$: the same hash under that prefix.
    let hash_a = hash.replacen("$2b$", "$2a$", 1);
    let (server, _conf) = start(
        "bcrypt",
        &format!("authorization {{ users: [ {{user: u, password: \"{hash_a}\"}} ] }}\n"),
    );
    assert_usable(&mut login(&server, "u", "hunter2"), "bc");
    expect_refused(&server, r#""user":"u","pass":"hunter3""#);
    // The hash is not itself a password.
    expect_refused(&server, &format!(r#""user":"u","pass":"{hash_a}""#));

    let (server, _conf) = start(
        "bcrypt-token",
        &format!("authorization {{ token: \"{hash}\" }}\n"),
    );
    assert_usable(
        &mut server.client_with(&format!(r#"{QUIET},"auth_token":"hunter2""#)),
        "bt",
    );
    expect_refused(&server, r#""auth_token":"hunter""#);
}

fn sign(kp: &nkeys::KeyPair, nonce: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(kp.sign(nonce.as_bytes()).unwrap())
}

#[test]
fn nkey_user_signs_the_nonce() {
    let kp = nkeys::KeyPair::new_user();
    let public = kp.public_key();
    let (server, _conf) = start(
        "nkey",
        &format!(
            "authorization {{ users: [ {{ nkey: {public} }}, {{ user: a, password: b }} ] }}\n"
        ),
    );
    let (mut c, info) = server.raw_with_info();
    assert_eq!(info["auth_required"], true);
    let nonce = info["nonce"].as_str().expect("nonce in INFO").to_string();
    assert_eq!(nonce.len(), 15, "{nonce}");
    assert!(
        nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    c.send(
        format!(
            "CONNECT {{{QUIET},\"nkey\":\"{public}\",\"sig\":\"{}\"}}\r\nPING\r\n",
            sign(&kp, &nonce)
        )
        .as_bytes(),
    );
    c.expect("PONG");
    assert_usable(&mut c, "nk");

    // Standard base64 (with padding) is accepted too.
    let (mut c, info) = server.raw_with_info();
    let nonce2 = info["nonce"].as_str().unwrap().to_string();
    assert_ne!(nonce, nonce2, "a fresh nonce per connection");
    let std_sig =
        base64::engine::general_purpose::STANDARD.encode(kp.sign(nonce2.as_bytes()).unwrap());
    c.send(
        format!("CONNECT {{{QUIET},\"nkey\":\"{public}\",\"sig\":\"{std_sig}\"}}\r\nPING\r\n")
            .as_bytes(),
    );
    c.expect("PONG");

    // A signature of another connection's nonce, none at all, an unknown key.
    let (mut c, _) = server.raw_with_info();
    c.send(
        format!(
            "CONNECT {{\"nkey\":\"{public}\",\"sig\":\"{}\"}}\r\n",
            sign(&kp, &nonce)
        )
        .as_bytes(),
    );
    c.expect_err_and_eof("Authorization Violation");
    expect_refused(&server, &format!(r#""nkey":"{public}""#));
    let stranger = nkeys::KeyPair::new_user();
    let (mut c, info) = server.raw_with_info();
    let n = info["nonce"].as_str().unwrap();
    c.send(
        format!(
            "CONNECT {{\"nkey\":\"{}\",\"sig\":\"{}\"}}\r\n",
            stranger.public_key(),
            sign(&stranger, n)
        )
        .as_bytes(),
    );
    c.expect_err_and_eof("Authorization Violation");
    // Password users still work beside nkey users.
    assert_usable(&mut login(&server, "a", "b"), "pw");
}

#[test]
fn no_auth_user_logs_in_clients_without_credentials() {
    let (server, _conf) = start(
        "no-auth-user",
        "authorization { users: [ {user: guest, password: g, permissions: { publish: \"public.>\" }}, {user: admin, password: a} ] }\nno_auth_user: guest\n",
    );
    let (_c, info) = server.raw_with_info();
    assert!(info.get("auth_required").is_none(), "{info}");
    // No credentials: the guest, with its permissions.
    let mut c = server.client();
    c.send(b"PUB public.x 0\r\n\r\nPUB private 0\r\n\r\n");
    assert_eq!(c.sync(), vec![publish_violation("private")]);
    // Telnet style, without CONNECT at all.
    let mut t = server.raw();
    t.send(b"PUB private 0\r\n\r\n");
    t.expect(&publish_violation("private"));
    // Real credentials still decide.
    let mut admin = login(&server, "admin", "a");
    admin.send(b"PUB private 0\r\n\r\n");
    admin.expect_nothing();
    expect_refused(&server, r#""user":"admin","pass":"x""#);
}

// ----- permissions -----

#[test]
fn publish_permission_forms() {
    let (server, _conf) = start(
        "pub-forms",
        r#"
authorization {
  users = [
    { user: short, password: p, permissions: { publish: "foo.>" } }
    { user: list,  password: p, permissions: { publish: ["a", "b.*"] } }
    { user: map,   password: p, permissions: { publish: { allow: ["tel.>"], deny: ["tel.admin.*"] } } }
    { user: deny,  password: p, permissions: { publish: { deny: "secret.>" } } }
    { user: watcher, password: p }
  ]
}
"#,
    );
    let mut watcher = login(&server, "watcher", "p");
    watcher.send(b"SUB > 1\r\n");
    watcher.sync();
    let cases: &[(&str, &[&str], &[&str])] = &[
        ("short", &["foo.bar", "foo.a.b"], &["foo", "bar"]),
        ("list", &["a", "b.x"], &["b", "b.x.y", "c"]),
        ("map", &["tel.x", "tel.admin"], &["tel.admin.x", "other"]),
        ("deny", &["anything", "secret"], &["secret.x"]),
    ];
    for (user, allowed, denied) in cases {
        let mut c = login(&server, user, "p");
        for s in *allowed {
            c.send(format!("PUB {s} 1\r\nx\r\n").as_bytes());
        }
        for s in *denied {
            c.send(format!("PUB {s} 1\r\nx\r\n").as_bytes());
        }
        let errors = c.sync();
        let want: Vec<String> = denied.iter().map(|s| publish_violation(s)).collect();
        assert_eq!(errors, want, "{user}");
        // Only the allowed ones were delivered.
        let got: Vec<String> = watcher
            .msgs_until_pong()
            .into_iter()
            .map(|m| m.subject)
            .collect();
        assert_eq!(got, *allowed, "{user}");
        // The connection stays usable after a violation (cached decisions too).
        c.send(format!("PUB {} 1\r\nx\r\n", denied[0]).as_bytes());
        assert_eq!(c.sync(), vec![publish_violation(denied[0])], "{user}");
    }
}

#[test]
fn verbose_violation_has_no_ok() {
    let (server, _conf) = start(
        "verbose",
        "authorization { users: [ {user: u, password: p, permissions: { publish: \"ok\", subscribe: \"ok\" }} ] }\n",
    );
    let mut c = server.raw();
    c.send(b"CONNECT {\"user\":\"u\",\"pass\":\"p\"}\r\n");
    c.expect("+OK");
    c.send(b"PUB no 0\r\n\r\nSUB no 1\r\nPUB ok 0\r\n\r\nSUB ok 2\r\n");
    c.expect(&publish_violation("no"));
    c.expect(&subscribe_violation("no"));
    c.expect("+OK");
    c.expect("+OK");
}

#[test]
fn subscribe_permission_forms_and_wildcard_matching() {
    let (server, _conf) = start(
        "sub-forms",
        r#"
authorization {
  users = [
    { user: short, password: p, permissions: { subscribe: "foo.>" } }
    { user: list,  password: p, permissions: { subscribe: ["foo.bar", "baz.*"] } }
    { user: map,   password: p, permissions: { subscribe: { allow: ">", deny: ["admin.>"] } } }
  ]
}
"#,
    );
    let mut c = login(&server, "short", "p");
    // Allowing foo.> permits the narrower wildcard foo.*.
    c.send(b"SUB foo.* 1\r\nSUB foo.a.b 2\r\nSUB foo 3\r\nSUB > 4\r\n");
    assert_eq!(
        c.sync(),
        vec![subscribe_violation("foo"), subscribe_violation(">")]
    );
    let mut c = login(&server, "list", "p");
    // Allowing foo.bar does not permit foo.*.
    c.send(b"SUB foo.bar 1\r\nSUB foo.* 2\r\nSUB baz.q 3\r\nSUB baz.q.r 4\r\n");
    assert_eq!(
        c.sync(),
        vec![subscribe_violation("foo.*"), subscribe_violation("baz.q.r")]
    );
    // As in nats-server, an allowed `*` also matches the subscription's own
    // `>` token (its sublist takes `>` literally there): SUB baz.> passes.
    c.send(b"SUB baz.> 5\r\n");
    c.expect_nothing();
    let mut c = login(&server, "map", "p");
    c.send(b"SUB admin.x 1\r\nSUB admin.> 2\r\nSUB user.x 3\r\n");
    assert_eq!(
        c.sync(),
        vec![
            subscribe_violation("admin.x"),
            subscribe_violation("admin.>")
        ]
    );
    assert_usable(&mut c, "user.y");
}

#[test]
fn deny_wins_and_wildcards_are_filtered_at_delivery() {
    let (server, _conf) = start(
        "deny-wins",
        r#"
authorization {
  users = [
    { user: reader, password: p,
      permissions: { subscribe: { allow: ["foo.>"], deny: ["foo.secret"] },
                     publish: { allow: ["foo.>"], deny: ["foo.secret"] } } }
    { user: writer, password: p }
  ]
}
"#,
    );
    let mut r = login(&server, "reader", "p");
    r.send(b"SUB foo.secret 1\r\nPUB foo.secret 0\r\n\r\n");
    assert_eq!(
        r.sync(),
        vec![
            subscribe_violation("foo.secret"),
            publish_violation("foo.secret")
        ]
    );
    // The wildcard is allowed although a denied subject lies inside it.
    r.send(b"SUB foo.* 2\r\n");
    assert!(r.sync().is_empty());
    let mut w = login(&server, "writer", "p");
    w.send(b"PUB foo.secret 1\r\ns\r\nPUB foo.public 1\r\np\r\nPUB foo.secret 1\r\ns\r\n");
    w.sync();
    let got: Vec<String> = r.msgs_until_pong().into_iter().map(|m| m.subject).collect();
    assert_eq!(got, vec!["foo.public"]);
}

#[test]
fn queue_scoped_subscribe_rules() {
    let (server, _conf) = start(
        "queue-rules",
        r#"
authorization {
  users = [
    { user: worker, password: p,
      permissions: { subscribe: { allow: ["jobs.* workers", "events.>"], deny: ["events.* spies"] } } }
  ]
}
"#,
    );
    let mut c = login(&server, "worker", "p");
    c.send(b"SUB jobs.a workers 1\r\nSUB jobs.a others 2\r\nSUB jobs.a 3\r\n");
    c.send(b"SUB events.x 4\r\nSUB events.x spies 5\r\nSUB events.x crew 6\r\n");
    assert_eq!(
        c.sync(),
        vec![
            "-ERR 'Permissions Violation for Subscription to \"jobs.a\" using queue \"others\"'"
                .to_string(),
            subscribe_violation("jobs.a"),
            "-ERR 'Permissions Violation for Subscription to \"events.x\" using queue \"spies\"'"
                .to_string(),
        ]
    );
    // The allowed queue subscription receives.
    c.send(b"PUB jobs.a 1\r\nj\r\n");
    let msgs = c.msgs_until_pong();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].sid, "1");
}

#[test]
fn default_permissions_apply_to_users_without_their_own() {
    let (server, _conf) = start(
        "defaults",
        r#"
authorization {
  default_permissions: { publish: "public.>", subscribe: ["public.>", "_INBOX.>"] }
  users = [
    { user: plain, password: p }
    { user: admin, password: p, permissions: { publish: ">", subscribe: ">" } }
  ]
}
"#,
    );
    let mut c = login(&server, "plain", "p");
    c.send(b"PUB public.a 0\r\n\r\nPUB private 0\r\n\r\nSUB private 1\r\nSUB public.> 2\r\n");
    assert_eq!(
        c.sync(),
        vec![publish_violation("private"), subscribe_violation("private")]
    );
    let mut a = login(&server, "admin", "p");
    a.send(b"PUB private 0\r\n\r\nSUB private 1\r\n");
    a.expect_nothing();
}

#[test]
fn allow_responses_in_request_reply() {
    let (server, _conf) = start(
        "responses",
        r#"
authorization {
  users = [
    { user: service, password: p,
      permissions: { subscribe: "svc.>", allow_responses: true } }
    { user: multi, password: p,
      permissions: { subscribe: "svc.>", publish: "log.>", allow_responses: { max: 2, expires: "1m" } } }
    { user: requester, password: p }
  ]
}
"#,
    );
    let mut svc = login(&server, "service", "p");
    svc.send(b"SUB svc.echo 1\r\n");
    svc.sync();
    let mut req = login(&server, "requester", "p");
    req.send(b"SUB _INBOX.r1 1\r\nPUB svc.echo _INBOX.r1 4\r\nping\r\n");
    req.sync();
    let msgs = svc.msgs_until_pong();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].reply.as_deref(), Some("_INBOX.r1"));
    // The service may answer once, without any publish permission for _INBOX.>.
    svc.send(b"PUB _INBOX.r1 4\r\npong\r\n");
    assert!(svc.sync().is_empty());
    let replies = req.msgs_until_pong();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].payload, b"pong");
    // A second answer, a subject it never received, anything else: refused.
    svc.send(b"PUB _INBOX.r1 4\r\nmore\r\nPUB _INBOX.other 0\r\n\r\nPUB svc.echo 0\r\n\r\n");
    assert_eq!(
        svc.sync(),
        vec![
            publish_violation("_INBOX.r1"),
            publish_violation("_INBOX.other"),
            publish_violation("svc.echo"),
        ]
    );
    assert!(req.msgs_until_pong().is_empty());

    // max: 2, beside an ordinary publish permission.
    let mut multi = login(&server, "multi", "p");
    multi.send(b"SUB svc.> 1\r\n");
    multi.sync();
    req.send(b"SUB _INBOX.r2 2\r\nPUB svc.x _INBOX.r2 0\r\n\r\n");
    req.sync();
    assert_eq!(multi.msgs_until_pong().len(), 1);
    multi.send(
        b"PUB _INBOX.r2 0\r\n\r\nPUB _INBOX.r2 0\r\n\r\nPUB _INBOX.r2 0\r\n\r\nPUB log.x 0\r\n\r\n",
    );
    assert_eq!(multi.sync(), vec![publish_violation("_INBOX.r2")]);
    assert_eq!(req.msgs_until_pong().len(), 2);
}

// ----- reload -----

const RELOAD_BASE: &str = r#"
authorization {
  users = [
    { user: alice, password: a, permissions: { subscribe: "foo.>" } }
    { user: bob, password: b }
  ]
}
"#;

#[test]
fn reload_adds_a_user() {
    let (server, conf) = start("reload-add", RELOAD_BASE);
    expect_refused(&server, r#""user":"carol","pass":"c""#);
    let mut bob = login(&server, "bob", "b");
    let line = reload(
        &server,
        &conf,
        &RELOAD_BASE.replace(
            "{ user: bob, password: b }",
            "{ user: bob, password: b }\n    { user: carol, password: c }",
        ),
    );
    assert!(line.contains("Reloaded server configuration"), "{line}");
    assert_usable(&mut login(&server, "carol", "c"), "carol");
    // Existing connections are untouched.
    assert_usable(&mut bob, "bob");
}

#[test]
fn reload_removing_a_user_closes_its_connections() {
    let (server, conf) = start("reload-remove", RELOAD_BASE);
    let mut alice = login(&server, "alice", "a");
    let mut bob = login(&server, "bob", "b");
    let mut bob2 = login(&server, "bob", "b");
    reload(
        &server,
        &conf,
        &RELOAD_BASE.replace("{ user: bob, password: b }", ""),
    );
    for c in [&mut bob, &mut bob2] {
        c.expect_err_and_eof("Authorization Violation");
    }
    expect_refused(&server, r#""user":"bob","pass":"b""#);
    assert_usable(&mut alice, "foo.alive");
    // A changed password closes the connections that used the old one too.
    reload(
        &server,
        &conf,
        &RELOAD_BASE.replace("password: a", "password: a2"),
    );
    alice.expect_err_and_eof("Authorization Violation");
    assert_usable(&mut login(&server, "alice", "a2"), "foo.x");
}

#[test]
fn reload_tightening_permissions_removes_live_subscriptions() {
    let (server, conf) = start("reload-tighten", RELOAD_BASE);
    let mut alice = login(&server, "alice", "a");
    alice.send(b"SUB foo.bar 1\r\nSUB foo.baz 2\r\nSUB foo.* 3\r\n");
    assert!(alice.sync().is_empty());
    let mut bob = login(&server, "bob", "b");
    bob.send(b"PUB foo.bar 0\r\n\r\n");
    bob.sync();
    assert_eq!(alice.msgs_until_pong().len(), 2);

    let tighter = RELOAD_BASE.replace(
        "permissions: { subscribe: \"foo.>\" }",
        "permissions: { subscribe: { allow: \"foo.baz\", deny: \"foo.bar\" }, publish: \"foo.baz\" }",
    );
    reload(&server, &conf, &tighter);
    let mut errors = alice.sync();
    errors.sort();
    assert_eq!(
        errors,
        vec![
            "-ERR 'Permissions Violation for Subscription to \"foo.*\" (sid \"3\")'".to_string(),
            "-ERR 'Permissions Violation for Subscription to \"foo.bar\" (sid \"1\")'".to_string(),
        ]
    );
    // The removed subscriptions get nothing more; the allowed one still works.
    bob.send(b"PUB foo.bar 0\r\n\r\nPUB foo.baz 0\r\n\r\n");
    bob.sync();
    let got: Vec<(String, String)> = alice
        .msgs_until_pong()
        .into_iter()
        .map(|m| (m.subject, m.sid))
        .collect();
    assert_eq!(got, vec![("foo.baz".to_string(), "2".to_string())]);
    // The new publish permission applies to the live connection too.
    alice.send(b"PUB foo.bar 0\r\n\r\nSUB foo.bar 4\r\n");
    assert_eq!(
        alice.sync(),
        vec![publish_violation("foo.bar"), subscribe_violation("foo.bar")]
    );
    // Loosening again lets it subscribe.
    reload(&server, &conf, RELOAD_BASE);
    alice.send(b"SUB foo.bar 5\r\nPUB foo.bar 0\r\n\r\n");
    assert_eq!(alice.msgs_until_pong().len(), 1);
}

#[test]
fn reload_with_a_bad_file_keeps_the_running_configuration() {
    let (server, conf) = start("reload-bad", RELOAD_BASE);
    let line = reload(&server, &conf, "authorization { users = [ { user: x }\n");
    assert!(line.contains("Reload failed"), "{line}");
    assert!(
        line.contains(conf.arg()),
        "the error names the file: {line}"
    );
    let line = reload(
        &server,
        &conf,
        "authorization { token: t, users: [{user: x}] }\n",
    );
    assert!(
        line.contains("Can not have a token and a users array"),
        "{line}"
    );
    // Still the old users.
    assert_usable(&mut login(&server, "bob", "b"), "still");
    expect_refused(&server, r#""auth_token":"t""#);
}

#[test]
fn reload_applies_limits_and_logs_what_needs_a_restart() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (server, conf) = start("reload-limits", "max_payload: 1KB\n");
    let (_c, info) = server.raw_with_info();
    assert_eq!(info["max_payload"], 1024);
    reload(
        &server,
        &conf,
        &format!("max_payload: 2KB\nlisten: 127.0.0.1:{port}\n"),
    );
    let (_c, info) = server.raw_with_info();
    assert_eq!(info["max_payload"], 2048);
    // The command line's -p -1 still overrides the file: no change to report.
    assert_eq!(log_count(&server, "cannot change without a restart"), 0);

    let exact = TempConf::new(
        "reload-listen-exact",
        &format!("listen: 127.0.0.1:{port}\n"),
    );
    let server2 = TestServer::start_exact(&["-c", exact.arg()]);
    assert_eq!(server2.addr.port(), port);
    let other = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    reload(&server2, &exact, &format!("listen: 127.0.0.1:{other}\n"));
    assert_eq!(
        log_count(
            &server2,
            "the listen address cannot change without a restart"
        ),
        1
    );
    // Still listening where it was.
    let mut c = server2.client();
    c.send(b"PING\r\n");
    c.expect("PONG");
}

#[test]
fn reload_turning_auth_on_closes_anonymous_connections() {
    let (server, conf) = start("reload-auth-on", "max_payload: 1KB\n");
    let mut anon = server.client();
    assert_usable(&mut anon, "anon");
    reload(&server, &conf, RELOAD_BASE);
    anon.expect_err_and_eof("Authorization Violation");
    let (_c, info) = server.raw_with_info();
    assert_eq!(info["auth_required"], true);
}

// ----- configuration file behaviour -----

#[test]
fn flags_override_the_file() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = TempConf::new(
        "flags",
        &format!(
            "port: {port}\nmax_payload: 2KB\nauthorization {{ users: [ {{user: filed, password: f}} ] }}\n"
        ),
    );
    // The harness adds -p -1, and --user/--pass replace the file's users.
    let server = TestServer::start(&[
        "-c",
        conf.arg(),
        "--max_payload",
        "1KB",
        "--user",
        "flag",
        "--pass",
        "x",
    ]);
    assert_ne!(server.addr.port(), port);
    let (_c, info) = server.raw_with_info();
    assert_eq!(info["max_payload"], 1024);
    assert_usable(&mut login(&server, "flag", "x"), "f");
    expect_refused(&server, r#""user":"filed","pass":"f""#);
}

#[test]
fn config_errors_exit_2_with_position() {
    let cases = [
        (
            "perm-field",
            "authorization {\n  users: [ {user: a, permissions: { publsh: x } } ]\n}\n",
            "Unknown field \"publsh\" parsing permissions",
            ":2:",
        ),
        (
            "bad-subject",
            "authorization {\n  users: [ {user: a, permissions: { publish: \"a..b\" } } ]\n}\n",
            "is not a valid subject",
            ":2:",
        ),
        (
            "token-and-users",
            "authorization {\n  token: t\n  users: [ {user: a} ]\n}\n",
            "Can not have a token and a users array",
            ":1:",
        ),
        (
            "syntax",
            "authorization {\n  users: [ {user: a, password: } ]\n}\n",
            "",
            ":2:",
        ),
    ];
    for (tag, text, want, pos) in cases {
        let conf = TempConf::new(tag, text);
        let exit = run_natrium(&["-c", conf.arg(), "-a", "127.0.0.1", "-p", "-1"]);
        assert_eq!(exit.code, Some(2), "{tag}: {exit:?}");
        assert!(exit.stderr.contains(want), "{tag}: {exit:?}");
        assert!(
            exit.stderr.contains(&format!("{}{pos}", conf.arg())),
            "{tag}: {exit:?}"
        );
    }
}

#[test]
fn logfile_receives_the_log() {
    let log = std::env::temp_dir().join(format!("natrium-test-log-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    let conf = TempConf::new("logfile", &format!("logfile: \"{}\"\n", log.display()));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_natrium"))
        .args(["-c", conf.arg(), "-a", "127.0.0.1", "-p", "-1"])
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn natrium");
    let deadline = Instant::now() + TIMEOUT;
    let found = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Listening for client connections on ") {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&log);
    assert!(found, "no log lines in {}", log.display());
}

/// The configuration examples of README.md and docs/config.md (the first
/// ```text block after `marker`), with the environment variable filled in.
fn documented_example(file: &str, marker: &str) -> String {
    let path = format!("{}/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("read documentation");
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} in {file}"));
    let start = at + text[at..].find("```text\n").expect("example block") + "```text\n".len();
    let end = start + text[start..].find("```").expect("end of example block");
    text[start..end].replace("$DASHBOARD_PASSWORD", "\"dash\"")
}

#[test]
fn documented_examples_are_valid_configurations() {
    for (file, marker) in [
        ("README.md", "A complete one,"),
        ("docs/config.md", "## A complete example"),
    ] {
        let conf = TempConf::new("doc-example", &documented_example(file, marker));
        let exit = run_natrium(&["-c", conf.arg(), "-t"]);
        assert_eq!(exit.code, Some(0), "{file}: {exit:?}");
        assert!(!exit.stderr.contains("[WRN]"), "{file}: {exit:?}");
    }
    // And it behaves as described (without the log file, on a test port).
    let text = documented_example("docs/config.md", "## A complete example")
        .replace("logfile: \"/var/log/natrium.log\"", "");
    let (server, _conf) = start("doc-example-run", &text);
    let (_c, info) = server.raw_with_info();
    assert!(info.get("auth_required").is_none(), "no_auth_user: {info}");
    assert_eq!(info["max_payload"], 65536);
    assert!(info["nonce"].as_str().is_some(), "nkey users: a nonce");
    // Anonymous: may subscribe to public.>, may publish nothing.
    let mut anon = server.client();
    anon.send(b"SUB public.news 1\r\nSUB telemetry.> 2\r\nPUB public.news 0\r\n\r\n");
    assert_eq!(
        anon.sync(),
        vec![
            subscribe_violation("telemetry.>"),
            publish_violation("public.news")
        ]
    );
    // The dashboard has the default permissions.
    let mut dash = login(&server, "dashboard", "dash");
    dash.send(b"SUB telemetry.> 1\r\nPUB ui.click 0\r\n\r\nPUB cmd.sensor-17.reboot 0\r\n\r\n");
    assert_eq!(dash.sync(), vec![publish_violation("cmd.sensor-17.reboot")]);
}
