//! The security checks of issue 14, each against a real `gw502-collector`
//! process over real mTLS, asserting both the refusal the caller sees and
//! the line the collector logs: an agent certificate used to query, a host
//! reporting as another host, a certificate from another CA, a certificate
//! revoked while the collector runs (new connections refused after the CRL
//! reload, and every later call on a connection opened before it), a bad
//! CRL that leaves the previous one in force, an oversized report, a report
//! with 100k evidence lines (and the agent's own bound on it), and secrets
//! readable by everyone in both daemons' configs.
//!
//! Needs the binaries: `cargo build --workspace --bins` first.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gw502_pki::Role;
use gw502_proto::v1::query_client::QueryClient;
use gw502_proto::v1::{HostReport, JournalEntry, JournalSection, ListHostsRequest};
use gw502_tests::fleet::Fleet;
use tonic::Code;

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A collector process with its stderr collected line by line.
struct Collector {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    addr: std::net::SocketAddr,
    config: PathBuf,
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Collector {
    /// Writes a config for `fleet`'s collector certificate and starts it.
    fn start(fleet: &Fleet) -> Collector {
        let (cert, key) = gw502_pki::leaf_paths(&fleet.pki(), Role::Collector, "collector");
        let config = fleet.path().join("collector.toml");
        let text = format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite://{}\"\nid = \"sec\"\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            fleet.path().join("collector.db").display(),
            fleet.pki().join("ca.crt").display(),
            cert.display(),
            key.display()
        );
        std::fs::write(&config, text).expect("config written");
        let mut child = Command::new(bin("gw502-collector"))
            .args(["run", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("collector starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().expect("log lock").push(line);
            }
        });
        let mut collector = Collector {
            child,
            log,
            addr: "127.0.0.1:0".parse().expect("addr"),
            config,
        };
        let serving = collector.wait_log(&["collector serving"]);
        let listen = serving
            .split("listen=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("listen field");
        collector.addr = listen.parse().expect("listen address");
        collector
    }

    /// Waits for a log line holding every word of `words`, returning it.
    fn wait_log(&self, words: &[&str]) -> String {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self
                .log
                .lock()
                .expect("log lock")
                .iter()
                .find(|l| words.iter().all(|w| l.contains(w)))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < until,
                "no log line with {words:?}; log:\n{}",
                self.log.lock().expect("log lock").join("\n")
            );
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }

    /// How many log lines hold every word of `words`.
    fn count_log(&self, words: &[&str]) -> usize {
        let log = self.log.lock().expect("log lock");
        log.iter()
            .filter(|l| words.iter().all(|w| l.contains(w)))
            .count()
    }
}

fn report(host: &str, seq: u64) -> HostReport {
    HostReport {
        host_id: host.into(),
        agent_instance: "security-test".into(),
        seq,
        agent_version: "test".into(),
        generated_at_ms: 1,
        interval_ms: 10_000,
        ..Default::default()
    }
}

async fn stored_hosts(fleet: &Fleet, collector: &Collector) -> Vec<String> {
    let mut operator = fleet.operator(collector.addr).await.expect("operator");
    let hosts = operator
        .list_hosts(ListHostsRequest {})
        .await
        .expect("operator may list hosts")
        .into_inner()
        .hosts;
    hosts.into_iter().map(|h| h.host_id).collect()
}

#[tokio::test]
async fn an_agent_certificate_may_not_query() {
    let fleet = Fleet::new().unwrap();
    let collector = Collector::start(&fleet);
    let channel = fleet
        .channel(collector.addr, Role::Agent, "web-1")
        .await
        .unwrap();
    let status = QueryClient::new(channel)
        .list_hosts(ListHostsRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("role agent may not query"),
        "{status:?}"
    );
    collector.wait_log(&["refused a query", "agent/web-1"]);
}

#[tokio::test]
async fn a_host_may_not_report_as_another_host() {
    let fleet = Fleet::new().unwrap();
    let collector = Collector::start(&fleet);
    let mut agent = fleet.agent(collector.addr, "web-1").await.unwrap();
    let status = agent.report(report("web-2", 1)).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        status.message().contains("may not report as \"web-2\""),
        "{status:?}"
    );
    collector.wait_log(&["refused a report for another host", "web-1", "web-2"]);
    agent
        .report(report("web-1", 1))
        .await
        .expect("own host accepted");
    assert_eq!(stored_hosts(&fleet, &collector).await, ["web-1"]);
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_in_the_handshake() {
    let fleet = Fleet::new().unwrap();
    let stranger = Fleet::new().unwrap();
    let collector = Collector::start(&fleet);
    // The stranger trusts our collector's CA, so only its own certificate is wrong.
    let (cert, key) = stranger.issue(Role::Operator, "admin").unwrap();
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(fleet.pki().join("ca.crt")).unwrap(),
        ))
        .identity(tonic::transport::Identity::from_pem(
            std::fs::read(cert).unwrap(),
            std::fs::read(key).unwrap(),
        ))
        .domain_name("localhost");
    let outcome = async {
        let channel =
            tonic::transport::Endpoint::from_shared(format!("https://{}", collector.addr))?
                .tls_config(tls)?
                .connect()
                .await?;
        QueryClient::new(channel)
            .list_hosts(ListHostsRequest {})
            .await
            .map_err(anyhow::Error::from)
    }
    .await;
    assert!(outcome.is_err(), "a foreign certificate was served");
    // Same CA name, other key: webpki reports BadSignature (UnknownIssuer
    // when the names differ too).
    collector.wait_log(&[
        "tls handshake refused",
        "invalid peer certificate: BadSignature",
    ]);
}

