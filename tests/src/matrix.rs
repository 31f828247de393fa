//! The fault matrix: each fault is defined once, with the verdict it must produce derived
//! from it (layer, cause, status, emitted_by), and crossed with the proxy, the transport
//! between proxy and app, the topology and the condition the agent meets it in. A
//! combination that cannot exist is skipped with its reason ([`Cell::skip`]); a healthy
//! control runs per proxy and condition ([`Fault::Control`]).
//!
//! [`cells`] lists the whole matrix in a fixed order, [`sample`] draws a deterministic,
//! seeded subset for the normal test suite, [`hosts`] builds the lab hosts of a cell,
//! [`runner`] runs cells in batches on one lab and judges them strictly, and [`replay`]
//! records what the engine saw for each cell so it can be replayed without a lab.

pub mod containers;
pub mod hosts;
pub mod journal;
pub mod proxies;
pub mod replay;
pub mod report;
pub mod runner;
pub mod tls;

use crate::scenario::cases::{Expect, expect};

/// The name the site's vhost answers to.
pub const SITE_NAME: &str = "shop.example";

/// The origin proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proxy {
    /// nginx (Debian's nginx-light).
    Nginx,
    /// HAProxy.
    Haproxy,
    /// Apache httpd with mod_proxy.
    Apache,
    /// Caddy (only where `apt-cache policy caddy` has a candidate, as on Debian 12).
    Caddy,
    /// Varnish Cache in front of the app (`pass`, so every request reaches it): its own
    /// `503 Backend fetch failed` for every failed fetch, `emitted_by: cache`.
    Varnish,
    /// Varnish on port 80 in front of nginx on 127.0.0.1:8088, nginx in front of the app:
    /// the faults hit nginx and the app; nginx's own errors pass through Varnish.
    VarnishNginx,
}

impl Proxy {
    /// Every proxy, in matrix order.
    pub const ALL: [Proxy; 6] = [
        Proxy::Nginx,
        Proxy::Haproxy,
        Proxy::Apache,
        Proxy::Caddy,
        Proxy::Varnish,
        Proxy::VarnishNginx,
    ];

    /// Its systemd unit (for a stack, the proxy the faults act on).
    pub fn unit(self) -> &'static str {
        match self {
            Proxy::Nginx | Proxy::VarnishNginx => "nginx.service",
            Proxy::Haproxy => "haproxy.service",
            Proxy::Apache => "apache2.service",
            Proxy::Caddy => "caddy.service",
            Proxy::Varnish => "varnish.service",
        }
    }

    /// The cache in front of it, for a stack: enabled too, never the fault's target.
    pub fn front(self) -> Option<&'static str> {
        (self == Proxy::VarnishNginx).then_some("varnish.service")
    }

    /// The status it answers when it cannot connect to the upstream: HAProxy (`SC`),
    /// Apache (`AH01114`) and Varnish (`fail errno 111`) answer 503, nginx and Caddy 502.
    pub fn refused_status(self) -> u64 {
        match self {
            Proxy::Haproxy | Proxy::Apache | Proxy::Varnish => 503,
            Proxy::Nginx | Proxy::Caddy | Proxy::VarnishNginx => 502,
        }
    }

    /// The status it answers when the TLS handshake with its upstream fails:
    /// Apache's mod_proxy says `500 Proxy Error` (captured, see
    /// `probe/fixtures/pages/apache-500-proxy-error-tls.http`); HAProxy counts a failed
    /// handshake as a failed connection and answers 503 (`SC`), as for a refused one
    /// (seen in the full matrix run); Varnish 503; nginx and Caddy 502.
    pub fn tls_failure_status(self) -> u64 {
        match self {
            Proxy::Apache => 500,
            Proxy::Haproxy | Proxy::Varnish => 503,
            Proxy::Nginx | Proxy::Caddy | Proxy::VarnishNginx => 502,
        }
    }

    /// The status it answers when its upstream takes the request and sends no header
    /// before the read timeout: 504, except Apache's mod_proxy_http, whose `AH01102`
    /// (`(70007)The timeout specified has expired`) is a `502 Proxy Error`, as the lab's
    /// visitors saw (mod_proxy_fcgi answers 504). Varnish is judged apart, below.
    pub fn read_timeout_status(self, transport: Transport) -> u64 {
        match self {
            Proxy::Apache if transport != Transport::FastCgi => 502,
            _ => 504,
        }
    }

    /// The status it answers when it rejects the upstream's certificate: the handshake
    /// fails as on a TLS mismatch (nginx and Caddy 502, Apache's `500 Proxy Error`),
    /// except HAProxy, which counts a failed verification as a failed connect and
    /// answers 503 (`SC`, captured with haproxy 2.6.12 and an expired leaf).
    pub fn cert_failure_status(self) -> u64 {
        match self {
            Proxy::Haproxy => 503,
            p => p.tls_failure_status(),
        }
    }

    /// The status it answers on a connect timeout: nginx 504, HAProxy (`sC`), Apache and
    /// Varnish 503, Caddy 502.
    pub fn timeout_status(self) -> u64 {
        match self {
            Proxy::Nginx | Proxy::VarnishNginx => 504,
            Proxy::Haproxy | Proxy::Apache | Proxy::Varnish => 503,
            Proxy::Caddy => 502,
        }
    }

    /// The status it answers when the upstream's name does not resolve (seen on the
    /// lab): nginx (`could not be resolved (3: Host not found)`) and Caddy (`no such
    /// host`) 502; Apache's mod_proxy 500 (`AH00898: DNS lookup failure for: ...`);
    /// HAProxy takes the server out (`is going DOWN for maintenance (DNS NX status)`)
    /// and answers 503 (`<NOSRV>`).
    pub fn dns_failure_status(self) -> u64 {
        match self {
            Proxy::Apache => 500,
            Proxy::Haproxy | Proxy::Varnish => 503,
            Proxy::Nginx | Proxy::Caddy | Proxy::VarnishNginx => 502,
        }
    }

    /// The status it answers when it speaks FastCGI to a plain HTTP app that waits for
    /// a request line (the lab's Python app). Whether the app waits or answers depends
    /// on the request's bytes: a FastCGI length byte of 10 is a newline to it, and it
    /// answers the garbled line with a bare HTML error page (`<`). nginx's requests
    /// always meet one: 502 (`upstream sent unsupported FastCGI protocol version: 60`).
    /// A visitor's request straight to HAProxy or Caddy meets none: their read
    /// timeouts, 504; the same request forwarded by the edge does: 502. Apache answers
    /// 503 either way. As the lab's `protocol_mismatch.*.loopback` cells saw.
    pub fn fastcgi_to_http_status(self, behind_edge: bool) -> u64 {
        match self {
            Proxy::Nginx | Proxy::VarnishNginx => 502,
            Proxy::Apache | Proxy::Varnish => 503,
            Proxy::Haproxy | Proxy::Caddy if behind_edge => 502,
            Proxy::Haproxy | Proxy::Caddy => 504,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Proxy::Nginx => "nginx",
            Proxy::Haproxy => "haproxy",
            Proxy::Apache => "apache",
            Proxy::Caddy => "caddy",
            Proxy::Varnish => "varnish",
            Proxy::VarnishNginx => "varnish_nginx",
        }
    }
}

