//! An edge sending the site to a wrong port of an origin that serves it fine.
//!
//! An edge host (HAProxy or nginx in front, with its own agent) forwards to
//! `origin:8081` while the origin's own proxy serves the site on `:80`. The
//! edge's log and its direct probe say refused; the origin host's sockets
//! show nothing on 8081. That alone is not `wrong_port`: a listener on
//! another port is the right one only when evidence ties it to the chain
//! ([`super::chain`]). On the origin the tie is the origin's own proxy
//! config: a virtual server of its running proxy names the site and listens
//! on that port, and the proxy's listener there accepts the address the
//! edge's target resolves to. Nothing else on the origin (its app, an
//! exporter, a database) is taken for the front. The verdict names the edge
//! host and its target; the fix lives in the edge's config.
//!
//! It is confirmed when the origin answers for the site (the collector's
//! direct probe of the origin, or the origin's access log without 5xx);
//! otherwise the listener and the config alone make it inferred.

use gw502_proto::v1::{Listener, ProxyConfig};
use gw502_vocab::Outcome;

use super::Cx;
use super::evidence::{Evidence, Source};
use super::facts;
use super::finding::{Finding, Trigger};
use super::host::HostView;
use super::precedence::Tier;
use super::target::{Target, is_tcp, listen_port, listener_accepts, name_matches};
use super::verdict::Cause;

/// The origin's front for the site, on a port other than the edge's target.
struct Front<'a> {
    proxy: &'a ProxyConfig,
    listen: &'a str,
    listener: &'a Listener,
}

/// `wrong_port` on the edge `h` when the target's host `th` (another host)
/// serves the site through its own running proxy on another port.
pub(crate) fn wrong_front_port(
    cx: &Cx<'_>,
    h: &HostView<'_>,
    th: &HostView<'_>,
    t: &Trigger,
    target: &Target,
) -> Option<Finding> {
    if th.id() == h.id() {
        return None;
    }
    let port = u32::from(target.port?);
    // The edge's config says whether it speaks TLS to the origin.
    let tls = h.targets().iter().any(|c| {
        c.protocol.eq_ignore_ascii_case("https")
            && Target::from_config(c).is_some_and(|x| x.same(target))
    });
    let front = front(th, target, port, tls)?;
    let shown = target.display();
    let site = &h.site.host;
    let config = Evidence::new(
        Source::ProxyConfig,
        th.id(),
        th.ev.last_seen_ms,
        format!(
            "{} ({}) serves {site} on listen {}",
            front.proxy.kind, front.proxy.unit, front.listen
        ),
    );
    let mut extra = vec![
        facts::nothing_on(th, &shown),
        facts::listener(th, front.listener),
        config,
    ];
    let answers = answers(cx, th);
    extra.extend(answers.clone());
    let tier = if answers.is_some() {
        Tier::Confirmed
    } else {
        Tier::Inferred
    };
    let to = front.listener.port;
    let mut f = Finding::new(Cause::WrongPort, tier, t, extra).say(
        format!(
            "the proxy on {} sends {site} to {shown}, but {} serves it on port {to} ({}); fix the port in {}'s proxy config",
            h.id(),
            th.id(),
            front.proxy.unit,
            h.id()
        ),
        format!(
            "the proxy on {} targets {shown} while {} serves {site} on port {to}",
            h.id(),
            th.id()
        ),
    );
    if answers.is_none() {
        f.missing
            .push(format!("no answer from {} for {site} seen", th.id()));
    }
    Some(f)
}

/// The running proxy on `th` whose virtual server names the site and whose
/// listener on that server's port accepts the target; plain HTTP listens
/// first for an `http` target, TLS ones first for `https`.
fn front<'a>(th: &HostView<'a>, target: &Target, port: u32, tls: bool) -> Option<Front<'a>> {
    let mut found: Vec<Front<'a>> = Vec::new();
    for proxy in th.proxies() {
        let running = th
            .units()
            .iter()
            .find(|u| u.name == proxy.unit)
            .is_some_and(facts::is_running);
        if !running {
            continue;
        }
        let servers = proxy
            .servers
            .iter()
            .filter(|s| s.names.iter().any(|n| name_matches(n, &th.site.host)));
        for listen in servers.flat_map(|s| &s.listens) {
            let Some(on) = listen_port(listen).map(u32::from).filter(|p| *p != port) else {
                continue;
            };
            let listener = th.listeners().iter().find(|l| {
                is_tcp(l)
                    && l.port == on
                    && l.unit == proxy.unit
                    && listener_accepts(l, &target.host)
            });
            if let Some(listener) = listener {
                found.push(Front {
                    proxy,
                    listen,
                    listener,
                });
            }
        }
    }
    found.sort_by_key(|f| is_tls(f.listen) != tls);
    found.into_iter().next()
}

fn is_tls(listen: &str) -> bool {
    listen
        .split_whitespace()
        .skip(1)
        .any(|w| matches!(w, "ssl" | "quic"))
        || listen_port(listen) == Some(443)
}

/// Evidence that the origin answers for the site: the collector's latest
/// direct probe of it below 500, or its access log for the site without 5xx.
fn answers(cx: &Cx<'_>, th: &HostView<'_>) -> Option<Evidence> {
    let probe = cx
        .origin_probes()
        .into_iter()
        .find(|o| o.target.strip_prefix("origin/") == Some(th.id()));
    if let Some(o) = probe {
        let fine = o.is(Outcome::Ok) && (1..500).contains(&o.raw.status);
        return fine.then(|| {
            Evidence::new(
                Source::EdgeProbe,
                th.id(),
                o.at_ms,
                format!("{} answers {} directly", th.id(), o.raw.status),
            )
        });
    }
    let counts = th.ev.state.access_log.as_ref()?;
    let ours: Vec<_> = counts
        .counts
        .iter()
        .filter(|c| name_matches(&c.vhost, &th.site.host))
        .collect();
    let good: u64 = ours
        .iter()
        .filter(|c| (1..500).contains(&c.status))
        .map(|c| u64::from(c.count))
        .sum();
    let bad = ours.iter().any(|c| c.status >= 500);
    let last = ours.iter().map(|c| c.last_at_ms).max().unwrap_or(0);
    (good > 0 && !bad).then(|| {
        Evidence::new(
            Source::AccessLog,
            th.id(),
            last,
            format!(
                "{} answered {good} requests for {} below 500",
                th.id(),
                th.site.host
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_ports_as_proxies_write_them() {
        assert_eq!(listen_port("80"), Some(80));
        assert_eq!(listen_port("[::]:443 ssl"), Some(443));
        assert_eq!(listen_port("10.0.0.5:8080"), Some(8080));
        assert_eq!(listen_port("*:80"), Some(80));
        assert_eq!(listen_port("unix:/run/nginx.sock"), None);
        assert!(is_tls("443 ssl") && is_tls("[::]:443") && !is_tls("80"));
    }
}
