//! Upstream-layer rules: the app process or pool itself is down, restarting,
//! silent, saturated, slow, or answered the 5xx on its own.
//!
//! A refused or missing-socket handoff is blamed on the upstream only when
//! systemd and sockets agree: the unit that should serve the target is down
//! (service_down, or crash_loop when restarts/exit events keep coming) or is
//! alive with no listener at all (not_listening). A unit alive on another
//! port or path is the handoff's business (see `handoff`). A response timeout
//! becomes `saturated` when the pool shows exhaustion (`pm.max_children`, a
//! full accept queue), otherwise it is a plain `timeout` (504). A 5xx that the
//! proxy relayed without logging an error of its own is
//! `upstream_returned_error` and keeps its status, when an app answered it: a
//! 5xx from a target a proxy listens on (nginx behind Varnish) is that proxy's
//! own, and what its own targets show explains it.
//!
//! On a cold start the unit that should serve the target may be known only
//! as a candidate (role `candidate`, see `chain`): it counts once tied to
//! the target, and the tie's own evidence (the `ExecStart` naming the port,
//! the working directory named after the site) is cited. A unit tied only
//! by its working directory is an inference, never a direct finding.
//! Candidates left untied are counted in `missing` by [`untied_candidates`].

use gw502_proto::v1::UnitState;

use super::Cx;
use super::chain::{self, Tie};
use super::evidence::{Evidence, Source};
use super::facts;
use super::finding::{Finding, Trigger};
use super::host::HostView;
use super::precedence::Tier;
use super::target::{Target, is_tcp, listener_accepts};
use super::verdict::Cause;

/// A unit whose state changed this recently with a restart counter of 3 or more is
/// restarting now, not carrying an old count.
const RECENT_RESTART_MS: i64 = 120_000;

/// Whether a proxy unit of the host that `target` lives on listens on it: the
/// target is a hop of the chain, not the app.
fn proxy_listens(cx: &Cx<'_>, h: &HostView<'_>, target: &Target) -> bool {
    let Some(th) = cx.host_of(h, target) else {
        return false;
    };
    let proxies = th.proxy_units();
    th.listeners().iter().any(|l| {
        is_tcp(l)
            && target.port == u16::try_from(l.port).ok()
            && listener_accepts(l, &target.host)
            && proxies.iter().any(|u| u.name == l.unit)
    })
}

/// Confirms an upstream-layer candidate of a trigger.
pub(crate) fn confirm(cx: &Cx<'_>, h: &HostView<'_>, t: &Trigger, cause: Cause) -> Option<Finding> {
    match cause {
        Cause::ServiceDown | Cause::CrashLoop | Cause::NotListening => {
            down_or_silent(cx, h, t, cause)
        }
        Cause::Saturated => {
            let sat = saturation(h);
            let tier = if sat.is_empty() {
                Tier::Inferred
            } else {
                Tier::Confirmed
            };
            let f = Finding::new(Cause::Saturated, tier, t, sat);
            Some(f.say(
                pool_check(h),
                format!(
                    "the upstream on {} has no free worker or accept slot",
                    h.id()
                ),
            ))
        }
        Cause::Timeout => {
            let sat = saturation(h);
            if !sat.is_empty() {
                return Some(
                    Finding::new(Cause::Saturated, Tier::Confirmed, t, sat)
                        .status(504)
                        .say(
                            pool_check(h),
                            format!(
                                "requests time out on {} because the upstream pool is exhausted",
                                h.id()
                            ),
                        ),
                );
            }
            let target = t
                .target
                .as_ref()
                .map(Target::display)
                .unwrap_or_else(|| "the upstream".into());
            // What the proxy routing to it answers a read timeout (Apache's mod_proxy_http: 502).
            let status = t
                .target
                .as_ref()
                .and_then(|x| h.proxy_routing_to(x))
                .map(|(proxy, routed)| proxy.read_timeout_status(&routed.protocol))
                .unwrap_or(504);
            Some(Finding::new(Cause::Timeout, Tier::Inferred, t, Vec::new()).status(status).say(
                format!("time a request to {target} on {} (curl -m 60 -w '%{{time_starttransfer}}'); it connects but sends no header in time", h.id()),
                format!("{target} accepts connections on {} but does not answer before the proxy's read timeout", h.id()),
            ))
        }
        // A proxy's 5xx is its own answer (nginx behind Varnish), which its own
        // targets explain; only an app answers one "itself".
        Cause::UpstreamReturnedError
            if t.target.as_ref().is_some_and(|x| proxy_listens(cx, h, x)) =>
        {
            None
        }
        Cause::UpstreamReturnedError => Some(
            Finding::new(Cause::UpstreamReturnedError, Tier::Inferred, t, Vec::new()).say(
                format!(
                    "read the app's own log for {} {} responses on {}",
                    cx.site.host,
                    t.status,
                    h.id()
                ),
                format!(
                    "the app behind {} on {} answered {} itself and the proxy relayed it",
                    cx.site.host,
                    h.id(),
                    t.status
                ),
            ),
        ),
        _ => None,
    }
}