/// How the proxy reaches the app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Transport {
    /// HTTP to 127.0.0.1:8080 on the same host.
    Loopback,
    /// HTTP to the app on a second host.
    Remote,
    /// HTTP over a unix socket.
    Unix,
    /// FastCGI to a PHP-FPM pool's unix socket.
    FastCgi,
    /// HTTPS to the app's TLS listener on 127.0.0.1:8443 (a certificate made at test
    /// time, verified by the proxy only in the `tls_certificate_error` cells).
    Https,
    /// HTTP to 127.0.0.1:8080, published by docker-proxy for a container of the Docker
    /// Engine on the same host ([`containers`]).
    Container,
}

impl Transport {
    /// Every transport, in matrix order.
    pub const ALL: [Transport; 6] = [
        Transport::Loopback,
        Transport::Remote,
        Transport::Unix,
        Transport::FastCgi,
        Transport::Https,
        Transport::Container,
    ];

    fn word(self) -> &'static str {
        match self {
            Transport::Loopback => "loopback",
            Transport::Remote => "remote",
            Transport::Unix => "unix",
            Transport::FastCgi => "fastcgi",
            Transport::Https => "https",
            Transport::Container => "container",
        }
    }
}

/// What stands in front of the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Topology {
    /// Visitors reach the origin proxy directly.
    Single,
    /// An HAProxy edge host in front of the origin.
    Edge,
    /// An HAProxy edge round-robin over three origins; the fault hits one of them.
    RoundRobin,
}

impl Topology {
    /// Every topology, in matrix order.
    pub const ALL: [Topology; 3] = [Topology::Single, Topology::Edge, Topology::RoundRobin];

    fn word(self) -> &'static str {
        match self {
            Topology::Single => "single",
            Topology::Edge => "edge",
            Topology::RoundRobin => "rr3",
        }
    }
}

/// What the agent meets the fault in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Condition {
    /// The fault comes after a healthy period.
    Warm,
    /// Agents and collector start after the fault.
    Cold,
    /// The host runs unrelated listeners (an exporter, a cache, a high port).
    Noisy,
    /// The host's time zone is not UTC: ahead of it or behind it ([`Cell::zone`]).
    NonUtc,
    /// The site is configured by address and named by its vhost (`shop.example`), which
    /// is not the proxy's default vhost.
    ByAddress,
}

impl Condition {
    /// Every condition, in matrix order.
    pub const ALL: [Condition; 5] = [
        Condition::Warm,
        Condition::Cold,
        Condition::Noisy,
        Condition::NonUtc,
        Condition::ByAddress,
    ];

    fn word(self) -> &'static str {
        match self {
            Condition::Warm => "warm",
            Condition::Cold => "cold",
            Condition::Noisy => "noisy",
            Condition::NonUtc => "tz",
            Condition::ByAddress => "byaddr",
        }
    }
}

/// A fault, defined once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// Nothing breaks: no incident may open.
    Control,
    /// The app's unit is stopped.
    ServiceDown,
    /// The app's unit exits at once and is restarted, again and again.
    CrashLoop,
    /// The proxy targets a port or socket path where nothing listens; the app listens
    /// where it always did.
    WrongTarget,
    /// The proxy speaks TLS to the plain-HTTP app (plain HTTP to the TLS app on HTTPS
    /// transport).
    TlsMismatch,
    /// The app answers 503 itself.
    AppError,
    /// The app closes the connection without answering.
    PrematureClose,
    /// The app answers with 64 KB of headers.
    HeaderTooBig,
    /// The app host drops packets to the app's port.
    FirewallBlocked,
    /// The origin proxy is stopped.
    ProxyDown,
    /// The app container outgrows its memory limit at start: OOM-killed, restarted,
    /// killed again.
    OomKilled,
    /// The app container's health check fails: it answers 503 to everything.
    Unhealthy,
    /// The app binds 127.0.0.1 inside its container's network namespace.
    BindMismatch,
    /// The app's TLS certificate has expired (the same names, key and CA, valid only
    /// in 2024); the proxy verifies it, with the same config before and after.
    TlsCertificateError,
    /// The app accepts and reads the request but never sends a response header.
    Timeout,
    /// The app answers 500 because its database refuses connections, and says so in
    /// its journal.
    DependencyFailure,
    /// The DNS record of the app host's name is removed: the name the proxy re-resolves
    /// at run time (through the origin's resolver) no longer resolves.
    DnsFailure,
    /// The app's script turns slow (2 s a request) behind a small PHP-FPM pool
    /// (`pm.max_children = 2`, a short accept queue): more visitors than workers.
    Saturated,
    /// The app is restarted and stays up without binding anything: it waits for its
    /// schema migrations (an app still starting, or one whose bind never comes).
    NotListening,
    /// The app reads the request and resets the connection (`SO_LINGER` zero: RST).
    ConnectionReset,
    /// The app's socket is owned by the app's user with mode 0600, which the proxy's
    /// user may not open: the unix app's socket is chmod-ed, the PHP-FPM pool is reset
    /// to run as its own user with `listen.mode = 0600` and restarted.
    SocketPermissionDenied,
    /// The proxy speaks FastCGI to the plain-HTTP app (loopback), or plain HTTP to the
    /// PHP-FPM socket (FastCGI transport).
    ProtocolMismatch,
}

