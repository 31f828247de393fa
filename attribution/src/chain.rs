//! Which units and listeners belong to the site's request chain: the rule
//! that keeps an unrelated service (an exporter, a database, sshd, something
//! on a high port) from being taken for the app.
//!
//! Real hosts run many listeners. When the app is stopped or not listening,
//! "some other unit listens on another port" is no evidence of `wrong_port`;
//! a verdict that names an unrelated unit is worse than
//! `unknown/insufficient_evidence`. A unit counts as the upstream of a target
//! only when evidence ties it to the chain ([`Tie`]):
//!
//! - **served**: the agent saw it own a listener that a proxy targets (role
//!   `upstream`, kept by the agent's unit memory after the unit stops; for an
//!   app on a second host, which no agent sees both ends of, the collector
//!   remembers it across hosts and sets the role, `incidents::served`), and
//!   it does not serve another configured target right now (then it is that
//!   target's upstream, e.g. a second, healthy vhost's app);
//! - **named**: a distinctive word of its unit or process name appears in the
//!   target (an upstream host name, a socket path, `php8.2-fpm` in
//!   `/run/php/php8.2-fpm.sock`), in the target's upstream group, or in the
//!   site's name (`shop` in `shop.example` for `shop-api.service`);
//! - **declared**: its `ExecStart` names the target's port or socket path
//!   (`--bind 127.0.0.1:3000`, `PORT=3000`, `unix:/run/app.sock`; the exact
//!   rule is in [`declared`]);
//! - **workdir**: its `WorkingDirectory` shares a distinctive word with the
//!   target, group or site (`/srv/shop` for `shop.example`).
//!
//! Nothing else ties: not owning some listener, not being the only other
//! service, not being named in the agent config as an extra unit to watch,
//! not being a cold-start candidate.
//!
//! **Cold start.** An agent started on a broken host never saw the app
//! listen, so it reports failed, recently stopped and enabled-but-inactive
//! services with role `candidate`, with their `ExecStart` and
//! `WorkingDirectory`. A candidate is a candidate, not a proof: it becomes
//! the upstream of a target only through one of the ties above, and then the
//! verdict is about it (`service_down`, `crash_loop`). A candidate that no
//! evidence ties is never named, however alone it is: a failed database or
//! a stopped backup job on the same host is not the app, and naming an
//! unrelated unit is worse than `insufficient_evidence`. The verdict stays
//! `insufficient_evidence`, and `missing` says how many stopped or failed
//! candidates were left untied and what would tie them ([`untied_line`]),
//! without their names.
//! Proxy units are never the upstream. The listener on the target's own port
//! (another address or family) is tied by that port, which is what the
//! target names.

mod declared;

use gw502_proto::v1::{Listener, UnitState};

use super::evidence::{Evidence, Source};
use super::facts;
use super::host::HostView;
use super::target::{Target, is_tcp, listener_accepts};

/// Why a unit is believed to serve a target, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Tie {
    /// Its working directory shares a distinctive word with the target, group or site.
    Workdir,
    /// Its name shares a distinctive word with the target, group or site.
    Named,
    /// Its `ExecStart` names the target's port or socket path.
    Declared,
    /// The agent saw it serve a proxy target (role `upstream`).
    Served,
}

/// Words too common in names and paths to tie anything.
const COMMON: &[&str] = &[
    "run",
    "var",
    "tmp",
    "sock",
    "socket",
    "sockets",
    "www",
    "http",
    "https",
    "com",
    "net",
    "org",
    "example",
    "local",
    "localhost",
    "internal",
    "lan",
    "service",
    "server",
    "daemon",
    "srv",
    "opt",
    "home",
    "lib",
    "usr",
    "data",
    "default",
    "backend",
    "upstream",
    "web",
];

/// Distinctive lowercase words of a name, path or address (3+ characters,
/// not all digits, not [`COMMON`]).
pub(crate) fn words(text: &str) -> Vec<String> {
    text.to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| w.len() >= 3 && !w.chars().all(|c| c.is_ascii_digit()))
        .filter(|w| !COMMON.contains(w))
        .map(str::to_string)
        .collect()
}

