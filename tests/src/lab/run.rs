//! Running a command with a deadline and bounded output, and polling with a deadline.
//!
//! Everything the harness runs (`ip`, `nsenter ... systemctl`, `journalctl`) goes through
//! [`output_within`], so a wedged container fails a test with a clear error instead of
//! hanging it. [`poll_until`] is the one way the harness waits for readiness.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Most bytes kept from each of stdout and stderr; the rest is read and dropped.
const MAX_CAPTURE: u64 = 8 * 1024 * 1024;

/// How long to wait for the pipes to close after the command exited.
const PIPE_GRACE: Duration = Duration::from_secs(2);

/// How often [`poll_until`] looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// Call `check` until it returns `Some` or `deadline` passes; `None` on timeout.
pub fn poll_until<T>(deadline: Instant, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(POLL_INTERVAL);
    }
}

/// Wait up to `timeout` for `child` to exit; `None` if it is still running.
pub fn wait_within(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    poll_until(Instant::now() + timeout, || child.try_wait().ok().flatten())
}

/// Run `command` to completion, capturing stdout and stderr; kill it after `timeout`.
pub fn output_within(command: &mut Command, timeout: Duration) -> anyhow::Result<Output> {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("spawn {shown}"))?;
    let stdout = child.stdout.take().map(capture);
    let stderr = child.stderr.take().map(capture);
    let status = match wait_within(&mut child, timeout) {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{shown} did not finish within {timeout:?}");
        }
    };
    // A background grandchild may keep a pipe open: take what was read by then.
    let join = |reader: Option<mpsc::Receiver<Vec<u8>>>| {
        reader
            .and_then(|r| r.recv_timeout(PIPE_GRACE).ok())
            .unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    })
}

/// Read a pipe to its end on a thread, keeping at most [`MAX_CAPTURE`] bytes.
fn capture(pipe: impl Read + Send + 'static) -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut kept = Vec::new();
        let mut limited = pipe.take(MAX_CAPTURE);
        let _ = limited.read_to_end(&mut kept);
        let _ = sender.send(kept);
        let _ = std::io::copy(&mut limited.into_inner(), &mut std::io::sink());
    });
    receiver
}

/// Run `command` and fail, with its stderr, unless it exits 0.
pub fn checked(command: &mut Command, timeout: Duration) -> anyhow::Result<Output> {
    let shown = format!("{command:?}");
    let output = output_within(command, timeout)?;
    if !output.status.success() {
        bail!(
            "{shown} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        );
    }
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let out = output_within(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn kills_after_timeout() {
        let started = Instant::now();
        let err =
            output_within(Command::new("sleep").arg("30"), Duration::from_millis(200)).unwrap_err();
        assert!(err.to_string().contains("did not finish"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn checked_reports_stderr() {
        let err = checked(
            Command::new("sh").args(["-c", "echo broken >&2; exit 1"]),
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(err.to_string().contains("broken"), "{err}");
    }

    #[test]
    fn poll_until_times_out() {
        let deadline = Instant::now() + Duration::from_millis(50);
        assert_eq!(poll_until::<()>(deadline, || None), None);
        let mut n = 0;
        let got = poll_until(Instant::now() + Duration::from_secs(5), || {
            n += 1;
            (n == 3).then_some(n)
        });
        assert_eq!(got, Some(3));
    }
}
