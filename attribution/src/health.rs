//! The proxy's own view of its upstream servers' health, as evidence for
//! `no_live_upstreams`: Traefik's `serverStatus` (`UP`/`DOWN`, from its API),
//! Envoy's `health_flags` (`/failed_active_hc`, `/failed_outlier_check`, from
//! its admin `/clusters`), both on the wire as `UpstreamTarget.health`, and
//! Varnish's `backend.list` (`sick`, `ProxyConfig.runtime`).
//!
//! The reasoning is the one HAProxy's `<NOSRV> … has no server available!`
//! gets, kept for all of them: the proxy saying it has no live server is a
//! symptom of earlier failures, so the cause is wherever those failures come
//! from when the host shows it (the app stopped: `service_down`, a moved
//! port: `wrong_port`, all findings of a stronger tier). When it does not,
//! the verdict is `no_live_upstreams`; the proxy's health view then confirms
//! it (every server of the site's service or cluster marked down, each cited)
//! and names what to check: why each server fails the proxy's health check.
//! Traefik's no-server 503 and Envoy's `UH` name no server, so the servers
//! the health view marks down are what [`behind_down_servers`] checks the
//! host's state against, the way a refused connection to each would be.
//! Health alone never starts a verdict: it is read only for a trigger that
//! already says `no_live_upstreams` (Traefik's 503 with no server chosen,
//! Envoy's `UH`, Varnish's `unhealthy`).

use std::collections::BTreeMap;

use gw502_proto::v1::UpstreamTarget;

use super::cache;
use super::evidence::{Evidence, Source};
use super::finding::{Finding, Trigger};
use super::host::HostView;
use super::target::Target;
use super::verdict::{Cause, Layer};
use super::{Cx, handoff, upstream};

/// Why a server fails every check, when the host shows it.
const WHY_DOWN: [Cause; 4] = [
    Cause::CrashLoop,
    Cause::ServiceDown,
    Cause::NotListening,
    Cause::WrongPort,
];

/// Findings for the servers a `no_live_upstreams` trigger without a server
/// leaves unnamed: each server the proxy marks down, confirmed like a refused
/// connection to it, with the health item added to the finding's evidence.
pub(crate) fn behind_down_servers(
    cx: &Cx<'_>,
    h: &HostView<'_>,
    triggers: &[Trigger],
) -> Vec<Finding> {
    let mut out = Vec::new();
    let unnamed = triggers
        .iter()
        .filter(|t| t.target.is_none() && t.candidates.contains(&Cause::NoLiveUpstreams));
    for t in unnamed {
        for (item, servers) in down_groups(h, t) {
            for server in servers {
                let mut derived = t.clone();
                derived.target = Target::from_config(server);
                derived.candidates = WHY_DOWN.to_vec();
                for cause in WHY_DOWN {
                    let found = match cause.layer() {
                        Layer::Upstream => upstream::confirm(cx, h, &derived, cause),
                        Layer::Handoff => handoff::confirm(cx, h, &derived, cause),
                        _ => None,
                    };
                    if let Some(mut f) = found {
                        f.evidence.push(item.clone());
                        out.push(f);
                    }
                }
            }
        }
    }
    out
}

/// One item per service or cluster of the site whose every server the
/// proxy marks down, plus Varnish's sick backend for the trigger's target;
/// empty when no such health was reported or one server is still up.
pub(crate) fn every_server_down(h: &HostView<'_>, t: &Trigger) -> Vec<Evidence> {
    let mut out: Vec<Evidence> = down_groups(h, t).into_iter().map(|(e, _)| e).collect();
    if let Some(target) = &t.target {
        out.extend(cache::sick_backend(h, target));
    }
    out
}

/// Per service or cluster of the site whose every server the proxy marks
/// down: the evidence item and the servers.
fn down_groups<'a>(h: &HostView<'a>, t: &Trigger) -> Vec<(Evidence, Vec<&'a UpstreamTarget>)> {
    let mut out = Vec::new();
    for p in h.proxies() {
        let mut groups: BTreeMap<&str, Vec<&UpstreamTarget>> = BTreeMap::new();
        for target in p.targets.iter().filter(|x| routes_site(h, t, x)) {
            groups
                .entry(target.group.as_str())
                .or_default()
                .push(target);
        }
        for (group, servers) in groups {
            let all_down = servers.iter().all(|s| s.health == "down");
            if !all_down {
                continue;
            }
            let each: Vec<String> = servers
                .iter()
                .map(|s| format!("{} {}", s.address, s.health_detail))
                .collect();
            let item = Evidence::new(
                Source::ProxyConfig,
                h.id(),
                h.ev.last_seen_ms,
                format!(
                    "{} marks every server of {} down: {}",
                    p.kind,
                    group,
                    each.join(", ")
                ),
            );
            out.push((item, servers));
        }
    }
    out
}

/// Whether `x` serves the site the trigger failed for: it is the trigger's
/// own target, or (no target named, as in Traefik's no-server 503 and
/// Envoy's `UH`) its router or virtual host names the site.
fn routes_site(h: &HostView<'_>, t: &Trigger, x: &UpstreamTarget) -> bool {
    match (&t.target, Target::from_config(x)) {
        (Some(wanted), Some(have)) => wanted.same(&have),
        _ => h.names_site(&x.server_names),
    }
}
