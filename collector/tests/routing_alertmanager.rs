//! Alertmanager delivery against the real `prometheus-alertmanager` (Debian
//! package; CI installs it): a firing incident becomes an active alert with
//! gw502's labels, keep-alive re-sends refresh it, and a resolve ends it.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gw502_collector::routing::{
    DeliveryState, Dispatcher, Event, MemoryDeliveryLog, RoutingSettings,
};
use gw502_proto::v1::{Incident, Verdict};
use gw502_supervise::{Policy, Supervisor};
use serde::Deserialize;
use serde_json::Value;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";
const WAIT: Duration = Duration::from_secs(30);

/// A running Alertmanager, killed on drop.
struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Alertmanager with a null receiver, clustering off, and the given
/// `resolve_timeout`; waits until `/-/ready` answers.
async fn start_alertmanager(resolve_timeout: &str) -> Alertmanager {
    assert!(
        Path::new(ALERTMANAGER).exists(),
        "{ALERTMANAGER} is missing: install the Debian package prometheus-alertmanager \
         (apt-get install prometheus-alertmanager); this test needs a real Alertmanager"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  resolve_timeout: {resolve_timeout}\nroute:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n"
        ),
    )
    .unwrap();
    let storage = dir.path().join("data");
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
    let child = Command::new(ALERTMANAGER)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", storage.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let am = Alertmanager {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let ready = client.get(format!("{}/-/ready", am.url)).send().await;
        if ready.is_ok_and(|r| r.status().is_success()) {
            return am;
        }
        let log =
            std::fs::read_to_string(am._dir.path().join("alertmanager.log")).unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "alertmanager not ready in time; its log:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[derive(Deserialize)]
struct Config {
    routing: RoutingSettings,
}

fn incident(id: u64) -> Incident {
    Incident {
        id,
        site: "shop.example".into(),
        host: "web1".into(),
        state: "open".into(),
        opened_at_ms: time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 60_000,
        verdict: Some(Verdict {
            emitted_by: "proxy".into(),
            layer: "handoff".into(),
            cause: "wrong_port".into(),
            status: 502,
            owner: "platform".into(),
            next_check: "compare proxy_pass port with the unit's listener".into(),
            summary: "nginx targets 127.0.0.1:3001 but the app listens on 3000".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The alerts Alertmanager currently holds for gw502 incident `id`.
async fn alerts_for(am: &Alertmanager, id: u64) -> Vec<Value> {
    let url = format!(
        "{}/api/v2/alerts?active=true&silenced=false&inhibited=false",
        am.url
    );
    let all: Vec<Value> = reqwest::get(url).await.unwrap().json().await.unwrap();
    all.into_iter()
        .filter(|a| {
            a["labels"]["incident_id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                == Some(id)
        })
        .collect()
}

/// Polls until `done` holds for the alerts of incident `id`, at most [`WAIT`].
async fn poll_alerts(
    am: &Alertmanager,
    id: u64,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let alerts = alerts_for(am, id).await;
        if done(&alerts) {
            return alerts;
        }
        assert!(Instant::now() < deadline, "{what}: alerts now {alerts:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firing_keepalive_and_resolve_reach_alertmanager() {
    let am = start_alertmanager("5m").await;
    let text = format!(
        r#"
        [routing]
        default_receiver = "am"
        backoff = "50ms"
        [[routing.rules]]
        match = {{ layer = "handoff", site = "*.example" }}
        receiver = "am"
        owner = "platform-oncall"
        [routing.receivers.am]
        kind = "alertmanager"
        url = "{}"
        resend_interval = "300ms"
        generator_url = "https://gw502.example/incidents/{{id}}"
        "#,
        am.url
    );
    let router = toml::from_str::<Config>(&text)
        .unwrap()
        .routing
        .validate()
        .unwrap();
    let log = Arc::new(MemoryDeliveryLog::new());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let supervisor = Supervisor::new("test_loop_restarts_total", Policy::default());
    let handle = Dispatcher::spawn(
        Arc::new(router),
        log.clone(),
        async move {
            let _ = stop_rx.await;
        },
        &supervisor,
    );

    assert_eq!(
        handle.notify(incident(42), &BTreeMap::new(), Event::Firing),
        1
    );
    let delivered = log
        .wait_for(WAIT, |d| {
            d.len() == 1 && d[0].state() == DeliveryState::Delivered
        })
        .await
        .expect("firing delivered");
    assert_eq!(delivered[0].attempts.len(), 1);
    assert_eq!(delivered[0].attempts[0].http_status, Some(200));

    let alerts = poll_alerts(&am, 42, "firing alert active", |a| {
        a.len() == 1 && a[0]["status"]["state"] == "active"
    })
    .await;
    let labels = &alerts[0]["labels"];
    assert_eq!(labels["alertname"], "Gw502Incident");
    assert_eq!(labels["site"], "shop.example");
    assert_eq!(labels["layer"], "handoff");
    assert_eq!(labels["cause"], "wrong_port");
    assert_eq!(labels["owner"], "platform-oncall");
    assert_eq!(labels["host"], "web1");
    assert_eq!(labels["status"], "502");
    assert_eq!(alerts[0]["annotations"]["emitted_by"], "proxy");
    assert_eq!(
        alerts[0]["generatorURL"],
        "https://gw502.example/incidents/42"
    );

    // Keep-alive: the alert is re-sent, so Alertmanager's updatedAt moves on.
    let first_update = alerts[0]["updatedAt"].clone();
    poll_alerts(&am, 42, "keep-alive re-send", |a| {
        a.len() == 1 && a[0]["updatedAt"] != first_update
    })
    .await;

    assert_eq!(
        handle.notify(incident(42), &BTreeMap::new(), Event::Resolved),
        1
    );
    let done = log
        .wait_for(WAIT, |d| {
            d.len() == 2 && d[1].state() == DeliveryState::Delivered
        })
        .await
        .expect("resolve delivered");
    assert_eq!(done[1].event, Event::Resolved);
    poll_alerts(&am, 42, "resolved alert gone", |a| a.is_empty()).await;

    // Later keep-alive rounds must not bring it back: wait for two more
    // resend intervals' worth of a different, still-firing incident.
    assert_eq!(
        handle.notify(incident(43), &BTreeMap::new(), Event::Firing),
        1
    );
    let other = poll_alerts(&am, 43, "second alert active", |a| a.len() == 1).await;
    let other_update = other[0]["updatedAt"].clone();
    poll_alerts(&am, 43, "second alert re-sent", |a| {
        a.len() == 1 && a[0]["updatedAt"] != other_update
    })
    .await;
    assert!(
        alerts_for(&am, 42).await.is_empty(),
        "resolved alert came back"
    );
    let _ = stop_tx.send(());
}
