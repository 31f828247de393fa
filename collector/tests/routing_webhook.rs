//! Webhook delivery against a real HTTP server on 127.0.0.1:0: retries until
//! accepted, no retry on 400, a valid HMAC signature recomputed here, a dead
//! receiver not holding up a live one, and a full queue dropping with a count.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gw502_collector::routing::{
    DeliveryState, Dispatcher, DispatcherHandle, Event, MemoryDeliveryLog, Router, RoutingSettings,
};
use gw502_proto::v1::{Evidence, Incident, Verdict};
use gw502_supervise::{Policy, Supervisor};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use sha2::Sha256;
use tokio::net::TcpListener;

const SECRET: &str = "webhook-test-secret";
const WAIT: Duration = Duration::from_secs(20);

/// One request the test server received.
#[derive(Debug, Clone)]
struct Captured {
    headers: HeaderMap,
    body: Bytes,
}

/// A real HTTP/1.1 server answering the given statuses in turn (then 200).
async fn hook_server(statuses: Vec<u16>) -> (SocketAddr, Arc<Mutex<Vec<Captured>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let requests = seen.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let requests = requests.clone();
            let statuses = statuses.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let requests = requests.clone();
                    let statuses = statuses.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await?.to_bytes();
                        let n = {
                            let mut seen = requests.lock().unwrap();
                            seen.push(Captured {
                                headers: parts.headers,
                                body,
                            });
                            seen.len()
                        };
                        let status = statuses.get(n - 1).copied().unwrap_or(200);
                        let response = Response::builder()
                            .status(status)
                            .body(Full::new(Bytes::from_static(b"ok")))
                            .unwrap();
                        Ok::<_, hyper::Error>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// A listener that accepts connections and never answers.
async fn dead_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

#[derive(Deserialize)]
struct Config {
    routing: RoutingSettings,
}

/// A router over `receivers` (TOML tables), with every incident routed to
/// each of them in order and fast retries.
fn router(dir: &tempfile::TempDir, extra: &str, receivers: &[(&str, String)]) -> Router {
    let secret = dir.path().join("hook.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let mut text = format!("[routing]\nbackoff = \"10ms\"\nmax_backoff = \"40ms\"\n{extra}\n");
    for (name, _) in receivers {
        text.push_str(&format!(
            "[[routing.rules]]\nreceiver = \"{name}\"\nowner = \"app-team\"\ncontinue = true\n"
        ));
    }
    for (name, url) in receivers {
        text.push_str(&format!(
            "[routing.receivers.{name}]\nkind = \"webhook\"\nurl = \"{url}\"\nsecret_file = \"{}\"\ntimeout = \"30s\"\n",
            secret.display()
        ));
    }
    let config: Config = toml::from_str(&text).unwrap();
    config.routing.validate().unwrap()
}

fn incident(id: u64) -> Incident {
    Incident {
        id,
        site: "shop.example".into(),
        host: "web1".into(),
        state: "open".into(),
        opened_at_ms: 1_700_000_000_000,
        updated_at_ms: 1_700_000_030_000,
        resolved_at_ms: 0,
        bad_observations: 3,
        verdict: Some(Verdict {
            emitted_by: "proxy".into(),
            layer: "upstream".into(),
            cause: "saturated".into(),
            status: 502,
            confidence: 0.9,
            next_check: "raise pm.max_children".into(),
            owner: "app".into(),
            evidence: vec![Evidence {
                source: "proxy_log".into(),
                host: "web1".into(),
                observed_at_ms: 1_700_000_001_000,
                detail: "connect() to unix:/run/php/php8.2-fpm.sock failed (11: Resource temporarily unavailable)".into(),
            }],
            summary: "php-fpm pool is full".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn spawn(router: Router, log: Arc<MemoryDeliveryLog>) -> DispatcherHandle {
    let supervisor = Supervisor::new("test_loop_restarts_total", Policy::default());
    Dispatcher::spawn(Arc::new(router), log, std::future::pending(), &supervisor)
}

fn header<'a>(c: &'a Captured, name: &str) -> &'a str {
    c.headers.get(name).unwrap().to_str().unwrap()
}

#[tokio::test]
async fn retries_server_errors_until_delivered_with_valid_signature() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, seen) = hook_server(vec![500, 500]).await;
    let router = router(&dir, "", &[("hook", format!("http://{addr}/gw502"))]);
    let log = Arc::new(MemoryDeliveryLog::new());
    let handle = spawn(router, log.clone());
    let site_labels = BTreeMap::from([("customer".to_string(), "acme".to_string())]);
    assert_eq!(handle.notify(incident(7), &site_labels, Event::Firing), 1);

    let done = log
        .wait_for(WAIT, |d| {
            d.len() == 1 && d[0].state() != DeliveryState::Pending
        })
        .await
        .expect("delivery finished in time");
    let delivery = &done[0];
    assert_eq!(delivery.state(), DeliveryState::Delivered);
    assert_eq!(
        (delivery.incident_id, delivery.receiver.as_str()),
        (7, "hook")
    );
    let states: Vec<_> = delivery
        .attempts
        .iter()
        .map(|a| (a.attempt, a.state, a.http_status))
        .collect();
    assert_eq!(
        states,
        [
            (1, DeliveryState::Pending, Some(500)),
            (2, DeliveryState::Pending, Some(500)),
            (3, DeliveryState::Delivered, Some(200)),
        ]
    );

    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(header(request, "content-type"), "application/json");
        assert_eq!(header(request, "x-gw502-event"), "firing");
        assert_eq!(header(request, "x-gw502-delivery"), delivery.id.to_string());
        // Recompute the signature the way a receiver would.
        let timestamp = header(request, "x-gw502-timestamp");
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(&request.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(header(request, "x-gw502-signature"), expected);
        let age =
            time::OffsetDateTime::now_utc().unix_timestamp() - timestamp.parse::<i64>().unwrap();
        assert!((0..60).contains(&age), "timestamp {timestamp} is not now");
    }

    let body: serde_json::Value = serde_json::from_slice(&requests[2].body).unwrap();
    assert_eq!(body["version"], "1");
    assert_eq!(body["event"], "firing");
    let inc = &body["incident"];
    assert_eq!(inc["id"], 7);
    assert_eq!(inc["site"], "shop.example");
    assert_eq!(
        inc["owner"], "app-team",
        "the rule's owner overrides the verdict's"
    );
    assert_eq!(inc["layer"], "upstream");
    assert_eq!(inc["cause"], "saturated");
    assert_eq!(inc["status"], 502);
    assert_eq!(inc["opened_at"], "2023-11-14T22:13:20Z");
    assert_eq!(inc["resolved_at"], serde_json::Value::Null);
    assert_eq!(inc["evidence"][0]["source"], "proxy_log");
    assert_eq!(inc["evidence"][0]["observed_at"], "2023-11-14T22:13:21Z");
    assert_eq!(
        inc["labels"],
        serde_json::json!({"customer": "acme"}),
        "the body carries the site's labels"
    );
}

#[tokio::test]
async fn client_error_fails_without_retry() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, seen) = hook_server(vec![400]).await;
    let router = router(&dir, "", &[("hook", format!("http://{addr}/"))]);
    let log = Arc::new(MemoryDeliveryLog::new());
    let handle = spawn(router, log.clone());
    handle.notify(incident(8), &BTreeMap::new(), Event::Resolved);

    let done = log
        .wait_for(WAIT, |d| {
            d.len() == 1 && d[0].state() != DeliveryState::Pending
        })
        .await
        .expect("delivery finished in time");
    assert_eq!(done[0].state(), DeliveryState::Failed);
    assert_eq!(done[0].event, Event::Resolved);
    assert_eq!(done[0].attempts.len(), 1);
    assert_eq!(done[0].attempts[0].http_status, Some(400));
    let requests = seen.lock().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(header(&requests[0], "x-gw502-event"), "resolved");
}

