//! Handoff-layer rules: the proxy and a healthy upstream fail to meet.
//!
//! Refused on port T is a handoff fault when the upstream is alive somewhere
//! else: listening on T but on another address or family (bind_mismatch), or
//! on another port (wrong_port). A missing unix socket with the upstream
//! listening on another path is wrong_socket_path; EACCES cites the socket's
//! mode and owner. TLS, protocol and DNS causes come from log lines and probe
//! detail prefixes, backed by the config's target protocol and the host's DNS
//! answers; a proxy speaking HTTP to a program that serves only FastCGI is
//! a protocol mismatch by the listener's program ([`super::protocol`]). A connect timeout or no-route is firewall_blocked, confirmed when
//! the target's host (possibly another agent) shows a live listener.
//! An edge refused on another host's port, where that host's own proxy
//! serves the site on a different port, is the edge's wrong_port
//! ([`super::origin`]).

use gw502_proto::v1::Listener;
use gw502_vocab::Outcome;

use super::Cx;
use super::chain::{self, Tie};
use super::evidence::{Evidence, Source};
use super::facts;
use super::finding::{Finding, Trigger};
use super::host::HostView;
use super::origin;
use super::precedence::Tier;
use super::protocol;
use super::target::{Target, is_tcp, listener_accepts};
use super::upstream::serves;
use super::verdict::Cause;

