//! Rows for containerised upstreams: nginx → 127.0.0.1:8080 → docker-proxy
//! → a container, on a host with the usual noise. The container entries are
//! shaped like the agent's containers source reports them (see
//! `agent/fixtures/docker/` for the real answers they come from).

use super::*;
use Cause::*;

const REFUSED: &str = "service_down|wrong_port|not_listening";
const REFUSED_LINE: &str =
    "connect() failed (111: Connection refused) while connecting to upstream";
const CLOSED_LINE: &str =
    "upstream prematurely closed connection while reading response header from upstream";
const UP: &str = "http://127.0.0.1:8080/";

/// nginx for the site to 127.0.0.1:8080, Docker on the host, noise around.
fn docker_host() -> Host {
    nginx("web1", "http://127.0.0.1:8080").noise().docker()
}

/// Connections to the target are refused, by nginx and by the agent's probe.
fn refused(h: Host) -> Case {
    site("shop.example").public("ok", 502, "nginx").host(
        h.ngx(REFUSED, "error", REFUSED_LINE, UP).probe(
            "127.0.0.1:8080",
            "refused",
            "connect",
            0,
            "",
        ),
    )
}

/// docker-proxy accepts, then closes: nginx logs a premature close.
fn closed(h: Host) -> Case {
    site("shop.example").public("ok", 502, "nginx").host(
        h.ngx("premature_close", "error", CLOSED_LINE, UP).probe(
            "127.0.0.1:8080",
            "premature_close",
            "response",
            0,
            "",
        ),
    )
}

fn stopped(c: &mut Container) {
    c.exit_code = 137;
}

fn looping(c: &mut Container) {
    c.state = "restarting".into();
    c.restart_count = 8;
    c.exit_code = 3;
    c.restart_policy = "always".into();
    c.logs.push(ContainerLogLine {
        at_ms: T0,
        stream: "stderr".into(),
        line: "ERROR: cannot read /app/config.yml: no such file".into(),
    });
}

fn oom(c: &mut Container) {
    c.exit_code = 137;
    c.oom_killed = true;
    c.memory_limit = 48 << 20;
}

fn loopback_bound(c: &mut Container) {
    c.listens = vec!["127.0.0.1:8000".into()];
}

pub(super) fn rows() -> Vec<Row> {
    vec![
        row(
            "containers: the container behind 127.0.0.1:8080 is stopped",
            refused(docker_host().container(
                "shop-web",
                "exited",
                "127.0.0.1",
                8080,
                8000,
                stopped,
            )),
            is(ServiceDown, 502, Hop::Proxy),
        ),
        near(
            "containers near-miss: stopped, but because it keeps crashing",
            ServiceDown,
            refused(docker_host().container(
                "shop-web",
                "restarting",
                "127.0.0.1",
                8080,
                8000,
                looping,
            )),
            is(CrashLoop, 502, Hop::Proxy),
        ),
        row(
            "containers: restart loop",
            refused(docker_host().container(
                "shop-web",
                "restarting",
                "127.0.0.1",
                8080,
                8000,
                looping,
            )),
            is(CrashLoop, 502, Hop::Proxy),
        ),
        row(
            "containers: restart loop caught just after a start",
            closed(
                docker_host().container("shop-web", "running", "127.0.0.1", 8080, 8000, |c| {
                    c.restart_count = 6;
                    c.started_at_ms = NOW - 3_000;
                    c.listens.clear();
                }),
            ),
            is(CrashLoop, 502, Hop::Proxy),
        ),
        near(
            "containers near-miss: restarted long ago, stopped now",
            CrashLoop,
            refused(
                docker_host().container("shop-web", "exited", "127.0.0.1", 8080, 8000, |c| {
                    c.restart_count = 4;
                    c.finished_at_ms = NOW - 3_600_000;
                }),
            ),
            is(ServiceDown, 502, Hop::Proxy),
        ),
        row(
            "containers: OOM-killed without a restart policy",
            refused(docker_host().container("shop-web", "exited", "127.0.0.1", 8080, 8000, oom)),
            is(ServiceDown, 502, Hop::Proxy),
        ),
        row(
            "containers: OOM-killed and restarted again and again",
            refused(docker_host().container(
                "shop-web",
                "restarting",
                "127.0.0.1",
                8080,
                8000,
                |c| {
                    looping(c);
                    oom(c);
                },
            )),
            is(CrashLoop, 502, Hop::Proxy),
        ),
        row(
            "containers: the app binds 127.0.0.1 inside its namespace",
            closed(docker_host().container(
                "shop-web",
                "running",
                "127.0.0.1",
                8080,
                8000,
                loopback_bound,
            )),
            is(BindMismatch, 502, Hop::Proxy),
        ),
        near(
            "containers near-miss: the app listens on 0.0.0.0 and really closes early",
            BindMismatch,
            closed(docker_host().container("shop-web", "running", "127.0.0.1", 8080, 8000, |_| {})),
            is(PrematureClose, 502, Hop::Proxy),
        ),
        row(
            "containers: published to a container port the app does not listen on",
            closed(
                docker_host().container("shop-web", "running", "127.0.0.1", 8080, 8000, |c| {
                    c.listens = vec!["0.0.0.0:3000".into()];
                }),
            ),
            is(WrongPort, 502, Hop::Proxy),
        ),
        row(
            "containers: published on 10.0.0.5 only while nginx targets 127.0.0.1",
            refused(docker_host().container("shop-web", "running", "10.0.0.5", 8080, 8000, |_| {})),
            is(BindMismatch, 502, Hop::Proxy),
        ),
        row(
            "containers: recreated on host port 8081, nginx still targets 8080",
            refused(
                docker_host().container("shop-web", "running", "127.0.0.1", 8081, 8000, |c| {
                    c.past_host_ports = vec![8080];
                }),
            ),
            is(WrongPort, 502, Hop::Proxy),
        ),
        row(
            "containers: cold start, the site's container is published on 8081",
            refused(docker_host().container(
                "shop-web",
                "running",
                "127.0.0.1",
                8081,
                8000,
                |_| {},
            )),
            is(WrongPort, 502, Hop::Proxy),
        ),
        near(
            "containers near-miss: refused on 8080, the only container is an unrelated one on 9000",
            WrongPort,
            refused(docker_host().container("grafana", "running", "127.0.0.1", 9000, 3000, |_| {})),
            is(InsufficientEvidence, 502, Hop::Proxy),
        ),
        row(
            "containers: unhealthy container answers 500 itself",
            site("shop.example").public("ok", 500, "app").host(
                docker_host()
                    .container("shop-web", "running", "127.0.0.1", 8080, 8000, |c| {
                        c.health = "unhealthy".into();
                        c.failing_streak = 5;
                        c.health_log =
                            "exit 1: urllib.error.HTTPError: HTTP Error 500: Internal Server Error"
                                .into();
                    })
                    .access(500, "500", 30)
                    .probe("127.0.0.1:8080", "ok", "response", 500, ""),
            ),
            is(UpstreamReturnedError, 500, Hop::Upstream),
        ),
    ]
}