#[tokio::test]
async fn a_certificate_revoked_while_running_is_refused_after_the_reload() {
    let fleet = Fleet::new().unwrap();
    let collector = Collector::start(&fleet);
    let mut before = fleet.agent(collector.addr, "web-1").await.unwrap();
    before
        .report(report("web-1", 1))
        .await
        .expect("not yet revoked");

    let revoke = Command::new(bin("gw502ctl"))
        .args([
            "pki",
            "revoke",
            "agent/web-1",
            "--reason",
            "key-compromise",
            "--dir",
        ])
        .arg(fleet.pki())
        .output()
        .unwrap();
    assert!(revoke.status.success(), "{revoke:?}");
    let said = String::from_utf8_lossy(&revoke.stdout);
    assert!(said.contains("revoked agent/web-1"), "{said}");
    collector.wait_log(&["revocation list loaded", "crl_number=1", "revoked=1"]);
    let list = Command::new(bin("gw502ctl"))
        .args(["--json", "pki", "list", "--dir"])
        .arg(fleet.pki())
        .output()
        .unwrap();
    assert!(list.status.success(), "{list:?}");
    let rows: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let row = |id: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["identity"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not listed: {rows}"))
    };
    assert_eq!(row("agent/web-1")["reason"], "key-compromise");
    assert!(row("agent/web-1")["revoked_at"].is_string());
    assert!(row("collector/collector")["revoked_at"].is_null());

    // A new connection with the revoked certificate fails its handshake.
    let after = async {
        let mut client = fleet.agent(collector.addr, "web-1").await?;
        client
            .report(report("web-1", 2))
            .await
            .map_err(anyhow::Error::from)
    }
    .await;
    assert!(after.is_err(), "a revoked certificate connected");
    collector.wait_log(&["tls handshake refused", "Revoked"]);

    // The connection opened before the revocation stays open, but every call
    // on it is refused from the list in force.
    let status = before.report(report("web-1", 3)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("revoked"), "{status:?}");
    collector.wait_log(&["refused a call on a connection whose certificate was revoked"]);

    // Others are unaffected.
    let mut other = fleet.agent(collector.addr, "web-2").await.unwrap();
    other
        .report(report("web-2", 1))
        .await
        .expect("web-2 still trusted");

    // A bad list is refused, logged, and the previous one stays in force.
    let crl = fleet.pki().join("crl.pem");
    std::fs::write(
        &crl,
        "-----BEGIN X509 CRL-----\nnot base64\n-----END X509 CRL-----\n",
    )
    .unwrap();
    collector.wait_log(&["revocation list refused, keeping the previous one"]);
    let refused_before = collector.count_log(&["tls handshake refused", "Revoked"]);
    let again = async {
        let mut client = fleet.agent(collector.addr, "web-1").await?;
        client
            .report(report("web-1", 4))
            .await
            .map_err(anyhow::Error::from)
    }
    .await;
    assert!(again.is_err(), "a bad list un-revoked web-1");
    let until = Instant::now() + Duration::from_secs(30);
    while collector.count_log(&["tls handshake refused", "Revoked"]) == refused_before {
        assert!(Instant::now() < until, "second refusal not logged");
        std::thread::park_timeout(Duration::from_millis(50));
    }
    let mut fresh = fleet.agent(collector.addr, "web-3").await.unwrap();
    fresh
        .report(report("web-3", 1))
        .await
        .expect("web-3 trusted");
    assert_eq!(
        stored_hosts(&fleet, &collector).await,
        ["web-1", "web-2", "web-3"]
    );
}

