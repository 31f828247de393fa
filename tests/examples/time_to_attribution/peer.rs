//! The peer of the time-to-attribution run: Prometheus blackbox_exporter, Prometheus and
//! Alertmanager as child processes on loopback, each with its own temp config, temp data
//! dir and free port, set up the way their docs show and left at their default intervals.
//!
//! Prometheus probes one site through blackbox_exporter's stock `http_2xx` module (the
//! standard `/probe` relabelling), evaluates one rule `probe_success == 0` with no `for:`,
//! and hands firing alerts to Alertmanager, whose only receiver is a webhook on a
//! [`Webhook`] listener in this process that timestamps each delivery. [`Stack`] kills
//! all three when dropped.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use gw502_tests::lab::run;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const PROMETHEUS: &str = "/usr/bin/prometheus";
const BLACKBOX: &str = "/usr/bin/prometheus-blackbox-exporter";
const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

/// Prometheus' default `scrape_interval` and `evaluation_interval` (the config leaves both
/// unset).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// How long each process may take to answer its readiness endpoint.
const READY_DEADLINE: Duration = Duration::from_secs(30);
/// Bound on one HTTP exchange with a peer process or the webhook's client.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest HTTP response or webhook request read.
const MAX_HTTP: u64 = 4 * 1024 * 1024;
/// How long a killed process may take to exit after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// One firing alert delivered by Alertmanager to the webhook.
#[derive(Debug, Clone)]
pub struct Alert {
    /// When the delivery arrived.
    pub at: Instant,
    /// What the alert says: name, labels and summary, from the delivered JSON.
    pub says: String,
}

/// blackbox_exporter, Prometheus and Alertmanager running for one site.
pub struct Stack {
    children: Vec<(&'static str, Child)>,
    prometheus: SocketAddr,
    webhook: Webhook,
    dir: tempfile::TempDir,
}

impl Stack {
    /// Start the three processes for site `site` at `url` and wait until each is ready.
    pub fn start(site: &str, url: &str) -> anyhow::Result<Stack> {
        let dir = tempfile::tempdir()?;
        let webhook = Webhook::start()?;
        let (blackbox, prometheus, alertmanager) = (free_port()?, free_port()?, free_port()?);
        let mut stack = Stack {
            children: Vec::new(),
            prometheus,
            webhook,
            dir,
        };
        let d = stack.dir.path().to_owned();
        std::fs::write(d.join("blackbox.yml"), BLACKBOX_CONFIG)?;
        std::fs::write(
            d.join("prometheus.yml"),
            prometheus_config(site, url, blackbox, alertmanager),
        )?;
        std::fs::write(d.join("rules.yml"), RULES)?;
        std::fs::write(
            d.join("alertmanager.yml"),
            alertmanager_config(stack.webhook.addr),
        )?;
        let flag = |name: &str, value: &Path| format!("--{name}={}", value.display());
        stack.spawn(
            "blackbox_exporter",
            Command::new(BLACKBOX).args([
                flag("config.file", &d.join("blackbox.yml")),
                format!("--web.listen-address={blackbox}"),
            ]),
        )?;
        stack.spawn(
            "alertmanager",
            Command::new(ALERTMANAGER).args([
                flag("config.file", &d.join("alertmanager.yml")),
                flag("storage.path", &d.join("alertmanager-data")),
                format!("--web.listen-address={alertmanager}"),
                // No HA gossip: it would listen on 0.0.0.0:9094.
                "--cluster.listen-address=".to_owned(),
            ]),
        )?;
        stack.spawn(
            "prometheus",
            Command::new(PROMETHEUS).args([
                flag("config.file", &d.join("prometheus.yml")),
                flag("storage.tsdb.path", &d.join("prometheus-data")),
                format!("--web.listen-address={prometheus}"),
            ]),
        )?;
        for (name, addr, path) in [
            ("blackbox_exporter", blackbox, "/-/healthy"),
            ("alertmanager", alertmanager, "/-/ready"),
            ("prometheus", prometheus, "/-/ready"),
        ] {
            let ready = run::poll_until(Instant::now() + READY_DEADLINE, || {
                matches!(http_get(addr, path), Ok((200, _))).then_some(())
            });
            if ready.is_none() {
                bail!(
                    "{name} on {addr} not ready within {READY_DEADLINE:?}; log:\n{}",
                    stack.log_tail(name)
                );
            }
        }
        Ok(stack)
    }

    fn spawn(&mut self, name: &'static str, command: &mut Command) -> anyhow::Result<()> {
        let log = File::create(self.dir.path().join(format!("{name}.log")))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {name}"))?;
        self.children.push((name, child));
        Ok(())
    }

