//! Rows for the response and dependency layers.

use super::*;
use Cause::*;

const APP: &str = "http://127.0.0.1:3000/";

fn line(cause: &str, msg: &str) -> Case {
    site("shop.example")
        .public("ok", 502, "nginx")
        .host(web("web1").ngx(cause, "error", msg, APP))
}

fn relayed(status: u32, journal: &[(u32, &str)]) -> Case {
    let mut h = web("web1").access(status, &status.to_string(), 30);
    for (prio, msg) in journal {
        h = h.journal("app.service", *prio, msg);
    }
    site("shop.example").public("ok", status, "app").host(h)
}

pub(super) fn rows() -> Vec<Row> {
    let big = "upstream sent too big header while reading response header from upstream";
    let bad = "upstream sent invalid header: \"X-Trace\\x00: ab\" while reading response header from upstream";
    let early =
        "upstream prematurely closed connection while reading response header from upstream";
    let body = "upstream sent invalid chunked response while reading upstream";
    let reset =
        "recv() failed (104: Connection reset by peer) while reading response header from upstream";
    vec![
        row(
            "response: too big header",
            line("header_too_big", big),
            is(HeaderTooBig, 502, Hop::Proxy),
        ),
        near(
            "response near-miss: invalid header is not size",
            HeaderTooBig,
            line("invalid_header", bad),
            is(InvalidHeader, 502, Hop::Proxy),
        ),
        row(
            "response: invalid header with NUL",
            line("invalid_header", bad),
            is(InvalidHeader, 502, Hop::Proxy),
        ),
        near(
            "response near-miss: oversize headers",
            InvalidHeader,
            line("header_too_big", big),
            is(HeaderTooBig, 502, Hop::Proxy),
        ),
        row(
            "response: premature close before header",
            line("premature_close", early),
            is(PrematureClose, 502, Hop::Proxy),
        ),
        near(
            "response near-miss: close while reading the body",
            PrematureClose,
            line(
                "invalid_body",
                "upstream prematurely closed connection while reading upstream",
            ),
            is(InvalidBody, 502, Hop::Proxy),
        ),
        row(
            "response: reset by peer",
            line("connection_reset", reset).origin("web1", "ok", 200),
            is(ConnectionReset, 502, Hop::Proxy),
        ),
        near(
            "response near-miss: resets from a crash-looping app",
            ConnectionReset,
            site("shop.example").public("ok", 502, "nginx").host(
                web("web1")
                    .ngx("connection_reset", "error", reset, APP)
                    .restarts("app.service", 9)
                    .event_at("app.service", "exit", T0, "code=killed, status=11/SEGV")
                    .event_at(
                        "app.service",
                        "exit",
                        T0 + 40_000,
                        "code=killed, status=11/SEGV",
                    ),
            ),
            is(CrashLoop, 502, Hop::Proxy),
        ),
        row(
            "response: invalid chunked body",
            line("invalid_body", body),
            is(InvalidBody, 502, Hop::Proxy),
        ),
        near(
            "response near-miss: unlabelled premature close line",
            InvalidBody,
            line(
                "",
                &format!("2024/05/01 10:00:00 [error] 811#811: *7 {early}"),
            ),
            is(PrematureClose, 502, Hop::Proxy),
        ),
        row(
            "dependency: app 500 and postgres refused",
            relayed(
                500,
                &[(
                    3,
                    "psycopg2.OperationalError: could not connect to server: Connection refused\n\tIs the server running on host \"127.0.0.1\" and accepting TCP/IP connections on port 5432?",
                )],
            ),
            is(DependencyFailure, 500, Hop::Upstream),
        ),
        row(
            "dependency: 503 and redis refused",
            relayed(503, &[(3, "Error: connect ECONNREFUSED 127.0.0.1:6379")]),
            is(DependencyFailure, 503, Hop::Upstream),
        ),
        near(
            "dependency near-miss: app 503 with an info-only journal",
            DependencyFailure,
            relayed(
                503,
                &[
                    (6, "GET /checkout 503 maintenance mode"),
                    (3, "maintenance mode enabled by deploy"),
                ],
            ),
            is(UpstreamReturnedError, 503, Hop::Upstream),
        ),
        row(
            "dependency: PHP PDO refused, logged to stderr (info)",
            relayed(
                500,
                &[(
                    6,
                    "PHP Fatal error:  Uncaught PDOException: SQLSTATE[HY000] [2002] Connection refused in /var/www/shop/db.php:7",
                )],
            ),
            is(DependencyFailure, 500, Hop::Upstream),
        ),
        row(
            "dependency: psycopg2 connection to server at ... failed (info)",
            relayed(
                500,
                &[(
                    6,
                    "psycopg2.OperationalError: connection to server at \"127.0.0.1\", port 5432 failed: Connection refused",
                )],
            ),
            is(DependencyFailure, 500, Hop::Upstream),
        ),
        row(
            "dependency: redis-py Error 111 on a non-standard port (info)",
            relayed(
                503,
                &[(
                    6,
                    "redis.exceptions.ConnectionError: Error 111 connecting to cache.internal:7000. Connection refused.",
                )],
            ),
            is(DependencyFailure, 503, Hop::Upstream),
        ),
        row(
            "dependency: the app on another host logs postgres refused (info)",
            site("shop.example")
                .public("ok", 500, "app")
                .host(nginx("web1", "http://10.77.0.12:8080").access(500, "500", 30))
                .host(
                    host("app1")
                        .addr("10.77.0.12/24")
                        .unit("app.service", "active", "running", "listener")
                        .tcp("0.0.0.0", 8080, "app.service")
                        .journal(
                            "app.service",
                            6,
                            "psycopg2.OperationalError: connection to server at \"127.0.0.1\", port 5432 failed: Connection refused",
                        ),
                ),
            is(DependencyFailure, 500, Hop::Upstream),
        ),
        near(
            "dependency near-miss: a host the proxy does not target logs database errors",
            DependencyFailure,
            site("shop.example")
                .public("ok", 500, "app")
                .host(nginx("web1", "http://10.77.0.12:8080").access(500, "500", 30))
                .host(
                    host("app1")
                        .addr("10.77.0.12/24")
                        .unit("app.service", "active", "running", "listener")
                        .tcp("0.0.0.0", 8080, "app.service")
                        .journal("app.service", 6, "GET /checkout 500 12ms"),
                )
                .host(
                    host("db-client1")
                        .addr("10.77.0.13/24")
                        .unit("report.service", "active", "running", "listener")
                        .journal(
                            "report.service",
                            3,
                            "psycopg2.OperationalError: connection to server at \"10.77.0.40\", port 5432 failed: Connection refused",
                        ),
                ),
            is(UpstreamReturnedError, 500, Hop::Upstream),
        ),
        near(
            "dependency near-miss: another unit's database errors while the app answers 500",
            DependencyFailure,
            site("shop.example").public("ok", 500, "app").host(
                web("web1")
                    .access(500, "500", 30)
                    .journal("app.service", 6, "GET /checkout 500 12ms")
                    .unit("grafana-server.service", "active", "running", "listener")
                    .journal(
                        "grafana-server.service",
                        3,
                        "dial tcp 127.0.0.1:5432: connect: connection refused",
                    ),
            ),
            is(UpstreamReturnedError, 500, Hop::Upstream),
        ),
    ]
}
