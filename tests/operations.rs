//! Operating natrium as nats-server is operated (issue 11, section 2): the
//! pid and ports files, SIGUSR1 reopening the log file, log rotation by
//! size, a reload changing the log file, lame duck mode (SIGUSR2 and
//! `--signal ldm`), `--signal` with a pid or a pid file, `client_advertise`,
//! and unknown flags reported by name.

mod common;
use common::{Conn, TIMEOUT, TempConf, TestServer, run_natrium};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A fresh directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("natrium-ops-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Polls (bounded) until `pred` holds.
fn eventually(what: &str, mut pred: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !pred() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A server that logs to a file (`-l`), so its stderr is not the log.
struct FileLogged {
    child: Child,
    log: PathBuf,
    addr: std::net::SocketAddr,
}

impl FileLogged {
    fn start(log: &Path, args: &[&str]) -> FileLogged {
        let child = Command::new(env!("CARGO_BIN_EXE_natrium"))
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                "-1",
                "-D",
                "-l",
                log.to_str().unwrap(),
            ])
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn natrium");
        let needle = "Listening for client connections on ";
        eventually("the listen line in the log file", || {
            read(log).contains(needle)
        });
        let text = read(log);
        let line = text.lines().find(|l| l.contains(needle)).unwrap();
        let addr = line.rsplit(' ').next().unwrap().parse().unwrap();
        FileLogged {
            child,
            log: log.to_path_buf(),
            addr,
        }
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }
}

impl Drop for FileLogged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pid_and_ports_files_exist_while_the_server_runs() {
    let dir = TempDir::new("files");
    let pid_file = dir.path("natrium.pid");
    let mut server = TestServer::start(&[
        "-P",
        pid_file.to_str().unwrap(),
        "--ports_file_dir",
        dir.0.to_str().unwrap(),
        "-m",
        "-1",
    ]);
    let ports_file = dir.path(&format!("natrium_{}.ports", server.pid()));
    eventually("the ports file", || ports_file.exists());
    assert_eq!(read(&pid_file), server.pid().to_string());
    let ports: serde_json::Value = serde_json::from_str(&read(&ports_file)).unwrap();
    assert_eq!(
        ports["nats"],
        serde_json::json!([format!("nats://127.0.0.1:{}", server.addr.port())])
    );
    let monitoring = ports["monitoring"][0].as_str().unwrap();
    assert!(monitoring.starts_with("http://127.0.0.1:"), "{ports}");
    // The URL in the file reaches the server.
    let url: std::net::SocketAddr = ports["nats"][0]
        .as_str()
        .unwrap()
        .trim_start_matches("nats://")
        .parse()
        .unwrap();
    let mut c = Conn::connect(url);
    assert!(c.line().starts_with("INFO {"));
    drop(c);
    server.signal("TERM");
    assert_eq!(server.wait_exit(), Some(0));
    assert!(!pid_file.exists() && !ports_file.exists());
}

#[test]
fn sigusr1_reopens_the_log_file_after_logrotate_moved_it() {
    let dir = TempDir::new("reopen");
    let log = dir.path("natrium.log");
    let server = FileLogged::start(&log, &[]);
    eventually("ready", || read(&log).contains("Server is ready"));
    let moved = dir.path("natrium.log.1");
    std::fs::rename(&log, &moved).unwrap();
    server.signal("USR1");
    eventually("the new log file", || {
        read(&log).contains("File log re-opened")
    });
    // New lines go to the new file, not the moved one.
    let mut c = Conn::connect(server.addr);
    c.line();
    c.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
    c.expect("PONG");
    eventually("a connection logged in the new file", || {
        read(&log).contains("Client connection created")
    });
    let old = read(&moved);
    assert!(old.contains("Server is ready"), "{old}");
    assert!(
        !old.contains("re-opened") && !old.contains("connection created"),
        "{old}"
    );
}

#[test]
fn the_log_file_rotates_past_log_size_limit() {
    let dir = TempDir::new("rotate");
    let log = dir.path("natrium.log");
    let server = FileLogged::start(&log, &["--log_size_limit", "1KB"]);
    // Each connection logs a couple of debug lines.
    let mut round = 0;
    eventually("a rotated backup", || {
        round += 1;
        let mut c = Conn::connect(server.addr);
        c.line();
        c.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
        c.expect("PONG");
        std::fs::read_dir(&dir.0)
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().starts_with("natrium.log."))
    });
    let text = read(&log);
    assert!(text.contains("Rotated log, backup saved as "), "{text}");
    let backup = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().starts_with("natrium.log."))
        .unwrap();
    let size = backup.metadata().unwrap().len();
    assert!(size <= 1024, "backup of {size} bytes after {round} rounds");
}

#[test]
fn a_reload_can_move_the_log_to_another_file() {
    let dir = TempDir::new("reload-log");
    let first = dir.path("first.log");
    let second = dir.path("second.log");
    let conf = TempConf::new("reload-log", &format!("logfile: \"{}\"\n", first.display()));
    let child = Command::new(env!("CARGO_BIN_EXE_natrium"))
        .args(["-a", "127.0.0.1", "-p", "-1", "-c", conf.arg()])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = FileLogged {
        child,
        log: first.clone(),
        addr: "127.0.0.1:0".parse().unwrap(),
    };
    eventually("ready", || read(&first).contains("Server is ready"));
    std::fs::write(&conf.path, format!("logfile: \"{}\"\n", second.display())).unwrap();
    server.signal("HUP");
    eventually("the reload logged in the new file", || {
        read(&second).contains("Reloaded server configuration")
    });
    assert!(
        !read(&first).contains("Reloaded"),
        "{}",
        server.log.display()
    );
}

