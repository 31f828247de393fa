//! Upstreams are probed again halfway between reports: a real agent with a
//! 6 s interval, reading a HAProxy config (under its `etc` root) that routes to
//! a small HTTP upstream on loopback. The upstream stops listening right after
//! a report carried its healthy probe; the refusal must reach the collector
//! (the small ingest server of `support`) in a report brought forward by the
//! halfway probe, before the next tick. Waits poll with a deadline.

mod support;

use gw502_agent::config::Config;
use gw502_agent::run::Agent;
use gw502_proto::v1::{DirectProbe, HostReport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use support::{Server, until};

const INTERVAL_MS: i64 = 6_000;

/// The first report from the `from`th on with a probe of `address` that `pick` accepts.
fn report_with(
    server: &Server,
    from: usize,
    address: &str,
    pick: impl Fn(&DirectProbe) -> bool,
) -> Option<(usize, HostReport)> {
    server
        .reports()
        .into_iter()
        .enumerate()
        .skip(from)
        .find(|(_, r)| {
            r.probes
                .iter()
                .flat_map(|s| &s.probes)
                .any(|p| p.target.as_ref().is_some_and(|t| t.address == address) && pick(p))
        })
}

#[tokio::test]
async fn a_refused_upstream_is_reported_halfway_not_at_the_next_tick() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = upstream.local_addr().unwrap().to_string();
    let serving = tokio::spawn(async move {
        loop {
            let (mut stream, _) = upstream.accept().await.unwrap();
            tokio::spawn(async move {
                let _ = stream.read(&mut [0u8; 1024]).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .await;
            });
        }
    });

    let server = Server::start("127.0.0.1:0".parse().unwrap(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(etc.join("haproxy")).unwrap();
    std::fs::write(
        etc.join("haproxy/haproxy.cfg"),
        format!(
            "defaults\n    mode http\n    timeout connect 1s\n    timeout client 5s\n    \
             timeout server 1s\n\nfrontend web\n    bind 127.0.0.1:0\n    default_backend app\n\n\
             backend app\n    server app1 {address}\n"
        ),
    )
    .unwrap();
    let path = dir.path().join("agent.toml");
    let toml = format!(
        "host_id = \"web1\"\ncollector = \"{}\"\ninterval = \"{}ms\"\nstate_dir = \"{}\"\n\
         [roots]\netc = \"{}\"\n[tls]\nplaintext = true\n",
        server.url(),
        INTERVAL_MS,
        dir.path().join("state").display(),
        etc.display()
    );
    std::fs::write(&path, toml).unwrap();
    let agent = Agent::new(Config::load(&path).unwrap()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async {
        let _ = stopped.await;
    }));

    let (seen, healthy) = until("a report with the healthy probe", || {
        report_with(&server, 0, &address, |p| {
            p.outcome == "ok" && p.status == 200
        })
    })
    .await;
    serving.abort();
    let _ = serving.await;

    let (_, refused) = until("a report with the refused probe", || {
        report_with(&server, seen + 1, &address, |p| p.outcome != "ok")
    })
    .await;
    let probe = refused
        .probes
        .iter()
        .flat_map(|s| &s.probes)
        .find(|p| p.target.as_ref().is_some_and(|t| t.address == address))
        .unwrap();
    assert_eq!(probe.outcome, "refused", "{probe:?}");
    let after = refused.generated_at_ms - healthy.generated_at_ms;
    assert!(
        after < INTERVAL_MS - 1_000,
        "the refusal waited for the tick: reported {after} ms after the healthy probe"
    );

    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}
