//! natrium: a lightweight, fast pub/sub server that speaks the NATS client
//! protocol, so existing NATS clients work with it unmodified.
//!
//! # Layout
//!
//! One folder (or file) per subsystem, in layers: each uses only the ones
//! below it (`tests/layering.rs` checks this; ARCHITECTURE.md explains it).
//!
//! - Pure cores, no I/O:
//!   - [`protocol`]: the client wire protocol: the parser, what natrium
//!     writes (INFO, MSG/HMSG, `+OK`/`-ERR`), protocol errors.
//!   - [`sublist`]: subject syntax and the wildcard trie with its match cache.
//!   - [`tls`]: TLS options, the rustls configuration, one connection's TLS
//!     state, and the user names a client certificate maps to.
//! - [`auth`]: credentials, permissions and the bcrypt worker thread.
//! - [`leaf`]: leaf-node links, the pure part: the leaf protocol parser,
//!   interest bookkeeping per link, the `leafnodes` options.
//! - [`config`]: options and defaults, the command line, the nats-server
//!   configuration file format and what its keys mean.
//! - [`monitor`]: HTTP monitoring: the HTTP connections, the JSON shapes of
//!   `/varz`, `/connz`, `/subsz`..., the closed-connection ring.
//! - [`server`]: the `mio` event loop and everything it owns per connection:
//!   clients, what each operation does (`dispatch`), back-pressure, deferred
//!   auth, reload, TLS reads, and the glue that fills in monitoring answers.
//!
//! A message's path: `server::read_client` reads into a shared buffer →
//! `protocol::parser::parse` yields `Op::Pub` borrowing that buffer →
//! `server::dispatch` (`publish`) → `Sublist::matches` (usually a cache
//! hit) → `deliver` appends a MSG to each subscriber's buffer →
//! `end_of_turn` writes each touched buffer once.

pub mod auth;
pub mod config;
pub mod jetstream;
pub mod leaf;
pub mod monitor;
pub mod protocol;
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
