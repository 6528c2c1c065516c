//! Leaf-node links, the pure part: the leaf protocol parser ([`parser`]),
//! what natrium writes on a link ([`wire`]), interest bookkeeping per link
//! ([`interest`]) and the `leafnodes` options ([`options`]).
//!
//! A leaf link joins natrium to a nats-server (or natrium) cluster: natrium
//! either solicits a hub (a `remotes` entry) or accepts leaves on its
//! leafnode port. Both directions speak the same protocol once the
//! handshake is done (`LS+`/`LS-` for interest, `LMSG`/`HMSG` for
//! messages). The loop's glue (sockets, handshake, routing) is
//! `crate::server`'s `leaf` module; nothing here knows a socket.
//!
//! This layer sits beside `auth`: it may use `protocol`, `sublist` and `tls`.

pub mod interest;
pub mod options;
pub mod parser;
pub mod wire;
