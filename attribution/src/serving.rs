//! Which hosts serve a site: those configured as its origins, those whose
//! proxy config (virtual server or upstream target server names, with nginx
//! wildcard forms) or access log names it, and, when nothing matches and only
//! one host reports at all, that host as an explicit assumption.

use std::net::{IpAddr, SocketAddr};

use gw502_vocab::{Cause, Outcome};

use super::evidence::{HostEvidence, SiteEvidence};
use super::host::{HostView, Serves};
use super::target::{SiteAddr, Target, name_matches};
use super::wire::{Observed, Probed};

/// The hosts serving the site, with how each was matched.
pub(crate) fn serving<'a>(ev: &'a SiteEvidence, site: &'a SiteAddr) -> Vec<HostView<'a>> {
    let view = |h, serves| HostView {
        ev: h,
        site,
        serves,
    };
    let mut out: Vec<HostView<'a>> = ev
        .hosts
        .iter()
        .filter(|h| ev.site.origin_hosts.iter().any(|o| o == &h.host_id))
        .map(|h| view(h, Serves::Configured))
        .collect();
    for h in &ev.hosts {
        if !out.iter().any(|v| v.ev.host_id == h.host_id)
            && names_site(&view(h, Serves::Discovered))
        {
            out.push(view(h, Serves::Discovered));
        }
    }
    if out.is_empty() && ev.site.origin_hosts.is_empty() && ev.hosts.len() == 1 {
        out.push(view(&ev.hosts[0], Serves::OnlyHost));
    }
    out
}

/// What hosts in front of the site's hosts saw of them. A front host owns an address
/// the public probes connected to (an edge, a load balancer) and is not named by the
/// site's config. Behind round-robin, the public probes of a few seconds can all miss
/// the one origin that fails, while the edge's own probe of that origin fails every
/// time. Only its probes of an address a serving host owns count, and only its log
/// lines of those probes' groups: an edge in front of many sites says nothing about
/// this one through another site's origin.
#[derive(Debug, Default)]
pub(crate) struct Front {
    /// When its latest direct probes of a serving host failed.
    pub failed_at: Vec<i64>,
    /// The status it last logged answering visitors it could not connect through to
    /// those targets; before it logged any, the one its proxy gives when such a
    /// target refuses the connection.
    pub status: Option<u16>,
}

/// The [`Front`] of the site.
pub(crate) fn front(
    ev: &SiteEvidence,
    site: &SiteAddr,
    edge: &[Observed<'_>],
    serving: &[HostView<'_>],
) -> Front {
    let ip = |a: &str| {
        a.split('/')
            .next()
            .and_then(|a| a.parse::<IpAddr>().ok())
            .filter(|ip| !ip.is_loopback())
    };
    let owns =
        |h: &HostEvidence, addr: IpAddr| h.state.addresses.iter().any(|a| ip(a) == Some(addr));
    let peers: Vec<IpAddr> = edge
        .iter()
        .filter(|o| o.is_public())
        .filter_map(|o| o.peer.parse::<SocketAddr>().ok())
        .map(|a| a.ip())
        .filter(|ip| !ip.is_loopback())
        .collect();
    let at_serving = |peer: &str| {
        peer.parse::<SocketAddr>()
            .is_ok_and(|a| serving.iter().any(|s| owns(s.ev, a.ip())))
    };
    let mut out = Front::default();
    let mut logged: Option<(i64, u16)> = None;
    let mut refused: Option<u16> = None;
    for h in ev
        .hosts
        .iter()
        .filter(|h| !serving.iter().any(|s| s.ev.host_id == h.host_id))
        .filter(|h| peers.iter().any(|p| owns(h, *p)))
    {
        let view = HostView {
            ev: h,
            site,
            serves: Serves::Discovered,
        };
        let failed: Vec<_> = view
            .probes()
            .into_iter()
            .filter(|p| (!p.is(Outcome::Ok) || p.status >= 500) && at_serving(&p.peer))
            .collect();
        out.failed_at.extend(failed.iter().map(|p| p.at_ms));
        let groups: Vec<&str> = failed
            .iter()
            .filter_map(|p| p.target.as_ref())
            .map(|t| t.group.as_str())
            .filter(|g| !g.is_empty())
            .collect();
        let signals = view.signals();
        let through: Vec<_> = signals
            .iter()
            .filter(|s| s.status != 0)
            .filter(|s| {
                groups.iter().any(|g| {
                    s.upstream == *g
                        || s.upstream
                            .strip_prefix(g)
                            .is_some_and(|rest| rest.starts_with('/'))
                })
            })
            .collect();
        // Before it logged any answer through them (its agent only just started), what
        // its proxy answers visitors routed to a target that refuses.
        if through.is_empty() && refused.is_none() {
            refused = failed
                .iter()
                .filter(|p| p.is(Outcome::Refused))
                .find_map(|p| refused_status(&view, p));
        }
        // Its own answers to connections the origin never took (refused, timed out,
        // no server left). Once an origin took the connection, the origin's proxy may
        // have made the answer the edge relayed or cut, and its own evidence decides.
        for s in through
            .into_iter()
            .filter(|s| !s.causes.is_empty() && s.causes.iter().all(unconnected))
        {
            if logged.is_none_or(|(at, _)| s.last_at_ms > at) {
                logged = Some((s.last_at_ms, s.status));
            }
        }
    }
    out.status = logged.map(|(_, status)| status).or(refused);
    out
}

/// The status the proxy on `view` that routes to probe `p`'s target answers when that
/// target refuses the connection.
fn refused_status(view: &HostView<'_>, p: &Probed<'_>) -> Option<u16> {
    let target = p.target.as_ref().and_then(Target::from_config)?;
    let (proxy, _) = view.proxy_routing_to(&target)?;
    Some(proxy.refused_status())
}

/// Whether a proxy logging `cause` never got a connection to its upstream.
fn unconnected(cause: &Cause) -> bool {
    matches!(
        cause,
        Cause::ServiceDown
            | Cause::WrongPort
            | Cause::NotListening
            | Cause::FirewallBlocked
            | Cause::NoLiveUpstreams
    )
}

/// Whether the host's proxy config or access log names the site.
fn names_site(view: &HostView<'_>) -> bool {
    let h = &view.site.host;
    let config = view.proxies().iter().any(|p| {
        p.servers
            .iter()
            .any(|s| s.names.iter().any(|n| name_matches(n, h)))
            || p.targets
                .iter()
                .any(|t| t.server_names.iter().any(|n| name_matches(n, h)))
    });
    config
        || view
            .ev
            .state
            .access_log
            .as_ref()
            .is_some_and(|a| a.counts.iter().any(|c| name_matches(&c.vhost, h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_server_name_forms() {
        assert!(name_matches("shop.example", "shop.example"));
        assert!(name_matches("*.example", "shop.example"));
        assert!(!name_matches("*.example", "example"));
        assert!(name_matches(".example", "example"));
        assert!(name_matches("shop.*", "shop.example"));
        assert!(!name_matches("blog.example", "shop.example"));
        assert!(!name_matches("_", "shop.example"));
    }
}
