//! A network partition between real lab agents and the collector, made by an nft rule
//! on the machine (issue 14): three lab hosts run the agent exactly as shipped
//! ([`LabFleet`]), one collector runs on the machine with a webhook receiver on loopback,
//! and once reports flow a table of its own (`inet gw502_partition`) drops the collector
//! port on the lab bridge, both ways. One host's app is stopped inside the cut, so the 502
//! fault starts while nobody can report it. After the heal the test checks, from the
//! collector's SQLite file, gw502ctl and the receiver:
//!
//! - for every agent run, the stored seqs are contiguous from its first to its last,
//!   none twice (whatever number of reports the agent made during the cut);
//! - the incident of the stopped app exists once, with the right verdict;
//! - the receiver took its firing delivery once, under one idempotency key;
//! - the recovery: heal to every spool empty, heal to the incident.
//!
//! The short form (10 s cut) runs in the normal suite; the full form cuts for 45 s:
//!
//! ```text
//! GW502_LAB_PARTITION_FULL=1 cargo test -p gw502-tests --test lab_partition -- --nocapture
//! ```
//!
//! The rule is built from `nft` argument vectors and removed by a guard, also on panic.
//! The lab needs root, `systemd-nspawn`, `nft` and the built binaries; it never skips.

#[allow(dead_code)]
#[path = "reliability/receiver.rs"]
mod receiver;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use gw502_collector::config::Config;
use gw502_tests::fleet::Running;
use gw502_tests::lab::{BRIDGE, fixtures, run, sweep};
use gw502_tests::scenario::agent::AGENT_UNIT;
use gw502_tests::scenario::cases::{Expect, verdict};
use gw502_tests::scenario::{LabFleet, LabSite, collector};
use serde_json::Value;
use sqlx::{Connection, Row};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use receiver::Receiver;

/// The nft table the cut lives in.
const TABLE: &str = "gw502_partition";
/// Bound on one `nft` command.
const NFT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long any one wait may take before the test fails.
const WAIT: Duration = Duration::from_secs(90);
/// The lab hosts, and the one whose app stops during the cut.
const HOSTS: [&str; 3] = ["part1", "part2", "part3"];
const FAULTED: &str = "part1";
/// What the stopped app must be attributed to.
const EXPECT: Expect = Expect {
    layer: "upstream",
    cause: "service_down",
    status: 502,
    emitted_by: "proxy",
};

fn full() -> bool {
    std::env::var_os("GW502_LAB_PARTITION_FULL").is_some()
}

/// The partition: a table of its own dropping the collector's port on the lab bridge,
/// in and out. Dropping the guard removes the table.
struct Partition {
    up: bool,
}

impl Partition {
    /// Cuts agents off from the collector listening on `port`.
    fn cut(port: u16) -> anyhow::Result<Partition> {
        // A table left by a killed run goes first; its absence is not an error.
        let _ = nft(&["delete", "table", "inet", TABLE]);
        let guard = Partition { up: true };
        let port = port.to_string();
        let steps: [&[&str]; 5] = [
            &["add", "table", "inet", TABLE],
            &[
                "add", "chain", "inet", TABLE, "input", "{", "type", "filter", "hook", "input",
                "priority", "filter", ";", "policy", "accept", ";", "}",
            ],
            &[
                "add", "chain", "inet", TABLE, "output", "{", "type", "filter", "hook", "output",
                "priority", "filter", ";", "policy", "accept", ";", "}",
            ],
            &[
                "add", "rule", "inet", TABLE, "input", "iifname", BRIDGE, "tcp", "dport", &port,
                "counter", "drop",
            ],
            &[
                "add", "rule", "inet", TABLE, "output", "oifname", BRIDGE, "tcp", "sport", &port,
                "counter", "drop",
            ],
        ];
        for step in steps {
            nft(step)?;
        }
        Ok(guard)
    }

