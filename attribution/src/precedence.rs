//! Which cause wins when several fit, and how sure the engine is: the one
//! place both are decided (docs/TAXONOMY.md §2, "Precedence and confidence").
//!
//! A rule never writes a confidence number. It says how its finding was
//! established, a [`Tier`]; the winner among a host's findings is the highest
//! tier, then the cause that comes first in [`PRECEDENCE`] (the root cause
//! before the symptom it explains). Confidence is derived afterwards, in
//! [`confidence`], from the tier plus the quality of the evidence behind it
//! ([`Support`]): corroboration by independent sources raises it; a stale
//! agent, unavailable sources, a host only assumed to serve the site and a
//! rival finding of the same layer and tier lower it.

use std::cmp::Ordering;

use super::verdict::Cause;

/// How a finding was established, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tier {
    /// Nothing points at a layer: `unknown/insufficient_evidence`.
    Unattributed,
    /// Consistent with the cause, but what would confirm it is missing or
    /// disagrees (no listener found, the unit is down too, a candidate set).
    Circumstantial,
    /// One source names the cause and nothing contradicts it, or host state
    /// shows the cause without the trigger pinning it (a relayed 5xx, a
    /// timeout with no pool evidence, a unit alive with no socket).
    Inferred,
    /// The trigger's cause is backed by a second, independent source
    /// (a listener elsewhere, restart events, a journal line, a config test).
    Confirmed,
    /// The proxy or probe said exactly this and host state confirms it with
    /// the specific fact (the socket's mode, the failed DNS answer, the
    /// stopped unit and nothing on the target).
    Direct,
}

/// Causes in order of precedence within one tier: a cause that explains
/// another comes first (a bad config explains a stopped proxy, a crash loop
/// explains resets, an exhausted pool explains timeouts, a failing
/// dependency explains the app's own 5xx); symptoms (`no_live_upstreams`)
/// and site-wide fallbacks come last.
pub(crate) const PRECEDENCE: &[Cause] = &[
    Cause::ProxyConfigInvalid,
    Cause::ProxyDown,
    Cause::CrashLoop,
    Cause::ServiceDown,
    Cause::NotListening,
    Cause::BindMismatch,
    Cause::WrongPort,
    Cause::WrongSocketPath,
    Cause::SocketPermissionDenied,
    Cause::DnsFailure,
    Cause::TlsCertificateError,
    Cause::TlsMismatch,
    Cause::ProtocolMismatch,
    Cause::FirewallBlocked,
    Cause::Saturated,
    Cause::DependencyFailure,
    Cause::HeaderTooBig,
    Cause::InvalidHeader,
    Cause::InvalidBody,
    Cause::PrematureClose,
    Cause::ConnectionReset,
    Cause::Timeout,
    Cause::UpstreamReturnedError,
    Cause::NoLiveUpstreams,
    Cause::EdgeTlsToOrigin,
    Cause::EdgeOriginDns,
    Cause::EdgeGenerated,
    Cause::ClientPath,
    Cause::InsufficientEvidence,
];

/// The starting confidence of each tier, before the evidence's quality.
pub(crate) fn base(tier: Tier) -> f64 {
    match tier {
        Tier::Direct => 0.9,
        Tier::Confirmed => 0.85,
        Tier::Inferred => 0.75,
        Tier::Circumstantial => 0.5,
        Tier::Unattributed => 0.2,
    }
}

/// Each corroboration (the same cause found again from a new source) adds this.
const CORROBORATION: f64 = 0.04;
/// Corroborations counted at most.
const MAX_CORROBORATIONS: u8 = 2;
/// A stale agent (no report for three intervals) keeps this share.
const STALE: f64 = 0.7;
/// Each unavailable source on the host, an assumed host and a competing
/// finding of the same tier keep this share each.
const GAP: f64 = 0.9;

/// The quality of the evidence behind one finding.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Support {
    /// Times the same cause was found again from a source not yet cited.
    pub corroborations: u8,
    /// The host's agent has not reported for three intervals.
    pub stale: bool,
    /// Sections the host reported as unavailable.
    pub unavailable: u8,
    /// No config names the site's hosts; the only host was assumed.
    pub assumed_host: bool,
    /// A rival cause of the same layer was found on the same host at the same
    /// tier (the evidence fits both equally well).
    pub contested: bool,
}

/// The confidence of a finding: the tier's base, plus corroboration, times
/// the freshness and completeness of the evidence, in `[0.05, 0.99]`.
pub(crate) fn confidence(tier: Tier, s: &Support) -> f64 {
    let mut c = base(tier) + CORROBORATION * f64::from(s.corroborations.min(MAX_CORROBORATIONS));
    if s.stale {
        c *= STALE;
    }
    let gaps = i32::from(s.unavailable) + i32::from(s.assumed_host) + i32::from(s.contested);
    c *= GAP.powi(gaps);
    c.clamp(0.05, 0.99)
}

/// Position of a cause in [`PRECEDENCE`] (0 wins).
pub(crate) fn rank(cause: Cause) -> usize {
    PRECEDENCE
        .iter()
        .position(|c| *c == cause)
        .unwrap_or(PRECEDENCE.len())
}

/// Orders two (tier, cause) pairs: `Greater` means `a` wins.
pub(crate) fn compare(a: (Tier, Cause), b: (Tier, Cause)) -> Ordering {
    a.0.cmp(&b.0).then_with(|| rank(b.1).cmp(&rank(a.1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_lists_every_cause_once() {
        assert_eq!(PRECEDENCE.len(), Cause::ALL.len());
        for c in Cause::ALL {
            assert_eq!(
                PRECEDENCE.iter().filter(|x| *x == c).count(),
                1,
                "{c} must appear once"
            );
        }
    }

    #[test]
    fn tier_beats_rank_and_rank_breaks_ties() {
        let weak_root = (Tier::Inferred, Cause::ProxyConfigInvalid);
        let strong_symptom = (Tier::Confirmed, Cause::NoLiveUpstreams);
        assert_eq!(compare(strong_symptom, weak_root), Ordering::Greater);
        let crash = (Tier::Confirmed, Cause::CrashLoop);
        let reset = (Tier::Confirmed, Cause::ConnectionReset);
        assert_eq!(compare(crash, reset), Ordering::Greater);
        assert_eq!(compare(reset, crash), Ordering::Less);
    }

    #[test]
    fn confidence_follows_the_formula() {
        let plain = Support::default();
        assert_eq!(confidence(Tier::Direct, &plain), 0.9);
        let corroborated = Support {
            corroborations: 5,
            ..plain
        };
        assert!((confidence(Tier::Direct, &corroborated) - 0.98).abs() < 1e-9);
        let stale = Support {
            stale: true,
            ..plain
        };
        assert!((confidence(Tier::Direct, &stale) - 0.63).abs() < 1e-9);
        let gaps = Support {
            unavailable: 2,
            contested: true,
            ..plain
        };
        assert!((confidence(Tier::Confirmed, &gaps) - 0.85 * 0.729).abs() < 1e-9);
        let hopeless = Support {
            stale: true,
            unavailable: 40,
            ..plain
        };
        assert_eq!(confidence(Tier::Unattributed, &hopeless), 0.05);
        for pair in [
            Tier::Unattributed,
            Tier::Circumstantial,
            Tier::Inferred,
            Tier::Confirmed,
            Tier::Direct,
        ]
        .windows(2)
        {
            assert!(base(pair[0]) < base(pair[1]));
        }
    }
}
