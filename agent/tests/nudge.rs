//! Nudges bring a report forward: a real agent with an hour's interval reports
//! once when it starts, and again as soon as its collector nudges it (a site of
//! its host started failing), not an hour later. Against the small ingest
//! server of `support` (plaintext on loopback). Waits poll with a deadline.

mod support;

use gw502_agent::config::Config;
use gw502_agent::run::Agent;

use support::{Server, until};

#[tokio::test]
async fn a_nudge_brings_the_next_report_forward() {
    let server = Server::start("127.0.0.1:0".parse().unwrap(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    let toml = format!(
        "host_id = \"web1\"\ncollector = \"{}\"\ninterval = \"1h\"\nstate_dir = \"{}\"\n\
         [tls]\nplaintext = true\n",
        server.url(),
        dir.path().join("state").display()
    );
    std::fs::write(&path, toml).unwrap();
    let agent = Agent::new(Config::load(&path).unwrap()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(agent.run(async {
        let _ = stopped.await;
    }));

    until("the report at start", || {
        (server.calls() >= 1).then_some(())
    })
    .await;
    until("the agent's nudge stream", || {
        server.nudge("shop.example").then_some(())
    })
    .await;
    until("a report right after the nudge", || {
        (server.calls() >= 2).then_some(())
    })
    .await;

    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
}
