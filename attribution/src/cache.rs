//! A hop in front of another proxy on the same host: Varnish caching in
//! front of nginx (`visitor -> varnish :80 -> nginx :8080 -> app`), or any
//! proxy whose upstream target is another proxy's listener.
//!
//! When that inner proxy stops, the outer one's connect fails on the inner
//! one's port (Varnish: `backend default: fail errno 111`, its own 503). The
//! upstream rules never name a proxy unit as an upstream, and the proxy-down
//! rule sees the site's port served (by the cache), so without this rule the
//! verdict would be `insufficient_evidence`. Here: a failing trigger whose
//! target port is one the inner proxy's config listens on, the inner proxy's
//! unit down and nothing listening there, is `proxy_down` of that inner
//! proxy, a direct finding. The status stays what visitors saw (Varnish's
//! 503, `emitted_by: cache`, decided by [`super::signal`]).
//!
//! Backend health that Varnish reports (`varnishadm backend.list`, on the
//! wire as `ProxyConfig.runtime`) is cited when the failing backend is sick.

use gw502_proto::v1::ProxyConfig;

use super::Cx;
use super::evidence::{Evidence, Source};
use super::facts;
use super::finding::{Finding, Trigger};
use super::host::HostView;
use super::precedence::Tier;
use super::target::Target;
use super::verdict::Cause;

/// Findings for targets that are another proxy of this host.
pub(crate) fn behind(cx: &Cx<'_>, h: &HostView<'_>, triggers: &[Trigger]) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in triggers {
        let Some(target) = t.target.as_ref().filter(|x| x.unix.is_none()) else {
            continue;
        };
        let connect_failed = t.candidates.iter().any(|c| {
            matches!(
                c,
                Cause::ServiceDown
                    | Cause::WrongPort
                    | Cause::NotListening
                    | Cause::NoLiveUpstreams
            )
        });
        let Some(port) = target
            .port
            .filter(|_| connect_failed && target.is_loopback())
        else {
            continue;
        };
        let listening = h
            .listeners()
            .iter()
            .any(|l| l.family.starts_with("tcp") && l.port == u32::from(port));
        if listening || !h.has(Source::Sockets) {
            continue;
        }
        let Some((inner, unit)) = h.proxies().iter().find_map(|p| {
            let unit = h.units().iter().find(|u| u.name == p.unit)?;
            (listens_on(p, port) && facts::is_down(unit)).then_some((p, unit))
        }) else {
            continue;
        };
        let mut evidence = vec![
            facts::unit(h, unit),
            facts::nothing_on(h, &target.display()),
        ];
        evidence.extend(sick_backend(h, target));
        let f = Finding::new(Cause::ProxyDown, Tier::Direct, t, evidence).say(
            format!(
                "systemctl status {} on {}; it is {} and the {} in front of it sends {} to {}",
                unit.name,
                h.id(),
                unit.active_state,
                outer(h, inner),
                cx.site.host,
                target.display()
            ),
            format!(
                "{} behind the {} on {} is not serving {}",
                unit.name,
                outer(h, inner),
                h.id(),
                cx.site.host
            ),
        );
        out.push(f);
    }
    out
}

/// Whether one of the proxy's virtual servers listens on `port`
/// (`8080`, `127.0.0.1:8080`, `[::]:8080 default_server`).
fn listens_on(p: &ProxyConfig, port: u16) -> bool {
    p.servers.iter().flat_map(|s| &s.listens).any(|l| {
        let first = l.split_whitespace().next().unwrap_or("");
        let port_text = first.rsplit(':').next().unwrap_or(first);
        port_text.parse::<u16>() == Ok(port)
    })
}

/// The kind of the proxy that targets the inner one (`varnish`), for messages.
fn outer<'a>(h: &HostView<'a>, inner: &ProxyConfig) -> &'a str {
    h.proxies()
        .iter()
        .find(|p| p.unit != inner.unit && !p.targets.is_empty())
        .map_or("proxy", |p| p.kind.as_str())
}

/// `varnish backend boot.default (127.0.0.1:8080) sick, probe 0/5`, when a
/// proxy's run-time view marks the target's backend sick.
pub(crate) fn sick_backend(h: &HostView<'_>, target: &Target) -> Option<Evidence> {
    h.proxies().iter().find_map(|p| {
        let runtime = p.runtime.as_ref()?;
        let b = runtime.backends.iter().find(|b| {
            Target::parse(&b.address).is_some_and(|a| a.same(target))
                && (b.health == "sick" || b.admin == "sick")
        })?;
        let at = if b.last_change_ms > 0 {
            b.last_change_ms
        } else {
            h.ev.last_seen_ms
        };
        Some(Evidence::new(
            Source::ProxyLog,
            h.id(),
            at,
            format!(
                "{} backend {} ({}) {}, admin {}, probe {}/{}",
                p.kind, b.name, b.address, b.health, b.admin, b.probe_good, b.probe_window
            ),
        ))
    })
}
