//! Authentication (user/password, token, the legacy `account` field), the
//! configuration file and the command line of the `natrium` binary.

mod common;
use common::{Conn, TempConf, TestServer, run_natrium};

/// Sends `input` on a fresh connection and expects the auth -ERR then EOF.
fn expect_violation(server: &TestServer, input: &[u8]) {
    server
        .raw()
        .expect_fatal_reply(input, "Authorization Violation");
}

/// A working connection proves itself with a publish to its own subscription.
fn assert_usable(c: &mut Conn) {
    c.send(b"SUB auth.check 1\r\nPUB auth.check 2\r\nok\r\n");
    let msgs = c.msgs_until_pong();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].payload, b"ok");
}

// ----- user / password -----

#[test]
fn user_password_correct_connect_works() {
    let server = TestServer::start(&["--user", "u", "--pass", "p"]);
    let (_c, info) = server.raw_with_info();
    assert_eq!(info["auth_required"], true);
    let mut c = server.client_with(r#""verbose":false,"pedantic":false,"user":"u","pass":"p""#);
    assert_usable(&mut c);
    // Verbose: the CONNECT itself is acknowledged.
    let mut v = server.raw();
    v.send(b"CONNECT {\"user\":\"u\",\"pass\":\"p\"}\r\n");
    v.expect("+OK");
}

#[test]
fn user_password_failures_are_authorization_violations() {
    let server = TestServer::start(&["--user", "u", "--pass", "p"]);
    for input in [
        &br#"CONNECT {"user":"u","pass":"x"}"#[..],
        br#"CONNECT {"user":"u"}"#,
        br#"CONNECT {"user":"x","pass":"p"}"#,
        br#"CONNECT {"user":"U","pass":"p"}"#,
        br#"CONNECT {"user":"u","pass":"pp"}"#,
        br#"CONNECT {"auth_token":"p"}"#,
        br#"CONNECT {}"#,
        br#"CONNECT {"user":null,"pass":null}"#,
    ] {
        let mut line = input.to_vec();
        line.extend_from_slice(b"\r\n");
        expect_violation(&server, &line);
    }
}

#[test]
fn first_operation_must_be_connect_when_auth_is_required() {
    let server = TestServer::start(&["--user", "u", "--pass", "p"]);
    for input in [
        &b"PING\r\n"[..],
        b"SUB foo 1\r\n",
        b"PUB foo 0\r\n\r\n",
        b"UNSUB 1\r\n",
        b"PONG\r\n",
    ] {
        expect_violation(&server, input);
    }
}

#[test]
fn any_first_operation_but_connect_is_refused_at_once() {
    // nats-server decides on the first byte: whatever the rest of the line
    // is (malformed, over a limit, or waiting for a payload), the answer is
    // the Authorization Violation, before any payload is read.
    let server = TestServer::start(&["--user", "u", "--pass", "p"]);
    for input in [
        &b"SUB foo\r\n"[..],
        b"FOO bar\r\n",
        b"MSG foo 1 0\r\n\r\n",
        b"PUB foo 2000000\r\n",
        b"PUB foo 10\r\n",
        b"HPUB foo 12 14\r\n",
        b"-ERR 'x'\r\n",
        b"+OK\r\n",
        b"INFO {}\r\n",
    ] {
        expect_violation(&server, input);
    }
}

#[test]
fn auth_timeout_without_connect() {
    let server = TestServer::start(&["--user", "u", "--pass", "p", "--auth_timeout", "100ms"]);
    let mut c = server.raw();
    c.expect_err_and_eof("Authentication Timeout");
}

// ----- token -----

#[test]
fn token_auth() {
    let server = TestServer::start(&["--auth", "s3cret"]);
    let (_c, info) = server.raw_with_info();
    assert_eq!(info["auth_required"], true);
    let mut c = server.client_with(r#""verbose":false,"pedantic":false,"auth_token":"s3cret""#);
    assert_usable(&mut c);
    let mut v = server.raw();
    v.send(b"CONNECT {\"auth_token\":\"s3cret\"}\r\n");
    v.expect("+OK");
    for input in [
        &b"CONNECT {\"auth_token\":\"wrong\"}\r\n"[..],
        b"CONNECT {\"auth_token\":\"s3cre\"}\r\n",
        b"CONNECT {}\r\n",
        b"CONNECT {\"user\":\"s3cret\",\"pass\":\"s3cret\"}\r\n",
        b"PING\r\n",
    ] {
        expect_violation(&server, input);
    }
}

// ----- the legacy account fields -----

#[test]
fn connect_with_account_field_is_a_violation() {
    let server = TestServer::start(&[]);
    for input in [
        &b"CONNECT {\"account\":\"A\"}\r\n"[..],
        b"CONNECT {\"verbose\":false,\"account\":\"$G\"}\r\n",
        b"CONNECT {\"new_account\":true}\r\n",
    ] {
        expect_violation(&server, input);
    }
    // Also with valid credentials on an auth server.
    let server = TestServer::start(&["--user", "u", "--pass", "p"]);
    expect_violation(
        &server,
        b"CONNECT {\"user\":\"u\",\"pass\":\"p\",\"account\":\"A\"}\r\n",
    );
}

// ----- configuration file -----

/// A port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn config_listen_sets_host_and_port() {
    let port = free_port();
    let conf = TempConf::new("listen", &format!("listen: 127.0.0.1:{port}\n"));
    let server = TestServer::start_exact(&["-c", conf.arg()]);
    assert_eq!(server.addr.port(), port);
    let (mut c, info) = server.raw_with_info();
    assert_eq!(info["port"], u64::from(port));
    assert_eq!(info["host"], "127.0.0.1");
    c.send(b"PING\r\n");
    c.expect("PONG");
}

#[test]
fn config_port_and_host_keys() {
    let port = free_port();
    let conf = TempConf::new(
        "port",
        &format!("# natrium test\nhost: \"127.0.0.1\"\nport = {port}\n"),
    );
    let server = TestServer::start_exact(&["-c", conf.arg()]);
    assert_eq!(server.addr.port(), port);
    let (_c, info) = server.raw_with_info();
    assert_eq!(info["port"], u64::from(port));
}

#[test]
fn config_max_payload_with_size_suffix() {
    let conf = TempConf::new("max-payload", "max_payload: 1KB\n");
    let server = TestServer::start(&["-c", conf.arg()]);
    let (_c, info) = server.raw_with_info();
    assert_eq!(info["max_payload"], 1024);
    let mut c = server.client_with(r#""verbose":false,"pedantic":false"#);
    let mut frame = b"SUB big 1\r\nPUB big 1024\r\n".to_vec();
    frame.extend_from_slice(&[b'x'; 1024]);
    frame.extend_from_slice(b"\r\n");
    c.send(&frame);
    let msgs = c.msgs_until_pong();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].payload.len(), 1024);
    c.send(b"PUB big 1025\r\n");
    c.expect_err_and_eof("Maximum Payload Violation");
}

