//! Proxy-layer rules: the proxy is not running or not listening where the
//! site expects (proxy_down), its config does not load (proxy_config_invalid),
//! or it marked every upstream down (no_live_upstreams).
//!
//! proxy_down and proxy_config_invalid are host states: they need no log line
//! (a stopped nginx logs nothing) and are checked on every serving host while
//! the site fails. A failed config test next to a stopped proxy names the
//! root cause (the config), a failed test next to a running proxy is weaker
//! because the old config may still serve. no_live_upstreams is a symptom of
//! earlier failures, so it ranks below a specific handoff/upstream cause.

use gw502_vocab::Outcome;

use super::Cx;
use super::evidence::{Evidence, Source};
use super::facts;
use super::finding::{Finding, Trigger};
use super::health;
use super::host::HostView;
use super::precedence::Tier;
use super::verdict::{Cause, Hop};

/// Confirms a proxy-layer candidate of a trigger.
pub(crate) fn confirm(cx: &Cx<'_>, h: &HostView<'_>, t: &Trigger, cause: Cause) -> Option<Finding> {
    match cause {
        Cause::ProxyDown => down(cx, h, Some(t)),
        Cause::ProxyConfigInvalid => Some(
            Finding::new(cause, Tier::Confirmed, t, config_failures(cx, h)).say(
                format!(
                    "run the proxy's config test on {} (nginx -t) and fix the [emerg] line",
                    h.id()
                ),
                format!("the proxy config on {} does not load", h.id()),
            ),
        ),
        Cause::NoLiveUpstreams => {
            // The proxy's own health view confirms the symptom ([`health`]).
            let down = health::every_server_down(h, t);
            let tier = if down.is_empty() {
                Tier::Inferred
            } else {
                Tier::Confirmed
            };
            let check = if down.is_empty() {
                format!(
                    "the proxy on {} marked every upstream down; check why each server failed (earlier error lines, max_fails)",
                    h.id()
                )
            } else {
                format!(
                    "on {}, curl each server the proxy marks down at its health-check path and see why it fails ({})",
                    h.id(),
                    down[0].detail
                )
            };
            Some(Finding::new(cause, tier, t, down).say(
                check,
                format!(
                    "the proxy on {} has no live upstream for {}",
                    h.id(),
                    cx.site.host
                ),
            ))
        }
        _ => None,
    }
}

/// Host-state findings: a stopped proxy, nothing on the site's port, a failing config.
pub(crate) fn state(cx: &Cx<'_>, h: &HostView<'_>, triggers: &[Trigger]) -> Vec<Finding> {
    let mut out: Vec<Finding> = down(cx, h, None).into_iter().collect();
    let failures = config_failures(cx, h);
    let proxy_stopped = !out.is_empty();
    if !failures.is_empty() && (proxy_stopped || !triggers.is_empty() || cx.hosts.len() == 1) {
        let tier = if proxy_stopped {
            Tier::Direct
        } else {
            Tier::Circumstantial
        };
        let mut f = Finding::seeded(
            Cause::ProxyConfigInvalid,
            tier,
            failures,
            cx.signal.first_failure_ms,
        );
        if let Some(stop) = out.first() {
            f.evidence.extend(stop.evidence.iter().cloned());
            f.emitted_by = stop.emitted_by;
        }
        out.push(f.say(
            format!("run the proxy's config test on {} (nginx -t / haproxy -c / apachectl -t) and fix the reported line", h.id()),
            format!("the proxy config on {} fails its test, so the proxy cannot (re)load", h.id()),
        ));
    }
    out
}

fn down(cx: &Cx<'_>, h: &HostView<'_>, t: Option<&Trigger>) -> Option<Finding> {
    let mut evidence = Vec::new();
    let mut check = String::new();
    let port = u32::from(cx.site.port);
    let ours = site_proxies(cx, h);
    // A proxy that runs and listens on the site's port serves it: another proxy unit being
    // inactive on the same host (an installed but unused HAProxy) is not the site's proxy.
    let serving = h.proxy_units().into_iter().any(|u| {
        facts::is_running(u)
            && h.listeners_of(&u.name)
                .iter()
                .any(|l| l.family.starts_with("tcp") && l.port == port)
    });
    // Only the site's own proxy may be named as stopped.
    let stopped: Vec<_> = ours
        .into_iter()
        .filter(|u| !serving && facts::is_down(u))
        .collect();
    let crash = stopped.first().and_then(|u| facts::crash_signal(u));
    if let Some(u) = stopped.first() {
        evidence.push(facts::unit(h, u));
        check = match crash {
            Some(crash) => format!(
                "{unit} on {} died of {} (restarts={}): coredumpctl list {unit} and journalctl -u {unit} \
                 show the crash; a proxy that crashes on what it relays keeps dying until that answer \
                 or the proxy changes",
                h.id(),
                crash.signal(),
                u.n_restarts,
                unit = u.name,
            ),
            None => format!(
                "systemctl status {} on {}; it is {}",
                u.name,
                h.id(),
                u.active_state
            ),
        };
    } else if h.has(Source::Sockets)
        && !h.proxy_units().is_empty()
        && !h
            .listeners()
            .iter()
            .any(|l| l.family.starts_with("tcp") && l.port == port)
    {
        evidence.push(facts::nothing_on(h, &format!("port {port}")));
        check = format!(
            "ss -tlnp on {}: nothing listens on port {port} for {}",
            h.id(),
            cx.site.host
        );
    }
    if evidence.is_empty() {
        return None;
    }
    let refused = cx
        .origin_probes()
        .into_iter()
        .filter(|_| t.is_none())
        .find(|o| o.target == format!("origin/{}", h.id()) && o.is(Outcome::Refused));
    if let Some(o) = refused {
        evidence.push(super::edge::evidence(o));
    }
    let tier = if evidence.len() > 1 {
        Tier::Direct
    } else {
        Tier::Confirmed
    };
    let mut f = match t {
        Some(t) => Finding::new(Cause::ProxyDown, tier, t, evidence),
        None => Finding::seeded(Cause::ProxyDown, tier, evidence, cx.signal.first_failure_ms),
    };
    f.emitted_by = Some(Hop::Unknown);
    let state = if crash.is_some() {
        "crashed and is not serving"
    } else {
        "is not serving"
    };
    Some(f.say(
        check,
        format!("the proxy for {} on {} {state}", cx.site.host, h.id()),
    ))
}