impl Fault {
    /// Every fault, in matrix order.
    pub const ALL: [Fault; 22] = [
        Fault::Control,
        Fault::ServiceDown,
        Fault::CrashLoop,
        Fault::WrongTarget,
        Fault::TlsMismatch,
        Fault::AppError,
        Fault::PrematureClose,
        Fault::HeaderTooBig,
        Fault::FirewallBlocked,
        Fault::ProxyDown,
        Fault::OomKilled,
        Fault::Unhealthy,
        Fault::BindMismatch,
        Fault::TlsCertificateError,
        Fault::Timeout,
        Fault::DependencyFailure,
        Fault::DnsFailure,
        Fault::Saturated,
        Fault::NotListening,
        Fault::ConnectionReset,
        Fault::SocketPermissionDenied,
        Fault::ProtocolMismatch,
    ];

    fn word(self) -> &'static str {
        match self {
            Fault::Control => "control",
            Fault::ServiceDown => "service_down",
            Fault::CrashLoop => "crash_loop",
            Fault::WrongTarget => "wrong_target",
            Fault::TlsMismatch => "tls_mismatch",
            Fault::AppError => "app_503",
            Fault::PrematureClose => "premature_close",
            Fault::HeaderTooBig => "header_too_big",
            Fault::FirewallBlocked => "firewall_blocked",
            Fault::ProxyDown => "proxy_down",
            Fault::OomKilled => "oom_killed",
            Fault::Unhealthy => "unhealthy",
            Fault::BindMismatch => "bind_mismatch",
            Fault::TlsCertificateError => "tls_certificate_error",
            Fault::Timeout => "timeout",
            Fault::DependencyFailure => "dependency_failure",
            Fault::DnsFailure => "dns_failure",
            Fault::Saturated => "saturated",
            Fault::NotListening => "not_listening",
            Fault::ConnectionReset => "connection_reset",
            Fault::SocketPermissionDenied => "socket_permission_denied",
            Fault::ProtocolMismatch => "protocol_mismatch",
        }
    }
}

/// One combination of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cell {
    /// The fault.
    pub fault: Fault,
    /// The origin proxy.
    pub proxy: Proxy,
    /// Proxy to app.
    pub transport: Transport,
    /// What stands in front.
    pub topology: Topology,
    /// What the agent meets the fault in.
    pub condition: Condition,
}

impl Cell {
    /// A stable id, e.g. `service_down.nginx.loopback.single.warm` (fixture names).
    pub fn id(&self) -> String {
        format!(
            "{}.{}.{}.{}.{}",
            self.fault.word(),
            self.proxy.word(),
            self.transport.word(),
            self.topology.word(),
            self.condition.word()
        )
    }