fn verdict(name: &str) -> crate::Verdict {
    let r = rows().into_iter().find(|r| r.name == name).expect("row");
    attribute(&r.ev).into_iter().next().expect("a verdict")
}

#[test]
fn verdicts_name_the_container_never_docker_service() {
    for r in rows() {
        for v in attribute(&r.ev) {
            let text = format!("{} {} {:?}", v.summary, v.next_check, v.evidence);
            assert!(!text.contains("docker.service"), "{}: {text}", r.name);
        }
    }
    let down = verdict("containers: the container behind 127.0.0.1:8080 is stopped");
    assert!(
        down.summary.contains("container shop-web"),
        "{}",
        down.summary
    );
    assert!(
        down.evidence
            .iter()
            .any(|e| e.source == gw502_vocab::Source::Containers)
    );
    assert!(down.confidence >= 0.9, "{}", down.confidence);
}

#[test]
fn an_oom_kill_is_explained_in_the_verdict() {
    let v = verdict("containers: OOM-killed without a restart policy");
    assert!(
        v.next_check.contains("OOM") && v.next_check.contains("48 MiB"),
        "{}",
        v.next_check
    );
    assert!(v.summary.contains("OOM-killed"), "{}", v.summary);
    assert!(
        v.evidence.iter().any(|e| e.detail.contains("OOMKilled")),
        "{:?}",
        v.evidence
    );
    let looped = verdict("containers: OOM-killed and restarted again and again");
    assert!(looped.next_check.contains("OOM"), "{}", looped.next_check);
    assert!(
        looped
            .evidence
            .iter()
            .any(|e| e.detail.contains("cannot read /app/config.yml")),
        "the container's last error line is cited: {:?}",
        looped.evidence
    );
}

#[test]
fn an_unhealthy_container_cites_its_health_check() {
    let v = verdict("containers: unhealthy container answers 500 itself");
    assert!(
        v.evidence
            .iter()
            .any(|e| e.detail.contains("health=unhealthy")),
        "{:?}",
        v.evidence
    );
    assert!(v.next_check.contains("HTTP Error 500"), "{}", v.next_check);
}

#[test]
fn bind_mismatch_says_where_the_app_listens() {
    let v = verdict("containers: the app binds 127.0.0.1 inside its namespace");
    assert!(v.summary.contains("127.0.0.1:8000"), "{}", v.summary);
    assert!(v.next_check.contains("0.0.0.0:8000"), "{}", v.next_check);
}
