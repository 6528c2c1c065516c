//! What operators drive from outside, as nats-server documents it: the pid
//! file (`-P`), the ports file (`--ports_file_dir`, `<exe>_<pid>.ports`),
//! reopening the log file (SIGUSR1) and lame duck mode (SIGUSR2): stop
//! accepting, tell every client `INFO {"ldm":true,...}` so that it
//! reconnects elsewhere, wait `lame_duck_grace_period`, then close the
//! clients spread over `lame_duck_duration` (at most a second apart) and
//! exit.
//!
//! The lame duck's state is a queue of clients to close and the moment of
//! the next close, advanced by the housekeeping tick; nothing here blocks.

use super::client::{CloseReason, Phase};
use super::{Server, info_template, logging};
use crate::tls::TlsPhase;
use log::{error, info, warn};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// nats-server waits at most this long between two lame-duck closes.
const MAX_LAME_DUCK_INTERVAL: Duration = Duration::from_secs(1);

/// Lame duck mode in progress.
#[derive(Debug)]
pub(crate) struct LameDuck {
    /// Clients still to close, by slab key and connection id (a key may be
    /// reused by the time its turn comes; the id tells).
    queue: VecDeque<(usize, u64)>,
    /// When the next client is closed.
    next: Instant,
    /// The spacing between closes.
    interval: Duration,
    /// Whether the grace period is over (closing has started).
    closing: bool,
}

impl Server {
    /// Writes the pid file and the ports file, when asked for. Failing to
    /// write one is logged, as nats-server does, and the server runs on.
    pub(super) fn write_process_files(&mut self) {
        if let Some(path) = self.config.pid_file.clone() {
            match std::fs::write(&path, std::process::id().to_string()) {
                Ok(()) => self.process_files.push(path),
                Err(e) => error!("Could not write pidfile {}: {e}", path.display()),
            }
        }
        if let Some(dir) = self.config.ports_file_dir.clone() {
            let exe = std::env::args()
                .next()
                .map(PathBuf::from)
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "natrium".to_string());
            let path = dir.join(format!("{exe}_{}.ports", std::process::id()));
            match std::fs::write(&path, self.ports_json()) {
                Ok(()) => self.process_files.push(path),
                Err(e) => error!("Error writing ports file {}: {e}", path.display()),
            }
        }
    }

    /// `{"nats":["nats://host:port"],"monitoring":["http://host:port"]}`:
    /// the advertised address, or the bound one (a wildcard bind is
    /// written as the loopback address, which reaches it from this host).
    fn ports_json(&self) -> String {
        let url_host = |addr: std::net::SocketAddr| match addr.ip() {
            // The wildcard (dual-stack for the default bind) is reached here.
            ip if ip.is_unspecified() => "127.0.0.1".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let nats = match self.advertised() {
            Some((host, port)) if host.contains(':') => format!("nats://[{host}]:{port}"),
            Some((host, port)) => format!("nats://{host}:{port}"),
            None => format!(
                "nats://{}:{}",
                url_host(self.local_addr),
                self.local_addr.port()
            ),
        };
        let mut ports = serde_json::json!({ "nats": [nats] });
        if let Some(addr) = self.http_addr() {
            let scheme = if self.config.monitor.https {
                "https"
            } else {
                "http"
            };
            ports["monitoring"] =
                serde_json::json!([format!("{scheme}://{}:{}", url_host(addr), addr.port())]);
        }
        ports.to_string()
    }

    /// `client_advertise` as host and port (checked when the configuration
    /// was read).
    pub(super) fn advertised(&self) -> Option<(String, u16)> {
        let adv = self.config.client_advertise.as_deref()?;
        crate::config::advertise_host_port(adv, self.local_addr.port()).ok()
    }

    /// Removes the files [`Server::write_process_files`] wrote.
    pub(super) fn remove_process_files(&mut self) {
        for path in self.process_files.drain(..) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// SIGUSR1: reopen the log file (after logrotate moved it away).
    pub(super) fn reopen_log(&mut self) {
        match logging::reopen(None, self.config.log_size_limit) {
            Ok(line) => info!("{line}"),
            Err(line) => warn!("{line}"),
        }
    }

    /// SIGUSR2 (`--signal ldm`): enters lame duck mode.
    pub(super) fn enter_lame_duck(&mut self) {
        if self.shutdown_deadline.is_some() || self.lame_duck.is_some() {
            return;
        }
        info!("Entering lame duck mode, stop accepting new clients");
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        let ldm_info = info_template(&self.config, &self.server_id, self.local_addr.port(), true);
        let mut queue = VecDeque::new();
        for (key, client) in self.clients.iter_mut() {
            if !matches!(client.phase, Phase::Open) {
                continue;
            }
            queue.push_back((key, client.cid));
            // A TLS client still in its handshake cannot take INFO yet; it
            // is closed in its turn all the same.
            let handshaking = client
                .tls
                .as_ref()
                .is_some_and(|t| t.phase != TlsPhase::Established);
            if !handshaking {
                let ip = client.addr.ip().to_string();
                ldm_info.push(&mut client.out, client.cid, &ip, client.nonce.as_deref());
                if !client.dirty {
                    client.dirty = true;
                    self.dirty.push(key);
                }
            }
        }
        if queue.is_empty() {
            self.begin_shutdown();
            return;
        }
        let spread = self
            .config
            .lame_duck_duration
            .saturating_sub(self.config.lame_duck_grace_period);
        let spread = if spread.is_zero() {
            Duration::from_secs(1)
        } else {
            spread
        };
        let interval = (spread / queue.len() as u32).min(MAX_LAME_DUCK_INTERVAL);
        self.lame_duck = Some(LameDuck {
            queue,
            next: Instant::now() + self.config.lame_duck_grace_period,
            interval,
            closing: false,
        });
    }

    /// Closes the next lame-duck client when its time has come; after the
    /// last one, shuts down. Called from the housekeeping tick.
    pub(super) fn lame_duck_tick(&mut self, now: Instant) {
        let Some(ld) = self.lame_duck.as_mut() else {
            return;
        };
        if now < ld.next {
            return;
        }
        if !ld.closing {
            ld.closing = true;
            info!("Closing existing clients");
        }
        // The next client still open (others left by themselves).
        let mut target = None;
        while let Some((key, cid)) = ld.queue.pop_front() {
            if self
                .clients
                .get(key)
                .is_some_and(|c| c.cid == cid && matches!(c.phase, Phase::Open))
            {
                target = Some(key);
                break;
            }
        }
        // As nats-server: a random pause between half the interval and the
        // interval, so that clients do not all reconnect at once.
        let half = ld.interval / 2;
        let jitter = if half.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(crate::random_u64() % half.as_nanos().max(1) as u64)
        };
        ld.next = now + half + jitter;
        let done = ld.queue.is_empty();
        if let Some(key) = target {
            self.begin_close(key, CloseReason::ServerShutdown);
        }
        if done {
            self.lame_duck = None;
            self.begin_shutdown();
        }
    }

    /// When the lame duck next needs the loop (for the poll timeout).
    pub(super) fn lame_duck_wake(&self) -> Option<Instant> {
        self.lame_duck.as_ref().map(|ld| ld.next)
    }
}
