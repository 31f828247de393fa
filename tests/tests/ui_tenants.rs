//! The web view follows the operator's scope: a real collector (SQLite, real
//! mTLS) holds an open incident for each of two tenants (`customer=acme`
//! with a configured site, `customer=globex` with a site discovered from its
//! host), and the real `gw502ctl ui` binary serves them over plain HTTP on
//! loopback, once with the scoped operator `alice` (`customer=acme`) and once
//! with an unscoped admin. Alice's pages list only acme's incidents, hosts
//! and sites, the `label=` filter narrows without widening, and globex's
//! incident and host by id answer the very 404 page of an id that does not
//! exist, naming nothing of globex. The admin's web view sees both.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use gw502_collector::config::HostConfig;
use gw502_pki::{self as pki, Role, Scope};
use gw502_proto::v1::Incident;
use gw502_tests::causes::host::{Host, web};
use gw502_tests::causes::stub::{self, Stub};
use gw502_tests::causes::{Harness, WAIT, fast_config, site};
use gw502_tests::scenario::agent::workspace_bin;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

const ACME: &str = "shop.acme";
const GLOBEX: &str = "shop.globex";
const MISSING: u64 = 987_654;
const REFUSED_LINE: &str =
    "connect() failed (111: Connection refused) while connecting to upstream";

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

/// A collector with acme's configured site, both tenants' hosts and the
/// scoped operator `alice`.
async fn collector(front: &Stub) -> anyhow::Result<Harness> {
    let mut acme_site = site(ACME, &front.url(), &["web-acme"]);
    acme_site.labels = labels(&[("customer", "acme"), ("tier", "gold")]);
    Harness::start(|fleet| {
        let mut config = fast_config(fleet, "ui_tenants", vec![acme_site])?;
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
        pki::issue_scoped(
            &fleet.pki(),
            Role::Operator,
            "alice",
            &[],
            &Scope::parse(&["customer=acme"])?,
        )?;
        Ok(config)
    })
    .await
}

