//! The engine's edge: the wire words of probe observations parsed once into
//! `gw502-vocab` enums, so rules match on [`Outcome`] and [`Phase`] instead of
//! comparing strings.
//!
//! [`Observed`] (an edge or origin probe) and [`Probed`] (an agent's direct
//! probe) wrap the proto message and deref to it, but their own `outcome`
//! (and `phase`) fields shadow the raw strings: a rule that writes
//! `o.outcome` gets the enum, and only evidence text reaches for `o.raw`. A
//! word this collector does not know (a newer agent or prober) parses to
//! `None`; [`unknown`] names it so the verdict can list it in `missing`
//! instead of dropping it silently.

use std::ops::Deref;

use gw502_proto::v1::{DirectProbe, EdgeObservation};
use gw502_vocab::{Outcome, Phase, UnknownWord};

/// An edge or origin probe observation with its outcome parsed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed<'a> {
    /// The message as received.
    pub raw: &'a EdgeObservation,
    /// Its outcome; `None` for a word this collector does not know.
    pub outcome: Option<Outcome>,
}

impl<'a> Observed<'a> {
    /// Parses the observation's outcome.
    pub fn parse(raw: &'a EdgeObservation) -> Self {
        Self {
            raw,
            outcome: raw.outcome.parse().ok(),
        }
    }

    /// Whether the outcome is `o`.
    pub fn is(&self, o: Outcome) -> bool {
        self.outcome == Some(o)
    }
}

impl Deref for Observed<'_> {
    type Target = EdgeObservation;

    fn deref(&self) -> &EdgeObservation {
        self.raw
    }
}

/// An agent's direct probe with its outcome and phase parsed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probed<'a> {
    /// The message as received.
    pub raw: &'a DirectProbe,
    /// Its outcome; `None` for a word this collector does not know.
    pub outcome: Option<Outcome>,
    /// Where it stopped; `None` when empty or unknown.
    pub phase: Option<Phase>,
}

impl<'a> Probed<'a> {
    /// Parses the probe's outcome and phase.
    pub fn parse(raw: &'a DirectProbe) -> Self {
        Self {
            raw,
            outcome: raw.outcome.parse().ok(),
            phase: raw.phase.parse().ok(),
        }
    }

    /// Whether the outcome is `o`.
    pub fn is(&self, o: Outcome) -> bool {
        self.outcome == Some(o)
    }
}

impl Deref for Probed<'_> {
    type Target = DirectProbe;

    fn deref(&self) -> &DirectProbe {
        self.raw
    }
}

/// The words of a raw field that do not parse as `T` (empty is not a word).
pub(crate) fn unknown<T: std::str::FromStr<Err = UnknownWord>>(raw: &str) -> Option<UnknownWord> {
    if raw.is_empty() {
        return None;
    }
    raw.parse::<T>().err()
}

/// A `missing` line for an unknown word seen in `what`.
pub(crate) fn unknown_line(w: &UnknownWord, what: &str) -> String {
    format!("{what} uses a word this collector does not know ({w}); upgrade the collector")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_shadows_the_raw_string() {
        let raw = EdgeObservation {
            outcome: "refused".into(),
            vantage: "collector/c1".into(),
            ..Default::default()
        };
        let o = Observed::parse(&raw);
        assert!(o.is(Outcome::Refused));
        assert_eq!(o.vantage, "collector/c1");
        let newer = EdgeObservation {
            outcome: "quic_error".into(),
            ..Default::default()
        };
        assert_eq!(Observed::parse(&newer).outcome, None);
        assert!(unknown::<Outcome>(&newer.outcome).is_some());
        assert!(unknown::<Outcome>("").is_none());
        assert!(unknown::<Outcome>("ok").is_none());
    }

    #[test]
    fn probe_phase_is_optional() {
        let raw = DirectProbe {
            outcome: "timeout".into(),
            phase: "connect".into(),
            ..Default::default()
        };
        let p = Probed::parse(&raw);
        assert_eq!(
            (p.outcome, p.phase),
            (Some(Outcome::Timeout), Some(Phase::Connect))
        );
        let bare = DirectProbe::default();
        assert_eq!(Probed::parse(&bare).phase, None);
    }
}
