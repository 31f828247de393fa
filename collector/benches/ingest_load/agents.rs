//! Simulated agents: each holds its own mTLS connection (as a real agent's
//! lazy tonic channel does), sends one report per interval at its own phase,
//! a full snapshot every 30th report (the agent's default) and deltas in
//! between, and records the latency of every report sent in the window.

use std::time::{Duration, Instant};

use gw502_proto::MAX_MESSAGE_BYTES;
use gw502_proto::v1::ingest_client::IngestClient;
use gw502_proto::v1::*;
use gw502_vocab::clock::now_ms;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::fleet::Credentials;

/// Reports between two full snapshots (the agent's `full_snapshot_every`).
const FULL_EVERY: u64 = 30;
/// Hosts serving each site: 20,000 hosts make 2,000 sites.
const HOSTS_PER_SITE: usize = 10;

/// What one agent saw during the window.
#[derive(Default)]
pub struct Tally {
    /// Latency of each acknowledged report, microseconds.
    pub latencies_us: Vec<u32>,
    /// Refusals by gRPC code name.
    pub refused: Vec<(String, String)>,
    /// Reports whose send started in the window.
    pub sent: u64,
}

/// When the measurement window opens and closes.
#[derive(Clone, Copy)]
pub struct Window {
    /// Start of the window.
    pub start: Instant,
    /// End of the window; agents stop after it.
    pub end: Instant,
}

/// An mTLS channel for one agent, connected now.
pub async fn connect(
    addr: std::net::SocketAddr,
    ca: &str,
    creds: &Credentials,
) -> anyhow::Result<IngestClient<Channel>> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .identity(Identity::from_pem(&creds.cert, &creds.key))
        .domain_name("localhost");
    let channel = Endpoint::from_shared(format!("https://{addr}"))?
        .connect_timeout(Duration::from_secs(30))
        .timeout(Duration::from_secs(15))
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(IngestClient::new(channel)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
        .max_decoding_message_size(MAX_MESSAGE_BYTES))
}

/// Runs agent `index` of `count` until the window closes.
pub async fn run(
    mut client: IngestClient<Channel>,
    index: usize,
    count: usize,
    interval: Duration,
    window: Window,
    first_tick: Instant,
) -> Tally {
    let host = crate::fleet::host_name(index);
    let instance = format!("bench-{index}");
    let phase = interval.mul_f64(index as f64 / count as f64);
    let mut tick = tokio::time::interval_at((first_tick + phase).into(), interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tally = Tally::default();
    for seq in 1u64.. {
        let at = tick.tick().await.into_std();
        if at >= window.end {
            break;
        }
        let report = report(&host, &instance, index, seq, interval);
        let started = Instant::now();
        let result = client.report(report).await;
        let elapsed = started.elapsed();
        if started < window.start {
            continue;
        }
        tally.sent += 1;
        match result {
            Ok(_) => tally
                .latencies_us
                .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX)),
            Err(status) => tally
                .refused
                .push((format!("{:?}", status.code()), status.message().to_owned())),
        }
    }
    tally
}

