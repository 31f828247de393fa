//! A cold start through the real ingest path (issue 11, item 3): the agent
//! started on a noisy host whose app had already failed, so it reports the
//! app only as a `candidate` unit with its `ExecStart`. The collector must
//! open one `upstream/service_down` incident naming that unit, cite the
//! ExecStart that ties it, and never name the untied failed unit next to it.
//! Its own file, so it runs beside `causes` without sharing a collector.

use std::time::Duration;

use gw502_proto::v1::Incident;
use gw502_tests::causes::host::nginx;
use gw502_tests::causes::{Harness, WAIT, fast_config, words};

const REFUSED: &str = "service_down|wrong_port|not_listening";
const REFUSED_LINE: &str =
    "connect() failed (111: Connection refused) while connecting to upstream";

async fn single_open(h: &mut Harness, site: &str) -> anyhow::Result<Incident> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let open = h.open(site).await?;
        if let [only] = open.as_slice()
            && only.verdict.is_some()
        {
            return Ok(only.clone());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{site}: no single open incident; open: {:?}",
            open.iter().map(words).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_start_names_the_tied_candidate_only() -> anyhow::Result<()> {
    let mut h = Harness::start(|fleet| fast_config(fleet, "cold-start", Vec::new())).await?;
    let site = "cold-start.example";
    h.send(
        nginx("h-cold", site, "http://127.0.0.1:3000")
            .noise()
            .candidate("backup.service", "failed", "failed")
            .exec_start(
                "backup.service",
                "/usr/bin/restic backup --limit-upload 3000 /srv",
            )
            .candidate("app.service", "failed", "failed")
            .exec_start(
                "app.service",
                "/usr/bin/node /srv/app/server.js --port 3000",
            )
            .ngx(REFUSED, "error", REFUSED_LINE, "http://127.0.0.1:3000/")
            .probe("127.0.0.1:3000", "refused", "connect", 0, "")
            .sees("ok", 502, "nginx"),
    )
    .await?;
    let incident = single_open(&mut h, site).await?;
    let v = incident
        .verdict
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no verdict"))?;
    assert_eq!(
        (v.layer.as_str(), v.cause.as_str(), v.status),
        ("upstream", "service_down", 502),
        "{}",
        words(&incident)
    );
    assert!(
        v.evidence.iter().any(|e| e.source == "systemd"
            && e.detail
                .starts_with("app.service ExecStart names 127.0.0.1:3000")),
        "{:?}",
        v.evidence
    );
    let text = format!("{v:?}");
    assert!(!text.contains("backup.service"), "{text}");
    Ok(())
}
