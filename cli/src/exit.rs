//! Exit statuses and the one-line failure messages behind them.
//!
//! The contract: 0 ok (or the command's own status for `exec`), 1 refused / denied / expired /
//! not allowed / rejected by the server, 2 usage (bad flags, unusable local files), 3 server
//! or agent socket unreachable.

use std::error::Error as StdError;
use std::fmt;

use tonic::Code;

use countersign_api::display::clean_lines;

/// Success.
pub const OK: u8 = 0;
/// Refused, denied, expired, not allowed, or any other failure with a message.
pub const REFUSED: u8 = 1;
/// Bad command line or local input.
pub const USAGE: u8 = 2;
/// The control-plane server or the agent socket cannot be reached.
pub const UNREACHABLE: u8 = 3;

/// What a command returns: the exit status, or a failure to print.
pub type Outcome = Result<u8, Failure>;

/// A failure: the message printed on stderr (after `countersign: `) and the exit status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Exit status.
    pub code: u8,
    /// One line (possibly followed by hints on further lines).
    pub message: String,
}

impl Failure {
    /// Exit 1 with `message`.
    pub fn refused(message: impl Into<String>) -> Self {
        Failure {
            code: REFUSED,
            message: message.into(),
        }
    }

    /// Exit 2 with `message`.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: USAGE,
            message: message.into(),
        }
    }

    /// Exit 3 with `message`.
    pub fn unreachable(message: impl Into<String>) -> Self {
        Failure {
            code: UNREACHABLE,
            message: message.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::refused(format!("{e:#}"))
    }
}

impl From<tonic::Status> for Failure {
    fn from(status: tonic::Status) -> Self {
        from_status(&status)
    }
}

/// Maps a gRPC status to a one-line message carrying the server's own words.
pub fn from_status(status: &tonic::Status) -> Failure {
    // A call that never reached the server (e.g. the TLS handshake refused our certificate)
    // comes back as a status wrapping the transport error: say what the transport said.
    if let Some(source) = StdError::source(status) {
        let detail = chain(source);
        let msg = clean_lines(status.message());
        let text = if detail.starts_with(msg.as_str()) {
            detail
        } else {
            format!("{msg}: {detail}")
        };
        return Failure::unreachable(format!(
            "connection to the server failed: {text} (a server that does not accept the \
             client certificate closes the connection this way)"
        ));
    }
    let msg = clean_lines(status.message());
    let msg = if msg.is_empty() {
        status.code().description().to_owned()
    } else {
        msg
    };
    match status.code() {
        Code::PermissionDenied => Failure::refused(format!("permission denied: {msg}")),
        Code::Unauthenticated => Failure::refused(format!("not authenticated: {msg}")),
        Code::NotFound => Failure::refused(format!("not found: {msg}")),
        Code::FailedPrecondition => Failure::refused(msg),
        Code::AlreadyExists => Failure::refused(format!("already exists: {msg}")),
        // The server judged the input (a grant longer than the rule allows, a policy that does
        // not validate): a refusal with the server's words, not a command-line mistake.
        Code::InvalidArgument | Code::OutOfRange => {
            Failure::refused(format!("invalid argument: {msg}"))
        }
        Code::Unimplemented => Failure::refused(format!("not supported by this server: {msg}")),
        Code::Unavailable | Code::DeadlineExceeded => {
            Failure::unreachable(format!("server unavailable: {msg}"))
        }
        code => Failure::refused(format!("server error ({code:?}): {msg}")),
    }
}

/// An error with its sources, `a: b: c`, without repeating a source its parent already
/// quotes (tonic and hyper often do).
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !text.is_empty() && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_codes_map_to_exit_statuses() {
        let cases = [
            (Code::PermissionDenied, REFUSED, "permission denied: x"),
            (Code::Unauthenticated, REFUSED, "not authenticated: x"),
            (Code::NotFound, REFUSED, "not found: x"),
            (Code::FailedPrecondition, REFUSED, "x"),
            (Code::InvalidArgument, REFUSED, "invalid argument: x"),
            (Code::Unavailable, UNREACHABLE, "server unavailable: x"),
            (Code::DeadlineExceeded, UNREACHABLE, "server unavailable: x"),
            (Code::Internal, REFUSED, "server error (Internal): x"),
        ];
        for (code, exit, text) in cases {
            let f = from_status(&tonic::Status::new(code, "x"));
            assert_eq!((f.code, f.message.as_str()), (exit, text), "{code:?}");
        }
    }

    #[test]
    fn server_messages_lose_control_characters() {
        let f = from_status(&tonic::Status::permission_denied("a\x1b[2Jb"));
        assert_eq!(f.message, "permission denied: a\\x1b[2Jb");
        let f = from_status(&tonic::Status::not_found(""));
        assert_eq!(f.message, "not found: Some requested entity was not found");
    }

    #[test]
    fn chain_skips_repeats() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl fmt::Display for E {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
        impl StdError for E {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                self.1.as_deref().map(|e| e as &(dyn StdError + 'static))
            }
        }
        let e = E(
            "transport error",
            Some(Box::new(E(
                "connection refused",
                Some(Box::new(E("connection refused", None))),
            ))),
        );
        assert_eq!(chain(&e), "transport error: connection refused");
    }
}
