//! The process log: nats-server's line shape (`[pid] 2006/01/02
//! 15:04:05.000000 [INF] text`, the time only with `logtime`), written to
//! stderr or to the log file. The file is reopened on SIGUSR1 (logrotate's
//! `postrotate kill -USR1`) and on a reload that names another file, and
//! rotated when a line would take it past `log_size_limit` (renamed to
//! `<file>.<UTC time>`, as nats-server does).
//!
//! One sink per process, behind a mutex the `log` crate's writer takes
//! per line: `main` installs it ([`init`]), the loop calls [`reopen`].
//! Without `RUST_LOG` only natrium's own records are shown (`-D` and `-V`
//! do not turn on mio's or rustls's internals); `RUST_LOG` chooses freely.

use crate::config::Config;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Where lines go.
enum Target {
    Stderr,
    File { path: PathBuf, file: File },
}

struct Sink {
    target: Target,
    /// Bytes in the current file (for `log_size_limit`).
    written: u64,
    /// Rotate past this many bytes; 0 never.
    limit: u64,
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Whether lines carry a timestamp (`logtime`); read by the formatter.
static LOGTIME: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

fn sink() -> std::sync::MutexGuard<'static, Option<Sink>> {
    // A panic while holding the lock cannot leave the sink inconsistent
    // (it is a file handle and two numbers): keep logging.
    SINK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Installs the logger for `config` (stderr, or the log file, opened now
/// so that an unusable path is an error at start-up).
pub fn init(config: &Config) -> io::Result<()> {
    let target = match &config.logfile {
        None => Target::Stderr,
        Some(path) => Target::File {
            path: path.clone(),
            file: open_append(path)?,
        },
    };
    let written = match &target {
        Target::File { file, .. } => file.metadata().map(|m| m.len()).unwrap_or(0),
        Target::Stderr => 0,
    };
    *sink() = Some(Sink {
        target,
        written,
        limit: config.log_size_limit,
    });
    LOGTIME.store(config.logtime, std::sync::atomic::Ordering::Relaxed);
    let from_env = std::env::var_os("RUST_LOG").is_some();
    let mut builder = if from_env {
        env_logger::Builder::from_env(env_logger::Env::default())
    } else {
        let mut b = env_logger::Builder::new();
        // Other crates' records (mio, rustls) only when RUST_LOG asks.
        b.filter_level(log::LevelFilter::Off);
        b.filter_module("natrium", log::LevelFilter::Trace);
        b
    };
    builder.format(|buf, record| {
        let mut line = String::with_capacity(64 + 32);
        line_prefix(&mut line, record.level(), SystemTime::now());
        buf.write_all(line.as_bytes())?;
        writeln!(buf, "{}", record.args())
    });
    builder.target(env_logger::Target::Pipe(Box::new(SinkWriter)));
    builder
        .try_init()
        .map_err(|e| io::Error::other(e.to_string()))?;
    if !from_env {
        log::set_max_level(crate::config::log_level(config.debug, config.trace));
    }
    Ok(())
}

/// `[pid] 2006/01/02 15:04:05.000000 [INF] ` (no time without `logtime`).
fn line_prefix(out: &mut String, level: log::Level, now: SystemTime) {
    use std::fmt::Write as _;
    let _ = write!(out, "[{}] ", std::process::id());
    if LOGTIME.load(std::sync::atomic::Ordering::Relaxed) {
        push_time(out, now, ' ');
        out.push(' ');
    }
    out.push_str(match level {
        log::Level::Error => "[ERR] ",
        log::Level::Warn => "[WRN] ",
        log::Level::Info => "[INF] ",
        log::Level::Debug => "[DBG] ",
        log::Level::Trace => "[TRC] ",
    });
}

/// UTC `2006/01/02<sep>15:04:05.000000`.
fn push_time(out: &mut String, now: SystemTime, sep: char) {
    use std::fmt::Write as _;
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (y, mo, d) = crate::monitor::timefmt::civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let _ = write!(
        out,
        "{y:04}/{mo:02}/{d:02}{sep}{:02}:{:02}:{:02}.{:06}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        since.subsec_micros()
    );
}

/// Reopens the log file at `path` (SIGUSR1 with `None`: the same path; a
/// reload names the new one) and sets the rotation limit. Returns a line
/// for the caller to log, once the new file is in place.
pub fn reopen(path: Option<&Path>, limit: u64) -> Result<String, String> {
    let mut guard = sink();
    let Some(sink) = guard.as_mut() else {
        return Err("File log re-open ignored, no logger".into());
    };
    sink.limit = limit;
    let path = match (path, &sink.target) {
        (Some(p), _) => p.to_path_buf(),
        (None, Target::File { path, .. }) => path.clone(),
        (None, Target::Stderr) => {
            return Err("File log re-open ignored, not a file logger".into());
        }
    };
    match open_append(&path) {
        Ok(file) => {
            sink.written = file.metadata().map(|m| m.len()).unwrap_or(0);
            sink.target = Target::File {
                path: path.clone(),
                file,
            };
            Ok(format!("File log re-opened: {}", path.display()))
        }
        Err(e) => Err(format!(
            "Cannot re-open the log file {}: {e}; logging goes on to the old one",
            path.display()
        )),
    }
}

/// Timestamps on or off (`logtime`, applied by a reload).
pub fn set_logtime(on: bool) {
    LOGTIME.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Goes back to stderr (a reload that removed `logfile`).
pub fn to_stderr() {
    if let Some(sink) = sink().as_mut() {
        sink.target = Target::Stderr;
        sink.written = 0;
    }
}

/// The `log` writer: one call per formatted record.
struct SinkWriter;

impl Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut guard = sink();
        let Some(sink) = guard.as_mut() else {
            return io::stderr().write(buf);
        };
        if sink.limit > 0 && sink.written > 0 && sink.written + buf.len() as u64 > sink.limit {
            rotate(sink);
        }
        let n = match &mut sink.target {
            Target::Stderr => io::stderr().write(buf)?,
            Target::File { file, .. } => file.write(buf)?,
        };
        sink.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match sink().as_mut().map(|s| &mut s.target) {
            Some(Target::File { file, .. }) => file.flush(),
            _ => io::stderr().flush(),
        }
    }
}

/// Renames the full file to `<file>.<UTC time>` and starts a new one with
/// a line saying where the old lines are. On failure logging goes on in
/// the old file (and rotation is tried again at the next line).
fn rotate(sink: &mut Sink) {
    let Target::File { path, .. } = &sink.target else {
        return;
    };
    let path = path.clone();
    let mut stamp = String::new();
    push_time(&mut stamp, SystemTime::now(), '.');
    let backup = PathBuf::from(format!(
        "{}.{}",
        path.display(),
        stamp.replace(['/', ':'], ".")
    ));
    if std::fs::rename(&path, &backup).is_err() {
        return;
    }
    let Ok(mut file) = open_append(&path) else {
        return;
    };
    let mut line = String::new();
    line_prefix(&mut line, log::Level::Info, SystemTime::now());
    line.push_str(&format!(
        "Rotated log, backup saved as {}\n",
        backup.display()
    ));
    let _ = file.write_all(line.as_bytes());
    sink.written = line.len() as u64;
    sink.target = Target::File { path, file };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn prefix_has_nats_server_shape() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        let mut s = String::new();
        line_prefix(&mut s, log::Level::Warn, t);
        let pid = std::process::id();
        assert_eq!(s, format!("[{pid}] 2023/11/14 22:13:20.123456 [WRN] "));
    }
}
