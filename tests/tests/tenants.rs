//! Tenants end to end: a real collector on SQLite over real mTLS, two
//! tenants (`customer=acme` with a configured site, `customer=globex` with a
//! site discovered from its host's nginx config, which inherits the host's
//! labels), a scoped operator certificate per tenant and an unscoped admin.
//! Lists, reads by id across tenants (refused as NOT_FOUND, and logged),
//! watch streams, deliveries and explain through the Query API, then the
//! same through the real `gw502ctl` binary, including `pki issue --scope`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Output;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use gw502_collector::config::HostConfig;
use gw502_collector::routing::{ReceiverSettings, RoutingSettings};
use gw502_pki::{self as pki, Role, Scope};
use gw502_proto::v1::query_client::QueryClient;
use gw502_proto::v1::{
    ExplainRequest, GetHostRequest, GetIncidentRequest, Incident, IncidentEvent,
    ListDeliveriesRequest, ListHostsRequest, ListIncidentsRequest, ListSitesRequest,
    WatchIncidentsRequest,
};
use gw502_tests::causes::hook::Hook;
use gw502_tests::causes::host::{Host, web};
use gw502_tests::causes::stub::{self, Stub};
use gw502_tests::causes::{Harness, WAIT, fast_config, site};
use gw502_tests::scenario::agent::workspace_bin;
use tonic::transport::Channel;
use tonic::{Code, Streaming};

const ACME: &str = "shop.acme";
const GLOBEX: &str = "shop.globex";
const REFUSED_LINE: &str =
    "connect() failed (111: Connection refused) while connecting to upstream";
const REFUSAL_LOG: &str = "refused a read outside the caller's scope";

/// Everything the collector logs in this test binary.
fn logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct Sink;
        impl Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                if let Some(logs) = LOGS.get() {
                    logs.lock().unwrap().extend_from_slice(buf);
                }
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter("warn")
            .with_writer(|| Sink)
            .try_init();
        Mutex::new(Vec::new())
    })
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The app on `id` is stopped behind nginx; the public view is nginx's 502.
fn app_down(id: &str, site: &str) -> Host {
    web(id, site)
        .unit("app.service", "inactive", "dead", "upstream")
        .event("app.service", "stop", 90_000, "Stopped app.service")
        .ngx(
            "service_down|wrong_port|not_listening",
            "error",
            REFUSED_LINE,
            "http://127.0.0.1:3000/",
        )
        .access(502, "502", 40)
        .probe("127.0.0.1:3000", "refused", "connect", 0, "")
        .sees("ok", 502, "nginx")
}

/// The app is back.
fn app_up(id: &str, site: &str) -> Host {
    web(id, site)
        .access(200, "200", 100)
        .probe("127.0.0.1:3000", "ok", "response", 200, "")
        .sees("ok", 200, "app")
}

/// A collector with both tenants, their operators and a webhook receiver.
struct Tenants {
    h: Harness,
    front: Stub,
    hook: Hook,
    _secret: tempfile::TempDir,
}

