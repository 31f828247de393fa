//! The identity of an incident and what one evaluation pass does to the
//! site's open incidents, as a pure function ([`plan`]) so the rule can be
//! read and tested without a store.
//!
//! An incident is one cause on one host: its key is (site, host, layer,
//! cause), host empty for a site-wide verdict. The rule, per pass:
//!
//! - A verdict whose key is open confirms that incident (updated in place
//!   when its headline changed). A verdict with a new key opens an incident.
//! - An open incident whose key no verdict carries no longer holds: each
//!   fresh pass counts one good observation for it, and `resolve_after` in a
//!   row resolve it, whether the site is healthy or keeps failing for another
//!   cause. A cause that shows again resets its count, so alternating causes
//!   (crash_loop and service_down while a unit restarts) do not flap.
//! - Sharpening: an open incident resolves at once when a verdict of the same
//!   pass is sharper about its host (`IncidentKey::sharper_than`):
//!   - an `insufficient_evidence` incident, when the verdict names a cause for
//!     its host (or it or the verdict is site-wide), or, itself site-wide, when
//!     the verdict at least names a host (the site's agents had not reported);
//!   - an `upstream_returned_error` incident, when the verdict is the
//!     `dependency_failure` that explains that app's own 5xx (its journal line
//!     of the failing dependency came a report after the 5xx);
//!   - a `premature_close`, `connection_reset` or `invalid_header` incident,
//!     when the verdict is the `protocol_mismatch` or `tls_mismatch` on its
//!     host that explains what the proxy read: a peer speaking another protocol
//!     closes, resets or answers bytes that are no HTTP head. The proxy's log
//!     says so as soon as a visitor is refused; the direct probe that shows the
//!     mismatch may come a report later.
//!
//!   The sharper verdict is a new incident, not an update of the vague one:
//!   layer, cause and owner are its identity and route it (Alertmanager labels,
//!   routing rules), so it fires on its own and the vague one is resolved with
//!   its own resolve event.
//! - Blurring: a verdict opens nothing while an incident sharper about its
//!   host is open. Losing a piece of evidence is not a second failure; the
//!   sharper incident resolves by the good-observation count if its cause
//!   stays away, and only then may the vaguer verdict open one.

use gw502_vocab::Cause;

use crate::store::IncidentRow;

/// What makes two verdicts of one site the same incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentKey {
    /// Host at fault, empty for a site-wide verdict.
    pub host: String,
    /// Layer at fault.
    pub layer: String,
    /// Cause.
    pub cause: String,
}

impl IncidentKey {
    /// The key of a stored incident.
    pub fn of(row: &IncidentRow) -> Self {
        Self {
            host: row.host.clone(),
            layer: row.layer.clone(),
            cause: row.cause.clone(),
        }
    }

    /// Whether the key names a cause (anything but `insufficient_evidence`).
    fn named(&self) -> bool {
        self.cause != Cause::InsufficientEvidence.as_str()
    }

    /// Whether both keys speak about the same host (or one is site-wide).
    fn overlaps(&self, other: &IncidentKey) -> bool {
        self.host == other.host || self.host.is_empty() || other.host.is_empty()
    }

    /// Whether this key says more about the failure `other` speaks of: a named cause
    /// where `other` has none, a host where neither names a cause and `other` names
    /// no host, or on the same host a cause that explains `other`'s ([`explains`]).
    fn sharper_than(&self, other: &IncidentKey) -> bool {
        let cause = |k: &IncidentKey| k.cause.parse::<Cause>().ok();
        (self.named() && !other.named() && self.overlaps(other))
            || (!self.named() && !other.named() && !self.host.is_empty() && other.host.is_empty())
            || (self.host == other.host
                && cause(self)
                    .zip(cause(other))
                    .is_some_and(|(cause, symptom)| explains(cause, symptom)))
    }
}

/// Whether `cause` on a host is the reason for what `symptom` on the same host
/// reports: the dependency that made an app answer 5xx, or the protocol the
/// peer speaks for what the proxy read from it.
fn explains(cause: Cause, symptom: Cause) -> bool {
    use Cause::*;
    match cause {
        DependencyFailure => symptom == UpstreamReturnedError,
        ProtocolMismatch | TlsMismatch => {
            matches!(symptom, PrematureClose | ConnectionReset | InvalidHeader)
        }
        _ => false,
    }
}

