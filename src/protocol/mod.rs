//! The NATS client wire protocol, as pure code: no sockets, no connection
//! state, no configuration.
//!
//! - [`parser`]: bytes to operations, zero-copy and resumable at any split.
//! - [`wire`]: what natrium writes (INFO, MSG/HMSG, `+OK`, `-ERR`,
//!   PING/PONG, the no-responders status) and the CONNECT JSON it reads.
//! - [`error`]: protocol errors, their exact `-ERR` texts and whether the
//!   connection survives them.
//! - [`trace`]: how operations and payloads are shown in the log.
//!
//! Depends on nothing else in the crate. Everything above may use it: the
//! server loop, auth (CONNECT fields, `go_quote`), monitoring (the version
//! string). It must never reach up into the loop, a connection or config.

pub mod error;
pub mod parser;
pub mod trace;
pub mod wire;