#[tokio::test]
async fn dead_receiver_does_not_delay_a_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dead_server().await;
    let (live, seen) = hook_server(vec![]).await;
    let router = router(
        &dir,
        "",
        &[
            ("dead", format!("http://{dead}/")),
            ("live", format!("http://{live}/")),
        ],
    );
    let log = Arc::new(MemoryDeliveryLog::new());
    let handle = spawn(router, log.clone());
    for id in 1..=3 {
        assert_eq!(
            handle.notify(incident(id), &BTreeMap::new(), Event::Firing),
            2
        );
    }
    let done = log
        .wait_for(WAIT, |d| {
            d.iter()
                .filter(|r| r.receiver == "live" && r.state() == DeliveryState::Delivered)
                .count()
                == 3
        })
        .await
        .expect("live receiver served while the dead one hangs");
    // The dead receiver's deliveries are still on their first try (30s timeout).
    assert!(
        done.iter()
            .filter(|r| r.receiver == "dead")
            .all(|r| r.attempts.is_empty())
    );
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn full_queue_drops_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let dead = dead_server().await;
    let router = router(
        &dir,
        "queue_capacity = 1\nmax_concurrent = 1",
        &[("dead", format!("http://{dead}/"))],
    );
    let log = Arc::new(MemoryDeliveryLog::new());
    let handle = spawn(router, log);
    // On this single-threaded runtime the lane cannot run between these
    // calls: the first fills the queue of one, the rest are dropped.
    let queued: usize = (1..=5)
        .map(|id| handle.notify(incident(id), &BTreeMap::new(), Event::Firing))
        .sum();
    assert_eq!(queued, 1);
    assert_eq!(handle.dropped(), 4);
}

#[tokio::test]
async fn resolve_supersedes_a_pending_firing() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, seen) = hook_server(vec![]).await;
    let router = router(&dir, "", &[("hook", format!("http://{addr}/"))]);
    let log = Arc::new(MemoryDeliveryLog::new());
    let handle = spawn(router, log.clone());
    // Both are queued before the lane runs (single-threaded runtime), so the
    // firing delivery is already stale when its first try comes up.
    handle.notify(incident(9), &BTreeMap::new(), Event::Firing);
    handle.notify(incident(9), &BTreeMap::new(), Event::Resolved);
    let done = log
        .wait_for(WAIT, |d| {
            d.len() == 2 && d.iter().all(|r| r.state() != DeliveryState::Pending)
        })
        .await
        .expect("both deliveries finished");
    let firing = done.iter().find(|r| r.event == Event::Firing).unwrap();
    let resolved = done.iter().find(|r| r.event == Event::Resolved).unwrap();
    assert_eq!(firing.state(), DeliveryState::Failed);
    assert_eq!(firing.attempts.len(), 1);
    assert!(
        firing.attempts[0]
            .error
            .as_deref()
            .unwrap()
            .contains("superseded")
    );
    assert_eq!(resolved.state(), DeliveryState::Delivered);
    let requests = seen.lock().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(header(&requests[0], "x-gw502-event"), "resolved");
}
