//! natrium: a lightweight, fast pub/sub server that speaks the NATS client
//! protocol, so existing NATS clients work with it unmodified.
//!
//! # Layout
//!
//! - [`server`]: the `mio` event loop. Owns the listener, the clients, the
//!   subscriptions, the sublist, timers and signals; reads, flushes, closes.
//!   Its children: back-pressure and slow consumers, CONNECTs parked for
//!   bcrypt, configuration reload, and reading TLS clients.
//! - `dispatch`: what each operation does (CONNECT, SUB, UNSUB, PUB and the
//!   fan-out of a message), as methods of the server.
//! - [`client`]: one connection's state: socket, carried partial operation,
//!   outbound buffer, CONNECT options, subscriptions by sid, keepalive.
//! - [`parser`]: bytes to operations, zero-copy and resumable at any split.
//! - [`proto`]: what natrium writes (INFO, MSG/HMSG, +OK, -ERR, PING/PONG)
//!   and the CONNECT it reads.
//! - [`sublist`]: subject syntax and the wildcard trie with its match cache.
//! - [`error`]: protocol errors, their exact `-ERR` texts and whether they close.
//! - [`auth`]: credentials (passwords, bcrypt, tokens, nkeys) and checking a
//!   CONNECT against them.
//! - [`permissions`]: per-user publish/subscribe rules and their
//!   per-connection caches.
//! - `access`: applying auth and permissions to connections, on CONNECT and
//!   on reload.
//! - [`tls`]: TLS options, the rustls configuration, one connection's TLS
//!   state, and the user names a client certificate maps to.
//! - [`monitor`]: HTTP monitoring (`-m`): nats-server's `/varz`, `/connz`,
//!   `/subsz`, `/healthz`, served from the same loop; its HTTP connections,
//!   the closed-connection ring, and Go's time formats.
//! - [`config`]: options, defaults, the command line, config-file keys.
//! - [`conf`]: the nats-server configuration file format (syntax only).
//!
//! A message's path: `server::read_client` reads into a shared buffer →
//! `parser::parse` yields `Op::Pub` borrowing that buffer →
//! `dispatch::publish` → `Sublist::matches` (usually a cache hit) →
//! `deliver` appends a MSG to each subscriber's buffer → `end_of_turn`
//! writes each touched buffer once.

mod access;
pub mod auth;
pub mod auth_worker;
pub mod client;
pub mod conf;
pub mod config;
mod dispatch;
pub mod error;
pub mod monitor;
pub mod parser;
pub mod permissions;
pub mod proto;
pub mod server;
pub mod sublist;
pub mod tls;

pub use config::Config;
pub use server::Server;

/// A random 64-bit number from the standard library's randomly keyed
/// SipHash (seeded from the OS), mixed with a counter and the clock. Used
/// for server ids; not for secrets.
pub fn random_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}