#[test]
fn config_decimal_size_suffix() {
    let conf = TempConf::new("max-payload-k", "max_payload = 2k\n");
    let server = TestServer::start(&["-c", conf.arg()]);
    let (_c, info) = server.raw_with_info();
    assert_eq!(info["max_payload"], 2000);
}

#[test]
fn config_authorization_block() {
    let conf = TempConf::new("auth", "authorization {\n  user: a\n  password: b\n}\n");
    let server = TestServer::start(&["-c", conf.arg()]);
    let (_c, info) = server.raw_with_info();
    assert_eq!(info["auth_required"], true);
    let mut c = server.client_with(r#""verbose":false,"pedantic":false,"user":"a","pass":"b""#);
    assert_usable(&mut c);
    expect_violation(&server, b"CONNECT {\"user\":\"a\",\"pass\":\"x\"}\r\n");
    expect_violation(&server, b"PING\r\n");
}

#[test]
fn config_authorization_token() {
    let conf = TempConf::new("token", "authorization { token: \"t0k\" }\n");
    let server = TestServer::start(&["-c", conf.arg()]);
    let mut c = server.client_with(r#""verbose":false,"pedantic":false,"auth_token":"t0k""#);
    assert_usable(&mut c);
    expect_violation(&server, b"CONNECT {\"auth_token\":\"t0\"}\r\n");
}

#[test]
fn malformed_config_exits_2_with_line_and_column() {
    let cases = [
        ("unterminated", "port: 4222\nfoo = \"unterminated\n", ":2:"),
        ("unclosed", "port: 4222\nmax_payload: {\n  a: [1,\n", ":4:"),
        ("bad-size", "max_payload: \"lots\"\n", ":1:"),
    ];
    for (tag, text, line) in cases {
        let conf = TempConf::new(tag, text);
        let exit = run_natrium(&["-c", conf.arg(), "-p", "-1", "-a", "127.0.0.1"]);
        assert_eq!(exit.code, Some(2), "{tag}: {exit:?}");
        // "<file>:<line>:<col>: ..."
        let at = format!("{}{line}", conf.arg());
        let pos = exit
            .stderr
            .find(&at)
            .unwrap_or_else(|| panic!("{tag}: no {at:?} in {:?}", exit.stderr));
        let col: String = exit.stderr[pos + at.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        assert!(!col.is_empty(), "{tag}: no column in {:?}", exit.stderr);
    }
}

#[test]
fn missing_config_file_exits_2() {
    let path =
        std::env::temp_dir().join(format!("natrium-test-missing-{}.conf", std::process::id()));
    let exit = run_natrium(&["-c", path.to_str().unwrap()]);
    assert_eq!(exit.code, Some(2), "{exit:?}");
    assert!(exit.stderr.contains(path.to_str().unwrap()), "{exit:?}");
}

// ----- command line -----

#[test]
fn unknown_flag_exits_2() {
    let exit = run_natrium(&["--no-such-flag"]);
    assert_eq!(exit.code, Some(2), "{exit:?}");
    assert!(exit.stderr.contains("no_such_flag") || exit.stderr.contains("no-such-flag"));
    let exit = run_natrium(&["stray"]);
    assert_eq!(exit.code, Some(2), "{exit:?}");
}

#[test]
fn help_exits_0() {
    for flag in ["--help", "-h"] {
        let exit = run_natrium(&[flag]);
        assert_eq!(exit.code, Some(0), "{flag}: {exit:?}");
        assert!(exit.stdout.contains("Usage"), "{flag}: {exit:?}");
        assert!(exit.stdout.contains("--config"), "{flag}: {exit:?}");
    }
}

#[test]
fn version_prints_the_version() {
    for flag in ["--version", "-v"] {
        let exit = run_natrium(&[flag]);
        assert_eq!(exit.code, Some(0), "{flag}: {exit:?}");
        assert_eq!(
            exit.stdout.trim(),
            format!("natrium version {}", env!("CARGO_PKG_VERSION")),
            "{flag}"
        );
    }
}
