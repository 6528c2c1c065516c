//! Parking a CONNECT whose password needs bcrypt: the check runs on the
//! bcrypt worker (`crate::auth::bcrypt_worker`), the connection waits for its
//! verdict with whatever it sent after the CONNECT, and the loop serves
//! everyone else meanwhile.

use super::Server;
use crate::auth::bcrypt_worker::{AuthWorker, Job};
use crate::protocol::error::ProtoError;
use crate::protocol::parser::Op;
use log::{error, warn};

impl Server {
    /// Whether a CONNECT of this client waits for the bcrypt worker.
    #[inline]
    pub(super) fn connect_pending(&self, key: usize) -> bool {
        self.clients
            .get(key)
            .is_some_and(|c| c.pending_connect.is_some())
    }

    /// Parks a CONNECT whose credentials need bcrypt: the worker checks the
    /// secret while the loop serves everyone else.
    pub(crate) fn defer_connect(
        &mut self,
        key: usize,
        json: &[u8],
        hash: String,
        given: String,
    ) -> Result<(), ProtoError> {
        if self.auth_worker.is_none() {
            let worker = AuthWorker::start(self.waker.clone());
            match worker {
                Ok(worker) => self.auth_worker = Some(worker),
                Err(e) => {
                    error!("Cannot start the bcrypt worker: {e}");
                    return Err(ProtoError::AuthorizationViolation);
                }
            }
        }
        let (Some(worker), Some(client)) = (&self.auth_worker, self.clients.get_mut(key)) else {
            return Err(ProtoError::AuthorizationViolation);
        };
        let job = Job {
            key,
            cid: client.cid,
            hash,
            given,
        };
        if !worker.submit(job) {
            warn!(
                "{} bcrypt queue full ({} checks waiting); refusing the login",
                client.describe(),
                crate::auth::bcrypt_worker::QUEUE
            );
            return Err(ProtoError::AuthorizationViolation);
        }
        client.pending_connect = Some(json.into());
        Ok(())
    }

    /// Finishes the CONNECTs the bcrypt worker has answered, then goes on
    /// with what those clients sent after them.
    pub(super) fn on_auth_verdicts(&mut self) {
        let Some(worker) = &self.auth_worker else {
            return;
        };
        let verdicts: Vec<_> = worker.verdicts().collect();
        for v in verdicts {
            let Some(client) = self.clients.get_mut(v.key) else {
                continue;
            };
            if client.cid != v.cid || client.is_closing() {
                continue; // that connection is gone
            }
            let Some(json) = client.pending_connect.take() else {
                continue;
            };
            if !v.ok {
                self.on_error(v.key, ProtoError::AuthorizationViolation);
                continue;
            }
            client.verified_hash = Some(v.hash);
            if let Err(e) = self.dispatch(v.key, Op::Connect(&json))
                && !self.handle_error(v.key, e)
            {
                continue;
            }
            // Now the operations that came after the CONNECT, then the socket.
            let Some(client) = self.clients.get_mut(v.key) else {
                continue;
            };
            let waiting = std::mem::take(&mut client.carry);
            self.ingest(v.key, &waiting);
            self.read_client(v.key, false);
        }
    }
}
