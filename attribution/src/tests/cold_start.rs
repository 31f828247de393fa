//! Rows for cold starts (issue 11, item 3): the agent started on a host that
//! was already broken, so it never saw the app listen and reports the
//! stopped, failed or enabled-but-inactive services as candidates (role
//! `candidate`) on a noisy host. A candidate tied to the target by its name,
//! its `ExecStart` or its working directory is the verdict's unit; an untied
//! one is never named, and the verdict stays `insufficient_evidence`.

use super::*;
use Cause::*;

const REFUSED: &str = "service_down|wrong_port|not_listening";
const ENOENT: &str = "wrong_socket_path|service_down";
const APP: &str = "http://127.0.0.1:3000/";
const REFUSED_LINE: &str =
    "connect() failed (111: Connection refused) while connecting to upstream";

/// nginx to 127.0.0.1:3000 on a noisy host the agent just started on:
/// refused in the log and in the direct probe.
fn refused(h: Host) -> Case {
    site("shop.example").public("ok", 502, "nginx").host(
        h.ngx(REFUSED, "error", REFUSED_LINE, APP).probe(
            "127.0.0.1:3000",
            "refused",
            "connect",
            0,
            "",
        ),
    )
}

/// Only nginx and the noise: the agent has no memory of the app.
fn cold() -> Host {
    nginx("web1", "http://127.0.0.1:3000").noise()
}

/// A crash loop's journal as the agent reports a watched candidate's events.
fn looping(h: Host, unit: &str) -> Host {
    h.restarts(unit, 5)
        .event_at(unit, "exit", T0, "code=exited status=1")
        .event_at(unit, "restart", T0 + 1_000, "automatic, restart counter 4")
        .event_at(unit, "exit", T0 + 20_000, "code=exited status=1")
}

pub(super) fn rows() -> Vec<Row> {
    vec![
        row("cold start: failed app.service, ExecStart names port 3000", refused(cold().candidate("app.service", "failed", "failed")
            .exec_start("app.service", "/usr/bin/node /srv/app/server.js --port 3000")), is(ServiceDown, 502, Hop::Proxy)),
        row("cold start: enabled app inactive, WorkingDirectory named after the site", refused(cold().candidate("app.service", "inactive", "dead")
            .workdir("app.service", "/srv/shop/current")), is(ServiceDown, 502, Hop::Proxy)),
        row("cold start: shop-api failed, tied by the site's name", refused(cold().candidate("shop-api.service", "failed", "failed")),
            is(ServiceDown, 502, Hop::Proxy)),
        row("cold start: gunicorn bound to 127.0.0.1:3000 crash-looping", refused(looping(cold().candidate("app.service", "activating", "auto-restart")
            .exec_start("app.service", "/srv/venv/bin/gunicorn --bind 127.0.0.1:3000 app.wsgi"), "app.service")), is(CrashLoop, 502, Hop::Proxy)),
        row("cold start: app on a unix socket, ExecStart binds it", site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "http://unix:/run/app.sock").noise().candidate("app.service", "failed", "failed")
                .exec_start("app.service", "/srv/venv/bin/gunicorn --bind unix:/run/app.sock app.wsgi")
                .ngx(ENOENT, "crit", "connect() to unix:/run/app.sock failed (2: No such file or directory) while connecting to upstream", "http://unix:/run/app.sock:"),
        ), is(ServiceDown, 502, Hop::Proxy)),
        row("cold start: the tied candidate wins over an untied failed one", refused(cold().candidate("backup.service", "failed", "failed")
            .exec_start("backup.service", "/usr/bin/restic backup --limit-upload 3000 /srv")
            .candidate("app.service", "inactive", "dead").exec_start("app.service", "/usr/bin/env PORT=3000 /srv/app/bin/app")),
            is(ServiceDown, 502, Hop::Proxy)),
        near("cold start near-miss: a lone failed backup job mentions 3000 as a rate", ServiceDown, refused(cold().candidate("backup.service", "failed", "failed")
            .exec_start("backup.service", "/usr/bin/restic backup --limit-upload 3000 /srv")), is(InsufficientEvidence, 502, Hop::Proxy)),
        near("cold start near-miss: a crash-looping worker in its own directory", CrashLoop, refused(looping(cold().candidate("worker.service", "activating", "auto-restart")
            .workdir("worker.service", "/srv/worker").exec_start("worker.service", "/srv/worker/bin/worker --queue default"), "worker.service")),
            is(InsufficientEvidence, 502, Hop::Proxy)),
        near("cold start near-miss: an inactive app configured for another port", WrongPort, refused(cold().candidate("billing.service", "inactive", "dead")
            .exec_start("billing.service", "/srv/billing/bin/billing --port 3001")), is(InsufficientEvidence, 502, Hop::Proxy)),
        near("cold start near-miss: a failed candidate's ExecStart names its database", ServiceDown, refused(cold().candidate("report.service", "failed", "failed")
            .exec_start("report.service", "/srv/report/run --db 10.0.0.9:3000")), is(InsufficientEvidence, 502, Hop::Proxy)),
    ]
}

/// Units of the near-miss rows that must never appear in a verdict.
const UNTIED: &[&str] = &[
    "backup.service",
    "worker.service",
    "billing.service",
    "report.service",
];

/// No verdict names an untied candidate or the noise; an untied candidate
/// is counted in `missing` instead.
#[test]
fn untied_candidates_are_counted_never_named() {
    for r in rows() {
        let got = attribute(&r.ev);
        for v in &got {
            let text = format!(
                "{} {} {:?} {:?}",
                v.summary, v.next_check, v.evidence, v.missing
            );
            for unit in UNTIED
                .iter()
                .chain(gw502_testkit::NOISE.iter().map(|n| &n.0))
            {
                assert!(!text.contains(unit), "{}: names {unit}: {text}", r.name);
            }
        }
        let v = got.first().expect("a verdict");
        if v.cause == InsufficientEvidence {
            assert!(
                v.missing.iter().any(|m| m.starts_with(
                    "1 stopped or failed service unit(s) on web1 not tied to 127.0.0.1:3000"
                )),
                "{}: {:?}",
                r.name,
                v.missing
            );
        }
    }
}

/// The tie a reader cannot see in the unit's state is cited as evidence.
#[test]
fn the_tie_is_cited() {
    let by_exec = rows().remove(0);
    let v = attribute(&by_exec.ev).remove(0);
    assert!(
        v.evidence.iter().any(|e| e.source == crate::Source::Systemd
            && e.detail == "app.service ExecStart names 127.0.0.1:3000: /usr/bin/node /srv/app/server.js --port 3000"),
        "{:?}",
        v.evidence
    );
    assert!(v.next_check.contains("app.service"), "{}", v.next_check);
    let by_dir = rows().remove(1);
    let weak = attribute(&by_dir.ev).remove(0);
    assert!(
        weak.evidence
            .iter()
            .any(|e| e.detail
                == "app.service WorkingDirectory /srv/shop/current matches shop.example")
    );
    assert!(
        weak.confidence < v.confidence,
        "{} vs {}",
        weak.confidence,
        v.confidence
    );
}
