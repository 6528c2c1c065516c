//! Authentication: which credentials the server accepts and checking a
//! CONNECT against them, as nats-server does it (server/auth.go).
//!
//! Auth is required as soon as a token, a user or an nkey user is
//! configured. The order of the checks follows nats-server: an nkey user
//! when the client sends `nkey`; else a user from the list (by `user`, or
//! the `no_auth_user` for a client that sends no credentials); else the
//! token. Passwords and tokens may be bcrypt hashes. Plain secrets are
//! compared in constant time.

use crate::auth::permissions::Permissions;
use crate::protocol::wire::ConnectInfo;
use base64::Engine;
use std::sync::Arc;
use std::time::Duration;

/// Random bytes in a nonce (nats-server: 11, giving 15 base64url characters).
pub const NONCE_BYTES: usize = 11;

/// One user that may connect with a name and password.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// The user name sent in CONNECT `user`.
    pub name: String,
    /// The password (plain or bcrypt) sent in CONNECT `pass`; `None` is the
    /// empty password, as in nats-server.
    pub password: Option<String>,
    /// What the user may publish and subscribe to; `None` is everything.
    pub permissions: Option<Arc<Permissions>>,
}

/// One user that connects by signing the nonce with an nkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NkeyUser {
    /// The public user nkey (`U...`).
    pub nkey: String,
    /// What the user may publish and subscribe to; `None` is everything.
    pub permissions: Option<Arc<Permissions>>,
}

/// The configured credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// A token clients send as `auth_token` (plain or bcrypt).
    pub token: Option<String>,
    /// Users clients log in as with `user`/`pass`.
    pub users: Vec<User>,
    /// Users clients log in as with `nkey`/`sig`.
    pub nkeys: Vec<NkeyUser>,
    /// The user a client without credentials is logged in as.
    pub no_auth_user: Option<String>,
    /// Time a client has to send a valid CONNECT when auth is required.
    pub timeout: Duration,
    /// Whether `timeout` was configured (if not, TLS raises the default).
    pub timeout_set: bool,
    /// TLS `verify_and_map`: a client is the user its certificate names.
    pub cert_map: bool,
    /// `--user` from the command line (merged by [`AuthConfig::finish_cli`]).
    pub cli_user: Option<String>,
    /// `--pass` from the command line.
    pub cli_pass: Option<String>,
    /// `user` of an `authorization` block (while the block is read).
    pub file_user: Option<String>,
    /// `password` of an `authorization` block (while the block is read).
    pub file_pass: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token: None,
            users: Vec::new(),
            nkeys: Vec::new(),
            no_auth_user: None,
            timeout: Duration::from_secs(2),
            timeout_set: false,
            cert_map: false,
            cli_user: None,
            cli_pass: None,
            file_user: None,
            file_pass: None,
        }
    }
}

/// Who a connection authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// No auth configured.
    Anonymous,
    /// The token matched.
    Token,
    /// A configured user.
    User(String),
    /// A configured nkey user (its public key).
    Nkey(String),
}

/// The credentials a client presented in CONNECT, kept for the life of
/// the connection so that a reload can check them against the new
/// configuration (as nats-server re-authenticates every client).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// CONNECT `user`.
    pub user: Option<String>,
    /// CONNECT `pass`.
    pub pass: Option<String>,
    /// CONNECT `auth_token`.
    pub token: Option<String>,
    /// CONNECT `nkey`.
    pub nkey: Option<String>,
    /// CONNECT `sig`.
    pub sig: Option<String>,
    /// The bcrypt hash `pass` was last verified against, so that a reload
    /// keeping it does not pay for bcrypt again.
    pub verified_pass: Option<String>,
    /// The bcrypt hash `token` was last verified against.
    pub verified_token: Option<String>,
    /// Set by [`AuthConfig::authenticate_nonblocking`] when the answer needs
    /// a bcrypt verification it did not run: `(hash, given secret)`.
    pub bcrypt_needed: Option<(String, String)>,
    /// Whether bcrypt may run inline (false: record it in `bcrypt_needed`).
    defer_bcrypt: bool,
    /// The names the client's TLS certificate offers (`verify_and_map`).
    pub cert_names: Vec<String>,
}

