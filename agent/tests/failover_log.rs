//! The fail-over log is rate-limited: collectors that flap give one warning
//! a minute, not one per switch. Alone in its own test binary, because a
//! thread-local tracing subscriber misses events when other tests register
//! the same call sites from other threads at the same time.

mod support;

use std::sync::{Arc, Mutex};

use gw502_agent::config::Tls;
use gw502_agent::failover::{Collectors, SystemResolver};
use tonic::Code;

use support::{Server, report};

/// Log lines written while the guard lives, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines_with(&self, text: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(text))
            .count()
    }
}

#[tokio::test]
async fn flapping_collectors_log_one_switch_a_minute() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let a = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        Some(Code::ResourceExhausted),
    )
    .await;
    let b = Server::start("127.0.0.1:0".parse().unwrap(), Some(Code::Unavailable)).await;
    let mut collectors = Collectors::new(
        &[a.url(), b.url()],
        &Tls::Plaintext,
        Arc::new(SystemResolver),
    )
    .unwrap();
    for seq in 1..=3 {
        assert!(collectors.send(report(seq)).await.is_err());
    }
    assert_eq!((a.calls(), b.calls()), (3, 3), "six switches");
    assert_eq!(logs.lines_with("switching collector"), 1);
    assert_eq!(logs.lines_with("reporting to collector"), 0);
}
