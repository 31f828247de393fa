//! What happens around an incident once ingest opened it: `WatchIncidents`
//! streams it opening and resolving, `Explain` probes a failing site now and
//! attributes it, and routing delivers signed webhooks (firing, resolved)
//! recorded in `ListDeliveries`, and re-announces open incidents to an
//! Alertmanager receiver when the collector restarts; a hanging site holds
//! back no other site's edge probes; a site that starts failing nudges the
//! agents of the hosts serving it, and only those. All over real mTLS to
//! a real collector, with real HTTP servers on loopback.

use std::collections::BTreeMap;
use std::time::Duration;

use gw502_collector::routing::{ReceiverSettings, RoutingSettings};
use gw502_pki::Role;
use gw502_proto::v1::{
    ExplainRequest, Incident, ListDeliveriesRequest, Nudge, NudgeRequest, WatchIncidentsRequest,
};
use gw502_tests::causes::hook::{Hook, Received};
use gw502_tests::causes::host::{Host, web};
use gw502_tests::causes::stub::{self, Stub};
use gw502_tests::causes::{Harness, WAIT, fast_config, site};
use gw502_tests::fleet::Running;
use gw502_tests::scenario::agent::workspace_bin;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio_stream::StreamExt;
use tonic::Streaming;

const REFUSED_LINE: &str =
    "connect() failed (111: Connection refused) while connecting to upstream";
const APP: &str = "http://127.0.0.1:3000/";
const SECRET: &str = "flow-webhook-secret";

/// The app on `id` is stopped: nginx logs refusals, the public view is nginx's 502.
fn app_down(id: &str, site: &str) -> Host {
    web(id, site)
        .unit("app.service", "inactive", "dead", "upstream")
        .event("app.service", "stop", 90_000, "Stopped app.service")
        .ngx(
            "service_down|wrong_port|not_listening",
            "error",
            REFUSED_LINE,
            APP,
        )
        .access(502, "502", 40)
        .probe("127.0.0.1:3000", "refused", "connect", 0, "")
}

/// The app is back and the site answers 200.
fn app_up(id: &str, site: &str) -> Host {
    web(id, site)
        .access(200, "200", 100)
        .probe("127.0.0.1:3000", "ok", "response", 200, "")
        .sees("ok", 200, "app")
}

