//! What ships beside the binary: the systemd unit under `dist/` has
//! upstream's signals (reload = SIGHUP, stop = SIGUSR2, lame duck mode) and
//! passes `systemd-analyze verify` where systemd is installed (skipped
//! cleanly where it is not).

use std::process::Command;

const UNIT: &str = include_str!("../dist/natrium.service");

#[test]
fn the_systemd_unit_uses_nats_servers_signals() {
    let lines: Vec<&str> = UNIT.lines().map(str::trim).collect();
    assert!(lines.contains(&"ExecReload=/bin/kill -s HUP $MAINPID"));
    assert!(lines.contains(&"KillSignal=SIGUSR2"));
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ExecStart=/usr/local/bin/natrium "))
    );
}

#[test]
fn the_systemd_unit_verifies() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed here: skipped");
        return;
    }
    let dir = std::env::temp_dir().join(format!("natrium-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unit = dir.join("natrium.service");
    // verify checks that ExecStart exists: point it at the binary just built.
    std::fs::write(
        &unit,
        UNIT.replace("/usr/local/bin/natrium", env!("CARGO_BIN_EXE_natrium")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
