//! Protocol errors: what a client did wrong, the exact `-ERR` text nats-server
//! sends for it, and whether the connection survives.
//!
//! nats-server has three reactions to bad input (fact sheet §3.3):
//! - **A**: send `-ERR '<text>'` and close the connection;
//! - **B**: send `-ERR '<text>'` and keep the connection;
//! - **C**: close the connection without sending anything.
//!
//! [`ProtoError::err_text`] gives the text (None for class C) and
//! [`ProtoError::is_fatal`] says whether the connection is closed.

use std::fmt;

/// One thing a client got wrong (or a limit it hit).
///
/// The variants carry no allocations except the permission errors, which
/// must quote the offending subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// Unknown verb, blank argument list after a verb, bad payload trailer.
    UnknownOp,
    /// The argument part of a control line is longer than `max_control_line`.
    MaxControlLine,
    /// A PUB/HPUB announced more bytes than `max_payload`.
    MaxPayload,
    /// Wrong credentials, or a first operation other than CONNECT when auth is required.
    AuthorizationViolation,
    /// No valid CONNECT within the auth timeout.
    AuthenticationTimeout,
    /// The server already has `max_connections` clients.
    MaxConnections,
    /// CONNECT `protocol` other than 0 or 1.
    InvalidClientProtocol,
    /// CONNECT with `no_responders` but without `headers`.
    NoRespondersRequiresHeaders,
    /// `ping_max` PINGs went unanswered.
    StaleConnection,
    /// The client could not keep up with its outbound traffic (`max_pending`).
    /// nats-server closes silently; natrium says why first.
    SlowConsumer,
    /// SUB with a malformed subject.
    InvalidSubject,
    /// Pedantic PUB to a subject that is not a valid literal (the message is still delivered).
    InvalidPublishSubject,
    /// SUB beyond `max_subscriptions`.
    MaxSubscriptions,
    /// PUB to a subject the user may not publish to.
    PublishViolation(String),
    /// SUB to a subject (and maybe queue) the user may not subscribe to.
    SubscribeViolation {
        /// The subject of the refused SUB.
        subject: String,
        /// Its queue group, if any.
        queue: Option<String>,
    },
    /// A plain-text client on a TLS-only server, or a TLS handshake that
    /// did not start in time.
    SecureConnectionRequired,
    /// More new TLS connections this second than `tls.connection_rate_limit`.
    ConnectionThrottling,
    /// Malformed arguments (wrong count, bad size, bad JSON, HPUB without
    /// headers, ...): nats-server closes without a word (class C).
    Malformed,
}

impl ProtoError {
    /// The text inside `-ERR '...'`, or `None` when the connection is closed silently.
    pub fn err_text(&self) -> Option<String> {
        let fixed = match self {
            ProtoError::UnknownOp => "Unknown Protocol Operation",
            ProtoError::MaxControlLine => "maximum control line exceeded",
            ProtoError::MaxPayload => "Maximum Payload Violation",
            ProtoError::AuthorizationViolation => "Authorization Violation",
            ProtoError::AuthenticationTimeout => "Authentication Timeout",
            ProtoError::MaxConnections => "maximum connections exceeded",
            ProtoError::InvalidClientProtocol => "invalid client protocol",
            ProtoError::NoRespondersRequiresHeaders => "no responders requires headers support",
            ProtoError::StaleConnection => "Stale Connection",
            ProtoError::SlowConsumer => "Slow Consumer",
            ProtoError::InvalidSubject => "Invalid Subject",
            ProtoError::InvalidPublishSubject => "Invalid Publish Subject",
            ProtoError::MaxSubscriptions => "maximum subscriptions exceeded",
            ProtoError::SecureConnectionRequired => "Secure Connection - TLS Required",
            ProtoError::ConnectionThrottling => {
                "Connection throttling is active. Please try again later."
            }
            ProtoError::PublishViolation(subject) => {
                return Some(format!(
                    "Permissions Violation for Publish to {}",
                    go_quote(subject)
                ));
            }
            ProtoError::SubscribeViolation { subject, queue } => {
                return Some(match queue {
                    Some(q) => format!(
                        "Permissions Violation for Subscription to {} using queue {}",
                        go_quote(subject),
                        go_quote(q)
                    ),
                    None => format!(
                        "Permissions Violation for Subscription to {}",
                        go_quote(subject)
                    ),
                });
            }
            ProtoError::Malformed => return None,
        };
        Some(fixed.to_string())
    }

    /// Whether nats-server closes the connection after this error.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            ProtoError::InvalidSubject
                | ProtoError::InvalidPublishSubject
                | ProtoError::MaxSubscriptions
                | ProtoError::PublishViolation(_)
                | ProtoError::SubscribeViolation { .. }
        )
    }
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.err_text() {
            Some(text) => f.write_str(&text),
            None => f.write_str("malformed protocol arguments"),
        }
    }
}

impl std::error::Error for ProtoError {}

/// Quotes a string the way Go's `%q` does for the printable ASCII subjects
/// clients use: in double quotes, with `"` and `\` escaped and anything
/// unprintable as `\xNN`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_match_nats_server() {
        assert_eq!(
            ProtoError::UnknownOp.err_text().as_deref(),
            Some("Unknown Protocol Operation")
        );
        assert_eq!(ProtoError::Malformed.err_text(), None);
        assert_eq!(
            ProtoError::PublishViolation("foo.bar".into())
                .err_text()
                .as_deref(),
            Some("Permissions Violation for Publish to \"foo.bar\"")
        );
        assert_eq!(
            ProtoError::SubscribeViolation {
                subject: "foo".into(),
                queue: Some("q".into())
            }
            .err_text()
            .as_deref(),
            Some("Permissions Violation for Subscription to \"foo\" using queue \"q\"")
        );
    }

    #[test]
    fn fatality_classes() {
        assert!(ProtoError::MaxPayload.is_fatal());
        assert!(ProtoError::Malformed.is_fatal());
        assert!(!ProtoError::InvalidSubject.is_fatal());
        assert!(!ProtoError::MaxSubscriptions.is_fatal());
    }
}
