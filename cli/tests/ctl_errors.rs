//! End-to-end tests of the real `gw502ctl` binary against real sockets and a
//! real tonic mTLS server started here, with certificates issued in the test
//! by `gw502_pki`: the one-line errors and exit codes for an
//! unreachable collector, an untrusted collector certificate, a certificate
//! of the wrong role, an unknown incident and missing settings, usage errors, and the
//! happy path in text and JSON.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use gw502_pki::{self as pki, Role};
use gw502_proto::v1 as pb;
use gw502_proto::v1::query_server::{Query, QueryServer};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status};

/// A Query service that either denies everything or serves one incident.
struct FakeQuery {
    deny: bool,
}

fn incident() -> pb::Incident {
    pb::Incident {
        id: 7,
        site: "shop".into(),
        host: "web-1".into(),
        state: "open".into(),
        opened_at_ms: 1_714_557_600_000,
        updated_at_ms: 1_714_557_600_000,
        resolved_at_ms: 0,
        bad_observations: 1,
        verdict: Some(pb::Verdict {
            emitted_by: "proxy".into(),
            layer: "handoff".into(),
            cause: "wrong_port".into(),
            status: 502,
            confidence: 0.8,
            next_check: "compare proxy_pass with ss -tlnp".into(),
            owner: "platform".into(),
            summary: "evil\x1b[2Jsummary".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

type EventStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::IncidentEvent, Status>> + Send>>;

impl FakeQuery {
    fn gate(&self) -> Result<(), Status> {
        if self.deny {
            Err(Status::permission_denied(
                "role agent may not call gw502.v1.Query",
            ))
        } else {
            Ok(())
        }
    }
}

#[tonic::async_trait]
impl Query for FakeQuery {
    async fn list_hosts(
        &self,
        _: Request<pb::ListHostsRequest>,
    ) -> Result<Response<pb::ListHostsResponse>, Status> {
        self.gate()?;
        Ok(Response::new(pb::ListHostsResponse::default()))
    }
    async fn get_host(
        &self,
        _: Request<pb::GetHostRequest>,
    ) -> Result<Response<pb::HostDetail>, Status> {
        self.gate()?;
        Err(Status::not_found("host"))
    }
    async fn list_sites(
        &self,
        _: Request<pb::ListSitesRequest>,
    ) -> Result<Response<pb::ListSitesResponse>, Status> {
        self.gate()?;
        Ok(Response::new(pb::ListSitesResponse::default()))
    }
    async fn list_incidents(
        &self,
        _: Request<pb::ListIncidentsRequest>,
    ) -> Result<Response<pb::ListIncidentsResponse>, Status> {
        self.gate()?;
        Ok(Response::new(pb::ListIncidentsResponse {
            incidents: vec![incident()],
        }))
    }
    async fn get_incident(
        &self,
        r: Request<pb::GetIncidentRequest>,
    ) -> Result<Response<pb::IncidentDetail>, Status> {
        self.gate()?;
        if r.get_ref().id != 7 {
            return Err(Status::not_found("incident"));
        }
        Ok(Response::new(pb::IncidentDetail {
            incident: Some(incident()),
            ..Default::default()
        }))
    }
    type WatchIncidentsStream = EventStream;
    async fn watch_incidents(
        &self,
        _: Request<pb::WatchIncidentsRequest>,
    ) -> Result<Response<Self::WatchIncidentsStream>, Status> {
        self.gate()?;
        let events = [
            pb::IncidentEvent {
                kind: "opened".into(),
                incident: Some(incident()),
            },
            pb::IncidentEvent {
                kind: "resolved".into(),
                incident: Some(incident()),
            },
        ];
        Ok(Response::new(Box::pin(tokio_stream::iter(events.map(Ok)))))
    }
    async fn list_deliveries(
        &self,
        _: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        self.gate()?;
        Ok(Response::new(pb::ListDeliveriesResponse::default()))
    }
    async fn explain(
        &self,
        _: Request<pb::ExplainRequest>,
    ) -> Result<Response<pb::ExplainResponse>, Status> {
        self.gate()?;
        Err(Status::not_found("site"))
    }
}

/// Starts a TLS Query server with `server_pki`'s collector cert that trusts
/// clients of `client_ca`; returns its address.
async fn start_server(server_pki: &Path, client_ca: &Path, deny: bool) -> SocketAddr {
    let collector = pki::issue(server_pki, Role::Collector, "local", &[]).unwrap();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(
            std::fs::read(&collector.cert).unwrap(),
            std::fs::read(&collector.key).unwrap(),
        ))
        .client_ca_root(Certificate::from_pem(
            std::fs::read(client_ca.join("ca.crt")).unwrap(),
        ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(QueryServer::new(FakeQuery { deny }))
        .serve_with_incoming(TcpListenerStream::new(listener));
    tokio::spawn(server);
    addr
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs gw502ctl with a clean environment (HOME in `home`, so no config file).
async fn ctl(home: &Path, args: &[&str]) -> Run {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gw502ctl"))
        .args(args)
        .env_clear()
        .env("HOME", home)
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn creds(dir: &Path, role: Role, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let issued = pki::issue(dir, role, name, &[]).unwrap();
    (dir.join("ca.crt"), issued.cert, issued.key)
}

fn conn_args(url: &str, (ca, cert, key): &(PathBuf, PathBuf, PathBuf)) -> Vec<String> {
    vec![
        "--collector".into(),
        url.into(),
        "--ca".into(),
        ca.display().to_string(),
        "--cert".into(),
        cert.display().to_string(),
        "--key".into(),
        key.display().to_string(),
    ]
}

async fn ctl_with(home: &Path, conn: &[String], cmd: &[&str]) -> Run {
    let mut args: Vec<&str> = conn.iter().map(String::as_str).collect();
    args.extend_from_slice(cmd);
    ctl(home, &args).await
}

fn one_line(run: &Run) -> &str {
    assert_eq!(run.stderr.lines().count(), 1, "stderr: {:?}", run.stderr);
    run.stderr.trim_end()
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_listening_is_unreachable() {
    let fleet = tempfile::tempdir().unwrap();
    pki::init(fleet.path()).unwrap();
    let creds = creds(fleet.path(), Role::Operator, "admin");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("https://127.0.0.1:{port}");
    let run = ctl_with(fleet.path(), &conn_args(&url, &creds), &["incidents"]).await;
    assert_eq!(
        one_line(&run),
        format!("gw502ctl: error: cannot reach collector at {url}: connection refused")
    );
    assert_eq!(run.code, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn collector_from_another_ca_is_untrusted() {
    let fleet = tempfile::tempdir().unwrap();
    let rogue = tempfile::tempdir().unwrap();
    pki::init(fleet.path()).unwrap();
    pki::init(rogue.path()).unwrap();
    let addr = start_server(rogue.path(), fleet.path(), false).await;
    let creds = creds(fleet.path(), Role::Operator, "admin");
    let url = format!("https://{addr}");
    let run = ctl_with(fleet.path(), &conn_args(&url, &creds), &["hosts"]).await;
    assert_eq!(
        one_line(&run),
        format!(
            "gw502ctl: error: collector certificate at {url} is not signed by CA {}",
            creds.0.display()
        )
    );
    assert_eq!(run.code, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn agent_certificate_is_denied() {
    let fleet = tempfile::tempdir().unwrap();
    pki::init(fleet.path()).unwrap();
    let addr = start_server(fleet.path(), fleet.path(), true).await;
    let creds = creds(fleet.path(), Role::Agent, "web-1");
    let run = ctl_with(
        fleet.path(),
        &conn_args(&format!("https://{addr}"), &creds),
        &["incidents"],
    )
    .await;
    assert_eq!(
        one_line(&run),
        "gw502ctl: error: this certificate (role agent) may not query the collector; use an operator certificate"
    );
    assert_eq!(run.code, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn operator_sees_incidents_and_not_found() {
    let fleet = tempfile::tempdir().unwrap();
    pki::init(fleet.path()).unwrap();
    let addr = start_server(fleet.path(), fleet.path(), false).await;
    let conn = conn_args(
        &format!("https://{addr}"),
        &creds(fleet.path(), Role::Operator, "admin"),
    );

    let run = ctl_with(fleet.path(), &conn, &["incidents", "show", "42"]).await;
    assert_eq!(one_line(&run), "gw502ctl: error: no incident 42");
    assert_eq!(run.code, 1);

    let run = ctl_with(fleet.path(), &conn, &["incidents", "show", "7"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("visitor ─▶ edge ─▶ proxy [502 emitted here] ─✗ (wrong_port) ─▶ upstream"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains('\x1b') && run.stdout.contains("evil\\u{1b}[2Jsummary"));

    let run = ctl_with(fleet.path(), &conn, &["--json", "incidents"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v[0]["id"], 7);
    assert_eq!(v[0]["cause"], "wrong_port");
    assert_eq!(v[0]["opened_at"], "2024-05-01T10:00:00Z");

    let run = ctl_with(fleet.path(), &conn, &["--json", "incidents", "watch"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let kinds: Vec<String> = run
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(kinds, ["opened", "resolved"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn data_dir_settings_and_missing_settings() {
    let data = tempfile::tempdir().unwrap();
    let pki_dir = data.path().join("pki");
    pki::init(&pki_dir).unwrap();
    pki::issue(&pki_dir, Role::Operator, "admin", &[]).unwrap();
    let addr = start_server(&pki_dir, &pki_dir, false).await;
    std::fs::write(data.path().join("endpoint"), format!("https://{addr}\n")).unwrap();
    let dir = data.path().to_str().unwrap();
    let run = ctl(data.path(), &["--data-dir", dir, "hosts"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "no hosts have reported yet\n");

    let run = ctl(data.path(), &["incidents"]).await;
    assert!(
        one_line(&run).starts_with("gw502ctl: error: no collector address: set --collector URL"),
        "{}",
        run.stderr
    );
    assert_eq!(run.code, 64);
}

#[tokio::test]
async fn usage_errors_exit_64_and_help_exits_0() {
    let home = tempfile::tempdir().unwrap();
    let bad = ctl(home.path(), &["incidents", "--no-such-flag"]).await;
    assert_eq!(bad.code, 64, "{}", bad.stderr);
    assert!(bad.stderr.contains("--no-such-flag"), "{}", bad.stderr);
    let missing = ctl(home.path(), &["incidents", "show"]).await;
    assert_eq!(missing.code, 64, "a missing argument: {}", missing.stderr);
    let help = ctl(home.path(), &["--help"]).await;
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Exit codes"), "{}", help.stdout);
    let version = ctl(home.path(), &["--version"]).await;
    assert_eq!(version.code, 0);
    assert!(
        version.stdout.starts_with("gw502ctl "),
        "{}",
        version.stdout
    );
}