impl Tenants {
    async fn start(test: &str) -> anyhow::Result<Tenants> {
        logs();
        let front = Stub::start([127, 0, 0, 1].into(), 0, stub::NGINX_502.to_vec()).await?;
        let hook = Hook::start().await?;
        let secret = tempfile::tempdir()?;
        let secret_file = secret.path().join("hook.secret");
        std::fs::write(&secret_file, "tenants-secret\n")?;
        let mut acme_site = site(ACME, &front.url(), &["web-acme"]);
        acme_site.labels = labels(&[("customer", "acme"), ("tier", "gold")]);
        let url = format!("http://{}/hook", hook.addr);
        let h = Harness::start(|fleet| {
            let mut config = fast_config(fleet, test, vec![acme_site])?;
            config.hosts = vec![
                HostConfig {
                    id: "web-acme".into(),
                    labels: labels(&[("customer", "acme")]),
                },
                HostConfig {
                    id: "web-globex".into(),
                    labels: labels(&[("customer", "globex")]),
                },
            ];
            config.router = RoutingSettings {
                receivers: BTreeMap::from([(
                    "ops".to_string(),
                    ReceiverSettings::Webhook {
                        url,
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
            for (name, pair) in [("alice", "customer=acme"), ("gus", "customer=globex")] {
                pki::issue_scoped(
                    &fleet.pki(),
                    Role::Operator,
                    name,
                    &[],
                    &Scope::parse(&[pair])?,
                )?;
            }
            Ok(config)
        })
        .await?;
        Ok(Tenants {
            h,
            front,
            hook,
            _secret: secret,
        })
    }

    /// A query client presenting operator `name`'s certificate.
    async fn operator(&self, name: &str) -> anyhow::Result<QueryClient<Channel>> {
        let channel = self
            .h
            .fleet
            .channel(self.h.running.addr, Role::Operator, name)
            .await?;
        Ok(QueryClient::new(channel))
    }

    /// Takes `host`'s app down and waits until the admin sees `site`'s
    /// `service_down` incident (a configured site may open an
    /// `insufficient_evidence` one first, from the edge probe alone).
    async fn break_site(&mut self, host: &str, site: &str) -> anyhow::Result<Incident> {
        self.h.send(app_down(host, site)).await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let open = self.h.open(site).await?.into_iter().find(|i| {
                i.verdict
                    .as_ref()
                    .is_some_and(|v| v.cause == "service_down")
            });
            if let Some(open) = open {
                return Ok(open);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "no incident on {site}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Brings `host`'s app back until `incident` resolves.
    async fn heal(&mut self, host: &str, incident: &Incident) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            self.h.send(app_up(host, &incident.site)).await?;
            let all = self.h.incidents(&incident.site).await?;
            if all
                .iter()
                .any(|i| i.id == incident.id && i.state == "resolved")
            {
                return Ok(());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "{} did not resolve",
                incident.id
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn next_event(stream: &mut Streaming<IncidentEvent>) -> anyhow::Result<IncidentEvent> {
    let next = tokio::time::timeout(WAIT, stream.message()).await??;
    next.ok_or_else(|| anyhow::anyhow!("watch stream ended"))
}

fn sites_of(incidents: &[Incident]) -> Vec<&str> {
    incidents.iter().map(|i| i.site.as_str()).collect()
}

async fn list(
    q: &mut QueryClient<Channel>,
    wanted: &[(&str, &str)],
) -> anyhow::Result<Vec<Incident>> {
    let request = ListIncidentsRequest {
        all: true,
        labels: labels(wanted).into_iter().collect(),
        ..Default::default()
    };
    Ok(q.list_incidents(request).await?.into_inner().incidents)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_operators_see_only_their_tenant() -> anyhow::Result<()> {
    let mut t = Tenants::start("tenants_api").await?;
    let (mut admin, mut alice, mut gus) = (
        t.operator("admin").await?,
        t.operator("alice").await?,
        t.operator("gus").await?,
    );
    let mut alice_watch = alice
        .watch_incidents(WatchIncidentsRequest::default())
        .await?
        .into_inner();
    let mut gus_watch = gus
        .watch_incidents(WatchIncidentsRequest::default())
        .await?
        .into_inner();

    // Globex breaks first, then acme, then globex heals: each watcher's
    // stream proves by its order that the other tenant's events were dropped.
    let globex = t.break_site("web-globex", GLOBEX).await?;
    let acme = t.break_site("web-acme", ACME).await?;
    t.heal("web-globex", &globex).await?;

    let mut alice_saw = Vec::new();
    loop {
        let event = next_event(&mut alice_watch).await?;
        let incident = event.incident.unwrap_or_default();
        assert_eq!(
            incident.labels.get("customer").map(String::as_str),
            Some("acme"),
            "{incident:?}"
        );
        alice_saw.push((event.kind.clone(), incident.site.clone()));
        if event.kind == "opened" && incident.id == acme.id {
            break;
        }
    }
    assert!(
        alice_saw.iter().all(|(_, site)| site == ACME),
        "alice saw another tenant before acme's incident: {alice_saw:?}"
    );
    let mut gus_saw = Vec::new();
    loop {
        let event = next_event(&mut gus_watch).await?;
        let incident = event.incident.unwrap_or_default();
        gus_saw.push((event.kind.clone(), incident.site.clone()));
        if event.kind == "resolved" && incident.id == globex.id {
            break;
        }
    }
    assert!(
        gus_saw.iter().all(|(_, site)| site == GLOBEX),
        "gus saw another tenant: {gus_saw:?}"
    );

    // Lists: the admin sees both with their site's labels, each operator one.
    let all = list(&mut admin, &[]).await?;
    let by_site = |site: &str| all.iter().find(|i| i.site == site).cloned();
    let acme_row = by_site(ACME).ok_or_else(|| anyhow::anyhow!("no acme: {all:?}"))?;
    let globex_row = by_site(GLOBEX).ok_or_else(|| anyhow::anyhow!("no globex: {all:?}"))?;
    assert_eq!(
        acme_row.labels,
        labels(&[("customer", "acme"), ("tier", "gold")])
            .into_iter()
            .collect()
    );
    assert_eq!(
        globex_row.labels,
        labels(&[("customer", "globex")]).into_iter().collect(),
        "a discovered site inherits its host's labels"
    );
    assert!(
        sites_of(&list(&mut alice, &[]).await?)
            .iter()
            .all(|s| *s == ACME)
    );
    assert!(!list(&mut alice, &[]).await?.is_empty());
    assert!(
        sites_of(&list(&mut gus, &[]).await?)
            .iter()
            .all(|s| *s == GLOBEX)
    );
    assert_eq!(
        sites_of(&list(&mut admin, &[("customer", "globex")]).await?),
        [GLOBEX]
    );
    assert!(
        list(&mut alice, &[("customer", "globex")])
            .await?
            .is_empty(),
        "a label filter cannot widen a scope"
    );

    // Reads by id across tenants answer what a missing id answers.
    let own = alice
        .get_incident(GetIncidentRequest { id: acme.id })
        .await?
        .into_inner();
    assert_eq!(own.incident.unwrap_or_default().site, ACME);
    let refused = alice
        .get_incident(GetIncidentRequest { id: globex.id })
        .await
        .unwrap_err();
    let missing = admin
        .get_incident(GetIncidentRequest { id: 987_654 })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(refused.message(), format!("no incident {}", globex.id));
    assert_eq!(missing.message(), "no incident 987654");
    admin
        .get_incident(GetIncidentRequest { id: globex.id })
        .await?;

    // Hosts by their own labels.
    let hosts = |q: QueryClient<Channel>| async move {
        let mut q = q;
        let list = q.list_hosts(ListHostsRequest {}).await?.into_inner().hosts;
        anyhow::Ok(
            list.into_iter()
                .map(|h| (h.host_id, h.labels.get("customer").cloned()))
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        hosts(alice.clone()).await?,
        [("web-acme".to_string(), Some("acme".to_string()))]
    );
    assert_eq!(hosts(admin.clone()).await?.len(), 2);
    let refused = gus
        .get_host(GetHostRequest {
            host_id: "web-acme".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (refused.code(), refused.message()),
        (Code::NotFound, "no host \"web-acme\"")
    );
    gus.get_host(GetHostRequest {
        host_id: "web-globex".into(),
    })
    .await?;

    // Sites.
    let site_names = |q: QueryClient<Channel>| async move {
        let mut q = q;
        let list = q.list_sites(ListSitesRequest {}).await?.into_inner().sites;
        anyhow::Ok(list.into_iter().map(|s| s.name).collect::<Vec<_>>())
    };
    assert_eq!(site_names(alice.clone()).await?, [ACME]);
    assert_eq!(site_names(gus.clone()).await?, [GLOBEX]);
    assert!(site_names(admin.clone()).await?.len() >= 2);

    // Deliveries: once both incidents were delivered, each operator sees its own.
    let deliveries = |q: QueryClient<Channel>, incident_id: u64| async move {
        let mut q = q;
        let request = ListDeliveriesRequest {
            incident_id,
            limit: 0,
        };
        let list = q.list_deliveries(request).await?.into_inner().deliveries;
        anyhow::Ok(list.into_iter().map(|d| d.incident_id).collect::<Vec<_>>())
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ids = deliveries(admin.clone(), 0).await?;
        if ids.contains(&acme.id) && ids.contains(&globex.id) {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "deliveries: {ids:?}; hook got {}",
            t.hook.received().len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let acme_ids: Vec<u64> = list(&mut admin, &[])
        .await?
        .iter()
        .filter(|i| i.site == ACME)
        .map(|i| i.id)
        .collect();
    let alice_ids = deliveries(alice.clone(), 0).await?;
    assert!(
        alice_ids.contains(&acme.id) && alice_ids.iter().all(|id| acme_ids.contains(id)),
        "alice got {alice_ids:?}; acme's incidents are {acme_ids:?}"
    );
    assert!(deliveries(alice.clone(), globex.id).await?.is_empty());
    assert!(!deliveries(admin.clone(), globex.id).await?.is_empty());

    // Explain: only the operator's own sites, and no word on others.
    let answer = alice
        .explain(ExplainRequest { url: t.front.url() })
        .await?
        .into_inner();
    assert_eq!(answer.site, ACME);
    for url in [t.front.url(), "http://127.0.0.1:9/".to_string()] {
        let refused = gus.explain(ExplainRequest { url }).await.unwrap_err();
        assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    }

    let logs = String::from_utf8_lossy(&logs().lock().unwrap()).into_owned();
    let refusals: Vec<&str> = logs.lines().filter(|l| l.contains(REFUSAL_LOG)).collect();
    for (caller, id) in [
        ("operator/alice", globex.id.to_string()),
        ("operator/gus", "web-acme".to_string()),
    ] {
        assert!(
            refusals
                .iter()
                .any(|l| l.contains(caller) && l.contains(&format!("id={id}"))
                    || l.contains(caller) && l.contains(&format!("id=\"{id}\""))),
            "no refusal of {caller} reading {id} in {refusals:#?}"
        );
    }
    t.h.running.stop().await
}

/// Runs the real `gw502ctl` as operator `name` of the fleet.
async fn ctl(t: &Tenants, name: &str, args: &[&str]) -> anyhow::Result<Output> {
    let (cert, key) = pki::leaf_paths(&t.h.fleet.pki(), Role::Operator, name);
    if name == "admin" {
        t.h.fleet.issue(Role::Operator, name)?;
    }
    Ok(tokio::process::Command::new(workspace_bin("gw502ctl")?)
        .arg("--collector")
        .arg(format!("https://{}", t.h.running.addr))
        .arg("--ca")
        .arg(t.h.fleet.pki().join("ca.crt"))
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(args)
        .env_clear()
        .output()
        .await?)
}

async fn ctl_ok(t: &Tenants, name: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = ctl(t, name, args).await?;
    anyhow::ensure!(
        out.status.success(),
        "gw502ctl {args:?} as {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

async fn ctl_json(t: &Tenants, name: &str, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    Ok(serde_json::from_str(&ctl_ok(t, name, &all).await?)?)
}

fn field<'a>(list: &'a serde_json::Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v[key].as_str())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gw502ctl_follows_the_scope() -> anyhow::Result<()> {
    let mut t = Tenants::start("tenants_ctl").await?;
    let globex = t.break_site("web-globex", GLOBEX).await?;
    let acme = t.break_site("web-acme", ACME).await?;

    let mine = ctl_json(&t, "alice", &["incidents"]).await?;
    assert!(field(&mine, "site").iter().all(|s| *s == ACME), "{mine}");
    let ids: Vec<u64> = mine
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["id"].as_u64())
        .collect();
    assert!(ids.contains(&acme.id), "{mine}");
    assert_eq!(mine[0]["labels"]["customer"], "acme");
    let text = ctl_ok(&t, "alice", &["incidents"]).await?;
    assert!(
        text.contains("customer=acme,tier=gold") && !text.contains(GLOBEX),
        "{text}"
    );
    assert_eq!(
        field(
            &ctl_json(&t, "admin", &["incidents", "--label", "customer=globex"]).await?,
            "site"
        ),
        [GLOBEX]
    );
    assert_eq!(
        field(&ctl_json(&t, "admin", &["incidents"]).await?, "site").len(),
        2
    );

    let id = globex.id.to_string();
    let refused = ctl(&t, "alice", &["incidents", "show", &id]).await?;
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains(&format!("no incident {id}")), "{stderr}");
    let shown = ctl_json(&t, "alice", &["incidents", "show", &acme.id.to_string()]).await?;
    assert_eq!(shown["incident"]["site"], ACME);

    let hosts = ctl_json(&t, "alice", &["hosts"]).await?;
    assert_eq!(field(&hosts, "host"), ["web-acme"]);
    assert_eq!(hosts[0]["labels"]["customer"], "acme");
    let text = ctl_ok(&t, "alice", &["hosts"]).await?;
    assert!(
        text.contains("labels") && text.contains("customer=acme"),
        "{text}"
    );
    assert_eq!(
        field(
            &ctl_json(&t, "admin", &["hosts", "--label", "customer=globex"]).await?,
            "host"
        ),
        ["web-globex"]
    );
    let refused = ctl(&t, "alice", &["hosts", "show", "web-globex"]).await?;
    assert_eq!(refused.status.code(), Some(1));

    assert_eq!(
        field(&ctl_json(&t, "gus", &["sites"]).await?, "name"),
        [GLOBEX]
    );
    assert_eq!(
        field(
            &ctl_json(&t, "admin", &["sites", "--label", "tier=gold"]).await?,
            "name"
        ),
        [ACME]
    );

    // pki issue --scope writes a scoped certificate the collector honours.
    let pki_dir = t.h.fleet.pki();
    let dir = pki_dir.to_str().unwrap_or_default();
    let issued = ctl_ok(
        &t,
        "admin",
        &[
            "pki",
            "issue",
            "operator",
            "carol",
            "--dir",
            dir,
            "--scope",
            "customer=globex",
        ],
    )
    .await?;
    assert!(
        issued.contains("scope gw502:scope:customer=globex"),
        "{issued}"
    );
    assert_eq!(
        field(&ctl_json(&t, "carol", &["incidents"]).await?, "site"),
        [GLOBEX]
    );
    for bad in [
        &[
            "pki",
            "issue",
            "agent",
            "web-9",
            "--dir",
            dir,
            "--scope",
            "customer=acme",
        ][..],
        &[
            "pki", "issue", "operator", "dave", "--dir", dir, "--scope", "customer",
        ],
        &[
            "pki",
            "issue",
            "operator",
            "dave",
            "--dir",
            dir,
            "--scope",
            "customer=a",
            "--scope",
            "customer=b",
        ],
    ] {
        let out = ctl(&t, "admin", bad).await?;
        assert_eq!(out.status.code(), Some(64), "{bad:?}");
    }
    assert!(!pki::leaf_paths(&pki_dir, Role::Agent, "web-9").0.exists());
    assert!(!pki::leaf_paths(&pki_dir, Role::Operator, "dave").0.exists());
    t.h.running.stop().await
}
