//! Prints what the engine saw and concluded for one recorded matrix cell: the
//! edge probes, the verdicts `attribute()` gives today with their evidence, then each
//! host's log signals, direct probes and access-log counts. For triaging a cell that missed:
//!
//! ```text
//! cargo run -p gw502-tests --example replay_dump -- tests/fixtures/replay/<cell>.json
//! ```

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: replay_dump <fixture.json>"))?;
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
    let r = gw502_tests::matrix::replay::Recorded::from_json(&json)?;
    println!("{} expected {:?} passed {}", r.cell, r.expected, r.passed);
    for o in &r.evidence.edge {
        println!(
            "edge {} {} {} {} {}",
            o.at_ms, o.vantage, o.target, o.outcome, o.status
        );
    }
    for v in r.replay() {
        let evidence: Vec<String> = v
            .evidence
            .iter()
            .map(|e| format!("{}: {}", e.source, e.detail))
            .collect();
        println!(
            "verdict {} {} {} {} {}: {evidence:?}",
            v.host.as_deref().unwrap_or("-"),
            v.layer,
            v.cause,
            v.status,
            v.emitted_by
        );
        for m in &v.missing {
            println!("  missing: {m}");
        }
    }
    for h in &r.evidence.hosts {
        let s = &h.state;
        println!("== {}", h.host_id);
        for u in s.systemd.as_ref().map_or(&[][..], |d| &d.units) {
            println!(
                "  unit {} {}/{} restarts {} roles {:?} exec {:?}",
                u.name, u.active_state, u.sub_state, u.n_restarts, u.roles, u.exec_start
            );
        }
        for l in s.sockets.as_ref().map_or(&[][..], |d| &d.listeners) {
            println!("  listen {} {} {}", l.address, l.port, l.unit);
        }
        for c in s.containers.as_ref().map_or(&[][..], |c| &c.containers) {
            println!(
                "  container {} {} restarts {} listens {:?} ports {:?}",
                c.name,
                c.state,
                c.restart_count,
                c.listens,
                c.ports
                    .iter()
                    .map(|p| format!("{}:{}->{}", p.host_ip, p.host_port, p.container_port))
                    .collect::<Vec<_>>()
            );
        }
        for p in s.proxy_config.as_ref().map_or(&[][..], |c| &c.proxies) {
            let test = p.test.as_ref();
            println!(
                "  config {} {} test ran {:?} ok {:?}: {}",
                p.kind,
                p.unit,
                test.map(|t| t.ran),
                test.map(|t| t.ok),
                test.map_or("", |t| t.output.as_str()).replace('\n', " | ")
            );
        }
        for sig in s.proxy_log.as_ref().map_or(&[][..], |p| &p.signals) {
            let sample = sig.samples.first().map_or("", String::as_str);
            println!(
                "  signal {} {} {} server {:?} x{} {sample}",
                sig.proxy, sig.cause, sig.status, sig.server, sig.count
            );
        }
        for p in s.probes.as_ref().map_or(&[][..], |p| &p.probes) {
            let target = p.target.as_ref().map_or("", |t| t.address.as_str());
            println!(
                "  probe {target} {} {} {} {}",
                p.outcome, p.phase, p.status, p.detail
            );
        }
        for c in s.access_log.as_ref().map_or(&[][..], |a| &a.counts) {
            println!(
                "  access {} {} {} x{}",
                c.vhost, c.status, c.upstream_status, c.count
            );
        }
    }
    Ok(())
}
