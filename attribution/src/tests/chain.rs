//! Rows for the chain rule (issue 11, item 2): on a host with the noise real
//! hosts have (an alert manager, a database, an exporter, sshd, something on
//! a high port), a listener is the app only when evidence ties it to the
//! site's chain; otherwise the verdict is about the missing app, or honest
//! `insufficient_evidence`.

use super::*;
use Cause::*;

const REFUSED: &str = "service_down|wrong_port|not_listening";
const ENOENT: &str = "wrong_socket_path|service_down";
const APP: &str = "http://127.0.0.1:3000/";
const REFUSED_LINE: &str =
    "connect() failed (111: Connection refused) while connecting to upstream";

/// nginx to 127.0.0.1:3000 on a noisy host, refused, probe refused too.
fn refused(h: Host) -> Case {
    site("shop.example").public("ok", 502, "nginx").host(
        h.noise().ngx(REFUSED, "error", REFUSED_LINE, APP).probe(
            "127.0.0.1:3000",
            "refused",
            "connect",
            0,
            "",
        ),
    )
}

/// A host where the agent never saw the app: only nginx and the noise.
fn cold() -> Host {
    nginx("web1", "http://127.0.0.1:3000")
}

pub(super) fn rows() -> Vec<Row> {
    vec![
        row("chain: app moved to 3005, tied by the agent's memory (role upstream)", refused(cold().unit("app.service", "active", "running", "upstream").tcp("127.0.0.1", 3005, "app.service")),
            is(WrongPort, 502, Hop::Proxy)),
        row("chain: shop-api on 3005, tied by the site's name", refused(cold().unit("shop-api.service", "active", "running", "listener").tcp("127.0.0.1", 3005, "shop-api.service")),
            is(WrongPort, 502, Hop::Proxy)),
        near("chain near-miss: app stopped, alertmanager listens on 9093", WrongPort, refused(web("web1").unit("app.service", "inactive", "dead", "upstream")),
            is(ServiceDown, 502, Hop::Proxy)),
        near("chain near-miss: app crash-looping, exporters listen", WrongPort, refused(web("web1").unit("app.service", "activating", "auto-restart", "upstream").restarts("app.service", 6)
            .event_at("app.service", "exit", T0, "code=exited, status=1/FAILURE").event_at("app.service", "exit", T0 + 20_000, "code=exited, status=1/FAILURE")),
            is(CrashLoop, 502, Hop::Proxy)),
        near("chain near-miss: app alive without a socket, noise on other ports", WrongPort, refused(web("web1").no_listeners("app.service")),
            is(NotListening, 502, Hop::Proxy)),
        near("chain near-miss: cold start, only unrelated listeners", WrongPort, refused(cold()), is(InsufficientEvidence, 502, Hop::Proxy)),
        near("chain near-miss: cold start, a stopped database is not the app", ServiceDown, refused(cold().unit("postgresql@15-main.service", "failed", "failed", "listener")),
            is(InsufficientEvidence, 502, Hop::Proxy)),
        near("chain near-miss: cold start, a configured unit without sockets is not the app", NotListening, refused(cold().unit("cron.service", "active", "running", "configured")),
            is(InsufficientEvidence, 502, Hop::Proxy)),
        near("chain near-miss: the other vhost's app on 4000 is not ours", WrongPort, site("shop.example").public("ok", 502, "nginx").host(
            web("web1").noise().unit("app.service", "inactive", "dead", "upstream")
                .unit("blog.service", "active", "running", "upstream").tcp("127.0.0.1", 4000, "blog.service")
                .edit(|s| {
                    let proxies = &mut s.proxy_config.as_mut().unwrap().proxies;
                    let mut t = proxies[0].targets[0].clone();
                    t.port = 4000;
                    t.address = "127.0.0.1:4000".into();
                    t.server_names = vec!["blog.example".into()];
                    proxies[0].targets.push(t);
                })
                .ngx(REFUSED, "error", REFUSED_LINE, APP),
        ), is(ServiceDown, 502, Hop::Proxy)),
        near("chain near-miss: cold start, unrelated sockets under /run", WrongSocketPath, site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "fastcgi://unix:/run/app.sock").noise()
                .unit("containerd.service", "active", "running", "listener").unix("/run/containerd/containerd.sock", "containerd.service", 0o660, 0, 0)
                .ngx(ENOENT, "crit", "connect() to unix:/run/app.sock failed (2: No such file or directory) while connecting to upstream", "fastcgi://unix:/run/app.sock:"),
        ), is(InsufficientEvidence, 502, Hop::Proxy)),
        row("chain: php-fpm on another socket in /run/php, cold start", site("shop.example").public("ok", 502, "nginx").host(
            nginx("web1", "fastcgi://unix:/run/php/php8.2-fpm.sock").noise()
                .unit("php8.2-fpm.service", "active", "running", "listener").unix("/run/php/php-fpm-www.sock", "php8.2-fpm.service", 0o660, 33, 33)
                .ngx(ENOENT, "crit", "connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream", "fastcgi://unix:/run/php/php8.2-fpm.sock:"),
        ), is(WrongSocketPath, 502, Hop::Proxy)),
    ]
}

/// No verdict of a noisy row names one of the unrelated services.
#[test]
fn noise_is_never_named() {
    for r in rows() {
        for v in attribute(&r.ev) {
            let text = format!("{} {} {:?}", v.summary, v.next_check, v.evidence);
            for (unit, _, _) in gw502_testkit::NOISE {
                let stem = unit.trim_end_matches(".service");
                assert!(!text.contains(stem), "{}: names {unit}: {text}", r.name);
            }
            for other in ["postgresql", "cron.service", "containerd", "blog.service"] {
                assert!(!text.contains(other), "{}: names {other}: {text}", r.name);
            }
        }
    }
}