    /// The origin's time zone on a non-UTC host: `Europe/Berlin` (UTC+1 in winter, +2 in
    /// summer) on TCP to another host, FastCGI and containers, `America/Los_Angeles`
    /// (UTC-8, -7) on loopback, unix sockets and HTTPS, so every proxy and topology meets
    /// a clock on each side of UTC.
    pub fn zone(&self) -> Option<&'static str> {
        (self.condition == Condition::NonUtc).then_some(match self.transport {
            Transport::Loopback | Transport::Unix | Transport::Https => "America/Los_Angeles",
            Transport::Remote | Transport::FastCgi | Transport::Container => "Europe/Berlin",
        })
    }

    /// Why this combination cannot exist (or cannot be made here), if so.
    pub fn skip(&self) -> Option<&'static str> {
        use Fault as F;
        use Transport as T;
        let (f, p, t) = (self.fault, self.proxy, self.transport);
        if let Some(why) = self.container_skip() {
            return Some(why);
        }
        if f == F::Control
            && (!matches!(t, T::Loopback | T::Container) || self.topology != Topology::Single)
        {
            return Some(
                "one healthy control per proxy and condition (loopback or container, single)",
            );
        }
        if let Some(why) = self.handoff_skip() {
            return Some(why);
        }
        match f {
            F::DnsFailure if matches!(p, Proxy::Varnish | Proxy::VarnishNginx) => Some(
                "Varnish resolves a backend's name once, when its VCL loads; nginx's own lookups are the nginx cells'",
            ),
            F::DnsFailure if t != T::Remote => Some(
                "only an app on another host is named by a DNS name; the remote transport stands for it",
            ),
            F::Saturated if p == Proxy::Varnish || p == Proxy::VarnishNginx => Some(
                "Varnish has no FastCGI backend; PHP-FPM's pool behind the four proxies stands for it",
            ),
            // apache 2.4.67 by hand, 8 visitors on a pool of 2 with a queue of 1: 46 of 46
            // answers 200, after up to 5.8 s; no error line.
            F::Saturated if p == Proxy::Apache => Some(
                "Apache's mod_proxy_fcgi waits for a place in PHP-FPM's full accept queue (a blocking connect) instead of failing: visitors get slow 200s and Apache no error to attribute",
            ),
            F::Saturated if t != T::FastCgi => Some(
                "the lab's HTTP app serves each connection in a thread of its own, with no pool to exhaust; PHP-FPM's pool over FastCGI stands for it",
            ),
            _ if p == Proxy::Varnish && t != T::Loopback => Some(
                "Varnish Cache has no FastCGI or TLS backends; its TCP backend on loopback stands for the rest",
            ),
            F::TlsMismatch | F::TlsCertificateError if p == Proxy::Varnish => {
                Some("Varnish Cache speaks no TLS to its backends")
            }
            _ if p == Proxy::VarnishNginx && t != T::Loopback => {
                Some("the cache in front of nginx does not depend on how nginx reaches the app")
            }
            _ if p == Proxy::VarnishNginx && self.topology == Topology::RoundRobin => {
                Some("one Varnish-fronted origin behind an edge stands for the round robin")
            }
            // Ahead of the `None` arm below: no edge cell runs by address.
            _ if self.topology != Topology::Single && self.condition == Condition::ByAddress => {
                Some(
                    "behind an edge the site is the edge's address; by-address is a single-origin shape",
                )
            }
            // nginx stopped behind the cache: Varnish answers 503 itself, not a refusal.
            F::ProxyDown if p == Proxy::VarnishNginx => None,
            F::TlsMismatch if !matches!(t, T::Loopback | T::Https) => Some(
                "TLS to a plain listener is a TCP fault; loopback TCP stands for it (HTTPS for plain to TLS)",
            ),
            F::TlsCertificateError if t != T::Https => Some(
                "a certificate is checked only where the proxy speaks TLS to the app (HTTPS transport)",
            ),
            F::FirewallBlocked if t != T::Remote => {
                Some("a packet filter between proxy and app needs two hosts (remote)")
            }
            F::PrematureClose if t == T::FastCgi => {
                Some("a PHP script cannot close the FastCGI connection before its header")
            }
            F::NotListening if t == T::FastCgi => Some(
                "PHP-FPM cannot run without its socket: its master binds the pool's socket before it is up, or exits",
            ),
            F::NotListening if t == T::Https => Some(
                "a TLS port nobody binds is refused like a plain one; loopback TCP stands for it",
            ),
            F::NotListening if t == T::Unix && self.topology == Topology::RoundRobin => Some(
                "a fraction of requests failing does not depend on the transport; the loopback round-robin cells stand for the unix socket",
            ),
            F::ConnectionReset if t == T::FastCgi => {
                Some("PHP cannot reset the FastCGI connection: PHP-FPM owns the socket")
            }
            F::ConnectionReset if t == T::Unix => Some(
                "a unix stream socket has no reset: the app's close is an end of file to the proxy, which the premature_close cells cover",
            ),
            F::ConnectionReset if t == T::Remote => Some(
                "a reset crosses the bridge as it crosses loopback; loopback TCP stands for it",
            ),
            F::HeaderTooBig if matches!(p, Proxy::Apache | Proxy::Caddy) => Some(
                "Apache and Caddy limit each response header line, not the header total: 64 one-KB lines pass",
            ),
            // Reproduced outside the lab with php-fpm and a ten-line config (docs/ACCURACY.md).
            F::HeaderTooBig if p == Proxy::Haproxy && t == T::FastCgi => Some(
                "Debian 12's HAProxy 2.6.12 dies on a 64 KB FastCGI head (`FATAL: bug condition \"c_empty(ic)\"`, src/stconn.c:1479, exit 139) instead of answering 502: a crashed proxy, which the replay test `a_proxy_that_crashed_on_what_it_relayed_is_named_as_crashed` checks on these cells' recorded evidence",
            ),
            F::ProxyDown if t != T::Loopback => {
                Some("the origin proxy being down does not depend on what is behind it")
            }
            F::ProxyDown if self.topology == Topology::Single && p != Proxy::Nginx => {
                Some("a proxy down with no edge is a refused connection, whatever the proxy")
            }
            _ if self.topology == Topology::RoundRobin && t == T::Remote => {
                Some("round-robin origins each run their app locally; remote apps add nothing")
            }
            _ => None,
        }
    }

    /// Why a cell of the socket-permission or protocol-mismatch fault cannot exist or
    /// adds nothing.
    fn handoff_skip(&self) -> Option<&'static str> {
        use Transport as T;
        let (p, t) = (self.proxy, self.transport);
        match self.fault {
            Fault::SocketPermissionDenied if !matches!(t, T::Unix | T::FastCgi) => {
                Some("a socket's mode and owner exist only on unix sockets (unix and FastCGI)")
            }
            Fault::ProtocolMismatch if !matches!(t, T::Loopback | T::FastCgi) => Some(
                "FastCGI to the HTTP app on loopback and HTTP to the PHP-FPM socket stand for the two shapes",
            ),
            Fault::SocketPermissionDenied | Fault::ProtocolMismatch
                if matches!(p, Proxy::Varnish | Proxy::VarnishNginx) =>
            {
                Some(
                    "Varnish speaks neither FastCGI nor to the sockets here; nginx alone stands for the cache's nginx",
                )
            }
            _ => None,
        }
    }

    /// Why a cell is outside the container stack's cells: its own faults run only there,
    /// and it runs its faults behind nginx on one origin, warm and cold.
    fn container_skip(&self) -> Option<&'static str> {
        use Fault as F;
        let own = matches!(self.fault, F::OomKilled | F::Unhealthy | F::BindMismatch);
        if self.transport != Transport::Container {
            return own.then_some(
                "an OOM kill, a health check and a namespace of its own are container faults",
            );
        }
        if self.fault == F::NotListening {
            return Some(
                "through docker-proxy an app that binds nothing is accepted and closed, as in the bind_mismatch cells",
            );
        }
        if !matches!(
            self.fault,
            F::Control | F::ServiceDown | F::CrashLoop | F::WrongTarget
        ) && !own
        {
            return Some(
                "HTTP-level and proxy faults look the same through docker-proxy as on loopback",
            );
        }
        if self.proxy != Proxy::Nginx {
            return Some(
                "the container stack runs behind nginx; the other proxies see the same refusals and closes on loopback",
            );
        }
        if self.topology != Topology::Single {
            return Some("the container stack is a single-origin shape");
        }
        if !matches!(self.condition, Condition::Warm | Condition::Cold) {
            return Some(
                "noise, time zone and by-address conditions are covered on loopback; the container cells run warm and cold",
            );
        }
        None
    }

    /// The verdict the fault must produce here, or `None` when no incident may open.
    pub fn expected(&self) -> Option<Expect> {
        use Fault as F;
        let p = self.proxy;
        let socket = matches!(self.transport, Transport::Unix | Transport::FastCgi);
        let e = match self.fault {
            F::Control => return None,
            F::ServiceDown => expect("upstream", "service_down", p.refused_status(), "proxy"),
            F::CrashLoop => expect("upstream", "crash_loop", p.refused_status(), "proxy"),
            // Running with no listener: every proxy meets a refused connect (a missing
            // socket on unix transport) and answers as for a stopped app. On a cold
            // start the agent never saw the app listen; the unit is running and its
            // `ExecStart` names the port or socket path, which ties it to the target
            // (`attribution::chain`), so the verdict is the same as warm.
            F::NotListening => expect("upstream", "not_listening", p.refused_status(), "proxy"),
            // Killed at every start under its restart policy: a restart loop whose
            // verdict says OOMKilled and the limit (no cause word of its own).
            F::OomKilled => expect("upstream", "crash_loop", p.refused_status(), "proxy"),
            F::Unhealthy => expect("upstream", "upstream_returned_error", 503, "upstream"),
            // docker-proxy accepts and closes when the container refuses.
            F::BindMismatch => expect("handoff", "bind_mismatch", 502, "proxy"),
            F::WrongTarget if socket => {
                expect("handoff", "wrong_socket_path", p.refused_status(), "proxy")
            }
            // Started after the fault, the agent never saw the app serve the target, and
            // nothing else ties the app's port to it (its command line names its own port):
            // naming it would be guessing, which the chain rule forbids (`attribution::chain`).
            // HAProxy's backend and Varnish's VCL backend are named `app`, which ties
            // `app.service` by name.
            F::WrongTarget
                if self.condition == Condition::Cold
                    && !matches!(p, Proxy::Haproxy | Proxy::Varnish) =>
            {
                expect(
                    "unknown",
                    "insufficient_evidence",
                    p.refused_status(),
                    "proxy",
                )
            }
            F::WrongTarget => expect("handoff", "wrong_port", p.refused_status(), "proxy"),
            // Plain HTTP to the app's TLS listener: the listener resets the connection,
            // which every proxy answers with 502.
            F::TlsMismatch if self.transport == Transport::Https => {
                expect("handoff", "tls_mismatch", 502, "proxy")
            }
            F::TlsMismatch => expect("handoff", "tls_mismatch", p.tls_failure_status(), "proxy"),
            F::AppError => expect("upstream", "upstream_returned_error", 503, "upstream"),
            F::PrematureClose => expect("response", "premature_close", 502, "proxy"),
            // A reset before the response header is a 502 from every proxy: nginx
            // `recv() failed (104: ...)`, HAProxy `SH`, Apache `AH01102` with `(104)`,
            // Caddy `connection reset by peer` (Varnish: its own 503, below).
            F::ConnectionReset => expect("response", "connection_reset", 502, "proxy"),
            F::HeaderTooBig => expect("response", "header_too_big", 502, "proxy"),
            F::TlsCertificateError => expect(
                "handoff",
                "tls_certificate_error",
                p.cert_failure_status(),
                "proxy",
            ),
            // The proxy's own answer to its read timeout (Varnish: its 503, below).
            F::Timeout => expect(
                "upstream",
                "timeout",
                p.read_timeout_status(self.transport),
                "proxy",
            ),
            F::DependencyFailure => expect("dependency", "dependency_failure", 500, "upstream"),
            F::DnsFailure => expect("handoff", "dns_failure", p.dns_failure_status(), "proxy"),
            // A connect the pool's full accept queue turns away (EAGAIN) is answered as
            // a refused one.
            F::Saturated => expect("upstream", "saturated", p.refused_status(), "proxy"),
            // The proxy's connect fails with EACCES: each answers as for a refused one.
            F::SocketPermissionDenied => expect(
                "handoff",
                "socket_permission_denied",
                p.refused_status(),
                "proxy",
            ),
            // HTTP to the PHP-FPM socket: PHP-FPM resets it, every proxy answers 502.
            F::ProtocolMismatch if self.transport == Transport::FastCgi => {
                expect("handoff", "protocol_mismatch", 502, "proxy")
            }
            F::ProtocolMismatch => expect(
                "handoff",
                "protocol_mismatch",
                p.fastcgi_to_http_status(self.topology != Topology::Single),
                "proxy",
            ),
            F::FirewallBlocked => {
                expect("handoff", "firewall_blocked", p.timeout_status(), "proxy")
            }
            F::ProxyDown if self.topology == Topology::Single => {
                expect("proxy", "proxy_down", 0, "unknown")
            }
            // The HAProxy edge answers 503 when its origin refuses.
            F::ProxyDown => expect("proxy", "proxy_down", 503, "edge"),
        };
        Some(match p {
            // Varnish answers every failed fetch with its own 503, as the cache hop.
            Proxy::Varnish if e.emitted_by == "proxy" => Expect {
                status: 503,
                emitted_by: "cache",
                ..e
            },
            // nginx stopped behind Varnish: Varnish's 503, relayed by an edge in front.
            Proxy::VarnishNginx if self.fault == F::ProxyDown => {
                expect("proxy", "proxy_down", 503, "cache")
            }
            _ => e,
        })
    }
}