/// Confirms a handoff-layer candidate of a trigger.
pub(crate) fn confirm(cx: &Cx<'_>, h: &HostView<'_>, t: &Trigger, cause: Cause) -> Option<Finding> {
    let target = t.target.clone();
    let shown = target
        .as_ref()
        .map(Target::display)
        .unwrap_or_else(|| "the upstream".into());
    match cause {
        Cause::BindMismatch | Cause::WrongPort => tcp_elsewhere(cx, h, t, target?),
        Cause::WrongSocketPath => other_path(cx, h, t, target?),
        Cause::SocketPermissionDenied => {
            let th = target.as_ref().and_then(|x| cx.host_of(h, x)).unwrap_or(*h);
            let sock = th.listeners().iter().find(|l| {
                l.family == "unix"
                    && Some(&l.address) == target.as_ref().and_then(|x| x.unix.as_ref())
            });
            let extra: Vec<Evidence> = sock.map(|l| facts::listener(&th, l)).into_iter().collect();
            let tier = if extra.is_empty() {
                Tier::Inferred
            } else {
                Tier::Direct
            };
            let owner = sock
                .map(|l| format!(" (mode {:o}, uid {}, gid {})", l.mode, l.uid, l.gid))
                .unwrap_or_default();
            let finding = Finding::new(cause, tier, t, extra).say(
                format!("ls -l {}{owner} on {}: the proxy's worker user may not connect; fix listen.owner/group/mode", shown.trim_start_matches("unix:"), h.id()),
                format!("the proxy on {} may not connect to {shown}", h.id()),
            );
            // Every proxy answers a connect its socket's mode refuses as a refused one.
            Some(with_routing_status(finding, h, target.as_ref(), |p| p.refused_status()))
        }
        Cause::ProtocolMismatch
            if let Some(d) = target.as_ref().and_then(|x| protocol::disagreement(cx, h, x)) =>
        {
            Some(Finding::new(cause, Tier::Direct, t, d.evidence).say(
                format!(
                    "the proxy on {} speaks {} to {shown} where {} serves {}; point a {} directive (fastcgi_pass, php_fastcgi, proto fcgi, fcgi://) at it or the proxy_pass at the app's HTTP listener",
                    h.id(), d.config, d.program, d.served, d.served
                ),
                format!("handoff to {shown} on {} fails: the proxy speaks {} to {}, which serves {}", h.id(), d.config, d.program, d.served),
            ))
        }
        Cause::ProtocolMismatch | Cause::TlsMismatch | Cause::TlsCertificateError => {
            let extra: Vec<Evidence> = config_target(h, target.as_ref()).into_iter().collect();
            let text = format!("{} {}", t.text, t.evidence.detail).to_ascii_lowercase();
            // Plain HTTP to a TLS listener is reset (502 from every proxy); every
            // other TLS failure here is a failed handshake.
            let plain_to_tls = text.contains("tls_peer") || text.contains("no valid http");
            let handshake = matches!(cause, Cause::TlsMismatch | Cause::TlsCertificateError)
                && !plain_to_tls;
            let (what, check) = match cause {
                Cause::TlsMismatch if plain_to_tls => {
                    (
                        "the proxy speaks plain HTTP to a TLS listener",
                        format!(
                            "switch the proxy's target {shown} on {} to https (or serve plain HTTP there)",
                            h.id()
                        ),
                    )
                }
                Cause::TlsMismatch => (
                    "the proxy speaks TLS to a plain HTTP listener",
                    format!(
                        "switch the proxy's target {shown} on {} to http:// (or enable TLS on the upstream)",
                        h.id()
                    ),
                ),
                Cause::TlsCertificateError => (
                    "the upstream certificate is rejected",
                    format!(
                        "openssl s_client -connect {shown} -servername <upstream name> on {}: check expiry, chain and name",
                        h.id()
                    ),
                ),
                _ => (
                    "the proxy and the upstream speak different protocols",
                    format!(
                        "match the proxy directive for {shown} on {} (proxy_pass vs fastcgi_pass/uwsgi_pass/grpc_pass) to what it serves",
                        h.id()
                    ),
                ),
            };
            let finding = Finding::new(cause, Tier::Confirmed, t, extra).say(
                check,
                format!("handoff to {shown} on {} fails: {what}", h.id()),
            );
            Some(if handshake {
                with_routing_status(finding, h, target.as_ref(), |p| p.handshake_status())
            } else {
                finding
            })
        }
        Cause::DnsFailure => {
            if t.text.contains("[emerg]") {
                return None;
            }
            let name = target.as_ref().map(|x| x.host.clone()).unwrap_or_default();
            let answers = h.ev.state.dns.as_ref().map_or(&[][..], |d| &d.answers);
            let failed = answers.iter().find(|a| {
                !a.error.is_empty() && (name.is_empty() || a.name.eq_ignore_ascii_case(&name))
            });
            let extra: Vec<Evidence> = failed
                .map(|a| {
                    Evidence::new(
                        Source::Dns,
                        h.id(),
                        h.ev.last_seen_ms,
                        format!("{}: {}", a.name, a.error),
                    )
                })
                .into_iter()
                .collect();
            let tier = if extra.is_empty() {
                Tier::Inferred
            } else {
                Tier::Direct
            };
            let name = failed.map(|a| a.name.clone()).unwrap_or(name);
            Some(Finding::new(cause, tier, t, extra).say(
                format!(
                    "resolve {name} from {} with the proxy's resolver (dig +short {name})",
                    h.id()
                ),
                format!("the upstream name {name} does not resolve on {}", h.id()),
            ))
        }
        Cause::FirewallBlocked => firewall(cx, h, t, target),
        _ => None,
    }
}