impl Credentials {
    /// The credential fields of a CONNECT.
    pub fn from_connect(c: &ConnectInfo) -> Credentials {
        Credentials {
            user: c.user.clone(),
            pass: c.pass.clone(),
            token: c.auth_token.clone(),
            nkey: c.nkey.clone(),
            sig: c.sig.clone(),
            verified_pass: None,
            verified_token: None,
            bcrypt_needed: None,
            defer_bcrypt: false,
            cert_names: Vec::new(),
        }
    }

    /// Marks `hash` as verified for this connection's password or token
    /// (after a bcrypt worker said the secret matches it).
    pub fn mark_verified(&mut self, hash: &str) {
        self.verified_pass = Some(hash.to_string());
        self.verified_token = Some(hash.to_string());
    }

    fn is_empty_login(&self) -> bool {
        is_empty(&self.user) && is_empty(&self.pass) && is_empty(&self.token)
    }
}

fn is_empty(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

/// A successful authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// Who the client is.
    pub identity: Identity,
    /// The permissions that apply to it (`None`: unrestricted).
    pub permissions: Option<Arc<Permissions>>,
}

impl Authenticated {
    fn plain(identity: Identity) -> Option<Authenticated> {
        Some(Authenticated {
            identity,
            permissions: None,
        })
    }
}

impl AuthConfig {
    /// Merges `--user`/`--pass` into the user list; they replace any users
    /// from the configuration file, as flags override the file.
    pub fn finish_cli(&mut self) -> Result<(), String> {
        match (self.cli_user.take(), self.cli_pass.take()) {
            (Some(name), Some(pass)) => {
                self.users = vec![User {
                    name,
                    password: Some(pass),
                    permissions: None,
                }];
                self.nkeys.clear();
                Ok(())
            }
            (None, None) => Ok(()),
            (Some(_), None) => Err("--user needs --pass".into()),
            (None, Some(_)) => Err("--pass needs --user".into()),
        }
    }

    /// Whether clients must present credentials.
    pub fn required(&self) -> bool {
        self.token.is_some() || !self.users.is_empty() || !self.nkeys.is_empty()
    }

    /// Whether INFO announces `auth_required` (not with a `no_auth_user`,
    /// whose clients need not send credentials).
    pub fn announce_required(&self) -> bool {
        self.required() && self.no_auth_user_entry().is_none()
    }

    /// Whether INFO must carry a nonce (nkey users are configured).
    pub fn needs_nonce(&self) -> bool {
        !self.nkeys.is_empty()
    }

    /// The `no_auth_user`, if it names a configured user.
    pub fn no_auth_user_entry(&self) -> Option<&User> {
        let name = self.no_auth_user.as_deref()?;
        self.users.iter().rev().find(|u| u.name == name)
    }

    /// Logs a client in as the `no_auth_user` without a CONNECT (nats-server
    /// does this when the first operation is not CONNECT).
    pub fn no_auth_login(&self) -> Option<Authenticated> {
        let user = self.no_auth_user_entry()?;
        Some(Authenticated {
            identity: Identity::User(user.name.clone()),
            permissions: user.permissions.clone(),
        })
    }

    /// Like [`AuthConfig::authenticate`], but never runs bcrypt: when the
    /// answer depends on a bcrypt verification, it returns `None` with
    /// `creds.bcrypt_needed` set, and the caller verifies elsewhere, marks
    /// the hash verified ([`Credentials::mark_verified`]) and asks again.
    pub fn authenticate_nonblocking(
        &self,
        creds: &mut Credentials,
        nonce: Option<&str>,
    ) -> Option<Authenticated> {
        creds.defer_bcrypt = true;
        creds.bcrypt_needed = None;
        let result = self.authenticate(creds, nonce);
        creds.defer_bcrypt = false;
        result
    }

