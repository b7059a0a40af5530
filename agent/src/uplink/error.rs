//! Why a connection to the control plane ended.

use std::fmt::Write as _;

/// A failure of the link; the uplink reconnects after any of them.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// TLS material missing or refused by rustls.
    #[error("TLS configuration: {0}")]
    Tls(String),
    /// The server URL is not usable.
    #[error("server URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    /// No connection (refused, unreachable, handshake failed).
    #[error("connecting: {0}")]
    Connect(String),
    /// A call failed.
    #[error("{call}: {status}")]
    Rpc {
        call: &'static str,
        status: Box<tonic::Status>,
    },
    /// A call got no answer in time.
    #[error("{0}: no answer in time")]
    Timeout(&'static str),
    /// The server ended the decision stream.
    #[error("the server closed the decision stream")]
    StreamEnded,
    /// The server acknowledged nothing of a batch.
    #[error("the server stored none of events {first}..={last} (acknowledged {acked})")]
    NotStored { first: u64, last: u64, acked: u64 },
    /// Reading the spool or writing the progress file.
    #[error("{0}")]
    Io(String),
}

impl LinkError {
    /// Groups errors that describe the same situation, for logging state changes only.
    pub fn kind(&self) -> String {
        match self {
            Self::Tls(_) => "tls".into(),
            Self::Url { .. } => "url".into(),
            Self::Connect(_) => "connect".into(),
            Self::Rpc { call, status } => format!("{call}:{:?}", status.code()),
            Self::Timeout(call) => format!("timeout:{call}"),
            Self::StreamEnded => "stream-ended".into(),
            Self::NotStored { .. } => "not-stored".into(),
            Self::Io(_) => "io".into(),
        }
    }

    /// A failed call.
    pub fn rpc(call: &'static str, status: tonic::Status) -> Self {
        Self::Rpc {
            call,
            status: Box::new(status),
        }
    }
}

/// An error and its causes on one line (tonic's transport errors say little at the top).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            let _ = write!(s, ": {text}");
        }
        source = cause.source();
    }
    s
}

impl From<std::io::Error> for LinkError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e.to_string())
    }
}

/// Whether a call failing with `code` may succeed later on its own (else the request itself
/// is wrong and retrying it would fail forever).
pub fn retryable(code: tonic::Code) -> bool {
    use tonic::Code;
    !matches!(
        code,
        Code::InvalidArgument
            | Code::PermissionDenied
            | Code::NotFound
            | Code::FailedPrecondition
            | Code::AlreadyExists
            | Code::OutOfRange
    )
}