    /// The last lines of `name`'s log, for error messages.
    pub fn log_tail(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.dir.path().join(format!("{name}.log")))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Wait until Prometheus holds a healthy probe of the site (`probe_success` 1); the
    /// Unix time of that scrape.
    pub fn wait_healthy_scrape(&self, within: Duration) -> anyhow::Result<f64> {
        let found = run::poll_until(Instant::now() + within, || {
            let healthy = self.query("probe_success").ok()? == "1";
            healthy
                .then(|| self.query("timestamp(probe_success)").ok()?.parse().ok())
                .flatten()
        });
        found.with_context(|| {
            format!(
                "prometheus saw no healthy probe within {within:?}; log:\n{}",
                self.log_tail("prometheus")
            )
        })
    }

    /// The Unix time of the scrape in which Prometheus saw the probe fail, once it has.
    pub fn failed_scrape(&self) -> Option<f64> {
        let failed = self.query("probe_success").ok()? == "0";
        failed
            .then(|| self.query("timestamp(probe_success)").ok()?.parse().ok())
            .flatten()
    }

    /// When the firing alert became active, as Prometheus' alerts API says (Unix time;
    /// with no `for:` that is the evaluation that fired it).
    pub fn active_at(&self) -> anyhow::Result<f64> {
        let (status, body) = http_get(self.prometheus, "/api/v1/alerts")?;
        let json: Value = serde_json::from_slice(&body)
            .with_context(|| format!("prometheus answered {status} without JSON"))?;
        let active = json["data"]["alerts"]
            .as_array()
            .and_then(|alerts| alerts.iter().find(|a| a["state"] == "firing"))
            .and_then(|a| a["activeAt"].as_str())
            .with_context(|| format!("no firing alert in {}", json["data"]))?;
        let at = OffsetDateTime::parse(active, &Rfc3339)
            .with_context(|| format!("activeAt {active:?}"))?;
        Ok(at.unix_timestamp_nanos() as f64 / 1e9)
    }

    /// The value of the one sample `expr` evaluates to now (an error unless it is one).
    fn query(&self, expr: &str) -> anyhow::Result<String> {
        let (status, body) = http_get(
            self.prometheus,
            &format!("/api/v1/query?query={}", percent_encode(expr)),
        )?;
        let json: Value = serde_json::from_slice(&body)
            .with_context(|| format!("prometheus answered {status} without JSON"))?;
        match json["data"]["result"].as_array().map(Vec::as_slice) {
            Some([one]) => one["value"][1]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("no value in {one}")),
            _ => bail!("query {expr}: {}", json["data"]),
        }
    }

