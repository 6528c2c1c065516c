//! SIGHUP: re-read the configuration file and apply what can change while
//! running; what cannot (the listen address) is logged.

use super::Server;
use super::info_template;
use crate::config::{Command, Config};
use crate::protocol::parser::Limits;
use crate::tls::TlsOptions;
use log::{error, info, warn};

impl Server {
    /// Re-reads the configuration file (SIGHUP).
    pub(super) fn reload(&mut self) {
        let Some(path) = self.config.config_file.clone() else {
            warn!("Reload requested, but the server was started without a configuration file");
            return;
        };
        // The command line is parsed again: the file is re-read and flags
        // still override it, as at start-up.
        let parsed = if self.config.args.is_empty() {
            let mut fresh = Config {
                config_file: Some(path.clone()),
                ..Config::default()
            };
            crate::config::load_file(&mut fresh, &path).map(|w| (fresh, w))
        } else {
            match crate::config::parse_args(self.config.args.clone()) {
                Ok((Command::Run(c) | Command::Check(c), w)) => Ok((c, w)),
                Ok(_) => Err(crate::config::ConfigError(
                    "the command line no longer names a configuration".into(),
                )),
                Err(e) => Err(e),
            }
        };
        match parsed {
            Ok((fresh, warnings)) => {
                for w in warnings {
                    warn!("{}: {w}", path.display());
                }
                if fresh.host != self.config.host || fresh.port != self.config.port {
                    warn!(
                        "Reload: the listen address cannot change without a restart; keeping {}",
                        self.local_addr
                    );
                }
                if fresh.jetstream != self.config.jetstream {
                    warn!("Reload: JetStream options cannot change without a restart");
                }
                if fresh.logfile != self.config.logfile {
                    warn!("Reload: the log file cannot change without a restart");
                }
                self.apply_reload(fresh);
                info!("Reloaded server configuration");
            }
            Err(e) => error!("Reload failed, keeping the running configuration: {e}"),
        }
    }

    /// Applies the options that can change while running.
    fn apply_reload(&mut self, fresh: Config) {
        self.monitor_reloaded(&fresh);
        let c = &mut self.config;
        c.max_payload = fresh.max_payload;
        c.max_control_line = fresh.max_control_line;
        c.max_pending = fresh.max_pending;
        c.max_connections = fresh.max_connections;
        c.max_subscriptions = fresh.max_subscriptions;
        c.ping_interval = fresh.ping_interval;
        c.ping_max = fresh.ping_max;
        c.write_deadline = fresh.write_deadline;
        c.auth = fresh.auth;
        c.server_name = fresh.server_name;
        if (c.debug, c.trace) != (fresh.debug, fresh.trace)
            && std::env::var_os("RUST_LOG").is_none()
        {
            log::set_max_level(crate::config::log_level(fresh.debug, fresh.trace));
        }
        c.debug = fresh.debug;
        c.trace = fresh.trace;
        self.limits = Limits {
            max_control_line: c.max_control_line,
            max_payload: c.max_payload,
        };
        // The certificate files are read again on every reload, changed
        // options or not: renewing a certificate in place and sending
        // SIGHUP is how certificates are rotated.
        if fresh.tls.is_some() || c.tls.is_some() {
            match fresh
                .tls
                .as_ref()
                .map(TlsOptions::server_config)
                .transpose()
            {
                Ok(tls_config) => {
                    if fresh.tls != c.tls {
                        info!("Reload: TLS settings changed; they apply to new connections");
                    } else {
                        info!("Reload: TLS certificates read again for new connections");
                    }
                    self.tls_config = tls_config;
                    c.tls = fresh.tls;
                    if let Some(mon) = self.monitor.as_deref_mut() {
                        mon.tls_reloaded(self.tls_config.as_ref());
                    }
                }
                Err(e) => error!("Reload: keeping the running TLS settings: {e}"),
            }
        }
        self.info = info_template(c, &self.server_id, self.local_addr.port());
        // Credentials and permissions apply to existing connections too.
        self.reauthorize_clients();
    }
}