    /// Checks the credentials of a CONNECT; `None` means refused.
    ///
    /// `nonce` is the one sent in this connection's INFO. When the client
    /// logs in with a bcrypt password or token, the hash is recorded in
    /// `creds.verified_pass`/`verified_token`; a hash found there already
    /// is taken as verified (the reload path), so bcrypt runs once per
    /// connection and secret.
    pub fn authenticate(
        &self,
        creds: &mut Credentials,
        nonce: Option<&str>,
    ) -> Option<Authenticated> {
        if !self.required() {
            return Authenticated::plain(Identity::Anonymous);
        }
        if self.cert_map {
            // verify_and_map: the certificate says who the client is; what
            // CONNECT says does not count.
            let user = creds
                .cert_names
                .iter()
                .find_map(|name| self.users.iter().rev().find(|u| &u.name == name))?;
            return Some(Authenticated {
                identity: Identity::User(user.name.clone()),
                permissions: user.permissions.clone(),
            });
        }
        if !self.nkeys.is_empty()
            && let Some(nkey) = creds.nkey.as_deref().filter(|k| !k.is_empty())
        {
            let user = self.nkeys.iter().rev().find(|u| u.nkey == nkey)?;
            if !verify_nkey_signature(nkey, creds.sig.as_deref()?, nonce?) {
                return None;
            }
            return Some(Authenticated {
                identity: Identity::Nkey(user.nkey.clone()),
                permissions: user.permissions.clone(),
            });
        }
        if !self.users.is_empty() {
            if creds.is_empty_login()
                && let Some(login) = self.no_auth_login()
            {
                return Some(login);
            }
            let name = creds.user.as_deref().unwrap_or_default();
            if !name.is_empty() {
                let user = self.users.iter().rev().find(|u| u.name == name)?;
                let want = user.password.as_deref().unwrap_or_default();
                let got = creds.pass.as_deref().unwrap_or_default();
                let verified = compare_secret(
                    want,
                    got,
                    &mut creds.verified_pass,
                    creds.defer_bcrypt.then_some(&mut creds.bcrypt_needed),
                );
                return verified.then(|| Authenticated {
                    identity: Identity::User(user.name.clone()),
                    permissions: user.permissions.clone(),
                });
            }
        }
        if let Some(want) = &self.token {
            let got = creds.token.as_deref().unwrap_or_default();
            let verified = compare_secret(
                want,
                got,
                &mut creds.verified_token,
                creds.defer_bcrypt.then_some(&mut creds.bcrypt_needed),
            );
            return verified.then_some(Authenticated {
                identity: Identity::Token,
                permissions: None,
            });
        }
        None
    }
}

/// nats-server's `comparePasswords`: bcrypt when the configured secret is
/// a bcrypt hash, constant-time equality otherwise. With `defer`, a bcrypt
/// verification is not run but recorded there (and the answer is false for
/// now).
fn compare_secret(
    configured: &str,
    given: &str,
    verified: &mut Option<String>,
    defer: Option<&mut Option<(String, String)>>,
) -> bool {
    if !is_bcrypt(configured) {
        return constant_time_eq(configured.as_bytes(), given.as_bytes());
    }
    if verified.as_deref() == Some(configured) {
        return true;
    }
    if let Some(needed) = defer {
        *needed = Some((configured.to_string(), given.to_string()));
        return false;
    }
    let ok = verify_bcrypt(given, configured);
    if ok {
        *verified = Some(configured.to_string());
    }
    ok
}

/// Runs bcrypt (slow on purpose: tens of milliseconds or more). The server
/// calls it on its bcrypt worker thread, never on the event loop.
pub fn verify_bcrypt(given: &str, hash: &str) -> bool {
    bcrypt::verify(given, hash).unwrap_or(false)
}

