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
//! instead of dropping it silently. An RFC 9209 `proxy-status` header on an
//! observation is read here too ([`Observed::proxy_error`]), with the parse
//! the prober shares.

use std::ops::Deref;

use gw502_proto::v1::{DirectProbe, EdgeObservation};
use gw502_vocab::proxy_status::{self, ProxyStatus};
use gw502_vocab::{Cause, Outcome, Phase, UnknownWord};

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

    /// Whether it probed the site's public address (not one origin directly) and was
    /// sent (the SSRF guard blocks some, which then say nothing).
    pub fn is_public(&self) -> bool {
        (self.target.is_empty() || self.target == "public") && !self.is(Outcome::Blocked)
    }

    /// The `proxy-status` member nearest the origin that names an error.
    /// Several header lines form one list (RFC 9110 §5.3); a value that does
    /// not parse names nothing.
    pub fn proxy_error(&self) -> Option<ProxyStatus> {
        let lines: Vec<&str> = self
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("proxy-status"))
            .map(|h| h.value.as_str())
            .collect();
        if lines.is_empty() {
            return None;
        }
        let members = proxy_status::parse(&lines.join(", ")).ok()?;
        proxy_status::first_error(&members).cloned()
    }
}

/// The causes a reported error names; none for an unknown error type (which
/// [`proxy_status_unknown`] lists) or one that says nothing about the hop
/// behind.
pub(crate) fn proxy_status_causes(m: &ProxyStatus) -> Vec<Cause> {
    match &m.error {
        Some(Ok(e)) => e.causes().to_vec(),
        _ => Vec::new(),
    }
}

/// The member as an evidence phrase: `proxy-status ExampleCDN
/// error=connection_refused next-hop=origin:443 details="..."`.
pub(crate) fn proxy_status_text(m: &ProxyStatus) -> String {
    let error = match &m.error {
        Some(Ok(e)) => e.as_str().to_string(),
        Some(Err(w)) => w.word.clone(),
        None => String::new(),
    };
    let mut out = format!("proxy-status {} error={error}", m.proxy);
    if let Some(hop) = &m.next_hop {
        out.push_str(&format!(" next-hop={hop}"));
    }
    if let Some(status) = m.received_status {
        out.push_str(&format!(" received-status={status}"));
    }
    if let Some(details) = &m.details {
        out.push_str(&format!(" details={details:?}"));
    }
    out
}

/// An error type this collector does not know, on the observation's member.
pub(crate) fn proxy_status_unknown(m: &ProxyStatus) -> Option<&UnknownWord> {
    m.error.as_ref().and_then(|e| e.as_ref().err())
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
