//! FastCGI probes of a listener that speaks HTTP: a real Python `http.server` (what
//! the lab's app is built on) reads its request line up to a newline and so waits
//! on FastCGI's binary records without a byte of answer; the probe asks it in HTTP
//! too, as an operator's `curl` would, and reports the mismatch.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::fastcgi::{RecordType, encode_record};
use crate::testing::{Behaviour, serve};
use crate::{Endpoint, Outcome, ProbeRequest, Protocol, probe};

/// Python's `http.server` on 127.0.0.1 and a free port, serving one connection at a
/// time or each on its own thread; killed on drop.
struct PyHttp(Child, u16);

impl Drop for PyHttp {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn py_http(server: &str) -> PyHttp {
    let script = format!(
        "import http.server as h\n\
         s = h.{server}(('127.0.0.1', 0), h.SimpleHTTPRequestHandler)\n\
         print(s.server_port, flush=True)\n\
         s.serve_forever()\n"
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("python prints its port");
    PyHttp(child, port)
}

fn fastcgi(port: u16) -> ProbeRequest {
    let mut req = ProbeRequest::new(
        Endpoint::Tcp {
            host: "127.0.0.1".into(),
            port,
        },
        Protocol::FastCgi,
    );
    req.response_timeout = Duration::from_secs(1);
    req
}

/// Probes the `server` kind of Python HTTP server with FastCGI and returns the
/// detail of the `protocol_mismatch` that must come back.
async fn http_peer(server: &str) -> String {
    let server = py_http(server);
    let result = probe(&fastcgi(server.1)).await;
    assert_eq!(result.outcome, Outcome::ProtocolMismatch, "{result:?}");
    assert!(result.detail.ends_with("gets HTTP 200"), "{result:?}");
    result.detail
}

#[tokio::test]
async fn fastcgi_to_an_http_server_is_a_protocol_mismatch() {
    // One connection at a time: the HTTP question is read only once the FastCGI
    // exchange has timed out and closed.
    let detail = http_peer("HTTPServer").await;
    assert!(
        detail.starts_with("http_peer: FastCGI got no answer (timeout)"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_threaded_http_server_answers_the_question_before_the_fastcgi_timeout() {
    // Not "(timeout)": the question asked alongside answered while FastCGI waited.
    let detail = http_peer("ThreadingHTTPServer").await;
    assert!(
        detail.starts_with("http_peer: FastCGI got no answer in "),
        "{detail}"
    );
}

#[tokio::test]
async fn a_silent_peer_that_answers_no_http_either_stays_a_timeout() {
    let server = serve(Behaviour::Hang).await;
    let result = probe(&fastcgi(server.addr.port())).await;
    assert_eq!(result.outcome, Outcome::Timeout, "{result:?}");
    assert_eq!(*server.accepted.lock().unwrap(), 2, "asked in HTTP too");
    // The HTTP question went out alongside the FastCGI wait, not after it: the hung
    // peer cost a response timeout and a quarter (1.25 s), where asking in turn costs two.
    assert!(result.elapsed_ms < 1_900, "{result:?}");
}

#[tokio::test]
async fn a_fastcgi_peer_that_answers_in_time_is_asked_nothing_more() {
    let mut reply = Vec::new();
    encode_record(
        &mut reply,
        RecordType::Stdout,
        b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nhi",
    );
    encode_record(&mut reply, RecordType::EndRequest, &[0; 8]);
    let server = serve(Behaviour::Reply(reply)).await;
    let result = probe(&fastcgi(server.addr.port())).await;
    assert_eq!(result.outcome, Outcome::Ok, "{result:?}");
    assert_eq!(*server.accepted.lock().unwrap(), 1, "{result:?}");
}