/// The proxy units whose config serves the site, the only ones a verdict may
/// name (an nginx host with Apache installed and disabled must never get an
/// `apache2.service` verdict): the proxies whose virtual servers or routed
/// targets name the site; else the running proxy that owns the site's port;
/// else the only proxy whose config serves anything at all. Empty when none
/// is known: the rules then cite the empty port, never a unit.
pub(crate) fn site_proxies<'a>(
    cx: &Cx<'_>,
    h: &HostView<'a>,
) -> Vec<&'a gw502_proto::v1::UnitState> {
    let units = h.proxy_units();
    let named: Vec<&str> = h
        .proxies()
        .iter()
        .filter(|p| {
            p.servers.iter().any(|s| h.names_site(&s.names))
                || p.targets.iter().any(|t| h.names_site(&t.server_names))
        })
        .map(|p| p.unit.as_str())
        .collect();
    if !named.is_empty() {
        return units
            .into_iter()
            .filter(|u| named.contains(&u.name.as_str()))
            .collect();
    }
    let port = u32::from(cx.site.port);
    let on_port: Vec<_> = units
        .iter()
        .copied()
        .filter(|u| {
            h.listeners_of(&u.name)
                .iter()
                .any(|l| l.family.starts_with("tcp") && l.port == port)
        })
        .collect();
    if !on_port.is_empty() {
        return on_port;
    }
    let serving: Vec<&str> = h
        .proxies()
        .iter()
        .filter(|p| !p.targets.is_empty())
        .map(|p| p.unit.as_str())
        .collect();
    match serving.as_slice() {
        [only] => units.into_iter().filter(|u| u.name == *only).collect(),
        _ => Vec::new(),
    }
}

/// Config test failures, `[emerg]` journal lines and failed reloads of the
/// site's proxies.
fn config_failures(cx: &Cx<'_>, h: &HostView<'_>) -> Vec<Evidence> {
    let mut out = Vec::new();
    let ours: Vec<String> = site_proxies(cx, h).iter().map(|u| u.name.clone()).collect();
    let mine = |unit: &str| ours.is_empty() || ours.iter().any(|o| o == unit);
    for p in h
        .proxies()
        .iter()
        .filter(|p| mine(&p.unit) && p.test.as_ref().is_some_and(|t| t.ran && !t.ok))
    {
        let output = p.test.as_ref().map(|t| t.output.as_str()).unwrap_or("");
        let line = output
            .lines()
            .find(|l| l.contains("emerg") || l.contains("rror"))
            .unwrap_or(output);
        let at = if p.changed_at_ms > 0 {
            p.changed_at_ms
        } else {
            h.ev.last_seen_ms
        };
        out.push(Evidence::new(
            Source::ProxyConfig,
            h.id(),
            at,
            format!("{} config test failed: {line}", p.kind),
        ));
    }
    let emerg = h.signals().into_iter().find(|s| {
        s.causes.contains(&Cause::ProxyConfigInvalid)
            || super::lines::sample_candidates(&s.proxy, &s.sample)
                .contains(&Cause::ProxyConfigInvalid)
    });
    if let Some(s) = emerg {
        out.push(Evidence::new(
            Source::ProxyLog,
            h.id(),
            s.last_at_ms,
            format!("{}: {}", s.proxy, s.sample),
        ));
    }
    let proxies: Vec<String> = h.proxy_units().iter().map(|u| u.name.clone()).collect();
    let is_proxy = |unit: &str| proxies.iter().any(|p| p == unit) && mine(unit);
    if let Some(e) = h
        .journal("")
        .into_iter()
        .rev()
        .find(|e| is_proxy(&e.unit) && e.message.contains("[emerg]"))
    {
        out.push(Evidence::new(
            Source::Journal,
            h.id(),
            e.at_ms,
            format!("{}: {}", e.unit, e.message),
        ));
    }
    // A proxy that crashes until systemd gives up also "failed to start"; that says
    // nothing of its config.
    let crashed = |unit: &str| {
        h.proxy_units()
            .into_iter()
            .any(|u| u.name == unit && facts::crash_signal(u).is_some())
    };
    let failed_reload = h.events("").into_iter().rev().find(|e| {
        is_proxy(&e.unit)
            && (e.kind == "reload" || e.kind == "fail")
            && e.detail.to_ascii_lowercase().contains("fail")
            && !crashed(&e.unit)
    });
    if let Some(e) = failed_reload {
        out.push(Evidence::new(
            Source::Journal,
            h.id(),
            e.at_ms,
            format!("{} {}: {}", e.unit, e.kind, e.detail),
        ));
    }
    out
}