/// The whole matrix, skipped cells included, in a fixed order.
pub fn cells() -> Vec<Cell> {
    let mut all = Vec::new();
    for fault in Fault::ALL {
        for proxy in Proxy::ALL {
            for transport in Transport::ALL {
                for topology in Topology::ALL {
                    for condition in Condition::ALL {
                        all.push(Cell {
                            fault,
                            proxy,
                            transport,
                            topology,
                            condition,
                        });
                    }
                }
            }
        }
    }
    all
}

/// `n` runnable cells drawn with a fixed seed, every healthy control among them first:
/// the same cells on every run, so the suite is deterministic. Container cells are not
/// drawn (they boot a container engine per host and run with
/// `GW502_MATRIX_ONLY=.container.`, see `tests/src/matrix/containers.rs`).
pub fn sample(seed: u64, n: usize) -> Vec<Cell> {
    draw(
        seed,
        n,
        cells()
            .into_iter()
            .filter(|c| c.skip().is_none() && c.transport != Transport::Container)
            .collect(),
    )
}

/// The warm controls of `runnable`, then the lowest-ranked cell of each fault, then the
/// cells of lowest rank. A cell's rank is a hash of the seed and its id alone, so a cell
/// that becomes skipped (or is added) changes only its own place in the sample, never
/// the rest of the draw.
fn draw(seed: u64, n: usize, runnable: Vec<Cell>) -> Vec<Cell> {
    let (mut picked, mut rest): (Vec<Cell>, Vec<Cell>) = runnable
        .into_iter()
        .partition(|c| c.fault == Fault::Control && c.condition == Condition::Warm);
    rest.sort_by_cached_key(|c| rank(seed, &c.id()));
    let mut faults = Vec::new();
    let (firsts, others): (Vec<Cell>, Vec<Cell>) = rest.into_iter().partition(|c| {
        let first = !faults.contains(&c.fault);
        if first {
            faults.push(c.fault);
        }
        first
    });
    let wanted = n.saturating_sub(picked.len());
    picked.extend(firsts.into_iter().chain(others).take(wanted));
    picked.sort();
    picked
}

