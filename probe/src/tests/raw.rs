//! Transport outcomes against hand-made servers and sockets.

use std::time::Duration;

use crate::testing::{Behaviour, closed_port, serve};
use crate::{Endpoint, Outcome, Phase, ProbeRequest, Protocol, probe};

fn tcp(port: u16, protocol: Protocol) -> ProbeRequest {
    ProbeRequest::new(
        Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        protocol,
    )
}

#[tokio::test]
async fn closed_port_is_refused() {
    let result = probe(&tcp(closed_port(), Protocol::Http)).await;
    assert_eq!(result.outcome, Outcome::Refused, "{result:?}");
    assert_eq!(result.phase, Some(Phase::Connect));
    assert!(result.peer.starts_with("127.0.0.1:"));
}

#[tokio::test]
async fn missing_unix_socket_is_no_such_socket() {
    let dir = tempfile::tempdir().unwrap();
    let request = ProbeRequest::new(
        Endpoint::Unix(dir.path().join("gone.sock")),
        Protocol::FastCgi,
    );
    let result = probe(&request).await;
    assert_eq!(result.outcome, Outcome::NoSuchSocket, "{result:?}");
    assert!(result.peer.starts_with("unix:"));
}

#[tokio::test]
async fn full_unix_backlog_is_saturated() {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, listen, socket,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("full.sock");
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .unwrap();
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &UnixAddr::new(&path).unwrap(),
    )
    .unwrap();
    listen(&fd, Backlog::new(0).unwrap()).unwrap();
    // never accepted: fill the queue until a non-blocking connect says EAGAIN
    let mut held = Vec::new();
    for _ in 0..64 {
        match tokio::net::UnixStream::connect(&path).await {
            Ok(s) => held.push(s),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EAGAIN));
                break;
            }
        }
    }
    let result = probe(&ProbeRequest::new(Endpoint::Unix(path), Protocol::Http)).await;
    assert_eq!(result.outcome, Outcome::Saturated, "{result:?}");
    drop(fd);
}

#[tokio::test]
async fn close_reset_garbage_and_invalid() {
    let rows: [(Behaviour, Outcome, &str); 5] = [
        (Behaviour::Close, Outcome::PrematureClose, "closed before"),
        (Behaviour::Reset, Outcome::Reset, ""),
        (
            Behaviour::Reply(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec()),
            Outcome::ProtocolMismatch,
            "not_http:",
        ),
        (
            Behaviour::Reply(b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n".to_vec()),
            Outcome::InvalidResponse,
            "",
        ),
        (
            Behaviour::Reply(vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]),
            Outcome::ProtocolMismatch,
            "tls_peer:",
        ),
    ];
    for (behaviour, want, prefix) in rows {
        let server = serve(behaviour).await;
        let result = probe(&tcp(server.addr.port(), Protocol::Http)).await;
        assert_eq!(result.outcome, want, "{result:?}");
        assert!(result.detail.starts_with(prefix), "{result:?}");
    }
}

#[tokio::test]
async fn huge_heads_are_too_big_with_their_size() {
    let mut flood = b"HTTP/1.1 200 OK\r\n".to_vec();
    while flood.len() < 64 * 1024 {
        flood.extend_from_slice(
            format!("X-Fill-{}: {}\r\n", flood.len(), "a".repeat(1000)).as_bytes(),
        );
    }
    flood.extend_from_slice(b"\r\n");
    let server = serve(Behaviour::Reply(flood)).await;
    let result = probe(&tcp(server.addr.port(), Protocol::Http)).await;
    assert_eq!(result.outcome, Outcome::HeaderTooBig, "{result:?}");
    assert_eq!(result.header_bytes, 64 * 1024);

    let big = format!(
        "HTTP/1.1 200 OK\r\nSet-Cookie: {}\r\n\r\n",
        "c".repeat(10_000)
    );
    let server = serve(Behaviour::Reply(big.clone().into_bytes())).await;
    let result = probe(&tcp(server.addr.port(), Protocol::Http)).await;
    assert_eq!(result.outcome, Outcome::HeaderTooBig);
    assert_eq!(result.header_bytes as usize, big.len());

    let mut roomy = tcp(server.addr.port(), Protocol::Http);
    roomy.max_head = 16 * 1024;
    let result = probe(&roomy).await;
    assert_eq!(
        (result.outcome, result.status),
        (Outcome::Ok, 200),
        "{result:?}"
    );
}

#[tokio::test]
async fn silent_server_times_out_in_response() {
    let server = serve(Behaviour::Hang).await;
    let mut request = tcp(server.addr.port(), Protocol::Http);
    request.response_timeout = Duration::from_millis(300);
    let result = probe(&request).await;
    assert_eq!(
        (result.outcome, result.phase),
        (Outcome::Timeout, Some(Phase::Response)),
        "{result:?}"
    );
}

#[tokio::test]
async fn http_probe_sends_host_path_and_close_and_keeps_redirects() {
    let server = serve(Behaviour::Reply(
        b"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\nContent-Length: 0\r\n\r\n".to_vec(),
    ))
    .await;
    let mut request = tcp(server.addr.port(), Protocol::Http);
    request.host_header = "site.test".into();
    request.path = "/api/".into();
    let result = probe(&request).await;
    assert_eq!(
        (result.outcome, result.status),
        (Outcome::Ok, 301),
        "{result:?}"
    );
    let seen = String::from_utf8(server.requests.lock().unwrap()[0].clone()).unwrap();
    assert!(seen.starts_with("GET /api/ HTTP/1.1\r\n"), "{seen}");
    assert!(
        seen.contains("\r\nHost: site.test\r\n") && seen.contains("\r\nConnection: close\r\n"),
        "{seen}"
    );
    assert_eq!(
        *server.accepted.lock().unwrap(),
        1,
        "a redirect is never followed"
    );
}

#[tokio::test]
async fn connect_only_protocols_stop_after_connect() {
    let server = serve(Behaviour::Hang).await;
    let result = probe(&tcp(server.addr.port(), Protocol::Connect)).await;
    assert_eq!((result.outcome, result.status), (Outcome::Ok, 0));
}
