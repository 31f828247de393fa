//! Fail-over between collectors, against small gRPC ingest servers on
//! loopback (port 0, plaintext) that answer what each test needs: the agent
//! sticks to the collector that answers, moves on after `UNAVAILABLE`,
//! `RESOURCE_EXHAUSTED` or a closed port, expands a name into every address
//! it resolves to, and never retries a refusal another collector would
//! repeat. Real collectors with real mTLS are in `tests/tests/failover.rs`.

mod support;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use gw502_agent::client::ClientError;
use gw502_agent::config::Tls;
use gw502_agent::failover::{Collectors, Resolve, SystemResolver};
use tokio::net::TcpListener;
use tonic::Code;

use support::{Server, report};

/// A resolver with fixed answers that records what it was asked.
#[derive(Default)]
struct Hosts {
    answers: Vec<(String, Vec<IpAddr>)>,
    asked: Mutex<Vec<String>>,
}

impl Resolve for Hosts {
    fn resolve(&self, host: String, _: u16) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        self.asked.lock().unwrap().push(host.clone());
        let answer = self
            .answers
            .iter()
            .find(|(name, _)| *name == host)
            .map(|(_, ips)| ips.clone())
            .ok_or_else(|| std::io::Error::other("no such host"));
        Box::pin(async move { answer })
    }
}

fn collectors(addresses: &[String], resolver: Arc<dyn Resolve>) -> Collectors {
    Collectors::new(addresses, &Tls::Plaintext, resolver).unwrap()
}

/// A loopback port nothing listens on.
async fn closed_port(ip: &str) -> SocketAddr {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn resource_exhausted_moves_the_agent_on_and_it_stays() {
    let a = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        Some(Code::ResourceExhausted),
    )
    .await;
    let b = Server::start("127.0.0.1:0".parse().unwrap(), None).await;
    let mut collectors = collectors(&[a.url(), b.url()], Arc::new(SystemResolver));
    assert!(collectors.current().is_none(), "nothing contacted yet");
    collectors.send(report(1)).await.unwrap();
    assert_eq!((a.calls(), b.calls()), (1, 1));
    assert_eq!(collectors.current().unwrap().dialled, b.url());
    for seq in 2..=4 {
        collectors.send(report(seq)).await.unwrap();
    }
    assert_eq!((a.calls(), b.calls()), (1, 4), "sticks to b");
}

#[tokio::test]
async fn an_unreachable_collector_is_skipped_and_a_failed_round_is_an_error() {
    let down = closed_port("127.0.0.1").await;
    let a = Server::start("127.0.0.1:0".parse().unwrap(), Some(Code::Unavailable)).await;
    let mut collectors = collectors(
        &[format!("http://{down}"), a.url()],
        Arc::new(SystemResolver),
    );
    let err = collectors.send(report(1)).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Status(s) if s.code() == Code::Unavailable),
        "{err}"
    );
    assert_eq!(a.calls(), 1, "each collector tried once per round");
    // The next round starts after the last collector tried: the first again.
    assert_eq!(
        collectors.current().unwrap().dialled,
        format!("http://{down}")
    );
}

#[tokio::test]
async fn a_refusal_another_collector_would_repeat_is_not_retried() {
    let a = Server::start("127.0.0.1:0".parse().unwrap(), Some(Code::InvalidArgument)).await;
    let b = Server::start("127.0.0.1:0".parse().unwrap(), None).await;
    let mut collectors = collectors(&[a.url(), b.url()], Arc::new(SystemResolver));
    let err = collectors.send(report(1)).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Status(s) if s.code() == Code::InvalidArgument),
        "{err}"
    );
    assert_eq!((a.calls(), b.calls()), (1, 0));
    assert_eq!(collectors.current().unwrap().dialled, a.url());
}

#[tokio::test]
async fn one_name_stands_for_every_address_it_resolves_to() {
    // Two collectors on one port of two loopback addresses, behind one name
    // (plaintext is only allowed to a loopback name).
    let b = Server::start("127.0.0.2:0".parse().unwrap(), None).await;
    let port = b.addr.port();
    let a = match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(probe) => {
            drop(probe);
            Server::start(
                SocketAddr::from(([127, 0, 0, 1], port)),
                Some(Code::Unavailable),
            )
            .await
        }
        Err(error) => {
            eprintln!("skipped: port {port} is taken on 127.0.0.1 ({error})");
            return;
        }
    };
    let hosts = Arc::new(Hosts {
        answers: vec![(
            "localhost".into(),
            vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()],
        )],
        ..Hosts::default()
    });
    let name = format!("http://localhost:{port}");
    let mut collectors = collectors(std::slice::from_ref(&name), hosts.clone());
    collectors.send(report(1)).await.unwrap();
    assert_eq!((a.calls(), b.calls()), (1, 1));
    let current = collectors.current().unwrap();
    assert_eq!(current.configured, name);
    assert_eq!(current.dialled, format!("http://127.0.0.2:{port}"));
    assert_eq!(
        current.to_string(),
        format!("{name} (http://127.0.0.2:{port})")
    );
    assert_eq!(*hosts.asked.lock().unwrap(), ["localhost"]);
}

#[tokio::test]
async fn names_are_resolved_again_after_a_failed_round() {
    let a = Server::start("127.0.0.1:0".parse().unwrap(), Some(Code::Unavailable)).await;
    let hosts = Arc::new(Hosts {
        answers: vec![("localhost".into(), vec!["127.0.0.1".parse().unwrap()])],
        ..Hosts::default()
    });
    let name = format!("http://localhost:{}", a.addr.port());
    let mut collectors = collectors(&[name], hosts.clone());
    assert!(collectors.send(report(1)).await.is_err());
    assert!(collectors.send(report(1)).await.is_err());
    assert_eq!(a.calls(), 2);
    assert_eq!(hosts.asked.lock().unwrap().len(), 2, "once per round");
}

#[tokio::test]
async fn an_unresolvable_name_is_dialled_as_configured() {
    let mut collectors = collectors(&["http://localhost:1".into()], Arc::new(Hosts::default()));
    // Nothing listens on port 1: the transport, not the resolver, says so.
    let err = collectors.send(report(1)).await.unwrap_err();
    assert!(
        matches!(&err, ClientError::Status(s) if s.code() == Code::Unavailable),
        "{err}"
    );
    assert_eq!(collectors.current().unwrap().dialled, "http://localhost:1");
}