/// The words a unit of the target's chain may be named after: the target's
/// host name (not an IP literal) or socket path, its upstream group in the
/// proxy config, and the site's name.
fn chain_words(h: &HostView<'_>, target: &Target) -> Vec<String> {
    let mut text = String::new();
    if !target.is_ip() {
        text.push_str(&target.host);
    }
    if let Some(path) = &target.unix {
        text.push(' ');
        text.push_str(path);
    }
    for t in h.targets() {
        if Target::from_config(t).is_some_and(|x| x.same(target)) {
            text.push(' ');
            text.push_str(&t.group);
        }
    }
    text.push(' ');
    text.push_str(&h.site.host);
    words(&text)
}

/// Whether `name` (a unit or process) shares a distinctive word with `chain`.
fn named(name: &str, chain: &[String]) -> bool {
    let name = name.trim_end_matches(".service");
    words(name).iter().any(|w| chain.contains(w))
}

/// Whether a listener serves a configured target of another site (on the
/// proxy host `h` or the target host `th`): then it is that site's upstream.
fn serves_other(h: &HostView<'_>, th: &HostView<'_>, l: &Listener, target: &Target) -> bool {
    let ours: Vec<Target> = h
        .targets()
        .into_iter()
        .filter_map(Target::from_config)
        .collect();
    let mut all: Vec<Target> = Vec::new();
    for v in [h, th] {
        for p in v.proxies() {
            all.extend(p.targets.iter().filter_map(Target::from_config));
        }
    }
    let other = |t: &&Target| !t.same(target) && !ours.iter().any(|o| o.same(t));
    all.iter().filter(other).any(|t| match (&t.unix, t.port) {
        (Some(path), _) => l.family == "unix" && &l.address == path,
        (None, Some(port)) => {
            is_tcp(l)
                && l.port == u32::from(port)
                && (listener_accepts(l, &t.host) || (t.is_loopback() && th.id() == h.id()))
        }
        (None, None) => false,
    })
}

/// Units that serve upstream targets: role `upstream`, else the units
/// tied by name to one of the site's targets (see the module docs).
/// Owning some listener is not enough: an exporter or a database is not
/// the app.
pub(crate) fn upstream_units<'a>(h: &HostView<'a>) -> Vec<&'a UnitState> {
    let tagged: Vec<_> = h
        .units()
        .iter()
        .filter(|u| u.roles.iter().any(|r| r == "upstream"))
        .collect();
    if !tagged.is_empty() {
        return tagged;
    }
    let targets: Vec<Target> = h
        .targets()
        .iter()
        .filter_map(|t| Target::from_config(t))
        .collect();
    h.units()
        .iter()
        .filter(|u| targets.iter().any(|t| unit_tie(h, h, u, t).is_some()))
        .collect()
}

/// Why unit `u` on `th` is the upstream of `target` routed from `h`, if it is.
pub(crate) fn unit_tie(
    h: &HostView<'_>,
    th: &HostView<'_>,
    u: &UnitState,
    target: &Target,
) -> Option<Tie> {
    if th.is_proxy_unit(u) {
        return None;
    }
    let listeners = th.listeners_of(&u.name);
    let other_target = listeners.iter().any(|l| serves_other(h, th, l, target));
    if u.roles.iter().any(|r| r == "upstream") && !other_target {
        return Some(Tie::Served);
    }
    if declared::declares(&u.exec_start, target) {
        return Some(Tie::Declared);
    }
    let chain = chain_words(h, target);
    let process = listeners.iter().any(|l| named(&l.process, &chain));
    if named(&u.name, &chain) || process {
        return Some(Tie::Named);
    }
    let workdir = words(&u.working_directory);
    workdir
        .iter()
        .any(|w| chain.contains(w))
        .then_some(Tie::Workdir)
}

/// Whether the agent reported `u` as a cold-start candidate.
pub(crate) fn is_candidate(u: &UnitState) -> bool {
    u.roles.iter().any(|r| r == "candidate")
}

