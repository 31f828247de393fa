//! Container rules: the upstream behind a proxy target is a container of the
//! Docker Engine (or Podman), reported by the agent's containers source.
//!
//! The site shape is nginx → `127.0.0.1:8080` → docker-proxy → container.
//! The container behind a target port is the one the agent mapped the host
//! listener to (docker-proxy's forward, a host-network container's cgroup),
//! else the one that publishes (or, stopped, declares) that host port. Then:
//!
//! - stopped (exited, dead, created) and nothing serves the port:
//!   `service_down`; restarting, or running but restarted 3+ times within two
//!   minutes: `crash_loop`. An OOM kill is not a cause of its own: it is the
//!   reason the container stopped or loops, so the verdict stays
//!   `service_down`/`crash_loop` and its evidence, summary and `next_check`
//!   say OOMKilled, exit 137 and the memory limit (the fix is the limit or
//!   the leak, in the app's team, the upstream layer's owner);
//! - running, but inside its own network namespace the app listens on the
//!   published container port only on loopback: `bind_mismatch` (docker-proxy
//!   accepts, its connection to the container address is refused, and the
//!   proxy sees a close or reset); on other ports only: `wrong_port`;
//! - published on a host address the target does not reach: `bind_mismatch`;
//! - running and unhealthy while the proxy relays its 5xx or times out: the
//!   relayed cause, confirmed with the health check's own output.
//!
//! A refused target port that no container serves is `wrong_port` when a
//! running container published that port before (it was recreated on
//! another) or, as an inference, when one container's name or compose
//! project matches the site. The verdict names the container, never
//! `docker.service`.

use gw502_proto::v1::{Container, PublishedPort};
use gw502_vocab::Outcome;

use super::Cx;
use super::evidence::{Evidence, Source};
use super::facts;
use super::finding::{Finding, Trigger};
use super::host::HostView;
use super::precedence::Tier;
use super::target::{Target, is_tcp, listener_accepts};
use super::upstream::serves;
use super::verdict::Cause;

/// A container restarted this often, started this recently, is looping.
const LOOP_RESTARTS: u32 = 3;
const RECENT_START_MS: i64 = 120_000;

/// Findings about containers behind the site's targets on every trigger.
pub(crate) fn state(cx: &Cx<'_>, h: &HostView<'_>, triggers: &[Trigger]) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in triggers {
        let targets: Vec<Target> = match &t.target {
            Some(x) => vec![x.clone()],
            None => h
                .targets()
                .into_iter()
                .filter_map(Target::from_config)
                .collect(),
        };
        for target in targets {
            let Some(port) = target.port else { continue };
            let Some(th) = cx.host_of(h, &target) else {
                continue;
            };
            if containers(&th).is_empty() {
                continue;
            }
            if let Some(f) = judge(cx, &th, t, &target, u32::from(port)) {
                out.push(f);
            }
        }
    }
    out
}

/// The host's containers, empty when it has no engine section.
fn containers<'a>(h: &HostView<'a>) -> &'a [Container] {
    h.ev.state
        .containers
        .as_ref()
        .map_or(&[], |s| &s.containers)
}

/// The container behind `port` and the binding it uses.
fn behind<'a>(
    h: &HostView<'a>,
    target: &Target,
    port: u32,
) -> Option<(&'a Container, &'a PublishedPort)> {
    let all = containers(h);
    let by_listener = h
        .listeners()
        .iter()
        .filter(|l| is_tcp(l) && l.port == port && !l.container.is_empty())
        .find_map(|l| all.iter().find(|c| c.name == l.container));
    let c = by_listener.or_else(|| {
        all.iter().find(|c| {
            c.ports
                .iter()
                .any(|p| p.host_port == port && p.protocol != "udp")
        })
    })?;
    let binding = c
        .ports
        .iter()
        .filter(|p| p.host_port == port)
        .max_by_key(|p| published_accepts(p, &target.host))?;
    Some((c, binding))
}

/// Whether a published binding takes connections to `host`.
fn published_accepts(p: &PublishedPort, host: &str) -> bool {
    let l = gw502_proto::v1::Listener {
        family: if p.host_ip.contains(':') {
            "tcp6"
        } else {
            "tcp4"
        }
        .into(),
        address: p.host_ip.clone(),
        ..Default::default()
    };
    p.host_ip.is_empty() || listener_accepts(&l, host)
}