#[tokio::test]
async fn an_oversized_report_is_refused_and_nothing_is_stored() {
    let fleet = Fleet::new().unwrap();
    let collector = Collector::start(&fleet);
    let mut agent = fleet.agent(collector.addr, "web-1").await.unwrap();
    let mut big = report("web-1", 1);
    big.addresses = vec!["x".repeat(1024); 5 * 1024];
    let status = agent.report(big).await.unwrap_err();
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("the limit is: 4194304 bytes"),
        "{status:?}"
    );
    collector.wait_log(&["refused a message over the grpc size limit", "agent/web-1"]);
    assert!(stored_hosts(&fleet, &collector).await.is_empty());
}

#[tokio::test]
async fn a_report_with_100k_evidence_lines_is_refused_whole_and_the_agent_bounds_its_own() {
    let fleet = Fleet::new().unwrap();
    let collector = Collector::start(&fleet);
    let mut agent = fleet.agent(collector.addr, "web-1").await.unwrap();
    let mut flood = report("web-1", 1);
    flood.journal = Some(JournalSection {
        entries: (0..100_000)
            .map(|i| JournalEntry {
                at_ms: i,
                priority: 3,
                message: format!("timed out {i}"),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    });
    let len = prost::Message::encoded_len(&flood);
    assert!(
        len > gw502_proto::MAX_REPORT_BYTES && len < gw502_proto::MAX_MESSAGE_BYTES,
        "{len}"
    );
    let status = agent.report(flood.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("over the limit of 1048576 bytes"),
        "{status:?}"
    );
    collector.wait_log(&[
        "refused a report over the report size limit",
        "web-1",
        "limit=1048576",
    ]);
    assert!(stored_hosts(&fleet, &collector).await.is_empty());

    // The agent never sends such a report: its bound cuts the largest list,
    // keeps the newest lines and counts the rest in the section.
    let cut = gw502_agent::bound::bound(&mut flood, gw502_agent::bound::MAX_REPORT_BYTES);
    let journal = flood.journal.as_ref().unwrap();
    assert!(cut > 0 && journal.dropped as usize == cut, "cut {cut}");
    assert_eq!(journal.entries.len() + cut, 100_000);
    assert_eq!(journal.entries.last().unwrap().message, "timed out 99999");
    eprintln!(
        "100k lines: {len} bytes refused; bounded to {} bytes, {} lines kept, {cut} cut",
        prost::Message::encoded_len(&flood),
        journal.entries.len()
    );
    agent
        .report(flood)
        .await
        .expect("a bounded report is accepted");
    assert_eq!(stored_hosts(&fleet, &collector).await, ["web-1"]);
}

#[tokio::test]
async fn secrets_readable_by_everyone_are_warned_about_by_both_daemons() {
    let fleet = Fleet::new().unwrap();
    let (_, collector_key) = gw502_pki::leaf_paths(&fleet.pki(), Role::Collector, "collector");
    let mode = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    // A running collector whose private key is world-readable.
    mode(&collector_key, 0o644);
    let collector = Collector::start(&fleet);
    collector.wait_log(&[
        "a secret is readable by everyone",
        &format!("file={}", collector_key.display()),
        "mode=0644",
        "key=tls.key",
    ]);
    mode(&collector_key, 0o600);

    // A world-readable collector config with a database password.
    let text = std::fs::read_to_string(&collector.config)
        .unwrap()
        .replace("sqlite://", "postgres://gw502:hunter2@db.invalid/x?unused=");
    let config = fleet.path().join("pg.toml");
    std::fs::write(&config, text).unwrap();
    mode(&config, 0o644);
    let check = Command::new(bin("gw502-collector"))
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let log = String::from_utf8_lossy(&check.stderr);
    assert!(log.contains("a secret is readable by everyone"), "{log}");
    assert!(log.contains(&format!("file={}", config.display())), "{log}");
    assert!(
        log.contains("mode=0644") && log.contains("key=database"),
        "{log}"
    );
    assert!(
        !log.contains("hunter2"),
        "the secret itself is logged: {log}"
    );
    mode(&config, 0o640);
    let quiet = Command::new(bin("gw502-collector"))
        .args(["check-config", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("readable by everyone"));

    // The agent, with its key world-readable.
    let (cert, key) = fleet.issue(Role::Agent, "web-1").unwrap();
    mode(&key, 0o604);
    let agent_config = fleet.path().join("agent.toml");
    std::fs::write(
        &agent_config,
        format!(
            "host_id = \"web-1\"\ncollectors = [\"https://127.0.0.1:7502\"]\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
            fleet.pki().join("ca.crt").display(),
            cert.display(),
            key.display()
        ),
    )
    .unwrap();
    let check = Command::new(bin("gw502-agent"))
        .arg("--config")
        .arg(&agent_config)
        .arg("check-config")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{check:?}");
    assert!(log.contains("a secret is readable by everyone"), "{log}");
    assert!(log.contains(&format!("file={}", key.display())), "{log}");
    assert!(
        log.contains("mode=0604") && log.contains("key=tls.key"),
        "{log}"
    );
}