/// A cell's place in a seeded order: splitmix64 of the seed mixed with the id's FNV-1a
/// hash.
pub fn rank(seed: u64, id: &str) -> u64 {
    let fnv = id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let mut z = (seed ^ fnv).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runnable cells of `fault`.
    fn runnable(fault: Fault) -> Vec<Cell> {
        cells()
            .into_iter()
            .filter(|c| c.fault == fault && c.skip().is_none())
            .collect()
    }

    #[test]
    fn every_runnable_cell_has_a_verdict_or_is_a_control() {
        let all = cells();
        assert_eq!(
            all.len(),
            Fault::ALL.len() * Proxy::ALL.len() * Transport::ALL.len() * 3 * 5
        );
        let runnable: Vec<&Cell> = all.iter().filter(|c| c.skip().is_none()).collect();
        // The skip rules decide these counts; a changed rule shows here.
        assert_eq!(runnable.len(), 2795);
        assert!(
            runnable
                .iter()
                .all(|c| c.topology == Topology::Single || c.condition != Condition::ByAddress),
            "an edge cell runs by address"
        );
        let https = runnable
            .iter()
            .filter(|c| c.transport == Transport::Https)
            .count();
        assert_eq!(https, 546);
        for c in &runnable {
            assert_eq!(
                c.expected().is_none(),
                c.fault == Fault::Control,
                "{}",
                c.id()
            );
        }
        let ids: std::collections::BTreeSet<String> = all.iter().map(Cell::id).collect();
        assert_eq!(ids.len(), all.len());
    }

    #[test]
    fn the_sample_is_seeded_and_holds_the_controls() {
        let a = sample(11, 40);
        assert_eq!(a, sample(11, 40));
        assert_ne!(a, sample(12, 40));
        assert_eq!(a.len(), 40);
        for proxy in Proxy::ALL {
            assert!(
                a.iter()
                    .any(|c| c.fault == Fault::Control && c.proxy == proxy)
            );
        }
        assert!(a.iter().all(|c| c.skip().is_none()));
    }

    /// A cell leaving the runnable set (a new skip rule) gives its place to one other
    /// cell; the rest of the sample stays, so its recorded results stay comparable.
    #[test]
    fn a_new_skip_moves_one_cell_of_the_sample() {
        let runnable: Vec<Cell> = cells()
            .into_iter()
            .filter(|c| c.skip().is_none() && c.transport != Transport::Container)
            .collect();
        let before = draw(11, 40, runnable.clone());
        let gone = *before
            .iter()
            .find(|c| c.fault != Fault::Control)
            .expect("a drawn fault cell");
        let after = draw(
            11,
            40,
            runnable.into_iter().filter(|c| *c != gone).collect(),
        );
        assert_eq!(after.len(), 40);
        let moved: Vec<&Cell> = before.iter().filter(|c| !after.contains(c)).collect();
        assert_eq!(moved, [&gone]);
    }

    #[test]
    fn the_container_stack_runs_its_six_faults_and_a_control_warm_and_cold() {
        let ids: Vec<String> = cells()
            .into_iter()
            .filter(|c| c.transport == Transport::Container && c.skip().is_none())
            .map(|c| c.id())
            .collect();
        assert_eq!(ids.len(), 14, "{ids:?}");
        assert!(ids.contains(&"bind_mismatch.nginx.container.single.warm".to_owned()));
        assert!(ids.contains(&"control.nginx.container.single.cold".to_owned()));
        let own = cells()
            .into_iter()
            .filter(|c| c.fault == Fault::OomKilled && c.transport != Transport::Container);
        assert!(own.clone().count() > 0 && own.into_iter().all(|c| c.skip().is_some()));
    }

    #[test]
    fn every_proxy_meets_clocks_on_both_sides_of_utc() {
        for proxy in Proxy::ALL {
            let zones: std::collections::BTreeSet<&str> = cells()
                .iter()
                .filter(|c| c.proxy == proxy && c.skip().is_none())
                .filter_map(Cell::zone)
                .collect();
            let expected = if matches!(proxy, Proxy::Varnish | Proxy::VarnishNginx) {
                // Varnish runs on loopback only.
                vec!["America/Los_Angeles"]
            } else {
                vec!["America/Los_Angeles", "Europe/Berlin"]
            };
            assert_eq!(zones.into_iter().collect::<Vec<_>>(), expected, "{proxy:?}");
        }
        assert!(
            cells()
                .iter()
                .all(|c| c.zone().is_some() == (c.condition == Condition::NonUtc))
        );
    }

    #[test]
    fn varnish_cells_are_its_own_503_on_loopback() {
        let cell = |fault| Cell {
            fault,
            proxy: Proxy::Varnish,
            transport: Transport::Loopback,
            topology: Topology::Single,
            condition: Condition::Warm,
        };
        let text = |fault| cell(fault).expected().map(|e| e.text());
        assert_eq!(
            text(Fault::ServiceDown).as_deref(),
            Some("upstream / service_down / 503 / cache")
        );
        assert_eq!(
            text(Fault::PrematureClose).as_deref(),
            Some("response / premature_close / 503 / cache")
        );
        assert_eq!(
            text(Fault::AppError).as_deref(),
            Some("upstream / upstream_returned_error / 503 / upstream")
        );
        assert!(cell(Fault::TlsMismatch).skip().is_some());
        assert!(
            Cell {
                transport: Transport::Unix,
                ..cell(Fault::ServiceDown)
            }
            .skip()
            .is_some()
        );
        let edge = Cell {
            topology: Topology::Edge,
            ..cell(Fault::ProxyDown)
        };
        assert_eq!(
            edge.expected().map(|e| e.text()).as_deref(),
            Some("proxy / proxy_down / 503 / edge")
        );
    }

    #[test]
    fn nginx_stopped_behind_varnish_is_varnishs_503() {
        let cell = Cell {
            fault: Fault::ProxyDown,
            proxy: Proxy::VarnishNginx,
            transport: Transport::Loopback,
            topology: Topology::Single,
            condition: Condition::Warm,
        };
        assert_eq!(cell.skip(), None);
        assert_eq!(
            cell.expected().map(|e| e.text()).as_deref(),
            Some("proxy / proxy_down / 503 / cache")
        );
        let app_down = Cell {
            fault: Fault::ServiceDown,
            ..cell
        };
        assert_eq!(
            app_down.expected().map(|e| e.text()).as_deref(),
            Some("upstream / service_down / 502 / proxy")
        );
        assert_eq!(Proxy::VarnishNginx.front(), Some("varnish.service"));
    }

    #[test]
    fn the_newer_faults_expect_their_cause_where_they_can_exist() {
        let cell = |fault, proxy, transport| Cell {
            fault,
            proxy,
            transport,
            topology: Topology::Single,
            condition: Condition::Warm,
        };
        let text = |c: Cell| c.expected().map(|e| e.text());
        let cert = |p| cell(Fault::TlsCertificateError, p, Transport::Https);
        assert_eq!(
            text(cert(Proxy::Nginx)).as_deref(),
            Some("handoff / tls_certificate_error / 502 / proxy")
        );
        assert_eq!(cert(Proxy::Haproxy).expected().map(|e| e.status), Some(503));
        assert_eq!(cert(Proxy::Apache).expected().map(|e| e.status), Some(500));
        for t in [Transport::Loopback, Transport::Remote, Transport::FastCgi] {
            assert!(
                cell(Fault::TlsCertificateError, Proxy::Nginx, t)
                    .skip()
                    .is_some()
            );
        }
        assert!(
            cell(
                Fault::TlsCertificateError,
                Proxy::Varnish,
                Transport::Loopback
            )
            .skip()
            .is_some()
        );
        let https: Vec<Cell> = cells()
            .into_iter()
            .filter(|c| c.fault == Fault::TlsCertificateError && c.skip().is_none())
            .collect();
        assert!(https.iter().all(|c| c.transport == Transport::Https));
        assert_eq!(
            https.len(),
            4 * 13,
            "4 proxies, 3 topologies x 5 conditions less 2"
        );
        assert_eq!(
            text(cell(Fault::Timeout, Proxy::Caddy, Transport::FastCgi)).as_deref(),
            Some("upstream / timeout / 504 / proxy")
        );
        assert_eq!(
            text(cell(Fault::Timeout, Proxy::Varnish, Transport::Loopback)).as_deref(),
            Some("upstream / timeout / 503 / cache")
        );
        assert_eq!(
            text(cell(
                Fault::DependencyFailure,
                Proxy::Varnish,
                Transport::Loopback
            ))
            .as_deref(),
            Some("dependency / dependency_failure / 500 / upstream")
        );
        assert!(
            cell(Fault::Timeout, Proxy::Nginx, Transport::Container)
                .skip()
                .is_some()
        );
    }

    #[test]
    fn dns_failure_runs_remote_and_saturated_behind_a_php_fpm_pool() {
        let dns = runnable(Fault::DnsFailure);
        assert_eq!(
            dns.len(),
            4 * 9,
            "4 proxies, single x 5 conditions + edge x 4"
        );
        assert!(dns.iter().all(|c| c.transport == Transport::Remote));
        let sat = runnable(Fault::Saturated);
        assert_eq!(sat.len(), 3 * 13, "nginx, HAProxy, Caddy over FastCGI");
        assert!(
            sat.iter()
                .all(|c| c.transport == Transport::FastCgi && c.proxy != Proxy::Apache)
        );
        let at = |fault, proxy, transport| {
            Cell {
                fault,
                proxy,
                transport,
                topology: Topology::Single,
                condition: Condition::Warm,
            }
            .expected()
            .map(|e| e.text())
        };
        let dns_of = |p| at(Fault::DnsFailure, p, Transport::Remote);
        assert_eq!(
            dns_of(Proxy::Nginx).as_deref(),
            Some("handoff / dns_failure / 502 / proxy")
        );
        assert_eq!(
            dns_of(Proxy::Apache).as_deref(),
            Some("handoff / dns_failure / 500 / proxy")
        );
        assert_eq!(
            dns_of(Proxy::Haproxy).as_deref(),
            Some("handoff / dns_failure / 503 / proxy")
        );
        assert_eq!(
            at(Fault::Saturated, Proxy::Haproxy, Transport::FastCgi).as_deref(),
            Some("upstream / saturated / 503 / proxy")
        );
        assert_eq!(
            at(Fault::Saturated, Proxy::Caddy, Transport::FastCgi).as_deref(),
            Some("upstream / saturated / 502 / proxy")
        );
    }

    #[test]
    fn not_listening_and_connection_reset_run_where_they_can_exist() {
        assert_eq!(runnable(Fault::NotListening).len(), 146);
        assert_eq!(runnable(Fault::ConnectionReset).len(), 126);
        assert!(runnable(Fault::NotListening).iter().all(|c| !matches!(
            c.transport,
            Transport::FastCgi | Transport::Https | Transport::Container
        )));
        assert!(
            runnable(Fault::ConnectionReset)
                .iter()
                .all(|c| matches!(c.transport, Transport::Loopback | Transport::Https))
        );
        let cell = |fault, proxy, transport| Cell {
            fault,
            proxy,
            transport,
            topology: Topology::Single,
            condition: Condition::Cold,
        };
        let text = |c: Cell| c.expected().map(|e| e.text());
        assert_eq!(
            text(cell(Fault::NotListening, Proxy::Apache, Transport::Unix)).as_deref(),
            Some("upstream / not_listening / 503 / proxy")
        );
        assert_eq!(
            text(cell(
                Fault::NotListening,
                Proxy::Varnish,
                Transport::Loopback
            ))
            .as_deref(),
            Some("upstream / not_listening / 503 / cache")
        );
        assert_eq!(
            text(cell(
                Fault::ConnectionReset,
                Proxy::Haproxy,
                Transport::Https
            ))
            .as_deref(),
            Some("response / connection_reset / 502 / proxy")
        );
        assert_eq!(
            text(cell(
                Fault::ConnectionReset,
                Proxy::VarnishNginx,
                Transport::Loopback
            ))
            .as_deref(),
            Some("response / connection_reset / 502 / proxy")
        );
        assert!(
            cell(Fault::NotListening, Proxy::Nginx, Transport::FastCgi)
                .skip()
                .is_some_and(|why| why.contains("PHP-FPM"))
        );
    }

    #[test]
    fn statuses_follow_the_proxy() {
        let c = Cell {
            fault: Fault::ServiceDown,
            proxy: Proxy::Haproxy,
            transport: Transport::Loopback,
            topology: Topology::Single,
            condition: Condition::Warm,
        };
        assert_eq!(c.expected().map(|e| e.status), Some(503));
        let unix = Cell {
            fault: Fault::WrongTarget,
            transport: Transport::Unix,
            ..c
        };
        assert_eq!(unix.expected().map(|e| e.cause), Some("wrong_socket_path"));
        assert!(
            Cell {
                fault: Fault::FirewallBlocked,
                ..c
            }
            .skip()
            .is_some()
        );
    }

    #[test]
    fn the_socket_and_protocol_faults_run_on_their_transports() {
        let denied = runnable(Fault::SocketPermissionDenied);
        let mismatch = runnable(Fault::ProtocolMismatch);
        // 4 proxies x 2 transports x (3 topologies x 5 conditions less 2 by-address).
        assert_eq!((denied.len(), mismatch.len()), (104, 104));
        assert!(
            denied
                .iter()
                .all(|c| matches!(c.transport, Transport::Unix | Transport::FastCgi))
        );
        assert!(
            mismatch
                .iter()
                .all(|c| matches!(c.transport, Transport::Loopback | Transport::FastCgi))
        );
        assert!(
            denied
                .iter()
                .chain(&mismatch)
                .all(|c| !matches!(c.proxy, Proxy::Varnish | Proxy::VarnishNginx))
        );
        let cell = |fault, proxy, transport| Cell {
            fault,
            proxy,
            transport,
            topology: Topology::Single,
            condition: Condition::Warm,
        };
        let text = |c: Cell| c.expected().map(|e| e.text());
        assert_eq!(
            text(cell(
                Fault::SocketPermissionDenied,
                Proxy::Apache,
                Transport::FastCgi
            ))
            .as_deref(),
            Some("handoff / socket_permission_denied / 503 / proxy")
        );
        assert_eq!(
            text(cell(
                Fault::ProtocolMismatch,
                Proxy::Caddy,
                Transport::FastCgi
            ))
            .as_deref(),
            Some("handoff / protocol_mismatch / 502 / proxy")
        );
        assert_eq!(
            text(cell(
                Fault::ProtocolMismatch,
                Proxy::Haproxy,
                Transport::Loopback
            ))
            .as_deref(),
            Some("handoff / protocol_mismatch / 504 / proxy")
        );
        let behind = Cell {
            topology: Topology::RoundRobin,
            ..cell(Fault::ProtocolMismatch, Proxy::Haproxy, Transport::Loopback)
        };
        assert_eq!(behind.expected().map(|e| e.status), Some(502));
    }
}