/// Crash loop without a specific trigger cause: a unit keeps restarting while the host fails.
pub(crate) fn state(_cx: &Cx<'_>, h: &HostView<'_>, triggers: &[Trigger]) -> Vec<Finding> {
    let Some(first) = triggers.first() else {
        return Vec::new();
    };
    super::chain::upstream_units(h)
        .into_iter()
        .filter_map(|u| {
            let ev = crash_evidence(h, u);
            (ev.len() > 1).then(|| {
                Finding::new(Cause::CrashLoop, Tier::Confirmed, first, ev).say(
                    format!(
                        "journalctl -u {} -n 50 on {}: it keeps exiting and restarting",
                        u.name,
                        h.id()
                    ),
                    format!(
                        "{} on {} keeps restarting, so requests hit it between lives",
                        u.name,
                        h.id()
                    ),
                )
            })
        })
        .collect()
}

fn down_or_silent(cx: &Cx<'_>, h: &HostView<'_>, t: &Trigger, asked: Cause) -> Option<Finding> {
    let target = t.target.clone().or_else(|| single_target(h))?;
    let th = cx.host_of(h, &target)?;
    if !th.has(Source::Sockets) && !th.has(Source::Systemd) {
        return None;
    }
    let shown = target.display();
    if serves(&th, &target) {
        return None;
    }
    // Only units tied to the target's chain: a stopped exporter or database
    // on the same host is not the app (see `chain`).
    let tied = chain::tied_units(h, &th, &target);
    let units: Vec<&UnitState> = tied.iter().map(|(u, _)| *u).collect();
    let no_listener = facts::nothing_on(&th, &shown);
    // A unit that keeps restarting is caught either between lives (down) or just started
    // and not yet listening (running): both are the crash loop, not a stop or a bind.
    let looping = |u: &UnitState| {
        let crash = crash_evidence(&th, u);
        let restarting = u.active_state == "activating" && u.sub_state == "auto-restart";
        let recent = u.state_change_ms > 0 && cx.ev.now_ms - u.state_change_ms < RECENT_RESTART_MS;
        crash.len() > 1 || (!crash.is_empty() && (restarting || (recent && u.n_restarts >= 3)))
    };
    let down = units
        .iter()
        .copied()
        .find(|u| facts::is_down(u))
        .or_else(|| {
            units
                .iter()
                .copied()
                .find(|u| looping(u) && th.listeners_of(&u.name).is_empty())
        });
    if let Some(u) = down {
        let crash = crash_evidence(&th, u);
        let tie = tied.iter().find(|(x, _)| x.name == u.name).map(|(_, t)| *t);
        let mut extra = vec![no_listener];
        extra.extend(tie.and_then(|tie| chain::tie_evidence(&th, u, tie, &target)));
        let cause = if looping(u) {
            Cause::CrashLoop
        } else {
            Cause::ServiceDown
        };
        extra.extend(if crash.is_empty() {
            vec![facts::unit(&th, u)]
        } else {
            crash
        });
        let others_alive = units
            .iter()
            .any(|o| facts::is_running(o) && !th.listeners_of(&o.name).is_empty());
        let tier = if others_alive || tie == Some(Tie::Workdir) {
            Tier::Inferred
        } else {
            Tier::Direct
        };
        let f = Finding::new(cause, tier, t, extra);
        return Some(match cause {
            Cause::CrashLoop => f.say(
                format!("journalctl -u {} -n 50 on {}; it keeps restarting and {shown} is refused between restarts", u.name, th.id()),
                format!("{} on {} is in a crash loop, so the proxy finds nothing on {shown}", u.name, th.id()),
            ),
            _ => f.say(
                format!("systemctl status {} on {}; nothing listens on {shown}", u.name, th.id()),
                format!("{} on {} is {}, so nothing serves {shown}", u.name, th.id(), u.active_state),
            ),
        });
    }
    if asked == Cause::NotListening || asked == Cause::ServiceDown {
        let silent: Vec<&UnitState> = units
            .iter()
            .copied()
            .filter(|u| facts::is_running(u) && th.listeners_of(&u.name).is_empty())
            .collect();
        let bound_elsewhere = units
            .iter()
            .any(|u| facts::is_running(u) && !th.listeners_of(&u.name).is_empty());
        if let Some(u) = silent
            .first()
            .filter(|_| !bound_elsewhere && th.has(Source::Sockets))
        {
            return Some(Finding::new(Cause::NotListening, Tier::Inferred, t, vec![facts::unit(&th, u), no_listener]).say(
                format!("journalctl -u {} on {}: it runs but listens nowhere (bind failed or still starting); the proxy wants {shown}", u.name, th.id()),
                format!("{} on {} is running but has no listening socket", u.name, th.id()),
            ));
        }
    }
    None
}

