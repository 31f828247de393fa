//! `gw502-agent snapshot`: gather once and show the local operator what the
//! agent sees, as JSON (exactly the report it would send) or as a summary.

use std::fmt::Write as _;

use gw502_proto::v1::HostReport;

use crate::config::Config;
use crate::pipeline::Sources;

/// Gathers one full report and prints it.
pub async fn print(config: &Config, json: bool) -> anyhow::Result<()> {
    let report = Sources::new(config).gather(config).await;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", summary(&report));
    }
    Ok(())
}

/// Escapes control characters so log text cannot drive the terminal.
pub fn escape(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

fn unavailable(out: &mut String, reason: &str) -> bool {
    if reason.is_empty() {
        return false;
    }
    let _ = writeln!(out, "  unavailable: {}", escape(reason));
    true
}

/// A readable summary, one block per source.
pub fn summary(report: &HostReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "host {} (agent {})",
        report.host_id, report.agent_version
    );
    if let Some(s) = &report.proxy_config {
        let _ = writeln!(out, "\nproxies (nginx -t / config)");
        if !unavailable(&mut out, &s.unavailable) {
            for p in &s.proxies {
                let test = p.test.as_ref().map_or("not run".to_string(), |t| {
                    if t.ok {
                        "ok".to_string()
                    } else {
                        format!("FAILED: {}", escape(t.output.lines().last().unwrap_or("")))
                    }
                });
                let _ = writeln!(out, "  {} ({}) config test {test}", p.kind, p.unit);
                for t in &p.targets {
                    let _ = writeln!(
                        out,
                        "    {} {} -> {} {}",
                        t.server_names.join(","),
                        t.location,
                        t.protocol,
                        escape(&t.address)
                    );
                }
            }
        }
    }
    if let Some(s) = &report.sockets {
        let _ = writeln!(out, "\nlisteners (ss -tlnp, via {})", s.method);
        if !unavailable(&mut out, &s.unavailable) {
            for l in &s.listeners {
                let at = match l.family.as_str() {
                    "unix" => escape(&l.address),
                    "tcp6" => format!("[{}]:{}", l.address, l.port),
                    _ => format!("{}:{}", l.address, l.port),
                };
                let _ = writeln!(
                    out,
                    "  {:5} {at} {} pid {} {}",
                    l.family, l.process, l.pid, l.unit
                );
            }
        }
    }
    if let Some(s) = &report.systemd {
        let _ = writeln!(out, "\nunits (systemctl status)");
        if !unavailable(&mut out, &s.unavailable) {
            for u in &s.units {
                let _ = writeln!(
                    out,
                    "  {} {}/{} result={} restarts={} [{}]",
                    u.name,
                    u.active_state,
                    u.sub_state,
                    u.result,
                    u.n_restarts,
                    u.roles.join(",")
                );
            }
        }
    }
    if let Some(s) = &report.probes {
        let _ = writeln!(out, "\nupstream probes (curl the backend)");
        if !unavailable(&mut out, &s.unavailable) {
            for p in &s.probes {
                let target = p
                    .target
                    .as_ref()
                    .map_or(String::new(), |t| format!("{} {}", t.protocol, t.address));
                let _ = writeln!(
                    out,
                    "  {target}: {} {} {}",
                    p.outcome,
                    p.status,
                    escape(&p.detail)
                );
            }
        }
    }
    if let Some(s) = &report.dns {
        let _ = writeln!(out, "\ndns (dig)");
        if !unavailable(&mut out, &s.unavailable) {
            for a in &s.answers {
                let answer = if a.error.is_empty() {
                    a.addresses.join(" ")
                } else {
                    escape(&a.error)
                };
                let _ = writeln!(out, "  {} [{}]: {answer}", a.name, a.purpose);
            }
        }
    }
    if let Some(s) = &report.journal {
        let _ = writeln!(out, "\njournal (warnings and unit events)");
        if !unavailable(&mut out, &s.unavailable) {
            for e in &s.entries {
                let _ = writeln!(out, "  {} p{} {}", e.unit, e.priority, escape(&e.message));
            }
            for e in &s.events {
                let _ = writeln!(out, "  {} {} {}", e.unit, e.kind, escape(&e.detail));
            }
        }
    }
    if let Some(s) = &report.containers {
        let _ = writeln!(out, "\ncontainers (docker ps -a / inspect, {})", s.engine);
        if !unavailable(&mut out, &s.unavailable) {
            for c in &s.containers {
                let ports: Vec<String> = c
                    .ports
                    .iter()
                    .map(|p| format!("{}:{}->{}", p.host_ip, p.host_port, p.container_port))
                    .collect();
                let _ = writeln!(
                    out,
                    "  {} {} restarts={} exit={}{}{} [{}] listens [{}]",
                    escape(&c.name),
                    c.state,
                    c.restart_count,
                    c.exit_code,
                    if c.oom_killed { " OOMKilled" } else { "" },
                    if c.health.is_empty() {
                        String::new()
                    } else {
                        format!(" health={}", c.health)
                    },
                    ports.join(" "),
                    c.listens.join(" ")
                );
                for l in &c.logs {
                    let _ = writeln!(out, "    {} {}", l.stream, escape(&l.line));
                }
            }
        }
    }
    if let Some(s) = &report.proxy_log {
        let _ = writeln!(out, "\nproxy error log");
        if !unavailable(&mut out, &s.unavailable) {
            for g in &s.signals {
                let _ = writeln!(
                    out,
                    "  {} {} upstream {}: {} x{}",
                    g.proxy,
                    g.server,
                    escape(&g.upstream),
                    g.cause,
                    g.count
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("a\x1b[31mb\n"), "a\\u{1b}[31mb\\n");
    }
}