/// The evidence behind a tie that a reader cannot see in the unit's state:
/// the `ExecStart` or `WorkingDirectory` that names the target or the site.
pub(crate) fn tie_evidence(
    th: &HostView<'_>,
    u: &UnitState,
    tie: Tie,
    target: &Target,
) -> Option<Evidence> {
    let detail = match tie {
        Tie::Declared => format!(
            "{} ExecStart names {}: {}",
            u.name,
            target.display(),
            u.exec_start.join(" ")
        ),
        Tie::Workdir => format!(
            "{} WorkingDirectory {} matches {}",
            u.name, u.working_directory, th.site.host
        ),
        Tie::Named | Tie::Served => return None,
    };
    let at = if u.state_change_ms > 0 {
        u.state_change_ms
    } else {
        th.ev.last_seen_ms
    };
    Some(Evidence::new(Source::Systemd, th.id(), at, detail))
}

/// The `missing` line for stopped or failed candidates on `th` that nothing
/// ties to `target`, if there are any (see the module docs: they are
/// counted, never named).
pub(crate) fn untied_line(h: &HostView<'_>, th: &HostView<'_>, target: &Target) -> Option<String> {
    let untied = th
        .units()
        .iter()
        .filter(|u| is_candidate(u) && facts::is_down(u) && !th.is_proxy_unit(u))
        .filter(|u| unit_tie(h, th, u, target).is_none())
        .count();
    (untied > 0).then(|| {
        format!(
            "{untied} stopped or failed service unit(s) on {} not tied to {} by name, ExecStart or WorkingDirectory; none is named",
            th.id(),
            target.display()
        )
    })
}

/// Whether a listener belongs to another part of the chain: a proxy's own
/// listener, or the upstream of another configured target.
pub(crate) fn elsewhere(
    h: &HostView<'_>,
    th: &HostView<'_>,
    l: &Listener,
    target: &Target,
) -> bool {
    th.proxy_units().iter().any(|u| u.name == l.unit) || serves_other(h, th, l, target)
}

/// Why listener `l` on `th` is the upstream of `target` routed from `h`.
pub(crate) fn listener_tie(
    h: &HostView<'_>,
    th: &HostView<'_>,
    l: &Listener,
    target: &Target,
) -> Option<Tie> {
    if elsewhere(h, th, l, target) {
        return None;
    }
    let unit = th
        .units()
        .iter()
        .find(|u| u.name == l.unit && !l.unit.is_empty());
    match unit {
        Some(u) => unit_tie(h, th, u, target),
        None => named(&l.process, &chain_words(h, target)).then_some(Tie::Named),
    }
}

/// The units on `th` tied to `target`, with their tie, strongest first.
pub(crate) fn tied_units<'a>(
    h: &HostView<'_>,
    th: &HostView<'a>,
    target: &Target,
) -> Vec<(&'a UnitState, Tie)> {
    let mut out: Vec<(&UnitState, Tie)> = th
        .units()
        .iter()
        .filter_map(|u| unit_tie(h, th, u, target).map(|t| (u, t)))
        .collect();
    out.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_skip_common_and_numeric_parts() {
        assert_eq!(words("/run/php/php8.2-fpm.sock"), ["php", "php8", "fpm"]);
        assert_eq!(words("127.0.0.1:3000"), Vec::<String>::new());
        assert_eq!(
            words("prometheus-alertmanager.service"),
            ["prometheus", "alertmanager"]
        );
        assert_eq!(words("shop.example"), ["shop"]);
    }

    #[test]
    fn names_tie_on_a_shared_word_only() {
        let chain = words("shop.example /run/php/php8.2-fpm.sock");
        assert!(named("php8.2-fpm.service", &chain));
        assert!(named("shop-api.service", &chain));
        assert!(!named("prometheus-alertmanager.service", &chain));
        assert!(!named("postgresql@15-main.service", &chain));
        assert!(!named("ssh.service", &chain));
    }
}