    /// Packets the rules dropped so far (both directions).
    fn dropped(&self) -> anyhow::Result<u64> {
        let out = nft(&["list", "table", "inet", TABLE])?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut packets = 0;
        for line in text.lines().filter(|l| l.contains("drop")) {
            let mut words = line.split_whitespace();
            while let Some(word) = words.next() {
                if word == "packets" {
                    packets += words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                }
            }
        }
        Ok(packets)
    }

    /// Removes the table.
    fn heal(&mut self) -> anyhow::Result<()> {
        if self.up {
            nft(&["delete", "table", "inet", TABLE])?;
            self.up = false;
        }
        Ok(())
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        if let Err(error) = self.heal() {
            eprintln!("cannot remove nft table {TABLE}: {error:#}");
        }
    }
}

fn nft(args: &[&str]) -> anyhow::Result<std::process::Output> {
    run::checked(Command::new(sweep::tool("nft")).args(args), NFT_TIMEOUT)
}

/// Reports waiting in `host`'s spool (files in the agent's state dir, read from the
/// machine through the host's root).
fn spooled(fleet: &LabFleet, host: &str) -> anyhow::Result<usize> {
    let dir = fleet.host(host)?.root().join("var/lib/gw502-agent/spool");
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("read {}", dir.display())),
    };
    let mut n = 0;
    for entry in entries {
        if entry?.file_name().to_string_lossy().ends_with(".report") {
            n += 1;
        }
    }
    Ok(n)
}

/// Stored seqs of every host, by `(host, agent instance)`, in store order of seq.
async fn stored_seqs(db_url: &str) -> anyhow::Result<BTreeMap<(String, String), Vec<i64>>> {
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&format!("{db_url}?mode=ro")).await?;
    let rows = sqlx::query("SELECT host_id, agent_instance, seq FROM reports ORDER BY seq")
        .fetch_all(&mut db)
        .await?;
    let mut seqs: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
    for r in &rows {
        seqs.entry((r.try_get("host_id")?, r.try_get("agent_instance")?))
            .or_default()
            .push(r.try_get("seq")?);
    }
    Ok(seqs)
}