fn judge(
    cx: &Cx<'_>,
    th: &HostView<'_>,
    t: &Trigger,
    target: &Target,
    port: u32,
) -> Option<Finding> {
    let shown = target.display();
    let Some((c, binding)) = behind(th, target, port) else {
        return moved(cx, th, t, target, port);
    };
    let looping = c.state == "restarting"
        || (c.restart_count >= LOOP_RESTARTS && recent(cx, c.started_at_ms.max(c.finished_at_ms)));
    let stopped = matches!(c.state.as_str(), "exited" | "dead" | "created");
    if looping || (stopped && !serves(th, target)) {
        let cause = if looping {
            Cause::CrashLoop
        } else {
            Cause::ServiceDown
        };
        let mut ev = vec![describe(th, c)];
        ev.extend(last_log(th, c));
        if stopped {
            ev.push(facts::nothing_on(th, &shown));
        }
        let oom = oom_note(c);
        let f = Finding::new(cause, Tier::Direct, t, ev);
        return Some(if looping {
            f.say(
                format!("docker logs --tail 50 {} on {}{oom}: it keeps exiting (exit {}, {} restarts) and {shown} is refused between restarts", c.name, th.id(), c.exit_code, c.restart_count),
                format!("container {} on {} is in a restart loop{}, so nothing serves {shown}", c.name, th.id(), if c.oom_killed { " (OOM-killed)" } else { "" }),
            )
        } else {
            f.say(
                format!(
                    "docker inspect {} and docker logs {} on {}{oom}; nothing serves {shown}",
                    c.name,
                    c.name,
                    th.id()
                ),
                format!(
                    "container {} on {} is {} (exit {}{}), so nothing serves {shown}",
                    c.name,
                    th.id(),
                    c.state,
                    c.exit_code,
                    if c.oom_killed { ", OOM-killed" } else { "" }
                ),
            )
        });
    }
    if c.state != "running" {
        return None;
    }
    if !published_accepts(binding, &target.host) {
        return Some(Finding::new(Cause::BindMismatch, Tier::Direct, t, vec![describe(th, c)]).say(
            format!("publish container {} on {} so that {shown} reaches it (-p {}:{}), or point the proxy at {}:{port}", c.name, th.id(), target.host, binding.container_port, binding.host_ip),
            format!("container {} on {} is published on {}:{port}, which {shown} does not reach", c.name, th.id(), binding.host_ip),
        ));
    }
    if let Some(f) = inside(th, t, c, binding, &shown) {
        return Some(f);
    }
    unhealthy(th, t, c, &shown)
}

/// The app inside the container does not listen where the binding forwards.
fn inside(
    th: &HostView<'_>,
    t: &Trigger,
    c: &Container,
    b: &PublishedPort,
    shown: &str,
) -> Option<Finding> {
    if c.listens.is_empty() || c.network_mode == "host" {
        return None;
    }
    let on_port: Vec<&String> = c
        .listens
        .iter()
        .filter(|l| port_of(l) == Some(b.container_port))
        .collect();
    if on_port.iter().any(|l| !is_loopback(l)) {
        return None;
    }
    let inside = Evidence::new(
        Source::Containers,
        th.id(),
        th.ev.last_seen_ms,
        format!(
            "inside container {}: listens on {}",
            c.name,
            c.listens.join(", ")
        ),
    );
    let ev = vec![describe(th, c), inside];
    if !on_port.is_empty() {
        return Some(Finding::new(Cause::BindMismatch, Tier::Direct, t, ev).say(
            format!("make the app in container {} on {} listen on 0.0.0.0:{} (not {}); docker-proxy forwards {shown} to the container's address, where nothing accepts", c.name, th.id(), b.container_port, on_port[0]),
            format!("the app in container {} on {} listens on {} inside its own namespace, so connections through {shown} are reset", c.name, th.id(), on_port[0]),
        ));
    }
    let other: Vec<&String> = c.listens.iter().filter(|l| !is_loopback(l)).collect();
    let first = other.first()?;
    Some(Finding::new(Cause::WrongPort, Tier::Direct, t, ev).say(
        format!("container {} on {} publishes container port {} but its app listens on {first}: fix -p/ports", c.name, th.id(), b.container_port),
        format!("{shown} is forwarded to port {} of container {} on {}, where its app does not listen", b.container_port, c.name, th.id()),
    ))
}

/// A running, unhealthy container whose 5xx or slowness the proxy relays.
fn unhealthy(th: &HostView<'_>, t: &Trigger, c: &Container, shown: &str) -> Option<Finding> {
    if c.health != "unhealthy" {
        return None;
    }
    let cause = [Cause::Timeout, Cause::UpstreamReturnedError]
        .into_iter()
        .find(|x| t.candidates.contains(x))?;
    let mut ev = vec![describe(th, c)];
    ev.extend(last_log(th, c));
    let f = Finding::new(cause, Tier::Confirmed, t, ev).say(
        format!("docker inspect --format '{{{{json .State.Health}}}}' {} on {}: its health check fails ({})", c.name, th.id(), c.health_log),
        format!("container {} behind {shown} on {} is unhealthy and {}", c.name, th.id(), if cause == Cause::Timeout { "does not answer in time" } else { "answers errors itself" }),
    );
    Some(if cause == Cause::Timeout {
        f.status(504)
    } else {
        f
    })
}

