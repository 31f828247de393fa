//! Runs a proxy's config-test command (`nginx -T`, `haproxy -c`) with
//! arguments (never a shell string), a timeout and bounded output; the
//! proxy model reads the result.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// The most bytes kept from each of stdout and stderr.
const MAX_OUTPUT: u64 = 16 * 1024 * 1024;

/// Why a command could not be run to completion.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The binary is missing or not executable.
    #[error("spawn {bin}: {source}")]
    Spawn {
        /// The binary.
        bin: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// It ran longer than allowed and was killed.
    #[error("{bin} timed out after {timeout:?}")]
    Timeout {
        /// The binary.
        bin: String,
        /// The bound.
        timeout: Duration,
    },
    /// Waiting for it failed.
    #[error("wait {bin}: {source}")]
    Wait {
        /// The binary.
        bin: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// What a finished command printed and whether it exited 0.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    /// Exit status 0.
    pub success: bool,
    /// Standard output, bounded.
    pub stdout: Vec<u8>,
    /// Standard error, bounded.
    pub stderr: Vec<u8>,
}

/// Runs `bin args...` and waits at most `timeout`; the child is killed when
/// the timeout fires.
pub async fn run_bounded(
    bin: &Path,
    args: &[OsString],
    timeout: Duration,
) -> Result<CommandOutput, CommandError> {
    let name = bin.display().to_string();
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| CommandError::Spawn {
            bin: name.clone(),
            source,
        })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let work = async {
        let (out, err) = tokio::join!(read_all(stdout), read_all(stderr));
        let status = child.wait().await;
        (out, err, status)
    };
    let (stdout, stderr, status) =
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| CommandError::Timeout {
                bin: name.clone(),
                timeout,
            })?;
    let status = status.map_err(|source| CommandError::Wait { bin: name, source })?;
    Ok(CommandOutput {
        success: status.success(),
        stdout,
        stderr,
    })
}

async fn read_all(pipe: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(pipe) = pipe {
        let _ = pipe.take(MAX_OUTPUT).read_to_end(&mut buf).await;
    }
    buf
}
