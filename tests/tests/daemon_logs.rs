//! Logs that fit their sink, for each daemon on its own (the all-in-one is covered in
//! `binaries.rs`): on a pipe `gw502-agent` and `gw502-collector` write plain text
//! without ANSI colour, and `--log-format json` (or `GW502_LOG_FORMAT=json`) makes
//! every line one JSON object. The daemons run for real with plaintext configs on
//! loopback; the agent's collector address is a closed port, which it logs about.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

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

/// Kills the child when the test ends, pass or fail.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How a daemon is told its log format.
#[derive(Clone, Copy)]
enum Format {
    Flag(&'static str),
    Env(&'static str),
}

/// The first `n` lines a daemon writes to its stderr pipe.
fn first_lines(daemon: &str, format: Format, n: usize) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("daemon.toml");
    let mut command = Command::new(bin(daemon));
    match format {
        Format::Flag(f) => {
            command
                .args(["--log-format", f])
                .env_remove("GW502_LOG_FORMAT");
        }
        Format::Env(f) => {
            command.env("GW502_LOG_FORMAT", f);
        }
    }
    if daemon == "gw502-collector" {
        let text = format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite://{}\"\n[tls]\nplaintext = true\n",
            dir.path().join("collector.db").display()
        );
        std::fs::write(&config, text).unwrap();
        command.arg("run").arg("--config").arg(&config);
    } else {
        // Port 9 (discard) on loopback: nothing listens, so the agent logs a failed
        // delivery after its start line.
        let text = format!(
            "host_id = \"logs\"\ncollector = \"http://127.0.0.1:9\"\nstate_dir = \"{}\"\n\
             [tls]\nplaintext = true\n",
            dir.path().join("state").display()
        );
        std::fs::write(&config, text).unwrap();
        command.arg("--config").arg(&config).arg("run");
    }
    let child = command
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let stderr = child.0.stderr.take().expect("piped stderr");
    let lines: Vec<String> = BufReader::new(stderr)
        .lines()
        .take(n)
        .map(|l| l.expect("utf-8 log line"))
        .collect();
    assert_eq!(lines.len(), n, "{daemon} stopped logging early: {lines:?}");
    lines
}

/// Each daemon, its first log line, and how many lines it surely writes at once (the
/// agent's second is the failed delivery; the collector may stay quiet after its first).
const DAEMONS: [(&str, &str, usize); 2] = [
    ("gw502-collector", "collector serving", 1),
    ("gw502-agent", "agent starting", 2),
];

#[test]
fn both_daemons_write_plain_text_to_a_pipe() {
    for (daemon, first, n) in DAEMONS {
        let lines = first_lines(daemon, Format::Flag("text"), n);
        assert!(lines[0].contains(first), "{daemon}: {lines:?}");
        assert!(lines[0].contains(" INFO "), "{daemon}: {lines:?}");
        for line in &lines {
            assert!(
                !line.contains('\u{1b}'),
                "{daemon}: colour on a pipe: {line:?}"
            );
            assert!(
                !line.starts_with('{'),
                "{daemon}: JSON by default: {line:?}"
            );
        }
    }
}

#[test]
fn both_daemons_write_one_json_object_per_line_on_request() {
    for (daemon, first, n) in DAEMONS {
        for format in [Format::Flag("json"), Format::Env("json")] {
            let lines = first_lines(daemon, format, n);
            for line in &lines {
                let v: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{daemon}: not JSON ({e}): {line:?}"));
                assert!(v["timestamp"].is_string(), "{daemon}: {line}");
                assert!(v["level"].is_string(), "{daemon}: {line}");
                assert!(v["fields"]["message"].is_string(), "{daemon}: {line}");
            }
            let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
            assert_eq!(v["fields"]["message"], first, "{daemon}: {lines:?}");
            assert_eq!(v["level"], "INFO");
        }
    }
}
