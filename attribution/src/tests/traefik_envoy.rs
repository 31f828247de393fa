//! Rows for Traefik- and Envoy-fronted hosts: one verdict per cause family,
//! from log lines captured from the real Traefik 3.7.15 and Envoy 1.40.0
//! (`proxy/fixtures/traefik/`, `proxy/fixtures/envoy/`; fixtures, not the
//! lab). Each signal is labelled as the agent labels it: by the proxy
//! model's parser, run here on the captured line, whose server address is
//! also the host's target.

use super::*;
use Cause::*;

const TRAEFIK: &str = concat!(
    include_str!("../../../proxy/fixtures/traefik/traefik.log"),
    include_str!("../../../proxy/fixtures/traefik/access.json.log"),
);
const ENVOY: &str = concat!(
    include_str!("../../../proxy/fixtures/envoy/access.log"),
    include_str!("../../../proxy/fixtures/envoy/access.json.log"),
);

/// A captured line as the agent reports it: (sample, cause label, status,
/// upstream `host:port`).
struct Line {
    sample: &'static str,
    cause: String,
    status: u32,
    upstream: String,
}

fn line(kind: &str, fragment: &str) -> Line {
    let fixture = if kind == "traefik" { TRAEFIK } else { ENVOY };
    let sample = fixture
        .lines()
        .find(|l| l.contains(fragment))
        .unwrap_or_else(|| panic!("{kind}: no fixture line has {fragment:?}"));
    let parsed = gw502_proxy::by_word(kind)
        .and_then(|p| p.parse_error_line(sample.as_bytes()))
        .unwrap_or_else(|| panic!("{kind}: unparsed {sample}"));
    Line {
        sample,
        cause: Cause::join_set(parsed.cause),
        status: u32::from(parsed.status),
        upstream: parsed.upstream.unwrap_or_default(),
    }
}

/// `kind` fronting the site with `l`'s server as its target, app.service
/// owning it, and `l` as the proxy-log signal when it has a cause (the
/// agent drops lines without one, as `proxy_log::signals` does).
fn front(kind: &str, l: &Line) -> Host {
    let (addr, port) = l.upstream.rsplit_once(':').unwrap_or(("127.0.0.1", "3000"));
    let port: u32 = port.parse().unwrap_or(3000);
    let h = host("web1")
        .proxy(
            kind,
            &format!("{kind}.service"),
            &format!("http://{addr}:{port}"),
        )
        .unit("app.service", "active", "running", "upstream")
        .tcp(addr, port, "app.service");
    if l.cause.is_empty() {
        h
    } else {
        h.signal(kind, &l.cause, l.status, l.sample, &l.upstream)
    }
}

fn case(kind: &str, l: &Line, h: Host) -> Case {
    site("shop.example").public("ok", l.status, kind).host(h)
}

/// The app's own answer relayed: the public probe sees the app's body and
/// the direct probe the same status.
fn relayed(kind: &str, l: &Line) -> Case {
    site("shop.example")
        .public("ok", l.status, "app")
        .host(front(kind, l).probe(&l.upstream, "ok", "response", l.status, ""))
}

pub(super) fn rows() -> Vec<Row> {
    let t_refused = line("traefik", "> 502 Bad Gateway error=\"dial tcp");
    let t_timeout = line("traefik", "504 Gateway Timeout");
    let t_eof = line("traefik", "error=EOF");
    let t_x509 = line("traefik", "x509:");
    let t_down = line("traefik", "\"RequestHost\":\"down.test\"");
    let t_busy = line("traefik", "\"RequestHost\":\"busy.test\"");
    let t_access = line("traefik", "\"RequestHost\":\"refused.test\"");
    let e_refused = line("envoy", "503 UF ");
    let e_uh = line("envoy", "503 UH ");
    let e_ut = line("envoy", "504 UT ");
    let e_uc = line("envoy", "\"eof.test\"");
    let e_uo = line("envoy", "503 UO ");
    let e_cert = line("envoy", "CERTIFICATE_VERIFY_FAILED");
    let e_busy = line("envoy", "\"busy.test\"");
    let moved = |l: &Line| {
        let port: u32 = l
            .upstream
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(0);
        front("envoy", l)
            .no_listeners("app.service")
            .tcp("127.0.0.1", port + 1, "app.service")
    };
    vec![
        row(
            "traefik: dial refused, app stopped",
            case(
                "traefik",
                &t_refused,
                front("traefik", &t_refused)
                    .unit("app.service", "inactive", "dead", "upstream")
                    .no_listeners("app.service"),
            ),
            is(ServiceDown, 502, Hop::Proxy),
        ),
        row(
            "traefik: responseHeaderTimeout",
            case("traefik", &t_timeout, front("traefik", &t_timeout)),
            is(Timeout, 504, Hop::Proxy),
        ),
        row(
            "traefik: EOF before a header",
            case("traefik", &t_eof, front("traefik", &t_eof)),
            is(PrematureClose, 502, Hop::Proxy),
        ),
        row(
            "traefik: x509, answered 500",
            case("traefik", &t_x509, front("traefik", &t_x509)),
            is(TlsCertificateError, 500, Hop::Proxy),
        ),
        row(
            "traefik: access line, every server DOWN",
            case("traefik", &t_down, front("traefik", &t_down)),
            is(NoLiveUpstreams, 503, Hop::Proxy),
        ),
        row(
            "traefik: access line only (default log level), app stopped",
            case(
                "traefik",
                &t_access,
                front("traefik", &t_access)
                    .unit("app.service", "inactive", "dead", "upstream")
                    .no_listeners("app.service"),
            ),
            is(ServiceDown, 502, Hop::Proxy),
        ),
        near(
            "traefik near-miss: the app's own 503 in the access log",
            NoLiveUpstreams,
            relayed("traefik", &t_busy),
            is(UpstreamReturnedError, 503, Hop::Upstream),
        ),
        row(
            "envoy: UF refused, app moved to the next port",
            case("envoy", &e_refused, moved(&e_refused)),
            is(WrongPort, 503, Hop::Proxy),
        ),
        row(
            "envoy: UH no healthy upstream",
            case("envoy", &e_uh, front("envoy", &e_uh)),
            is(NoLiveUpstreams, 503, Hop::Proxy),
        ),
        row(
            "envoy: UT route timeout",
            case("envoy", &e_ut, front("envoy", &e_ut)),
            is(Timeout, 504, Hop::Proxy),
        ),
        row(
            "envoy: UC connection_termination",
            case("envoy", &e_uc, front("envoy", &e_uc)),
            is(PrematureClose, 503, Hop::Proxy),
        ),
        row(
            "envoy: UO circuit breaker overflow",
            case("envoy", &e_uo, front("envoy", &e_uo)),
            is(Saturated, 503, Hop::Proxy),
        ),
        row(
            "envoy: UF with CERTIFICATE_VERIFY_FAILED",
            case("envoy", &e_cert, front("envoy", &e_cert)),
            is(TlsCertificateError, 503, Hop::Proxy),
        ),
        near(
            "envoy near-miss: the app's own 503, no flag",
            NoLiveUpstreams,
            relayed("envoy", &e_busy),
            is(UpstreamReturnedError, 503, Hop::Upstream),
        ),
    ]
}
