//! Applying authentication and permissions to connections: logging a
//! client in, reporting violations, and re-checking every connection when
//! the configuration is reloaded (as nats-server's `reloadAuthorization`
//! does: a client whose credentials no longer pass is closed with
//! `Authorization Violation`; the others get the new permissions, and
//! subscriptions these no longer allow are removed with an `-ERR`).

use crate::auth::permissions::ClientPerms;
use crate::auth::{Authenticated, Identity};
use crate::protocol::error::{ProtoError, go_quote};
use crate::protocol::wire;
use crate::server::Server;
use crate::server::client::Client;
use log::{error, info};
use std::time::Instant;

/// Records who the client is and builds its permission state.
pub(crate) fn apply_login(client: &mut Client, auth: Authenticated) {
    client.identity = Some(auth.identity);
    client.perms = auth.permissions.map(ClientPerms::new);
}

/// How nats-server names the authenticated user in its logs.
fn auth_user(client: &Client) -> String {
    match &client.identity {
        Some(Identity::User(name)) => format!("User {}", go_quote(name)),
        Some(Identity::Nkey(key)) => format!("Nkey {}", go_quote(key)),
        Some(Identity::Token) => "Token".to_string(),
        Some(Identity::Anonymous) | None => "Anonymous".to_string(),
    }
}

/// The error for a refused PUB (logged as nats-server does).
pub(crate) fn publish_violation(client: &Client, subject: &[u8]) -> ProtoError {
    let subject = String::from_utf8_lossy(subject).into_owned();
    error!(
        "{} Publish Violation - {}, Subject {}",
        client.describe(),
        auth_user(client),
        go_quote(&subject)
    );
    ProtoError::PublishViolation(subject)
}

/// The error for a refused SUB (logged as nats-server does).
pub(crate) fn subscribe_violation(
    client: &Client,
    subject: &[u8],
    queue: Option<&[u8]>,
    sid: &[u8],
) -> ProtoError {
    let subject = String::from_utf8_lossy(subject).into_owned();
    let queue = queue.map(|q| String::from_utf8_lossy(q).into_owned());
    let sid = String::from_utf8_lossy(sid);
    match &queue {
        Some(q) => error!(
            "{} Subscription Violation - {}, Subject {}, Queue: {}, SID {sid}",
            client.describe(),
            auth_user(client),
            go_quote(&subject),
            go_quote(q)
        ),
        None => error!(
            "{} Subscription Violation - {}, Subject {}, SID {sid}",
            client.describe(),
            auth_user(client),
            go_quote(&subject)
        ),
    }
    ProtoError::SubscribeViolation { subject, queue }
}

impl Server {
    /// A first operation other than CONNECT on a server that requires auth:
    /// logs the client in as the `no_auth_user` if there is one, else it
    /// is an authorization violation.
    pub(crate) fn no_auth_login(&mut self, key: usize) -> Result<(), ProtoError> {
        let login = self
            .config
            .auth
            .no_auth_login()
            .ok_or(ProtoError::AuthorizationViolation)?;
        let Some(client) = self.clients.get_mut(key) else {
            return Ok(());
        };
        apply_login(client, login);
        client.connected = true;
        client.auth_deadline = None;
        Ok(())
    }

    /// After a reload: checks every connection against the new
    /// authorization settings.
    pub(crate) fn reauthorize_clients(&mut self) {
        let now = Instant::now();
        let required = self.config.auth.required();
        let keys: Vec<usize> = self
            .clients
            .iter()
            // Leaf links were checked by their own rules (server/leaf.rs).
            .filter(|(_, c)| !c.is_closing() && c.leaf.is_none())
            .map(|(k, _)| k)
            .collect();
        let (mut closed, mut updated) = (0usize, 0usize);
        for key in keys {
            let Some(client) = self.clients.get_mut(key) else {
                continue;
            };
            if !client.connected {
                // Not logged in yet: CONNECT will be checked against the new
                // settings; only the auth timer follows them.
                client.auth_deadline = required.then(|| {
                    client
                        .auth_deadline
                        .unwrap_or(now + self.config.auth.timeout)
                });
                continue;
            }
            let mut creds = client.creds.take().unwrap_or_default();
            let result = self
                .config
                .auth
                .authenticate(&mut creds, client.nonce.as_deref());
            client.creds = Some(creds);
            let Some(auth) = result else {
                info!(
                    "{} {} no longer authorized after reload",
                    client.describe(),
                    auth_user(client)
                );
                closed += 1;
                self.on_error(key, ProtoError::AuthorizationViolation);
                continue;
            };
            let unchanged =
                client.perms.as_ref().map(|p| &**p.rules()) == auth.permissions.as_deref();
            if unchanged {
                client.identity = Some(auth.identity);
                continue;
            }
            updated += 1;
            apply_login(client, auth);
            self.remove_forbidden_subs(key);
        }
        if closed > 0 || updated > 0 {
            info!(
                "Reload: {closed} connection(s) closed as no longer authorized, {updated} with new permissions"
            );
        }
    }

    /// Removes the subscriptions of client `key` that its (new) permissions
    /// do not allow, telling it with nats-server's reload `-ERR` for each.
    fn remove_forbidden_subs(&mut self, key: usize) {
        let Some(client) = self.clients.get_mut(key) else {
            return;
        };
        let Some(perms) = client.perms.as_deref_mut() else {
            return;
        };
        let mut removed = Vec::new();
        for &id in client.subs.values() {
            let Some(sub) = self.subs.get(id) else {
                continue;
            };
            // nats-server: kept if allowed as a plain subscription, or as a
            // queue subscription in its group.
            let plain = perms.can_subscribe(&sub.subject, None);
            let queued =
                sub.queue.is_some() && perms.can_subscribe(&sub.subject, sub.queue.as_deref());
            if !plain && !queued {
                removed.push(id);
            }
        }
        for id in removed {
            let Some(sub) = self.subs.get(id) else {
                continue;
            };
            let subject = String::from_utf8_lossy(&sub.subject).into_owned();
            let sid = String::from_utf8_lossy(&sub.sid).into_owned();
            if let Some(client) = self.clients.get_mut(key) {
                wire::push_err(
                    &mut client.out,
                    &format!(
                        "Permissions Violation for Subscription to {} (sid {})",
                        go_quote(&subject),
                        go_quote(&sid)
                    ),
                );
                info!(
                    "Removed sub {} (sid {}) for {} - not authorized",
                    go_quote(&subject),
                    go_quote(&sid),
                    auth_user(client)
                );
            }
            self.remove_sub(id);
            self.mark_dirty(key);
        }
    }
}