/// Report `seq` of a host: a full snapshot every [`FULL_EVERY`], else a delta
/// carrying what changed (journal lines now and then, access-log counts).
pub fn report(
    host: &str,
    instance: &str,
    index: usize,
    seq: u64,
    interval: Duration,
) -> HostReport {
    let now = now_ms();
    let site = format!("site-{:04}.example", index / HOSTS_PER_SITE);
    let full = seq % FULL_EVERY == 1;
    let mut report = HostReport {
        host_id: host.to_owned(),
        agent_version: "0.1.0".into(),
        agent_instance: instance.to_owned(),
        seq,
        generated_at_ms: now,
        full_snapshot: full,
        interval_ms: interval.as_millis() as u32,
        access_log: Some(AccessLogSection {
            counts: [200, 304, 404]
                .into_iter()
                .map(|status| StatusCount {
                    vhost: site.clone(),
                    status,
                    upstream_status: status.to_string(),
                    count: 40 + (seq as u32 % 7),
                    last_at_ms: now,
                })
                .collect(),
            files: vec!["/var/log/nginx/access.log".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    if seq.is_multiple_of(6) {
        report.journal = Some(JournalSection {
            entries: vec![JournalEntry {
                at_ms: now - 1_000,
                unit: "app.service".into(),
                priority: 4,
                identifier: "app".into(),
                message: "slow request: GET /checkout took 2.3s".into(),
            }],
            ..Default::default()
        });
    }
    if full {
        report.addresses = vec![format!(
            "10.{}.{}.{}",
            index / 65536,
            index / 256 % 256,
            index % 256
        )];
        fill_snapshot(&mut report, &site, now);
    }
    report
}

fn fill_snapshot(report: &mut HostReport, site: &str, now: i64) {
    let units = (0..50).map(|u| UnitState {
        name: if u == 0 {
            "nginx.service".into()
        } else if u == 1 {
            "app.service".into()
        } else {
            format!("svc-{u:02}.service")
        },
        description: format!("unit {u} of a typical web host"),
        load_state: "loaded".into(),
        active_state: "active".into(),
        sub_state: "running".into(),
        result: "success".into(),
        main_pid: 1000 + u,
        state_change_ms: now - 86_400_000,
        active_enter_ms: now - 86_400_000,
        roles: if u < 2 {
            vec![if u == 0 {
                "proxy".into()
            } else {
                "upstream".into()
            }]
        } else {
            Vec::new()
        },
        ..Default::default()
    });
    report.systemd = Some(SystemdSection {
        units: units.collect(),
        ..Default::default()
    });
    let listeners = (0..20).map(|l| Listener {
        family: "inet".into(),
        address: if l < 2 {
            "0.0.0.0".into()
        } else {
            "127.0.0.1".into()
        },
        port: [80, 443].get(l as usize).copied().unwrap_or(8000 + l),
        pid: 1000 + l,
        process: if l < 2 {
            "nginx".into()
        } else {
            format!("svc-{l:02}")
        },
        unit: if l < 2 {
            "nginx.service".into()
        } else {
            format!("svc-{l:02}.service")
        },
        backlog: 511,
        ..Default::default()
    });
    report.sockets = Some(SocketsSection {
        listeners: listeners.collect(),
        method: "netlink".into(),
        ..Default::default()
    });
    let target = |port: u32| UpstreamTarget {
        protocol: "http".into(),
        address: format!("127.0.0.1:{port}"),
        host: "127.0.0.1".into(),
        port,
        group: "app".into(),
        server_names: vec![site.to_owned()],
        location: "/".into(),
        directive: "proxy_pass".into(),
        ..Default::default()
    };
    report.proxy_config = Some(ProxyConfigSection {
        proxies: vec![ProxyConfig {
            kind: "nginx".into(),
            unit: "nginx.service".into(),
            config_hash: "9f2c0d6a1b7e4f3a".into(),
            changed_at_ms: now - 3_600_000,
            test: Some(ConfigTest {
                ran: true,
                ok: true,
                output: "nginx: configuration file /etc/nginx/nginx.conf test is successful".into(),
            }),
            servers: vec![VirtualServer {
                names: vec![site.to_owned(), format!("www.{site}")],
                listens: vec!["80".into(), "443 ssl".into()],
                access_logs: vec!["/var/log/nginx/access.log".into()],
                error_logs: vec!["/var/log/nginx/error.log".into()],
            }],
            targets: vec![target(8000), target(8001)],
            error_logs: vec!["/var/log/nginx/error.log".into()],
            access_logs: vec!["/var/log/nginx/access.log".into()],
            runtime: None,
        }],
        ..Default::default()
    });
    report.probes = Some(ProbesSection {
        probes: [8000, 8001]
            .into_iter()
            .map(|port| DirectProbe {
                target: Some(target(port)),
                at_ms: now,
                outcome: "ok".into(),
                phase: "response".into(),
                status: 200,
                header_bytes: 312,
                elapsed_ms: 3,
                peer: format!("127.0.0.1:{port}"),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    });
    report.dns = Some(DnsSection {
        answers: vec![DnsAnswer {
            name: site.to_owned(),
            addresses: vec!["203.0.113.10".into()],
            elapsed_ms: 2,
            purpose: "site".into(),
            ..Default::default()
        }],
        ..Default::default()
    });
}