/// Whether a configured password or token is a bcrypt hash: `$2a$`, `$2b$`,
/// `$2x$` or `$2y$` followed by a two-digit cost and `$`.
pub fn is_bcrypt(secret: &str) -> bool {
    let b = secret.as_bytes();
    b.len() >= 7
        && b.starts_with(b"$2")
        && matches!(b[2], b'a' | b'b' | b'x' | b'y')
        && b[3] == b'$'
        && b[4].is_ascii_digit()
        && b[5].is_ascii_digit()
        && b[6] == b'$'
}

/// Whether `nkey` is a valid public user nkey (`U...`).
pub fn is_valid_user_nkey(nkey: &str) -> bool {
    nkey.starts_with('U') && nkeys::KeyPair::from_public_key(nkey).is_ok()
}

/// Verifies `sig` (base64url, or standard base64) as the Ed25519
/// signature by `nkey` of the nonce text.
pub fn verify_nkey_signature(nkey: &str, sig: &str, nonce: &str) -> bool {
    let sig = match base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig) {
        Ok(s) => s,
        Err(_) => match base64::engine::general_purpose::STANDARD.decode(sig) {
            Ok(s) => s,
            Err(_) => return false,
        },
    };
    let Ok(key) = nkeys::KeyPair::from_public_key(nkey) else {
        return false;
    };
    key.verify(nonce.as_bytes(), &sig).is_ok()
}