#[test]
fn lame_duck_mode_announces_stops_accepting_closes_everyone_and_exits() {
    let conf = TempConf::new("ldm", "lame_duck_grace_period: \"0s\"\n");
    let mut server = TestServer::start(&["-c", conf.arg()]);
    let mut a = server.client();
    let mut b = server.client();
    server.signal("USR2");
    for c in [&mut a, &mut b] {
        let line = c.line();
        assert!(line.starts_with("INFO {"), "{line}");
        let info: serde_json::Value = serde_json::from_str(&line[5..]).unwrap();
        assert_eq!(info["ldm"], true, "{line}");
    }
    server
        .wait_for_log("Entering lame duck mode, stop accepting new clients")
        .unwrap();
    assert!(
        std::net::TcpStream::connect(server.addr).is_err(),
        "no new connections in lame duck mode"
    );
    server.wait_for_log("Closing existing clients").unwrap();
    a.expect_eof_answering_pings();
    b.expect_eof_answering_pings();
    assert_eq!(server.wait_exit(), Some(0));
}

#[test]
fn signal_flag_uses_the_pid_file_or_a_pid() {
    let dir = TempDir::new("signal");
    let pid_file = dir.path("natrium.pid");
    let pid_arg = pid_file.to_str().unwrap();
    let mut server = TestServer::start(&["-P", pid_arg]);
    eventually("the pid file", || pid_file.exists());
    // reopen=PID: a server logging to stderr says it has no file to reopen.
    let exit = run_natrium(&["--signal", &format!("reopen={}", server.pid())]);
    assert_eq!(exit.code, Some(0), "{exit:?}");
    server.wait_for_log("File log re-open ignored").unwrap();
    // ldm with -P: lame duck; without clients the server exits at once.
    let exit = run_natrium(&["-sl", "ldm", "-P", pid_arg]);
    assert_eq!(exit.code, Some(0), "{exit:?}");
    server.wait_for_log("Entering lame duck mode").unwrap();
    assert_eq!(server.wait_exit(), Some(0));

    let exit = run_natrium(&["--signal", "ldm"]);
    assert_eq!(exit.code, Some(2), "no pid: {exit:?}");
    let exit = run_natrium(&["--signal", "nap=1"]);
    assert_eq!(exit.code, Some(2), "{exit:?}");
    assert!(exit.stderr.contains("unknown signal"), "{exit:?}");
}

#[test]
fn unknown_flags_are_named() {
    let exit = run_natrium(&["--cluster", "nats://127.0.0.1:6222"]);
    assert_eq!(exit.code, Some(2), "{exit:?}");
    assert!(exit.stderr.contains("unknown flag --cluster"), "{exit:?}");
    assert!(!exit.stderr.contains("unexpected argument"), "{exit:?}");
}

#[test]
fn lame_duck_duration_has_nats_server_minimum() {
    let conf = TempConf::new("ldm-short", "lame_duck_duration: \"10s\"\n");
    let exit = run_natrium(&["-c", conf.arg(), "-t"]);
    assert_eq!(exit.code, Some(2), "{exit:?}");
    assert!(exit.stderr.contains("minimum is 30 seconds"), "{exit:?}");
}

#[test]
fn client_advertise_is_announced_in_info() {
    let server = TestServer::start(&["--client_advertise", "nats.example.com:4333"]);
    let (_c, info) = server.raw_with_info();
    assert_eq!(info["host"], "nats.example.com");
    assert_eq!(info["port"], 4333);
}

#[test]
fn the_default_bind_accepts_ipv6_clients_too() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    }
    // The harness's -a 127.0.0.1 is overridden: the default address.
    let server = TestServer::start(&["-a", "0.0.0.0"]);
    assert!(server.addr.ip().is_unspecified(), "{}", server.addr);
    let port = server.addr.port();
    for addr in [format!("127.0.0.1:{port}"), format!("[::1]:{port}")] {
        let mut c = Conn::connect(addr.parse().unwrap());
        let info = c.line();
        assert!(info.starts_with("INFO {"), "{addr}: {info}");
        c.send(b"CONNECT {\"verbose\":false}\r\nPING\r\n");
        c.expect("PONG");
    }
    // An explicit IPv4 address stays IPv4-only.
    let v4 = TestServer::start(&[]);
    assert!(std::net::TcpStream::connect(("::1", v4.addr.port())).is_err());
}

#[test]
fn log_lines_have_nats_servers_shape_with_and_without_time() {
    let server = TestServer::start(&[]);
    let line = server.wait_for_log("Server is ready").unwrap();
    let pid = format!("[{}] ", server.pid());
    // [pid] 2026/01/02 15:04:05.000000 [INF] Server is ready
    let rest = line.strip_prefix(&pid).unwrap_or_else(|| panic!("{line}"));
    let (date, rest) = rest.split_at(26);
    let bytes = date.as_bytes();
    assert!(
        bytes[4] == b'/' && bytes[7] == b'/' && bytes[10] == b' ' && bytes[19] == b'.',
        "{line}"
    );
    assert_eq!(rest, " [INF] Server is ready", "{line}");

    let untimed = TestServer::start(&["--logtime=false"]);
    let line = untimed.wait_for_log("Server is ready").unwrap();
    assert_eq!(
        line,
        format!("[{}] [INF] Server is ready", untimed.pid()),
        "-T=false: no time"
    );
}