/// Takes `host`'s app down and waits until `site` has an open
/// `service_down` incident (a configured site may first open an
/// `insufficient_evidence` one from the edge probe alone).
async fn break_site(h: &mut Harness, host: &str, site: &str) -> anyhow::Result<Incident> {
    h.send(app_down(host, site)).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let open = h.open(site).await?.into_iter().find(|i| {
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

/// `gw502ctl ui` with operator `name`'s certificate on a port-0 loopback
/// listener; returns it and its base URL.
async fn start_ui(h: &Harness, name: &str) -> anyhow::Result<(Child, String)> {
    let (cert, key) = h.fleet.issue(Role::Operator, name)?;
    let mut child = Command::new(workspace_bin("gw502ctl")?)
        .arg("--collector")
        .arg(format!("https://{}", h.running.addr))
        .arg("--ca")
        .arg(h.fleet.pki().join("ca.crt"))
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(key)
        .args(["ui", "--listen", "127.0.0.1:0"])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut first = String::new();
    tokio::time::timeout(WAIT, BufReader::new(stdout).read_line(&mut first)).await??;
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or_else(|| anyhow::anyhow!("no URL in {first:?}"))?
        .trim_end_matches('/')
        .to_owned();
    Ok((child, base))
}

/// A plain HTTP/1.1 GET: (status, body without the headers).
async fn get(base: &str, path: &str) -> anyhow::Result<(u16, String)> {
    let authority = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(authority).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no header end in {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no status line in {head:?}"))?;
    Ok((status, body.to_owned()))
}

/// GETs `path`, asserts `status`, and returns the body.
async fn page(base: &str, path: &str, status: u16) -> anyhow::Result<String> {
    let (got, body) = get(base, path).await?;
    assert_eq!(got, status, "GET {path}: {body}");
    Ok(body)
}

/// Asserts that a scoped page names nothing of the other tenant.
fn no_globex(path: &str, body: &str, globex: &Incident) {
    assert!(
        !body.to_lowercase().contains("globex"),
        "GET {path} shows the other tenant: {body}"
    );
    assert!(
        !body.contains(&format!("/incidents/{}\"", globex.id)),
        "GET {path} links the other tenant's incident: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_view_follows_the_scope() -> anyhow::Result<()> {
    let front = Stub::start([127, 0, 0, 1].into(), 0, stub::NGINX_502.to_vec()).await?;
    let mut h = collector(&front).await?;
    let globex = break_site(&mut h, "web-globex", GLOBEX).await?;
    let acme = break_site(&mut h, "web-acme", ACME).await?;

    let (_alice_ui, alice) = start_ui(&h, "alice").await?;

    // Lists: only acme's incident, host and site.
    let list = page(&alice, "/", 200).await?;
    assert!(list.contains(ACME), "{list}");
    assert!(list.contains(&format!("/incidents/{}", acme.id)), "{list}");
    no_globex("/", &list, &globex);
    let all = page(&alice, "/?all=on", 200).await?;
    assert!(all.contains(ACME), "{all}");
    no_globex("/?all=on", &all, &globex);
    let hosts = page(&alice, "/hosts", 200).await?;
    assert!(hosts.contains("web-acme"), "{hosts}");
    no_globex("/hosts", &hosts, &globex);
    let sites = page(&alice, "/sites", 200).await?;
    assert!(sites.contains(ACME), "{sites}");
    no_globex("/sites", &sites, &globex);

    // The label filter narrows within the scope and cannot widen it.
    let gold = page(&alice, "/?label=tier%3Dgold", 200).await?;
    assert!(gold.contains(ACME), "{gold}");
    let silver = page(&alice, "/?label=tier%3Dsilver", 200).await?;
    assert!(!silver.contains(ACME), "{silver}");
    let other = page(&alice, "/?label=customer%3Dglobex", 200).await?;
    assert!(!other.contains(ACME), "{other}");
    assert!(!other.contains(GLOBEX), "{other}");

    // Reads by id: own ones open, the other tenant's are a missing id.
    let own = page(&alice, &format!("/incidents/{}", acme.id), 200).await?;
    assert!(own.contains(ACME), "{own}");
    let refused = page(&alice, &format!("/incidents/{}", globex.id), 404).await?;
    no_globex("/incidents/<globex>", &refused, &globex);
    assert!(!refused.contains("service_down"), "{refused}");
    let missing = page(&alice, &format!("/incidents/{MISSING}"), 404).await?;
    assert_eq!(
        refused.replace(&format!("no incident {}", globex.id), "no incident N"),
        missing.replace(&format!("no incident {MISSING}"), "no incident N"),
        "another tenant's incident must look like a missing one"
    );
    let own_host = page(&alice, "/hosts/web-acme", 200).await?;
    assert!(own_host.contains("web-acme"), "{own_host}");
    let refused = page(&alice, "/hosts/web-globex", 404).await?;
    let missing = page(&alice, "/hosts/web-nowhere", 404).await?;
    assert_eq!(
        refused.replace("web-globex", "HOST"),
        missing.replace("web-nowhere", "HOST"),
        "another tenant's host must look like a missing one"
    );
    assert!(!refused.contains("customer"), "{refused}");

    // The unscoped admin's web view sees both tenants.
    let (_admin_ui, admin) = start_ui(&h, "admin").await?;
    let list = page(&admin, "/", 200).await?;
    assert!(list.contains(ACME) && list.contains(GLOBEX), "{list}");
    let hosts = page(&admin, "/hosts", 200).await?;
    assert!(
        hosts.contains("web-acme") && hosts.contains("web-globex"),
        "{hosts}"
    );
    let sites = page(&admin, "/sites", 200).await?;
    assert!(sites.contains(ACME) && sites.contains(GLOBEX), "{sites}");
    let theirs = page(&admin, &format!("/incidents/{}", globex.id), 200).await?;
    assert!(theirs.contains(GLOBEX), "{theirs}");
    page(&admin, "/hosts/web-globex", 200).await?;
    let only = page(&admin, "/?label=customer%3Dglobex", 200).await?;
    assert!(only.contains(GLOBEX) && !only.contains(ACME), "{only}");
    Ok(())
}