fn tcp_elsewhere(cx: &Cx<'_>, h: &HostView<'_>, t: &Trigger, target: Target) -> Option<Finding> {
    let port = target.port?;
    let th = cx.host_of(h, &target)?;
    if !th.has(Source::Sockets) || serves(&th, &target) {
        return None;
    }
    let shown = target.display();
    let on_port: Vec<_> = th
        .listeners()
        .iter()
        .filter(|l| is_tcp(l) && l.port == u32::from(port) && !chain::elsewhere(h, &th, l, &target))
        .collect();
    if let Some(l) = on_port.first() {
        return Some(Finding::new(Cause::BindMismatch, Tier::Direct, t, vec![facts::listener(&th, l)]).say(
            format!("the proxy on {} targets {shown} but {} binds {}:{port}; align the bind address or the target", h.id(), unit_or_process(l), l.address),
            format!("{shown} is refused on {} because the upstream listens on another address/family", th.id()),
        ));
    }
    // Only a listener tied to the chain is "the app on another port"; an
    // exporter or a database listening elsewhere says nothing about the target.
    let down = chain::tied_units(h, &th, &target)
        .iter()
        .any(|(u, _)| facts::is_down(u));
    let running = |l: &Listener| {
        th.units()
            .iter()
            .find(|u| u.name == l.unit)
            .is_none_or(facts::is_running)
    };
    let tied = th
        .listeners()
        .iter()
        .filter(|l| {
            is_tcp(l)
                && l.port != u32::from(port)
                && (listener_accepts(l, &target.host) || target.is_loopback())
                && running(l)
        })
        .filter_map(|l| chain::listener_tie(h, &th, l, &target).map(|tie| (l, tie)))
        .max_by_key(|(_, tie)| *tie);
    let Some((alive, tie)) = tied else {
        return origin::wrong_front_port(cx, h, &th, t, &target);
    };
    let tier = match tie {
        _ if down => Tier::Circumstantial,
        Tie::Served | Tie::Declared => Tier::Confirmed,
        Tie::Named | Tie::Workdir => Tier::Inferred,
    };
    let owner = unit_or_process(alive);
    Some(Finding::new(Cause::WrongPort, tier, t, vec![facts::nothing_on(&th, &shown), facts::listener(&th, alive)]).say(
        format!("the proxy on {} targets port {port} but {owner} listens on {}; fix the port in the proxy config or the app", h.id(), alive.port),
        format!("the proxy targets {shown} while {owner} on {} listens on port {}", th.id(), alive.port),
    ))
}

fn other_path(cx: &Cx<'_>, h: &HostView<'_>, t: &Trigger, target: Target) -> Option<Finding> {
    let path = target.unix.clone()?;
    let th = cx.host_of(h, &target)?;
    if !th.has(Source::Sockets) || serves(&th, &target) {
        return None;
    }
    let tied = chain::tied_units(h, &th, &target);
    if tied.iter().any(|(u, _)| facts::is_down(u)) {
        return None;
    }
    // A socket in the target's own directory (`/run/php/`) is tied by place;
    // a shared directory such as `/run` ties nothing.
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    let specific = !matches!(dir, "" | "/run" | "/var/run" | "/tmp" | "/var/tmp");
    let sock = th
        .listeners()
        .iter()
        .filter(|l| l.family == "unix" && l.address != path)
        .filter(|l| !chain::elsewhere(h, &th, l, &target))
        .find(|l| {
            tied.iter().any(|(u, _)| u.name == l.unit)
                || chain::listener_tie(h, &th, l, &target).is_some()
                || (specific && l.address.starts_with(&format!("{dir}/")))
        })?;
    Some(Finding::new(Cause::WrongSocketPath, Tier::Confirmed, t, vec![facts::nothing_on(&th, &format!("unix:{path}")), facts::listener(&th, sock)]).say(
        format!("the proxy on {} connects to {path} but {} listens on {}; align fastcgi_pass/listen", h.id(), unit_or_process(sock), sock.address),
        format!("{path} does not exist on {}; the upstream listens on {}", th.id(), sock.address),
    ))
}

fn firewall(cx: &Cx<'_>, h: &HostView<'_>, t: &Trigger, target: Option<Target>) -> Option<Finding> {
    if let Some(f) = target.as_ref().and_then(|x| misdirected(cx, h, t, x)) {
        return Some(f);
    }
    let drop = t.status == 504
        || t.outcome == Some(Outcome::Timeout)
        || t.text.contains("timed out")
        || t.text.contains("timeout");
    let status = if drop { 504 } else { 502 };
    let shown = target
        .as_ref()
        .map(Target::display)
        .unwrap_or_else(|| "the upstream".into());
    let th = target.as_ref().and_then(|x| cx.host_of(h, x));
    let (tier, extra, missing) = match (&th, &target) {
        (Some(th), Some(x)) if th.has(Source::Sockets) => match th.listeners().iter().find(|l| {
            is_tcp(l)
                && x.port.is_some_and(|p| l.port == u32::from(p))
                && (listener_accepts(l, &x.host) || th.id() != h.id())
        }) {
            Some(l) => (Tier::Direct, vec![facts::listener(th, l)], None),
            None => (
                Tier::Circumstantial,
                vec![facts::nothing_on(th, &shown)],
                Some(format!("no live listener for {shown} on {}", th.id())),
            ),
        },
        _ => (
            Tier::Circumstantial,
            Vec::new(),
            Some(format!("no sockets evidence from the host of {shown}")),
        ),
    };
    let f = Finding::new(Cause::FirewallBlocked, tier, t, extra).status(status).say(
        format!("check firewall rules between {} and {shown} (nft list ruleset; the listener is up but connects {})", h.id(), if drop { "time out" } else { "are rejected" }),
        format!("{} cannot reach {shown} although it listens: the path drops or rejects", h.id()),
    );
    // A drop times the connect out, a reject fails it at once, as a refusal does.
    let answer: fn(&dyn gw502_proxy::Proxy) -> u16 = if drop {
        |p| p.connect_timeout_status()
    } else {
        |p| p.refused_status()
    };
    let mut f = with_routing_status(f, h, target.as_ref(), answer);
    f.missing.extend(missing);
    Some(f)
}