/// `missing` lines for cold-start candidates that are down but tied to no
/// unserved target of the site on `h` (counted, never named; see `chain`).
pub(crate) fn untied_candidates(cx: &Cx<'_>, h: &HostView<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for target in h.targets().into_iter().filter_map(Target::from_config) {
        let Some(th) = cx.host_of(h, &target) else {
            continue;
        };
        if serves(&th, &target) {
            continue;
        }
        if let Some(line) = chain::untied_line(h, &th, &target)
            && !out.contains(&line)
        {
            out.push(line);
        }
    }
    out
}

/// The only configured target of the site on this host.
fn single_target(h: &HostView<'_>) -> Option<Target> {
    let targets = h.targets();
    match targets.as_slice() {
        [only] => Target::from_config(only),
        _ => None,
    }
}

/// Whether a listener on the target's host accepts the target right now.
pub(crate) fn serves(th: &HostView<'_>, t: &Target) -> bool {
    th.listeners().iter().any(|l| match (&t.unix, t.port) {
        (Some(path), _) => l.family == "unix" && &l.address == path,
        (None, Some(port)) => {
            is_tcp(l) && l.port == u32::from(port) && listener_accepts(l, &t.host)
        }
        (None, None) => false,
    })
}

/// Restart/exit evidence of a unit: auto-restart state, restart counter, repeated exits.
pub(crate) fn crash_evidence(h: &HostView<'_>, u: &UnitState) -> Vec<Evidence> {
    let mut out = Vec::new();
    let restarting = u.active_state == "activating" && u.sub_state == "auto-restart";
    let exits: Vec<_> = h
        .events(&u.name)
        .into_iter()
        .filter(|e| matches!(e.kind.as_str(), "restart" | "exit" | "fail"))
        .collect();
    let child_exits = h
        .journal(&u.name)
        .into_iter()
        .filter(|e| e.message.contains("exited on signal"))
        .count();
    if restarting || u.n_restarts >= 3 || exits.len() >= 2 || child_exits >= 2 {
        out.push(facts::unit(h, u));
        if let Some(e) = exits.last() {
            let detail = format!(
                "{} {} events in window, last: {} {}",
                exits.len(),
                u.name,
                e.kind,
                e.detail
            );
            out.push(Evidence::new(Source::Journal, h.id(), e.at_ms, detail));
        }
    }
    out
}

/// Pool exhaustion evidence: `pm.max_children`, a full accept queue, overflows.
pub(crate) fn saturation(h: &HostView<'_>) -> Vec<Evidence> {
    let mut out = Vec::new();
    let text =
        |m: &str| m.contains("max_children") || m.contains("max_requests") && m.contains("reached");
    if let Some(e) = h.journal("").into_iter().rev().find(|e| text(&e.message)) {
        out.push(Evidence::new(
            Source::Journal,
            h.id(),
            e.at_ms,
            format!("{}: {}", e.unit, e.message),
        ));
    }
    let full = |l: &&gw502_proto::v1::Listener| {
        (l.backlog > 0 && l.queued >= l.backlog) || l.overflows > 0
    };
    let upstream: Vec<String> = super::chain::upstream_units(h)
        .iter()
        .map(|u| u.name.clone())
        .collect();
    if let Some(l) = h
        .listeners()
        .iter()
        .filter(|l| upstream.contains(&l.unit) || upstream.is_empty())
        .find(full)
    {
        out.push(facts::listener(h, l));
    }
    out
}

fn pool_check(h: &HostView<'_>) -> String {
    match super::chain::upstream_units(h).first() {
        Some(u) => format!(
            "check {}'s worker pool on {} (pm.max_children / workers) and what holds the workers",
            u.name,
            h.id()
        ),
        None => format!("check the upstream worker pool on {}", h.id()),
    }
}