/// What one evaluation pass does with a site's verdicts and open incidents.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Indices of the verdicts to open or update, in verdict order.
    pub upsert: Vec<usize>,
    /// Indices of verdicts held back by an open incident sharper about their host.
    pub held: Vec<usize>,
    /// Open incidents resolved now: a verdict of this pass is sharper about their host.
    pub superseded: Vec<i64>,
    /// Open incidents whose key no verdict carries: one good observation each.
    pub absent: Vec<i64>,
}

/// Applies the module's rule to one pass: `verdicts` are the keys of the
/// engine's verdicts for the site, `open` the site's open incidents.
pub fn plan(verdicts: &[IncidentKey], open: &[IncidentRow]) -> Plan {
    let open: Vec<(i64, IncidentKey)> = open.iter().map(|r| (r.id, IncidentKey::of(r))).collect();
    let mut p = Plan::default();
    for (i, v) in verdicts.iter().enumerate() {
        let already = open.iter().any(|(_, k)| k == v);
        let blurs = open.iter().any(|(_, k)| k.sharper_than(v));
        if blurs && !already {
            p.held.push(i);
        } else {
            p.upsert.push(i);
        }
    }
    let carried: Vec<&IncidentKey> = p.upsert.iter().map(|&i| &verdicts[i]).collect();
    for (id, k) in &open {
        if carried.contains(&k) {
            continue;
        }
        if carried.iter().any(|v| v.sharper_than(k)) {
            p.superseded.push(*id);
        } else {
            p.absent.push(*id);
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(host: &str, layer: &str, cause: &str) -> IncidentKey {
        IncidentKey {
            host: host.into(),
            layer: layer.into(),
            cause: cause.into(),
        }
    }

    fn row(id: i64, host: &str, layer: &str, cause: &str) -> IncidentRow {
        IncidentRow {
            id,
            site: "shop.example".into(),
            host: host.into(),
            layer: layer.into(),
            cause: cause.into(),
            state: "open".into(),
            ..IncidentRow::default()
        }
    }

    const VAGUE: (&str, &str) = ("unknown", "insufficient_evidence");

    #[test]
    fn a_stale_cause_is_absent_while_another_cause_fails_the_site() {
        let open = [row(1, "web1", "proxy", "proxy_down")];
        let p = plan(&[key("web1", "upstream", "service_down")], &open);
        assert_eq!(
            p,
            Plan {
                upsert: vec![0],
                absent: vec![1],
                ..Plan::default()
            }
        );
    }

    #[test]
    fn the_same_cause_confirms_its_incident() {
        let open = [
            row(1, "web1", "upstream", "service_down"),
            row(2, "web2", "upstream", "service_down"),
        ];
        let p = plan(&[key("web1", "upstream", "service_down")], &open);
        assert_eq!((p.upsert, p.absent), (vec![0], vec![2]), "web2 recovered");
    }

    #[test]
    fn a_cause_change_on_one_layer_waits_for_good_observations() {
        let open = [row(1, "web1", "upstream", "crash_loop")];
        let p = plan(&[key("web1", "upstream", "service_down")], &open);
        assert_eq!((p.superseded, p.absent), (vec![], vec![1]));
    }

    #[test]
    fn insufficient_evidence_sharpening_into_a_cause_is_superseded() {
        for (vague_host, cause_host) in [("", "web1"), ("web1", "web1"), ("web1", "")] {
            let open = [row(7, vague_host, VAGUE.0, VAGUE.1)];
            let p = plan(&[key(cause_host, "upstream", "service_down")], &open);
            assert_eq!(
                (p.upsert, p.superseded, p.absent),
                (vec![0], vec![7], vec![]),
                "{vague_host:?} -> {cause_host:?}"
            );
        }
    }

    #[test]
    fn a_dependency_failure_supersedes_the_apps_own_5xx_and_holds_it_back() {
        let own = ("upstream", "upstream_returned_error");
        let dependency = key("web1", "dependency", "dependency_failure");
        let open = [row(3, "web1", own.0, own.1)];
        let p = plan(std::slice::from_ref(&dependency), &open);
        assert_eq!(
            (p.upsert, p.superseded, p.absent),
            (vec![0], vec![3], vec![])
        );
        // The 5xx alone again (a report without the journal line) opens nothing beside it.
        let open = [row(4, "web1", "dependency", "dependency_failure")];
        let p = plan(&[key("web1", own.0, own.1)], &open);
        assert_eq!((p.upsert, p.held, p.absent), (vec![], vec![0], vec![4]));
        // Another host's app is another failure.
        let open = [row(5, "web2", own.0, own.1)];
        let p = plan(&[dependency], &open);
        assert_eq!((p.superseded, p.absent), (vec![], vec![5]));
    }

    #[test]
    fn a_mismatch_supersedes_what_the_proxy_read_from_the_peer() {
        for mismatch in ["protocol_mismatch", "tls_mismatch"] {
            for read in ["premature_close", "connection_reset", "invalid_header"] {
                let open = [row(3, "web1", "response", read)];
                let p = plan(&[key("web1", "handoff", mismatch)], &open);
                assert_eq!(
                    (p.upsert, p.superseded, p.absent),
                    (vec![0], vec![3], vec![]),
                    "{mismatch} over {read}"
                );
                // The proxy's lines alone again open nothing beside it.
                let open = [row(4, "web1", "handoff", mismatch)];
                let p = plan(&[key("web1", "response", read)], &open);
                assert_eq!(
                    (p.held, p.absent),
                    (vec![0], vec![4]),
                    "{mismatch} holds {read}"
                );
            }
        }
        // Another host's close, and a symptom no mismatch explains, wait their turn.
        let open = [
            row(5, "web2", "response", "premature_close"),
            row(6, "web1", "response", "header_too_big"),
        ];
        let p = plan(&[key("web1", "handoff", "protocol_mismatch")], &open);
        assert_eq!((p.superseded, p.absent), (vec![], vec![5, 6]));
    }

    #[test]
    fn site_wide_insufficient_evidence_gives_way_to_a_host() {
        let open = [row(8, "", VAGUE.0, VAGUE.1)];
        let p = plan(&[key("web1", VAGUE.0, VAGUE.1)], &open);
        assert_eq!((p.upsert, p.superseded), (vec![0], vec![8]));
        let open = [row(9, "web1", VAGUE.0, VAGUE.1)];
        let p = plan(&[key("", VAGUE.0, VAGUE.1)], &open);
        assert_eq!((p.held, p.absent), (vec![0], vec![9]));
    }

    #[test]
    fn insufficient_evidence_on_another_host_is_not_sharpened() {
        let open = [row(7, "web2", VAGUE.0, VAGUE.1)];
        let p = plan(&[key("web1", "upstream", "service_down")], &open);
        assert_eq!((p.superseded, p.absent), (vec![], vec![7]));
    }

    #[test]
    fn insufficient_evidence_does_not_open_next_to_a_named_cause() {
        let open = [row(1, "web1", "upstream", "service_down")];
        for host in ["web1", ""] {
            let p = plan(&[key(host, VAGUE.0, VAGUE.1)], &open);
            assert_eq!(
                p,
                Plan {
                    held: vec![0],
                    absent: vec![1],
                    ..Plan::default()
                },
                "{host:?}"
            );
        }
        // Another host's vague verdict is its own incident.
        let p = plan(&[key("web2", VAGUE.0, VAGUE.1)], &open);
        assert_eq!((p.upsert, p.held), (vec![0], vec![]));
        // Nothing named open: the vague verdict opens.
        let p = plan(&[key("web1", VAGUE.0, VAGUE.1)], &[]);
        assert_eq!(p.upsert, vec![0]);
    }

    #[test]
    fn an_open_insufficient_evidence_incident_is_confirmed_not_held() {
        let open = [
            row(1, "web1", "upstream", "service_down"),
            row(2, "web1", VAGUE.0, VAGUE.1),
        ];
        let p = plan(&[key("web1", VAGUE.0, VAGUE.1)], &open);
        assert_eq!((p.upsert, p.held, p.absent), (vec![0], vec![], vec![1]));
    }

    #[test]
    fn a_healthy_site_counts_every_open_incident_good() {
        let open = [
            row(1, "web1", "proxy", "proxy_down"),
            row(2, "", VAGUE.0, VAGUE.1),
        ];
        let p = plan(&[], &open);
        assert_eq!(
            (p.upsert, p.superseded, p.absent),
            (vec![], vec![], vec![1, 2])
        );
    }
}
