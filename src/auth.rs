//! Authentication: which credentials the server accepts and checking a
//! CONNECT against them.
//!
//! Auth is required as soon as a token or at least one user is configured.
//! Secrets are compared in constant time.

use crate::config::ConfigError;
use crate::proto::ConnectInfo;
use std::time::Duration;

/// One user that may connect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// The user name sent in CONNECT `user`.
    pub name: String,
    /// The password sent in CONNECT `pass`; `None` accepts any password.
    pub password: Option<String>,
}

/// The configured credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// A token clients send as `auth_token`.
    pub token: Option<String>,
    /// Users clients log in as with `user`/`pass`.
    pub users: Vec<User>,
    /// Time a client has to send a valid CONNECT when auth is required.
    pub timeout: Duration,
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
            timeout: Duration::from_secs(2),
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
}

impl AuthConfig {
    /// Merges `--user`/`--pass` into the user list; they replace any users
    /// from the configuration file, as flags override the file.
    pub fn finish_cli(&mut self) -> Result<(), ConfigError> {
        match (self.cli_user.take(), self.cli_pass.take()) {
            (Some(name), Some(pass)) => {
                self.users = vec![User {
                    name,
                    password: Some(pass),
                }];
                Ok(())
            }
            (None, None) => Ok(()),
            (Some(_), None) => Err(ConfigError("--user needs --pass".into())),
            (None, Some(_)) => Err(ConfigError("--pass needs --user".into())),
        }
    }

    /// Whether clients must present credentials.
    pub fn required(&self) -> bool {
        self.token.is_some() || !self.users.is_empty()
    }

    /// Checks the credentials of a CONNECT; `None` means refused.
    pub fn authenticate(&self, connect: &ConnectInfo) -> Option<Identity> {
        if !self.required() {
            return Some(Identity::Anonymous);
        }
        if let (Some(want), Some(got)) = (&self.token, &connect.auth_token)
            && constant_time_eq(want.as_bytes(), got.as_bytes())
        {
            return Some(Identity::Token);
        }
        let name = connect.user.as_deref()?;
        let user = self.users.iter().find(|u| u.name == name)?;
        match &user.password {
            None => Some(Identity::User(user.name.clone())),
            Some(want) => {
                let got = connect.pass.as_deref().unwrap_or_default();
                constant_time_eq(want.as_bytes(), got.as_bytes())
                    .then(|| Identity::User(user.name.clone()))
            }
        }
    }
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

    fn connect(json: &str) -> ConnectInfo {
        ConnectInfo::decode(json.as_bytes()).unwrap()
    }

    #[test]
    fn no_auth_accepts_everyone() {
        let a = AuthConfig::default();
        assert!(!a.required());
        assert_eq!(a.authenticate(&connect("{}")), Some(Identity::Anonymous));
    }

    #[test]
    fn token_and_users() {
        let a = AuthConfig {
            token: Some("s3cret".into()),
            users: vec![User {
                name: "alice".into(),
                password: Some("pw".into()),
            }],
            ..Default::default()
        };
        assert!(a.required());
        assert_eq!(
            a.authenticate(&connect(r#"{"auth_token":"s3cret"}"#)),
            Some(Identity::Token)
        );
        assert_eq!(a.authenticate(&connect(r#"{"auth_token":"nope"}"#)), None);
        assert_eq!(
            a.authenticate(&connect(r#"{"user":"alice","pass":"pw"}"#)),
            Some(Identity::User("alice".into()))
        );
        assert_eq!(
            a.authenticate(&connect(r#"{"user":"alice","pass":"px"}"#)),
            None
        );
        assert_eq!(
            a.authenticate(&connect(r#"{"user":"bob","pass":"pw"}"#)),
            None
        );
        assert_eq!(a.authenticate(&connect("{}")), None);
    }

    #[test]
    fn constant_time() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
