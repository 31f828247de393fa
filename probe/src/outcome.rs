//! The words a probe attempt ends in, and the classification of transport
//! failures into them.
//!
//! Like pingora's `ErrorType`, [`Outcome`] separates failures by what they
//! mean for attribution (refused, timed out, TLS, protocol) rather than by
//! the library that produced them. Every variant maps 1:1 onto a word of
//! `docs/PROBES.md`; io errors are classified by raw errno, because the
//! kernel's answer is the evidence (nginx logs the same errno).

use std::io;

pub use gw502_vocab::{Outcome, Phase};

/// A classified failure: the outcome word, the phase and words for operators.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{outcome} during {phase}: {detail}")]
pub struct Failure {
    /// The outcome word.
    pub outcome: Outcome,
    /// Where it happened.
    pub phase: Phase,
    /// Operator words; for `tls_error`/`protocol_mismatch` it starts with a
    /// docs/PROBES.md prefix.
    pub detail: String,
}

impl Failure {
    /// Builds a failure from its parts.
    pub fn new(outcome: Outcome, phase: Phase, detail: impl Into<String>) -> Self {
        Self {
            outcome,
            phase,
            detail: detail.into(),
        }
    }

    /// Classifies an io error seen in `phase`.
    pub fn io(phase: Phase, err: &io::Error) -> Self {
        Self::new(classify_io(phase, err), phase, err.to_string())
    }

    /// A timeout in `phase`.
    pub fn timeout(phase: Phase) -> Self {
        Self::new(
            Outcome::Timeout,
            phase,
            format!("no answer in time during {phase}"),
        )
    }
}

/// Maps an io error to an outcome by raw errno first, then by kind.
///
/// `EAGAIN` only means a full backlog on a unix connect, which is the only
/// place a non-blocking connect returns it; `ENOENT` likewise only comes from
/// a unix socket path.
pub fn classify_io(phase: Phase, err: &io::Error) -> Outcome {
    if let Some(errno) = err.raw_os_error() {
        match errno {
            libc::ECONNREFUSED => return Outcome::Refused,
            libc::ENOENT | libc::ENOTDIR => return Outcome::NoSuchSocket,
            libc::EACCES | libc::EPERM => return Outcome::PermissionDenied,
            libc::EHOSTUNREACH | libc::ENETUNREACH | libc::EHOSTDOWN | libc::ENETDOWN => {
                return Outcome::Unreachable;
            }
            libc::EAGAIN if phase == Phase::Connect => return Outcome::Saturated,
            libc::ETIMEDOUT => return Outcome::Timeout,
            libc::ECONNRESET | libc::EPIPE | libc::ECONNABORTED => return Outcome::Reset,
            _ => {}
        }
    }
    match err.kind() {
        io::ErrorKind::ConnectionRefused => Outcome::Refused,
        io::ErrorKind::NotFound => Outcome::NoSuchSocket,
        io::ErrorKind::PermissionDenied => Outcome::PermissionDenied,
        io::ErrorKind::TimedOut => Outcome::Timeout,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted => Outcome::Reset,
        io::ErrorKind::UnexpectedEof => Outcome::PrematureClose,
        io::ErrorKind::InvalidData => Outcome::InvalidResponse,
        _ if phase == Phase::Connect => Outcome::Unreachable,
        _ => Outcome::PrematureClose,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_table() {
        let rows = [
            (libc::ECONNREFUSED, Phase::Connect, Outcome::Refused),
            (libc::ENOENT, Phase::Connect, Outcome::NoSuchSocket),
            (libc::EACCES, Phase::Connect, Outcome::PermissionDenied),
            (libc::EPERM, Phase::Connect, Outcome::PermissionDenied),
            (libc::EHOSTUNREACH, Phase::Connect, Outcome::Unreachable),
            (libc::ENETUNREACH, Phase::Connect, Outcome::Unreachable),
            (libc::EAGAIN, Phase::Connect, Outcome::Saturated),
            (libc::ECONNRESET, Phase::Response, Outcome::Reset),
            (libc::EPIPE, Phase::Request, Outcome::Reset),
            (libc::ETIMEDOUT, Phase::Connect, Outcome::Timeout),
        ];
        for (errno, phase, want) in rows {
            let err = io::Error::from_raw_os_error(errno);
            assert_eq!(classify_io(phase, &err), want, "errno {errno}");
        }
    }

    #[test]
    fn eagain_outside_connect_is_not_saturation() {
        let err = io::Error::from_raw_os_error(libc::EAGAIN);
        assert_ne!(classify_io(Phase::Response, &err), Outcome::Saturated);
    }

    #[test]
    fn words_match_the_contract() {
        let doc = include_str!("../../docs/PROBES.md");
        for o in [
            Outcome::Ok,
            Outcome::Refused,
            Outcome::Timeout,
            Outcome::NoSuchSocket,
            Outcome::PermissionDenied,
            Outcome::Unreachable,
            Outcome::Saturated,
            Outcome::DnsError,
            Outcome::TlsError,
            Outcome::ProtocolMismatch,
            Outcome::InvalidResponse,
            Outcome::HeaderTooBig,
            Outcome::PrematureClose,
            Outcome::Reset,
            Outcome::Blocked,
        ] {
            assert!(doc.contains(&format!("| `{}` |", o.as_str())), "{o}");
        }
    }
}
