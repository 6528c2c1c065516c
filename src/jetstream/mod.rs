//! JetStream: durable streams and consumers behind the `$JS.API`, so NATS
//! clients' JetStream APIs work against natrium unmodified.
//!
//! - [`store`]: the storage engine (the message log of one stream, memory
//!   or file, the storage thread, the simulated disk for tests).
//! - [`stream`]: a stream's configuration and what a publish to it does.
//! - [`consumer`]: a consumer's configuration and its delivery/ack state.
//! - [`engine`]: all streams and consumers, the API handlers, pull
//!   delivery, timers, PubAcks held until durable.
//! - [`persist`]: where file streams and consumer state live on disk.
//! - [`api`], [`headers`]: the wire vocabulary (errors, JSON envelopes,
//!   times; NATS header blocks).
//!
//! Boundaries: JetStream knows no socket and no connection. It may use the
//! layers below it (protocol, sublist, auth, config, monitor's time
//! formats); the server loop (`server/jetstream.rs`) feeds it publishes and
//! the time, routes the messages it produces and runs its sync jobs on the
//! storage thread. Nothing here may call into the server.

pub mod api;
pub mod consumer;
pub mod engine;
pub mod headers;
pub mod persist;
pub mod store;
pub mod stream;
