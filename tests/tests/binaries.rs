//! The shipped binaries as a user runs them: the README quick start
//! (all-in-one, then `gw502ctl --data-dir`), config checking with exit code
//! 64, the documented example configs, the opt-in metrics endpoint, the
//! collector taking its hard open-files limit, and logs that fit their sink.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin(name: &str) -> PathBuf {
    // Integration tests of this crate do not own the binaries; they sit next
    // to the test executable's deps directory.
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

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Kills the child when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.env_remove("GW502_COLLECTOR")
        .env_remove("GW502_CONFIG")
        .env_remove("GW502_DATA_DIR")
        .output()
        .expect("binary runs")
}

fn wait_for(what: &str, deadline: Duration, mut ready: impl FnMut() -> bool) {
    let until = Instant::now() + deadline;
    while !ready() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        std::thread::yield_now();
        std::thread::park_timeout(Duration::from_millis(50));
    }
}

#[test]
fn quick_start_all_in_one_then_ctl_sees_this_host() {
    let data = tempfile::tempdir().unwrap();
    let child = Command::new(bin("gw502-all-in-one"))
        .args(["--listen", "127.0.0.1:0", "--interval", "1s", "--data-dir"])
        .arg(data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Killed(child);
    let endpoint = data.path().join("endpoint");
    wait_for("the endpoint file", Duration::from_secs(30), || {
        endpoint.exists()
    });

    let host = gw502_pki::local_hostname();
    let mut hosts = String::new();
    wait_for(
        "the local agent's first report",
        Duration::from_secs(60),
        || {
            let out = run(Command::new(bin("gw502ctl"))
                .arg("--data-dir")
                .arg(data.path())
                .args(["--json", "hosts"]));
            hosts = String::from_utf8_lossy(&out.stdout).into_owned();
            out.status.success() && hosts.contains(&format!("\"{host}\""))
        },
    );
    let parsed: serde_json::Value = serde_json::from_str(&hosts).unwrap();
    let first = &parsed.as_array().expect("a JSON array of hosts")[0];
    assert_eq!(first["host"], host.as_str(), "{hosts}");

    let out = run(Command::new(bin("gw502ctl"))
        .arg("--data-dir")
        .arg(data.path())
        .arg("incidents"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The PKI was created with private keys readable by the owner only.
    let key = data.path().join("pki/ca.key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn snapshot_prints_exactly_what_the_agent_would_report() {
    let out = run(Command::new(bin("gw502-agent")).args([
        "--config",
        "/nonexistent/agent.toml",
        "snapshot",
        "--json",
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for section in [
        "systemd",
        "sockets",
        "journal",
        "proxy_config",
        "probes",
        "dns",
        "proxy_log",
        "access_log",
    ] {
        assert!(report[section].is_object(), "{section} missing");
    }
    // Each source either answered or said why not.
    let systemd = &report["systemd"];
    assert!(
        systemd["units"].is_array() || !systemd["unavailable"].as_str().unwrap_or("").is_empty()
    );
    assert_eq!(
        report["sockets"]["method"], "netlink",
        "{}",
        report["sockets"]
    );
    // tests/run.sh installs nginx: its config is discovered and tested.
    let proxies = report["proxy_config"]["proxies"].as_array().unwrap();
    let nginx = proxies
        .iter()
        .find(|p| p["kind"] == "nginx")
        .expect("nginx discovered");
    assert_eq!(nginx["unit"], "nginx.service");

    let out = run(Command::new(bin("gw502-agent")).args([
        "--config",
        "/nonexistent/agent.toml",
        "snapshot",
    ]));
    let summary = String::from_utf8_lossy(&out.stdout);
    for heading in [
        "proxies (nginx -t / config)",
        "listeners (ss -tlnp",
        "units (systemctl status)",
    ] {
        assert!(
            summary.contains(heading),
            "{heading} missing from:\n{summary}"
        );
    }
}

#[test]
fn bad_configs_exit_64_listing_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collector.toml");
    std::fs::write(
        &path,
        "listen = \"nowhere\"\nbogus = 1\n[evaluation]\nresolve_after = 0\n",
    )
    .unwrap();
    let out = run(Command::new(bin("gw502-collector"))
        .args(["check-config", "--config"])
        .arg(&path));
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "bogus: unknown key",
        "listen:",
        "tls.ca:",
        "tls.cert:",
        "tls.key:",
        "evaluation.resolve_after:",
    ] {
        assert!(stderr.contains(key), "{key} missing from:\n{stderr}");
    }
    assert!(
        stderr
            .lines()
            .all(|l| l.starts_with(&*path.to_string_lossy())),
        "one line per problem, each with the path:\n{stderr}"
    );

    let path = dir.path().join("agent.toml");
    std::fs::write(&path, "interval = \"never\"\n").unwrap();
    let out = run(Command::new(bin("gw502-agent"))
        .arg("--config")
        .arg(&path)
        .arg("check-config"));
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid duration \"never\""));
}

#[test]
fn a_routing_matcher_outside_the_vocabulary_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("collector.toml");
    let example = std::fs::read_to_string(repo().join("deploy/collector.toml")).unwrap();
    let typo = "\n[[routing.rules]]\nmatch = { cause = \"servce_down\" }\nreceiver = \"x\"\n";
    std::fs::write(&path, format!("{example}{typo}")).unwrap();
    let out = run(Command::new(bin("gw502-collector"))
        .args(["check-config", "--config"])
        .arg(&path));
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("routing.rules[0].match.cause: \"servce_down\" is no cause"),
        "{stderr}"
    );
}

#[test]
fn the_documented_example_configs_are_valid() {
    for (binary, file, args) in [
        (
            "gw502-collector",
            "deploy/collector.toml",
            ["check-config", "--config"],
        ),
        (
            "gw502-agent",
            "deploy/agent.toml",
            ["check-config", "--config"],
        ),
    ] {
        let path = repo().join(file);
        let mut cmd = Command::new(bin(binary));
        if binary == "gw502-agent" {
            cmd.arg("--config").arg(&path).arg(args[0]);
        } else {
            cmd.args(args).arg(&path);
        }
        let out = run(&mut cmd);
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn collector_serves_metrics_and_takes_the_hard_open_files_limit() {
    let fleet = gw502_tests::fleet::Fleet::new().unwrap();
    let (cert, key) = fleet
        .issue(gw502_pki::Role::Collector, "collector")
        .unwrap();
    let metrics_port = free_port();
    let grpc_port = free_port();
    let config = fleet.path().join("collector.toml");
    let mut file = std::fs::File::create(&config).unwrap();
    write!(
        file,
        "listen = \"127.0.0.1:{grpc_port}\"\ndatabase = \"sqlite://{}\"\nmetrics_listen = \"127.0.0.1:{metrics_port}\"\n[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n",
        fleet.path().join("m.db").display(),
        fleet.pki().join("ca.crt").display(),
        cert.display(),
        key.display()
    )
    .unwrap();
    // Started with a soft limit of 256 open files, as systemd would with 1,024.
    let child = Command::new("prlimit")
        .arg("--nofile=256:")
        .arg(bin("gw502-collector"))
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _guard = Killed(child);
    let mut body = String::new();
    wait_for("the metrics endpoint", Duration::from_secs(30), || {
        body = scrape(metrics_port).unwrap_or_default();
        body.contains("gw502_db_seconds")
    });
    assert!(body.contains("# TYPE"), "{body}");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        open_files[0], open_files[1],
        "soft limit not raised: {limits}"
    );
    assert_ne!(open_files[0], "256");
}

fn scrape(port: u16) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first log line a daemon writes to a pipe, in `format`.
fn first_log_line(format: &str) -> String {
    let data = tempfile::tempdir().unwrap();
    let child = Command::new(bin("gw502-all-in-one"))
        .args([
            "--log-format",
            format,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data.path())
        .env_remove("GW502_LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let stderr = child.0.stderr.take().expect("piped stderr");
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    line
}

#[test]
fn logs_fit_their_sink_plain_text_on_a_pipe_and_json_on_request() {
    let text = first_log_line("text");
    assert!(text.contains("starting"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no ANSI colour on a pipe: {text:?}"
    );

    let json = first_log_line("json");
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("one JSON object per line");
    assert_eq!(parsed["level"], "INFO", "{json}");
    assert!(parsed["fields"]["message"].is_string(), "{json}");

    let bad = run(Command::new(bin("gw502-agent")).args(["--log-format", "xml", "check-config"]));
    assert_eq!(bad.status.code(), Some(2), "clap refuses an unknown format");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("xml"));
}