/// Polls `until` with a bounded deadline, sending `tick` reports meanwhile.
async fn poll<T>(
    h: &mut Harness,
    what: &str,
    mut tick: impl FnMut() -> Option<Host>,
    mut until: impl AsyncFnMut(&mut Harness) -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Some(report) = tick() {
            h.send(report).await?;
        }
        if let Some(found) = until(h).await? {
            return Ok(found);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn open_one(h: &mut Harness, site: &str) -> anyhow::Result<Option<Incident>> {
    Ok(h.open(site).await?.into_iter().next())
}

/// `host`'s app stops behind nginx; waits for the incident it opens on `site`.
async fn app_goes_down(h: &mut Harness, host: &str, site: &str) -> anyhow::Result<Incident> {
    h.send(app_down(host, site).sees("ok", 502, "nginx"))
        .await?;
    poll(
        h,
        "incident opens",
        || None,
        async |h: &mut Harness| open_one(h, site).await,
    )
    .await
}

async fn resolved(h: &mut Harness, site: &str, id: u64) -> anyhow::Result<Option<()>> {
    Ok(h.incidents(site)
        .await?
        .iter()
        .any(|i| i.id == id && i.state == "resolved")
        .then_some(()))
}

#[tokio::test]
async fn watchers_see_an_incident_open_and_resolve() -> anyhow::Result<()> {
    let mut h = Harness::start(|fleet| fast_config(fleet, "watch", Vec::new())).await?;
    let site = "watch.example";
    let mut events = h
        .operator
        .watch_incidents(WatchIncidentsRequest { site: site.into() })
        .await?
        .into_inner();
    h.send(app_down("h-watch", site).sees("ok", 502, "nginx"))
        .await?;
    let mut kinds = Vec::new();
    let mut id = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !kinds.iter().any(|k| k == "resolved") {
        let next = tokio::time::timeout_at(deadline, events.next()).await;
        let event = next
            .map_err(|_| anyhow::anyhow!("events so far: {kinds:?}"))?
            .ok_or_else(|| anyhow::anyhow!("stream ended after {kinds:?}"))??;
        let incident = event.incident.unwrap_or_default();
        assert_eq!(incident.site, site);
        let verdict = incident.verdict.clone().unwrap_or_default();
        assert_eq!(verdict.cause, "service_down");
        if event.kind == "opened" {
            id = Some(incident.id);
            // Now the app is back: healthy evidence until it resolves.
            for _ in 0..3 {
                h.send(app_up("h-watch", site)).await?;
            }
        } else if event.kind == "resolved" {
            assert_eq!(Some(incident.id), id, "the incident that opened resolves");
            assert_eq!(incident.state, "resolved");
        } else if id.is_some() {
            h.send(app_up("h-watch", site)).await?;
        }
        kinds.push(event.kind);
    }
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("opened"),
        "{kinds:?}"
    );
    // Shutting down ends open watch streams instead of waiting for them.
    tokio::time::timeout(WAIT, h.running.stop()).await??;
    let end = tokio::time::timeout(WAIT, events.next()).await?;
    assert!(!matches!(end, Some(Ok(_))), "the stream ended: {end:?}");
    Ok(())
}

#[tokio::test]
async fn explain_probes_the_site_and_attributes_it() -> anyhow::Result<()> {
    let front = Stub::start([127, 0, 0, 1].into(), 0, stub::NGINX_502.to_vec()).await?;
    let url = front.url();
    let sites = vec![site("explain.example", &url, &["h-explain"])];
    let mut h = Harness::start(|fleet| fast_config(fleet, "explain", sites)).await?;
    h.send(app_down("h-explain", "explain.example")).await?;
    let before = front.hits();
    let answer = h
        .operator
        .explain(ExplainRequest { url: url.clone() })
        .await?
        .into_inner();
    assert!(front.hits() > before, "explain probes the site now");
    assert_eq!(answer.site, "explain.example");
    assert_eq!(answer.hosts, ["h-explain"]);
    let public = answer
        .observations
        .iter()
        .find(|o| o.target == "public")
        .expect("a public observation");
    assert_eq!(
        (
            public.outcome.as_str(),
            public.status,
            public.fingerprint.as_str()
        ),
        ("ok", 502, "nginx"),
        "{public:?}"
    );
    let verdict = answer.verdicts.first().expect("a verdict");
    assert_eq!(
        (
            verdict.layer.as_str(),
            verdict.cause.as_str(),
            verdict.status,
            verdict.emitted_by.as_str()
        ),
        ("upstream", "service_down", 502, "proxy")
    );
    let sources: Vec<&str> = verdict.evidence.iter().map(|e| e.source.as_str()).collect();
    assert!(
        sources.contains(&"direct_probe") && sources.contains(&"systemd"),
        "{sources:?}"
    );
    assert!(!verdict.next_check.is_empty());

    // The same answer, as a support engineer pastes it into a ticket.
    let customer = ctl(&h, &["--json", "explain", &url, "--for", "customer"]).await?;
    let c: serde_json::Value = serde_json::from_str(&customer)?;
    assert_eq!(
        (
            &c["failing"],
            &c["status"],
            &c["side"],
            &c["owner"],
            &c["platform_on_it"]
        ),
        (
            &true.into(),
            &502.into(),
            &"customer_app".into(),
            &"app".into(),
            &false.into()
        ),
        "{customer}"
    );
    let text = ctl(&h, &["explain", &url, "--for", "customer"]).await?;
    assert!(
        text.starts_with("Visitors to explain.example get 502 Bad Gateway"),
        "{text}"
    );
    assert!(
        !text.contains("h-explain"),
        "fleet host names stay internal: {text}"
    );
    let shown = ctl(&h, &["explain", &url, "--for", "customer", "--show-hosts"]).await?;
    assert!(shown.starts_with("Visitors to explain.example"), "{shown}");

    // A healthy site explains to no verdict, once it has been healthy for longer than
    // the partial-failure rule looks back (six public probes: fewer, on a loaded machine,
    // and a 502 among them reads as one origin of several still failing).
    front.set(stub::ok_page());
    h.send(app_up("h-explain", "explain.example")).await?;
    let healthy_from = front.hits();
    poll(
        &mut h,
        "six healthy probes",
        || None,
        async |_: &mut Harness| Ok((front.hits() >= healthy_from + 6).then_some(())),
    )
    .await?;
    let answer = h
        .operator
        .explain(ExplainRequest { url })
        .await?
        .into_inner();
    assert_eq!(answer.observations.first().map(|o| o.status), Some(200));
    assert!(answer.verdicts.is_empty(), "{:?}", answer.verdicts);
    h.running.stop().await
}

/// Runs the real `gw502ctl` as operator `admin` of the harness's fleet.
async fn ctl(h: &Harness, args: &[&str]) -> anyhow::Result<String> {
    let (cert, key) = h.fleet.issue(Role::Operator, "admin")?;
    let out = tokio::process::Command::new(workspace_bin("gw502ctl")?)
        .arg("--collector")
        .arg(format!("https://{}", h.running.addr))
        .arg("--ca")
        .arg(h.fleet.pki().join("ca.crt"))
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(args)
        .env_clear()
        .output()
        .await?;
    anyhow::ensure!(
        out.status.success(),
        "gw502ctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

fn signature(timestamp: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).expect("any key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn webhook_event(r: &Received) -> anyhow::Result<(String, serde_json::Value)> {
    let timestamp = r.header("x-gw502-timestamp").unwrap_or_default();
    assert_eq!(
        r.header("x-gw502-signature"),
        Some(signature(timestamp, &r.body).as_str()),
        "signature over the body"
    );
    let body: serde_json::Value = serde_json::from_slice(&r.body)?;
    let event = body["event"].as_str().unwrap_or_default().to_string();
    assert_eq!(r.header("x-gw502-event"), Some(event.as_str()));
    Ok((event, body))
}

#[tokio::test]
async fn routing_delivers_signed_webhooks_for_open_and_resolve() -> anyhow::Result<()> {
    let hook = Hook::start().await?;
    let secret_dir = tempfile::tempdir()?;
    let secret_file = secret_dir.path().join("hook.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n"))?;
    let url = format!("http://{}/hook", hook.addr);
    let mut h = Harness::start(|fleet| {
        let mut config = fast_config(fleet, "routing", Vec::new())?;
        config.router = RoutingSettings {
            receivers: BTreeMap::from([(
                "ops".to_string(),
                ReceiverSettings::Webhook {
                    url,
                    secret_file: Some(secret_file.clone()),
                    secret_env: None,
                    timeout: Some("2s".into()),
                },
            )]),
            default_receiver: Some("ops".into()),
            backoff: Some("100ms".into()),
            ..RoutingSettings::default()
        }
        .validate()
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        Ok(config)
    })
    .await?;
    let site = "routed.example";
    let incident = app_goes_down(&mut h, "h-routed", site).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    while hook.received().is_empty() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no webhook for the opened incident"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (event, body) = webhook_event(&hook.received()[0])?;
    assert_eq!(event, "firing");
    assert_eq!(body["incident"]["id"], incident.id);
    assert_eq!(body["incident"]["cause"], "service_down");
    assert_eq!(body["incident"]["layer"], "upstream");
    assert_eq!(body["incident"]["site"], site);
    assert_eq!(hook.received()[0].path, "/hook");

    poll(
        &mut h,
        "incident resolves",
        || Some(app_up("h-routed", site)),
        async |h: &mut Harness| resolved(h, site, incident.id).await,
    )
    .await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    let resolved_body = loop {
        let mut found = None;
        for r in hook.received() {
            let (event, body) = webhook_event(&r)?;
            if event == "resolved" {
                found = Some(body);
            }
        }
        if let Some(body) = found {
            break body;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no resolved webhook"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(resolved_body["incident"]["id"], incident.id);
    assert_eq!(resolved_body["incident"]["state"], "resolved");

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let deliveries = h
            .operator
            .list_deliveries(ListDeliveriesRequest {
                incident_id: incident.id,
                limit: 0,
            })
            .await?
            .into_inner()
            .deliveries;
        let mut seen: Vec<(String, String, String)> = deliveries
            .iter()
            .map(|d| (d.receiver.clone(), d.event.clone(), d.state.clone()))
            .collect();
        seen.sort();
        let want = [
            (
                "ops".to_string(),
                "firing".to_string(),
                "delivered".to_string(),
            ),
            (
                "ops".to_string(),
                "resolved".to_string(),
                "delivered".to_string(),
            ),
        ];
        if seen == want {
            assert!(
                deliveries
                    .iter()
                    .all(|d| d.http_status == 200 && d.attempts >= 1)
            );
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "deliveries: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.running.stop().await
}

/// An Alertmanager receiver hears about incidents that were already open
/// when the collector (re)started, without waiting for a new event.
#[tokio::test]
async fn a_restarted_collector_re_announces_open_incidents_to_alertmanager() -> anyhow::Result<()> {
    let mut h = Harness::start(|fleet| fast_config(fleet, "restart", Vec::new())).await?;
    let site = "restart.example";
    let incident = app_goes_down(&mut h, "h-restart", site).await?;
    let addr = h.running.addr;
    let Harness { fleet, running, .. } = h;
    running.stop().await?;

    let alertmanager = Hook::start().await?;
    let mut config = fast_config(&fleet, "restart", Vec::new())?;
    // No fresh evidence arrives, and a long evaluation interval keeps the
    // evaluator from re-opening anything: only the startup refresh can speak.
    config.evaluation_interval = Duration::from_secs(3600);
    config.router = RoutingSettings {
        receivers: BTreeMap::from([(
            "am".to_string(),
            ReceiverSettings::Alertmanager {
                url: format!("http://{}", alertmanager.addr),
                resend_interval: Some("1h".into()),
                timeout: Some("2s".into()),
                generator_url: None,
            },
        )]),
        default_receiver: Some("am".into()),
        ..RoutingSettings::default()
    }
    .validate()
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let running = Running::start(config, addr).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    let alerts = loop {
        if let Some(r) = alertmanager.received().first() {
            break r.clone();
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "open incident never re-announced"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (alerts.method.as_str(), alerts.path.as_str()),
        ("POST", "/api/v2/alerts")
    );
    let body: serde_json::Value = serde_json::from_slice(&alerts.body)?;
    let text = body.to_string();
    assert!(
        text.contains("service_down") && text.contains(site),
        "{text}"
    );
    assert!(text.contains(&incident.id.to_string()), "{text}");
    running.stop().await
}

/// The host boots: nginx is not up yet, the public view is refused.
fn booting(id: &str, site: &str) -> Host {
    web(id, site)
        .unit("nginx.service", "inactive", "dead", "proxy")
        .sees("refused", 0, "")
}

/// A webhook receiver `ops` for every incident, with a short backoff.
fn with_webhook(
    fleet: &gw502_tests::fleet::Fleet,
    test: &str,
    hook: &Hook,
) -> anyhow::Result<gw502_collector::config::Config> {
    let secret_file = fleet.path().join(format!("{test}.secret"));
    std::fs::write(&secret_file, format!("{SECRET}\n"))?;
    let mut config = fast_config(fleet, test, Vec::new())?;
    config.router = RoutingSettings {
        receivers: BTreeMap::from([(
            "ops".to_string(),
            ReceiverSettings::Webhook {
                url: format!("http://{}/hook", hook.addr),
                secret_file: Some(secret_file),
                secret_env: None,
                timeout: Some("2s".into()),
            },
        )]),
        default_receiver: Some("ops".into()),
        backoff: Some("100ms".into()),
        ..RoutingSettings::default()
    }
    .validate()
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(config)
}

/// `(event, incident id, cause)` of every webhook received so far.
fn hook_events(hook: &Hook) -> anyhow::Result<Vec<(String, u64, String)>> {
    hook.received()
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body)?;
            Ok((
                body["event"].as_str().unwrap_or_default().to_string(),
                body["incident"]["id"].as_u64().unwrap_or_default(),
                body["incident"]["cause"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            ))
        })
        .collect()
}

/// The cause an incident's verdict names.
fn cause(i: &Incident) -> &str {
    i.verdict.as_ref().map_or("", |v| v.cause.as_str())
}

/// `(id, state, cause)` of every incident of `site`, for messages.
async fn states(h: &mut Harness, site: &str) -> anyhow::Result<Vec<(u64, String, String)>> {
    Ok(h.incidents(site)
        .await?
        .iter()
        .map(|i| (i.id, i.state.clone(), cause(i).to_string()))
        .collect())
}

/// A boot-time `proxy_down` resolves once nginx is up, although the site
/// keeps failing (now because the app is down): exactly one incident stays
/// open, `service_down`, and routing hears the `proxy_down` one resolve.
#[tokio::test]
async fn a_stale_cause_resolves_while_the_site_keeps_failing() -> anyhow::Result<()> {
    let hook = Hook::start().await?;
    let mut h = Harness::start(|fleet| with_webhook(fleet, "stale", &hook)).await?;
    let (host, site) = ("h-stale", "stale.example");
    h.send(booting(host, site)).await?;
    let boot = poll(
        &mut h,
        "proxy_down opens",
        || None,
        async |h: &mut Harness| open_one(h, site).await,
    )
    .await?;
    assert_eq!(cause(&boot), "proxy_down", "{boot:?}");
    let service = poll(
        &mut h,
        "service_down alone stays open",
        || Some(app_down(host, site).sees("ok", 502, "nginx")),
        async |h: &mut Harness| {
            let open = h.open(site).await?;
            let boot_resolved = resolved(h, site, boot.id).await?.is_some();
            Ok(match open.as_slice() {
                [only] if cause(only) == "service_down" && boot_resolved => Some(only.clone()),
                _ => None,
            })
        },
    )
    .await?;
    assert_ne!(service.id, boot.id);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let events = hook_events(&hook)?;
        let want = [
            ("firing".to_string(), boot.id, "proxy_down".to_string()),
            ("resolved".to_string(), boot.id, "proxy_down".to_string()),
            ("firing".to_string(), service.id, "service_down".to_string()),
        ];
        if want.iter().all(|w| events.contains(w)) {
            assert!(
                !events
                    .iter()
                    .any(|(e, id, _)| e == "resolved" && *id == service.id),
                "{events:?}"
            );
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "webhooks: {events:?}; incidents: {:?}",
            states(&mut h, site).await?
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    h.running.stop().await
}

/// An `insufficient_evidence` incident that sharpens into a cause resolves
/// the moment the cause opens: no reader ever sees both open.
#[tokio::test]
async fn insufficient_evidence_sharpening_leaves_one_open_incident() -> anyhow::Result<()> {
    let hook = Hook::start().await?;
    let mut h = Harness::start(|fleet| with_webhook(fleet, "sharpen", &hook)).await?;
    let (host, site) = ("h-sharpen", "sharpen.example");
    // Visitors get nginx's 502, and nothing on the host says why yet.
    h.send(web(host, site).sees("ok", 502, "nginx")).await?;
    let vague = poll(
        &mut h,
        "insufficient_evidence opens",
        || None,
        async |h: &mut Harness| open_one(h, site).await,
    )
    .await?;
    assert_eq!(cause(&vague), "insufficient_evidence", "{vague:?}");
    let sharp = poll(
        &mut h,
        "service_down replaces it",
        || Some(app_down(host, site).sees("ok", 502, "nginx")),
        async |h: &mut Harness| {
            let open = h.open(site).await?;
            anyhow::ensure!(
                open.len() <= 1,
                "two open incidents: {:?}",
                states(h, site).await?
            );
            Ok(open.into_iter().find(|i| cause(i) == "service_down"))
        },
    )
    .await?;
    assert_ne!(sharp.id, vague.id, "the sharper cause is its own incident");
    assert!(
        resolved(&mut h, site, vague.id).await?.is_some(),
        "{:?}",
        states(&mut h, site).await?
    );
    // The vague verdict coming back while service_down is open opens nothing.
    for _ in 0..3 {
        h.send(web(host, site).sees("ok", 502, "nginx")).await?;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let open = h.open(site).await?;
        anyhow::ensure!(
            open.len() <= 1,
            "two open incidents: {:?}",
            states(&mut h, site).await?
        );
        // It opens only once service_down resolved by good observations.
        if open
            .first()
            .is_some_and(|i| cause(i) == "insufficient_evidence")
        {
            assert!(resolved(&mut h, site, sharp.id).await?.is_some());
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            states(&mut h, site).await?
        );
        h.send(web(host, site).sees("ok", 502, "nginx")).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let events = hook_events(&hook)?;
    assert!(
        events.contains(&(
            "resolved".to_string(),
            vague.id,
            "insufficient_evidence".to_string()
        )),
        "{events:?}"
    );
    h.running.stop().await
}

/// A listener that accepts connections and never answers, holding them until dropped,
/// like an origin whose workers all hang.
struct Hung {
    addr: std::net::SocketAddr,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Hung {
    async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                held.push(stream);
            }
        });
        Ok(Self {
            addr,
            accepted,
            task,
        })
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Hung {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn a_hung_site_holds_back_no_other_sites_probes() -> anyhow::Result<()> {
    // The hung site's probe runs for the whole timeout, longer than the test waits:
    // the other site is probed every interval meanwhile, and the hung one is not
    // probed again while its probe still runs.
    let hung = Hung::start().await?;
    let healthy = Stub::start([127, 0, 0, 1].into(), 0, stub::ok_page()).await?;
    let mut h = Harness::start(|fleet| {
        let mut config = fast_config(
            fleet,
            "hung-site",
            vec![
                site("hung.example", &format!("http://{}/", hung.addr), &[]),
                site("healthy.example", &healthy.url(), &[]),
            ],
        )?;
        config.edge.timeout = 10 * WAIT;
        Ok(config)
    })
    .await?;
    poll(
        &mut h,
        "the healthy site probed five times beside the hung one",
        || None,
        async |_: &mut Harness| Ok((healthy.hits() >= 5 && hung.accepted() >= 1).then_some(())),
    )
    .await?;
    assert_eq!(
        hung.accepted(),
        1,
        "the hung site was probed again while its probe ran"
    );
    Ok(())
}

/// A host's nudge stream, opened with its own agent certificate.
async fn nudges(h: &Harness, host: &str, as_host: &str) -> Result<Streaming<Nudge>, tonic::Status> {
    let mut client = h
        .fleet
        .agent(h.running.addr, host)
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let request = NudgeRequest {
        host_id: as_host.into(),
    };
    Ok(client.nudges(request).await?.into_inner())
}

#[tokio::test]
async fn a_site_that_starts_failing_nudges_the_agents_that_serve_it() -> anyhow::Result<()> {
    let shop = Stub::start([127, 0, 0, 1].into(), 0, stub::ok_page()).await?;
    let blog = Stub::start([127, 0, 0, 1].into(), 0, stub::ok_page()).await?;
    let mut h = Harness::start(|fleet| {
        fast_config(
            fleet,
            "nudges",
            vec![
                site("shop.example", &shop.url(), &["web1"]),
                site("blog.example", &blog.url(), &["web2"]),
            ],
        )
    })
    .await?;
    h.send(web("web1", "shop.example")).await?;
    h.send(web("web2", "blog.example")).await?;
    let refused = nudges(&h, "web1", "web2").await.err();
    assert_eq!(
        refused.map(|s| s.code()),
        Some(tonic::Code::PermissionDenied),
        "web1's certificate listened as web2"
    );
    let mut web1 = nudges(&h, "web1", "web1").await?;
    let mut web2 = nudges(&h, "web2", "web2").await?;
    // Both sites are probed healthy with the streams open, then fail together: each
    // agent hears only of its own site, whichever the collector probed first.
    let (shop_hits, blog_hits) = (shop.hits(), blog.hits());
    poll(
        &mut h,
        "both sites probed healthy",
        || None,
        async |_: &mut Harness| {
            Ok((shop.hits() > shop_hits && blog.hits() > blog_hits).then_some(()))
        },
    )
    .await?;
    let bad_gateway = stub::raw(502, "Bad Gateway", &[("server", "nginx")], "");
    shop.set(bad_gateway.clone());
    blog.set(bad_gateway);
    for (stream, own) in [(&mut web1, "shop.example"), (&mut web2, "blog.example")] {
        let heard = tokio::time::timeout(WAIT, stream.message()).await??;
        assert_eq!(heard.map(|n| n.site).as_deref(), Some(own));
    }
    Ok(())
}
