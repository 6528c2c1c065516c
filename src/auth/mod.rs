//! Identity and access: who may connect and what they may do, as
//! nats-server decides it.
//!
//! - [`credentials`]: the users, nkeys and tokens the server accepts
//!   ([`AuthConfig`]) and checking a CONNECT against them.
//! - [`permissions`]: per-user publish/subscribe rules and the
//!   per-connection state (caches, allowed responses) built from them.
//! - [`bcrypt_worker`]: the thread that runs bcrypt checks off the loop.
//!
//! Pure decisions over plain data: it may use [`crate::protocol`] (the
//! CONNECT fields, quoting) and [`crate::sublist`] (subject matching), and
//! nothing above. Configuration builds these types; the server loop applies
//! them to connections (`server::access`). Neither may be called from here.

pub mod bcrypt_worker;
pub mod credentials;
pub mod permissions;

pub use credentials::{
    AuthConfig, Authenticated, Credentials, Identity, NONCE_BYTES, NkeyUser, User,
    constant_time_eq, is_bcrypt, is_valid_user_nkey, new_nonce, verify_bcrypt,
    verify_nkey_signature,
};
