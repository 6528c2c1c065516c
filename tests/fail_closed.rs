//! A configuration natrium does not fully understand never gives a server
//! that does less than it asked for (issue 11, section 1): misspelt keys and
//! keys of features natrium lacks stop the server (exit 2, with `-t` too) and
//! a reload with one keeps the running configuration; unquoted durations
//! warn as nats-server does; the nats.py layout of blocks is read.

mod common;
use common::{TempConf, TestServer, run_natrium};

/// Runs the server and `-t` on `text`: both exit 2 naming `want`, and the
/// server never got as far as listening (so no client was ever admitted).
fn refused(tag: &str, text: &str, want: &str) {
    let conf = TempConf::new(tag, text);
    for extra in [&[][..], &["-t"]] {
        let mut args = vec!["-c", conf.arg(), "-a", "127.0.0.1", "-p", "-1"];
        args.extend_from_slice(extra);
        let exit = run_natrium(&args);
        assert_eq!(exit.code, Some(2), "{tag} {extra:?}: {exit:?}");
        assert!(exit.stderr.contains(want), "{tag} {extra:?}: {exit:?}");
        assert!(
            exit.stderr.contains(conf.arg()),
            "{tag}: the error names the file: {exit:?}"
        );
        assert!(
            !exit.stderr.contains("Listening") && !exit.stdout.contains("valid"),
            "{tag} {extra:?}: {exit:?}"
        );
    }
}

/// Without credentials a client is refused; with `user`/`pass` it gets in.
fn requires_credentials(server: &TestServer, user: &str, pass: &str) {
    server
        .raw()
        .expect_fatal_reply(b"CONNECT {}\r\n", "Authorization Violation");
    let mut c = server.client_with(&format!(
        r#""verbose":false,"user":"{user}","pass":"{pass}""#
    ));
    c.send(b"PING\r\n");
    c.expect("PONG");
}

#[test]
fn misspelt_keys_stop_the_server_with_their_position() {
    refused(
        "typo-top",
        "port: 4222\nmax_paylod: 1MB\n",
        ":2:1: unknown field \"max_paylod\"",
    );
    refused(
        "typo-auth",
        "authorization {\n  usres: [ {user: a, password: b} ]\n}\n",
        ":2:3: unknown field \"usres\"",
    );
    refused(
        "typo-user",
        "authorization {\n  users: [ {user: a, passwrd: b} ]\n}\n",
        ":2:22: unknown field \"passwrd\"",
    );
    refused(
        "typo-tls",
        "tls {\n  cert_fle: x.pem\n}\n",
        ":2:3: unknown field \"cert_fle\"",
    );
    // An unused variable-like entry is just as unknown.
    refused("unused", "SECRET: x\n", ":1:1: unknown field \"SECRET\"");
}

#[test]
fn unimplemented_features_stop_the_server_naming_the_feature() {
    for (tag, text, key) in [
        (
            "accounts",
            "accounts {\n  APP: { users: [ {user: a, password: b} ] }\n}\n",
            "accounts",
        ),
        ("operator", "operator: /tmp/op.jwt\n", "operator"),
        ("resolver", "resolver: MEMORY\n", "resolver"),
        (
            "preload",
            "resolver_preload {\n  ABC: \"eyJ\"\n}\n",
            "resolver_preload",
        ),
        ("sysacc", "system_account: SYS\n", "system_account"),
        ("cluster", "cluster {\n  port: 6222\n}\n", "cluster"),
        ("gateway", "gateway {\n  name: g\n}\n", "gateway"),
        ("websocket", "websocket {\n  port: 8080\n}\n", "websocket"),
        ("mqtt", "mqtt {\n  port: 1883\n}\n", "mqtt"),
    ] {
        refused(
            tag,
            text,
            &format!(":1:1: '{key}' is not supported by natrium"),
        );
    }
    refused(
        "pinned",
        "tls {\n  pinned_certs: [\"abc\"]\n}\n",
        "tls option 'pinned_certs' is not supported by natrium",
    );
    refused(
        "conn-types",
        "authorization {\n  users: [ {user: a, password: b, allowed_connection_types: [\"WEBSOCKET\"]} ]\n}\n",
        "user option 'allowed_connection_types' is not supported by natrium",
    );
}

#[test]
fn a_file_that_cannot_be_read_has_no_made_up_position() {
    let missing = std::env::temp_dir().join(format!("natrium-missing-{}.conf", std::process::id()));
    let exit = run_natrium(&["-c", missing.to_str().unwrap(), "-t"]);
    assert_eq!(exit.code, Some(2), "{exit:?}");
    assert!(exit.stderr.contains(missing.to_str().unwrap()), "{exit:?}");
    assert!(!exit.stderr.contains(":0:0"), "{exit:?}");
}

#[test]
fn variables_are_not_unknown_fields() {
    let conf = TempConf::new(
        "vars",
        "PASS: s3cret\nauthorization {\n  user: a\n  password: $PASS\n}\n",
    );
    let server = TestServer::start(&["-c", conf.arg()]);
    requires_credentials(&server, "a", "s3cret");
}

#[test]
fn a_block_may_open_on_the_next_line() {
    // nats.py's own test configurations are written this way.
    let conf = TempConf::new(
        "nextline",
        "authorization\n{\n  user: foo\n  password: bar\n}\n",
    );
    let server = TestServer::start(&["-c", conf.arg()]);
    let (_c, info) = server.raw_with_info();
    assert_eq!(info["auth_required"], true);
    requires_credentials(&server, "foo", "bar");
}

#[test]
fn unquoted_durations_warn_naming_the_file_at_start_and_with_t() {
    let dir = std::env::temp_dir().join(format!("natrium-dur-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let inc = dir.join("inc.conf");
    std::fs::write(&inc, "write_deadline: 5\n").unwrap();
    let main = dir.join("main.conf");
    std::fs::write(&main, "ping_interval: 2m\ninclude inc.conf\n").unwrap();
    let main_arg = main.to_str().unwrap();
    let want_main = format!("{main_arg}:1:16: ping_interval should be converted to a duration");
    let want_inc = "inc.conf:1:17: write_deadline should be converted to a duration";

    let check = run_natrium(&["-c", main_arg, "-t"]);
    assert_eq!(check.code, Some(0), "{check:?}");
    assert!(check.stderr.contains(&want_main), "{check:?}");
    assert!(check.stderr.contains(want_inc), "{check:?}");

    let server = TestServer::start(&["-c", main_arg]);
    assert!(server.wait_for_log(&want_main).is_some());
    assert!(server.wait_for_log(want_inc).is_some());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_reload_with_an_unknown_key_keeps_the_running_configuration() {
    let conf = TempConf::new(
        "reload-typo",
        "authorization {\n  users: [ {user: a, password: b} ]\n}\n",
    );
    let server = TestServer::start(&["-c", conf.arg()]);
    std::fs::write(
        &conf.path,
        "authorization {\n  usres: [ {user: a, password: b} ]\n}\n",
    )
    .unwrap();
    server.signal("HUP");
    let line = server
        .wait_for_log("Reload failed, keeping the running configuration")
        .expect("reload refused");
    assert!(line.contains("unknown field \"usres\""), "{line}");
    requires_credentials(&server, "a", "b");
}