/// An upstream name whose DNS answer points at no host that reports, while
/// another reporting host listens on the target's port: the name resolves to
/// the wrong address (`dns_failure`), not a firewall between two live ends.
fn misdirected(cx: &Cx<'_>, h: &HostView<'_>, t: &Trigger, target: &Target) -> Option<Finding> {
    let port = u32::from(target.port?);
    if target.is_loopback() || cx.host_of(h, target).is_some() {
        return None;
    }
    // The log may show the name or the address it resolved to.
    let answers = h.ev.state.dns.as_ref().map_or(&[][..], |d| &d.answers);
    let answer = answers.iter().find(|a| {
        !a.addresses.is_empty()
            && (a.name.eq_ignore_ascii_case(&target.host)
                || a.addresses.iter().any(|x| x == &target.host))
    })?;
    let (home, l) = cx
        .ev
        .hosts
        .iter()
        .filter(|o| o.host_id != h.id())
        .find_map(|o| {
            let view = HostView {
                ev: o,
                site: cx.site,
                serves: super::host::Serves::Discovered,
            };
            let l = o.state.sockets.as_ref()?.listeners.iter().find(|l| {
                is_tcp(l) && l.port == port && !view.proxy_units().iter().any(|u| u.name == l.unit)
            })?;
            Some((view, l))
        })?;
    let shown = target.display();
    let dns = Evidence::new(
        Source::Dns,
        h.id(),
        h.ev.last_seen_ms,
        format!(
            "{} resolves to {}",
            answer.name,
            answer.addresses.join(", ")
        ),
    );
    let addrs = home.ev.state.addresses.join(", ");
    Some(Finding::new(Cause::DnsFailure, Tier::Confirmed, t, vec![dns, facts::listener(&home, l)]).say(
        format!("dig +short {} on {}: it answers {} but the upstream runs on {} ({addrs}); fix the record or /etc/hosts", answer.name, h.id(), answer.addresses.join(", "), home.id()),
        format!("{shown} resolves to an address where nothing serves it; the upstream listens on {}", home.id()),
    ))
}

fn config_target(h: &HostView<'_>, target: Option<&Target>) -> Option<Evidence> {
    let target = target?;
    let t = h
        .targets()
        .into_iter()
        .find(|c| Target::from_config(c).is_some_and(|x| x.same(target)))?;
    let detail = format!(
        "{} {} {} (location {})",
        t.directive, t.protocol, t.address, t.location
    );
    Some(Evidence::new(
        Source::ProxyConfig,
        h.id(),
        h.ev.last_seen_ms,
        detail,
    ))
}

fn unit_or_process(l: &gw502_proto::v1::Listener) -> &str {
    if l.unit.is_empty() {
        &l.process
    } else {
        &l.unit
    }
}

/// `finding` with the status the proxy on `h` that routes to `target` answers this
/// failure (`status` of its model), for while no visitor's answer shows one: a
/// verdict the direct probe found first, on one origin of several, say.
fn with_routing_status(
    finding: Finding,
    h: &HostView<'_>,
    target: Option<&Target>,
    status: fn(&dyn gw502_proxy::Proxy) -> u16,
) -> Finding {
    match target.and_then(|x| h.proxy_routing_to(x)) {
        Some((proxy, _)) => finding.status(status(proxy)),
        None => finding,
    }
}