/// Refused on a port no container serves, while the site's container runs
/// published on another host port.
fn moved(
    cx: &Cx<'_>,
    th: &HostView<'_>,
    t: &Trigger,
    target: &Target,
    port: u32,
) -> Option<Finding> {
    let refused = t.outcome == Some(Outcome::Refused)
        || t.candidates.contains(&Cause::WrongPort)
        || t.candidates.contains(&Cause::ServiceDown);
    if !refused || serves(th, target) {
        return None;
    }
    let running = || {
        containers(th)
            .iter()
            .filter(|c| c.state == "running" && !c.ports.is_empty())
    };
    let (c, tier) = match running().find(|c| c.past_host_ports.contains(&port)) {
        Some(c) => (c, Tier::Confirmed),
        None => {
            let label = cx.site.host.split('.').next().unwrap_or("");
            let named: Vec<&Container> = running()
                .filter(|c| {
                    label.len() >= 3
                        && [&c.name, &c.compose_project, &c.compose_service]
                            .iter()
                            .any(|n| {
                                n.split(['-', '_', '.'])
                                    .any(|w| w.eq_ignore_ascii_case(label))
                            })
                })
                .collect();
            match named.as_slice() {
                [only] => (*only, Tier::Inferred),
                _ => return None,
            }
        }
    };
    let now_on: Vec<String> = c
        .ports
        .iter()
        .map(|p| {
            format!(
                "{}:{}",
                if p.host_ip.is_empty() {
                    "0.0.0.0"
                } else {
                    &p.host_ip
                },
                p.host_port
            )
        })
        .collect();
    let shown = target.display();
    Some(Finding::new(Cause::WrongPort, tier, t, vec![describe(th, c), facts::nothing_on(th, &shown)]).say(
        format!("container {} on {} is published on {} while the proxy targets {shown}: fix -p/ports or the proxy target", c.name, th.id(), now_on.join(", ")),
        format!("the proxy targets {shown} on {}, but container {} is published on {}", th.id(), c.name, now_on.join(", ")),
    ))
}

fn recent(cx: &Cx<'_>, at_ms: i64) -> bool {
    at_ms > 0 && cx.ev.now_ms - at_ms < RECENT_START_MS
}

/// `container shop-web running restarts=0 exit=0 health=unhealthy image=...`.
fn describe(h: &HostView<'_>, c: &Container) -> Evidence {
    let mut d = format!(
        "container {} {} restarts={} exit={}",
        c.name, c.state, c.restart_count, c.exit_code
    );
    if c.oom_killed {
        d.push_str(" OOMKilled");
        if c.memory_limit > 0 {
            d.push_str(&format!(" memory_limit={}MiB", c.memory_limit >> 20));
        }
    }
    if !c.health.is_empty() {
        d.push_str(&format!(" health={}", c.health));
        if !c.health_log.is_empty() && c.health != "healthy" {
            d.push_str(&format!(" ({})", c.health_log));
        }
    }
    if !c.error.is_empty() {
        d.push_str(&format!(" error={}", c.error));
    }
    let ports: Vec<String> = c
        .ports
        .iter()
        .map(|p| format!("{}:{}->{}", p.host_ip, p.host_port, p.container_port))
        .collect();
    if !ports.is_empty() {
        d.push_str(&format!(" ports={}", ports.join(",")));
    }
    d.push_str(&format!(" image={}", c.image));
    let at = c.finished_at_ms.max(c.started_at_ms);
    Evidence::new(
        Source::Containers,
        h.id(),
        if at > 0 { at } else { h.ev.last_seen_ms },
        d,
    )
}

fn last_log(h: &HostView<'_>, c: &Container) -> Option<Evidence> {
    let l = c.logs.last()?;
    Some(Evidence::new(
        Source::Containers,
        h.id(),
        l.at_ms,
        format!("docker logs {} ({}): {}", c.name, l.stream, l.line),
    ))
}

/// `, OOMKilled (exit 137) at its 48 MiB memory limit: raise it or find what grows`.
fn oom_note(c: &Container) -> String {
    if !c.oom_killed {
        return String::new();
    }
    let limit = if c.memory_limit > 0 {
        format!("its {} MiB memory limit", c.memory_limit >> 20)
    } else {
        "the host's memory (no limit set)".to_string()
    };
    format!(
        ": the kernel OOM-killed it (OOMKilled=true, exit {}) at {limit}; raise the limit or find what grows",
        c.exit_code
    )
}

fn port_of(listen: &str) -> Option<u32> {
    listen.rsplit_once(':')?.1.parse().ok()
}

fn is_loopback(listen: &str) -> bool {
    let addr = listen.rsplit_once(':').map_or(listen, |(a, _)| a);
    addr.trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}