/// The collector's config: the lab's, plus a webhook receiver for every site.
fn config(fleet: &LabFleet, sites: &[LabSite], hook: &str) -> anyhow::Result<Config> {
    let dir = fleet
        .pki()
        .config_path()
        .parent()
        .context("config has no dir")?
        .to_path_buf();
    let secret = dir.join("hook.secret");
    std::fs::write(&secret, "partition-secret\n")?;
    let mut text = collector::config_text(fleet.pki(), sites)?;
    text.push_str(&format!(
        "[routing]\nmax_attempts = 40\nbackoff = \"200ms\"\nmax_backoff = \"1s\"\n\
         [[routing.rules]]\nreceiver = \"ops\"\nmatch = {{ site = \"part*\" }}\n\
         [routing.receivers.ops]\nkind = \"webhook\"\nurl = \"{hook}\"\n\
         secret_file = \"{}\"\ntimeout = \"2s\"\n",
        secret.display()
    ));
    let path = dir.join("collector-partition.toml");
    std::fs::write(&path, text)?;
    Config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Polls `check` until it gives a value, at most [`WAIT`].
fn until<T>(what: &str, mut check: impl FnMut() -> anyhow::Result<Option<T>>) -> anyhow::Result<T> {
    let mut last = Ok(None);
    let found = run::poll_until(Instant::now() + WAIT, || {
        last = check();
        match &last {
            Ok(Some(_)) => Some(()),
            _ => None,
        }
    });
    match (found, last) {
        (Some(()), Ok(Some(value))) => Ok(value),
        (_, Err(error)) => Err(error.context(format!("while waiting: {what}"))),
        _ => anyhow::bail!("timed out: {what}"),
    }
}

/// The fault's incidents (site of the stopped app, its cause) in a gw502ctl listing.
fn fault_incidents(listing: &[Value]) -> Vec<&Value> {
    listing
        .iter()
        .filter(|i| i["site"] == FAULTED && i["cause"] == EXPECT.cause)
        .collect()
}

#[test]
fn a_partition_by_nft_on_the_lab_bridge() -> anyhow::Result<()> {
    let cut_for = Duration::from_secs(if full() { 45 } else { 10 });
    let specs: Vec<_> = HOSTS
        .iter()
        .enumerate()
        .map(|(i, name)| fixtures::proxy_host(name, i as u8 + 1, "hello\n"))
        .collect();
    let sites: Vec<LabSite> = specs
        .iter()
        .map(|s| LabSite::new(&s.name, &format!("http://{}/", s.ip()), &[&s.name]))
        .collect();
    let mut fleet = LabFleet::deferred(&sites)?;
    let hook = fleet.runtime().block_on(Receiver::start())?;
    let config = config(&fleet, &sites, &hook.url())?;
    let running = fleet
        .runtime()
        .block_on(Running::start(config, collector::ADDR))?;
    let db_url = fleet.pki().database_url();
    fleet.boot(specs)?;
    for name in HOSTS {
        fleet.wait_reports(name, 2, WAIT)?;
    }
    let before = fleet.runtime().block_on(stored_seqs(&db_url))?;

    // The cut, longer than the agents' interval several times over. The app fails
    // inside it.
    let mut cut = Partition::cut(collector::ADDR.port())?;
    let cut_at = Instant::now();
    let cut_utc = OffsetDateTime::now_utc().format(&Rfc3339)?;
    fleet.host(FAULTED)?.systemctl(&["stop", "app"])?;
    let mut spool_peak: BTreeMap<&str, usize> = BTreeMap::new();
    until("the cut lasted long enough", || {
        for name in HOSTS {
            let n = spooled(&fleet, name)?;
            let peak = spool_peak.entry(name).or_default();
            *peak = (*peak).max(n);
        }
        Ok((cut_at.elapsed() >= cut_for).then_some(()))
    })?;
    for name in HOSTS {
        assert!(
            spool_peak[name] >= 1,
            "{name} spooled nothing during the cut: {spool_peak:?}"
        );
    }
    let dropped_packets = cut.dropped()?;
    assert!(dropped_packets > 0, "the rule dropped nothing");
    let open_in_cut = fault_incidents(&fleet.incidents(true)?).len();
    cut.heal()?;
    let healed = Instant::now();
    let healed_utc = OffsetDateTime::now_utc().format(&Rfc3339)?;
    let cut_ms = (healed - cut_at).as_millis();

    // Recovery: every spool drains, the incident is there and delivered.
    let mut drained: BTreeMap<&str, Duration> = BTreeMap::new();
    until("every spool is empty", || {
        for name in HOSTS {
            if !drained.contains_key(name) && spooled(&fleet, name)? == 0 {
                drained.insert(name, healed.elapsed());
            }
        }
        Ok((drained.len() == HOSTS.len()).then_some(()))
    })
    .map_err(|e| {
        let journals: Vec<String> = HOSTS
            .iter()
            .map(|h| {
                fleet
                    .host(h)
                    .map(|h| h.journal(AGENT_UNIT))
                    .unwrap_or_default()
            })
            .collect();
        anyhow::anyhow!("{e:#}: {drained:?}\n{}", journals.join("\n"))
    })?;
    let spools_empty = drained.values().max().copied().unwrap_or_default();
    let incident = until("the fault's incident opens", || {
        let listing = fleet.incidents(true)?;
        Ok(fault_incidents(&listing).first().map(|i| (*i).clone()))
    })?;
    let to_incident = healed.elapsed();
    let id = incident["id"].as_u64().context("incident without id")?;
    until("the receiver took the firing", || {
        Ok(hook
            .accepted()
            .iter()
            .any(|g| g.incident == id && g.event == "firing")
            .then_some(()))
    })?;
    let to_delivery = healed.elapsed();
    // Every agent reported at least once more after everything drained, so what was
    // spooled and what came after are both in the store.
    let drained_seqs = fleet.runtime().block_on(stored_seqs(&db_url))?;
    until("every agent reported after the drain", || {
        let now = fleet.runtime().block_on(stored_seqs(&db_url))?;
        let moved = HOSTS.iter().all(|h| {
            let last = |s: &BTreeMap<(String, String), Vec<i64>>| {
                s.iter()
                    .filter(|((host, _), _)| host == h)
                    .map(|(_, v)| v.len())
                    .sum::<usize>()
            };
            last(&now) > last(&drained_seqs)
        });
        Ok(moved.then_some(now))
    })?;
    let stored = fleet.runtime().block_on(stored_seqs(&db_url))?;

    // Every report each agent run made is stored once: contiguous, none twice.
    let mut reports = 0;
    let mut made_in_cut = 0;
    for ((host, instance), seqs) in &stored {
        let first = seqs[0];
        let expected: Vec<i64> = (first..first + seqs.len() as i64).collect();
        assert_eq!(
            seqs, &expected,
            "{host} run {instance}: stored seqs not contiguous or doubled"
        );
        reports += seqs.len();
        let before_cut = before
            .get(&(host.clone(), instance.clone()))
            .map_or(0, Vec::len);
        made_in_cut += seqs.len().saturating_sub(before_cut);
    }
    for name in HOSTS {
        assert!(
            stored.keys().any(|(h, _)| h == name),
            "{name} has no reports stored"
        );
    }
    // The fault's incident: once, with the right verdict, delivered once.
    let listing = fleet.incidents(true)?;
    let fault = fault_incidents(&listing);
    assert_eq!(
        fault.len(),
        1,
        "one incident for the stopped app: {}",
        serde_json::to_string_pretty(&listing)?
    );
    assert!(EXPECT.matches(fault[0]), "verdict {}", verdict(fault[0]));
    let firings: Vec<_> = hook
        .accepted()
        .into_iter()
        .filter(|g| g.incident == id && g.event == "firing")
        .collect();
    assert_eq!(firings.len(), 1, "the firing delivered once: {firings:?}");
    let tally = hook.tally();
    assert_eq!(tally.events_with_two_keys, 0, "{tally:?}");
    assert_eq!(tally.distinct_keys, tally.events, "{tally:?}");

    let others: Vec<String> = listing
        .iter()
        .filter(|i| i["id"].as_u64() != Some(id))
        .map(|i| {
            format!(
                "{} on {} ({}, opened {}, resolved {}): {}; missing {}",
                verdict(i),
                i["site"],
                i["state"],
                i["opened_at"],
                i["resolved_at"],
                i["summary"],
                i["missing"]
            )
        })
        .collect();
    println!(
        "figures: fault=partition-nft-lab hosts={} cut={cut_utc}..{healed_utc} cut_ms={cut_ms} dropped_packets={dropped_packets} \
         reports={reports} reports_after_the_cut_began={made_in_cut} lost=0 duplicated=0 \
         spool_peak={spool_peak:?} incidents=1 opened_during_cut={open_in_cut} deliveries={} \
         spools_empty_after_heal_ms={} per_host={drained:?} incident_after_heal_ms={} \
         delivered_after_heal_ms={} other_incidents={others:?}",
        HOSTS.len(),
        tally.accepted,
        spools_empty.as_millis(),
        to_incident.as_millis(),
        to_delivery.as_millis(),
    );
    for name in HOSTS {
        let journal = fleet.host(name)?.journal(AGENT_UNIT);
        let warned: Vec<&str> = journal
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect();
        println!("operator saw: {name}: {} warnings", warned.len());
        for line in warned.iter().take(4) {
            println!("operator saw: {name}: {line}");
        }
    }
    fleet.runtime().block_on(running.stop())?;
    // The lab's own teardown is checked by lab_smoke; only the table is ours.
    drop(fleet);
    let tables = nft(&["list", "tables"])?;
    assert!(
        !String::from_utf8_lossy(&tables.stdout).contains(TABLE),
        "the partition table is gone"
    );
    Ok(())
}