    /// The first firing alert delivered so far, if any (deliveries of resolved alerts and
    /// unreadable bodies are skipped).
    pub fn firing(&self) -> Option<Alert> {
        self.webhook
            .received
            .try_iter()
            .find_map(|(at, body)| describe_firing(&body).map(|says| Alert { at, says }))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        for (name, child) in &mut self.children {
            let pid = i32::try_from(child.id()).map(Pid::from_raw);
            if let Ok(pid) = pid {
                let _ = kill(pid, Signal::SIGTERM);
            }
            if run::wait_within(child, TERM_GRACE).is_none() {
                eprintln!("{name} ignored SIGTERM for {TERM_GRACE:?}; killing it");
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// `name firing: summary {labels}` of the first firing alert in an Alertmanager webhook
/// payload.
fn describe_firing(body: &Value) -> Option<String> {
    let alert = body["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["status"] == "firing")?;
    let labels = alert["labels"].as_object()?;
    let shown: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "alertname")
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
        .collect();
    Some(format!(
        "{} firing: \"{}\" {{{}}}",
        labels
            .get("alertname")
            .and_then(Value::as_str)
            .unwrap_or("?"),
        alert["annotations"]["summary"].as_str().unwrap_or(""),
        shown.join(", ")
    ))
}

/// blackbox_exporter's stock `http_2xx` module, as shipped in its example config.
const BLACKBOX_CONFIG: &str = "modules:\n  http_2xx:\n    prober: http\n";

/// The one rule: the site's probe failed, alert at once (no `for:`).
const RULES: &str = "groups:\n  - name: blackbox\n    rules:\n      - alert: SiteDown\n        \
                     expr: probe_success == 0\n        annotations:\n          \
                     summary: \"probe_success == 0 for {{ $labels.site }}\"\n";

/// Prometheus with default global intervals, one blackbox job for `url`, alerts to
/// Alertmanager at `alertmanager`.
fn prometheus_config(
    site: &str,
    url: &str,
    blackbox: SocketAddr,
    alertmanager: SocketAddr,
) -> String {
    format!(
        "# global: scrape_interval and evaluation_interval left at their defaults (1m)\n\
         rule_files: [rules.yml]\n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager}']\n\
         scrape_configs:\n  - job_name: blackbox\n    metrics_path: /probe\n    \
         params:\n      module: [http_2xx]\n    static_configs:\n      \
         - targets: ['{url}']\n        labels:\n          site: '{site}'\n    \
         relabel_configs:\n      - source_labels: [__address__]\n        \
         target_label: __param_target\n      - source_labels: [__param_target]\n        \
         target_label: instance\n      - target_label: __address__\n        \
         replacement: '{blackbox}'\n"
    )
}

/// Alertmanager with default route timings (group_wait 30s, group_interval 5m,
/// repeat_interval 4h) and one webhook receiver.
fn alertmanager_config(webhook: SocketAddr) -> String {
    format!(
        "route:\n  receiver: hook\nreceivers:\n  - name: hook\n    webhook_configs:\n      \
         - url: 'http://{webhook}/'\n"
    )
}

/// A free port on 127.0.0.1 (bound, then released for the child to take).
fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?)
}

/// `expr` encoded for a URL query (unreserved characters kept).
fn percent_encode(expr: &str) -> String {
    expr.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// An HTTP/1.0 GET of `path` on loopback: status and body.
fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.take(MAX_HTTP).read_to_end(&mut raw)?;
    let split = find(&raw, b"\r\n\r\n").context("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status in {head:?}"))?;
    Ok((status, raw[split + 4..].to_vec()))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A minimal HTTP listener for Alertmanager's webhook: every request body is parsed as
/// JSON and handed over with its arrival time; each request gets `200 OK`.
struct Webhook {
    addr: SocketAddr,
    received: mpsc::Receiver<(Instant, Value)>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Webhook {
    fn start() -> anyhow::Result<Webhook> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (sender, received) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let at = Instant::now();
                        match serve(stream) {
                            Ok(body) => {
                                let _ = sender.send((at, body));
                            }
                            Err(error) => eprintln!("webhook: bad request: {error:#}"),
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(error) => eprintln!("webhook: accept failed: {error}"),
                }
            }
        });
        Ok(Webhook {
            addr,
            received,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Read one request (headers, then `Content-Length` bytes of body), answer 200, return
/// the body as JSON.
fn serve(mut stream: TcpStream) -> anyhow::Result<Value> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_TIMEOUT))?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    let (split, length) = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed in the headers");
        }
        raw.extend_from_slice(&chunk[..n]);
        if let Some(split) = find(&raw, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .context("no content-length")?;
            break (split + 4, length);
        }
        if raw.len() as u64 > MAX_HTTP {
            bail!("headers too long");
        }
    };
    if length as u64 > MAX_HTTP {
        bail!("body of {length} bytes");
    }
    while raw.len() < split + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            bail!("connection closed in the body");
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    Ok(serde_json::from_slice(&raw[split..split + length])?)
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_a_firing_delivery() {
        let body = serde_json::json!({"status": "firing", "alerts": [{"status": "firing",
            "labels": {"alertname": "SiteDown", "site": "site1"},
            "annotations": {"summary": "probe_success == 0 for site1"}}]});
        assert_eq!(
            describe_firing(&body).as_deref(),
            Some("SiteDown firing: \"probe_success == 0 for site1\" {site=site1}")
        );
        let resolved = serde_json::json!({"alerts": [{"status": "resolved", "labels": {}}]});
        assert_eq!(describe_firing(&resolved), None);
    }

    /// The whole stack against a site on loopback that turns from 200 to 500: the
    /// failed scrape, the firing evaluation and the webhook each come, in that order.
    /// Needs the Debian packages and up to three minutes, hence ignored by default.
    #[test]
    #[ignore = "needs the Prometheus packages and up to three minutes: cargo test -p gw502-tests --example time_to_attribution -- --ignored"]
    fn alerts_on_a_failing_site() {
        let site = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let url = format!("http://{}/", site.local_addr().unwrap());
        let failing = Arc::new(AtomicBool::new(false));
        let fail = failing.clone();
        std::thread::spawn(move || {
            for stream in site.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.read(&mut [0u8; 4096]);
                let status = if fail.load(Ordering::Relaxed) {
                    "500 Oops"
                } else {
                    "200 OK"
                };
                let _ = write!(stream, "HTTP/1.0 {status}\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let stack = Stack::start("selftest", &url).unwrap();
        stack.wait_healthy_scrape(Duration::from_secs(150)).unwrap();
        failing.store(true, Ordering::Relaxed);
        let started = unix_now();
        let mut scraped = None;
        let alert = run::poll_until(Instant::now() + Duration::from_secs(200), || {
            scraped = scraped.or_else(|| stack.failed_scrape());
            stack.firing()
        })
        .expect("no firing webhook");
        let at = unix_now();
        let fired = stack.active_at().unwrap();
        eprintln!(
            "scraped {:?} fired {:.1} webhook {:.1} ({})",
            scraped.map(|t| t - started),
            fired - started,
            at - started,
            alert.says
        );
        let scraped = scraped.unwrap();
        assert!(started <= scraped && scraped <= fired && fired <= at);
    }

    #[test]
    fn encodes_a_query() {
        assert_eq!(
            percent_encode("timestamp(probe_success)"),
            "timestamp%28probe_success%29"
        );
    }
}