/// A fresh nonce for INFO: 11 bytes from the OS, base64url without padding.
pub fn new_nonce() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; NONCE_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(json: &str) -> Credentials {
        Credentials::from_connect(&ConnectInfo::decode(json.as_bytes()).unwrap())
    }

    fn login(a: &AuthConfig, json: &str) -> Option<Identity> {
        a.authenticate(&mut creds(json), None).map(|x| x.identity)
    }

    fn user(name: &str, pass: &str) -> User {
        User {
            name: name.into(),
            password: Some(pass.into()),
            permissions: None,
        }
    }

    #[test]
    fn no_auth_accepts_everyone() {
        let a = AuthConfig::default();
        assert!(!a.required());
        assert_eq!(login(&a, "{}"), Some(Identity::Anonymous));
    }

    #[test]
    fn users() {
        let a = AuthConfig {
            users: vec![user("alice", "pw"), user("bob", "")],
            ..Default::default()
        };
        assert!(a.required() && a.announce_required());
        assert_eq!(
            login(&a, r#"{"user":"alice","pass":"pw"}"#),
            Some(Identity::User("alice".into()))
        );
        assert_eq!(login(&a, r#"{"user":"alice","pass":"px"}"#), None);
        assert_eq!(login(&a, r#"{"user":"carol","pass":"pw"}"#), None);
        assert_eq!(login(&a, "{}"), None);
        // An empty configured password takes only an empty one.
        assert_eq!(
            login(&a, r#"{"user":"bob"}"#),
            Some(Identity::User("bob".into()))
        );
        assert_eq!(login(&a, r#"{"user":"bob","pass":"x"}"#), None);
    }

    #[test]
    fn token() {
        let a = AuthConfig {
            token: Some("s3cret".into()),
            ..Default::default()
        };
        assert_eq!(
            login(&a, r#"{"auth_token":"s3cret"}"#),
            Some(Identity::Token)
        );
        assert_eq!(login(&a, r#"{"auth_token":"nope"}"#), None);
        assert_eq!(login(&a, r#"{"user":"s3cret","pass":"s3cret"}"#), None);
    }

    #[test]
    fn bcrypt_passwords_and_tokens() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        assert!(is_bcrypt(&hash));
        for prefix in ["$2a$", "$2b$", "$2x$", "$2y$"] {
            assert!(is_bcrypt(&format!("{prefix}10$abc")), "{prefix}");
        }
        assert!(!is_bcrypt("$2c$10$abc"));
        assert!(!is_bcrypt("$2a$1$abc"));
        assert!(!is_bcrypt("plain"));
        let a = AuthConfig {
            users: vec![user("u", &hash)],
            ..Default::default()
        };
        let mut c = creds(r#"{"user":"u","pass":"pw"}"#);
        assert!(a.authenticate(&mut c, None).is_some());
        assert_eq!(c.verified_pass.as_deref(), Some(hash.as_str()));
        assert_eq!(c.verified_token, None);
        assert_eq!(login(&a, r#"{"user":"u","pass":"px"}"#), None);
        // The hash itself is not the password.
        let json = format!(r#"{{"user":"u","pass":"{hash}"}}"#);
        assert_eq!(login(&a, &json), None);
        // A $2y$ hash (as htpasswd writes them) verifies too.
        let y = hash.replacen("$2b$", "$2y$", 1);
        let a = AuthConfig {
            token: Some(y),
            ..Default::default()
        };
        assert_eq!(login(&a, r#"{"auth_token":"pw"}"#), Some(Identity::Token));
    }

    #[test]
    fn nkeys_sign_the_nonce() {
        let kp = nkeys::KeyPair::new_user();
        let public = kp.public_key();
        assert!(is_valid_user_nkey(&public));
        assert!(!is_valid_user_nkey(
            &nkeys::KeyPair::new_account().public_key()
        ));
        assert!(!is_valid_user_nkey("Ubogus"));
        let a = AuthConfig {
            nkeys: vec![NkeyUser {
                nkey: public.clone(),
                permissions: None,
            }],
            ..Default::default()
        };
        assert!(a.required() && a.needs_nonce());
        let nonce = new_nonce().unwrap();
        assert_eq!(nonce.len(), 15);
        assert_ne!(nonce, new_nonce().unwrap());
        let sig = kp.sign(nonce.as_bytes()).unwrap();
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&sig);
        let std = base64::engine::general_purpose::STANDARD.encode(&sig);
        for s in [&url, &std] {
            let mut c = Credentials {
                nkey: Some(public.clone()),
                sig: Some(s.clone()),
                ..Default::default()
            };
            assert_eq!(
                a.authenticate(&mut c, Some(&nonce)).map(|x| x.identity),
                Some(Identity::Nkey(public.clone()))
            );
        }
        // Another nonce, a missing signature, an unknown key.
        let mut c = Credentials {
            nkey: Some(public.clone()),
            sig: Some(url.clone()),
            ..Default::default()
        };
        assert!(a.authenticate(&mut c, Some("AAAAAAAAAAAAAAA")).is_none());
        c.sig = None;
        assert!(a.authenticate(&mut c, Some(&nonce)).is_none());
        let other = nkeys::KeyPair::new_user();
        let mut c = Credentials {
            nkey: Some(other.public_key()),
            sig: Some(
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(other.sign(nonce.as_bytes()).unwrap()),
            ),
            ..Default::default()
        };
        assert!(a.authenticate(&mut c, Some(&nonce)).is_none());
    }

    #[test]
    fn no_auth_user() {
        let a = AuthConfig {
            users: vec![user("guest", "g"), user("admin", "a")],
            no_auth_user: Some("guest".into()),
            ..Default::default()
        };
        assert!(a.required() && !a.announce_required());
        assert_eq!(login(&a, "{}"), Some(Identity::User("guest".into())));
        assert_eq!(
            login(&a, r#"{"user":"admin","pass":"a"}"#),
            Some(Identity::User("admin".into()))
        );
        assert_eq!(login(&a, r#"{"user":"admin","pass":"x"}"#), None);
        assert_eq!(
            a.no_auth_login().map(|x| x.identity),
            Some(Identity::User("guest".into()))
        );
    }

    #[test]
    fn constant_time() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
