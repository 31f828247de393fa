//! The lab scenarios of the issue: per case the hosts to boot, the site, the
//! visitors, the fault to inject and the verdict to expect. The fault matrix
//! (`tests/src/matrix.rs`) now covers most of them: [`matrix_cell`] names the cell that
//! stands for each, and the lab suite (`tests/tests/lab_scenarios.rs`) runs only the
//! other one (a recovery).
//! Benchmarks (the time-to-attribution example) still set up a few of them next to a
//! peer.

use serde_json::Value;

use crate::lab::{HostSpec, fixtures};
use crate::scenario::shapes::{self, web_host};
use crate::scenario::{LabFleet, LabSite};

/// The verdict a scenario expects.
#[derive(Debug, Clone, Copy)]
pub struct Expect {
    /// TAXONOMY layer.
    pub layer: &'static str,
    /// TAXONOMY cause.
    pub cause: &'static str,
    /// The status visitors get.
    pub status: u64,
    /// Which hop answered.
    pub emitted_by: &'static str,
}

impl Expect {
    /// `layer / cause / status / emitted_by`.
    pub fn text(&self) -> String {
        format!(
            "{} / {} / {} / {}",
            self.layer, self.cause, self.status, self.emitted_by
        )
    }

    /// Whether incident `i` (gw502ctl JSON) has this verdict.
    pub fn matches(&self, i: &Value) -> bool {
        i["layer"] == self.layer
            && i["cause"] == self.cause
            && i["status"] == self.status
            && i["emitted_by"] == self.emitted_by
    }
}

/// What happens after the fault.
pub enum Then {
    /// The expected incident opens.
    Attribute(Expect),
    /// The expected incident opens, then `fix` runs and the incident resolves.
    Recover(Expect, fn(&LabFleet) -> anyhow::Result<()>),
    /// No incident opens for the whole evidence window.
    Quiet,
}

impl Then {
    /// The verdict expected, if an incident is.
    pub fn expected(&self) -> Option<&Expect> {
        match self {
            Then::Attribute(e) | Then::Recover(e, _) => Some(e),
            Then::Quiet => None,
        }
    }
}

/// One scenario.
pub struct Case {
    /// Its number in the table.
    pub number: u32,
    /// What is done.
    pub fault: &'static str,
    /// The collector's configured sites.
    pub sites: Vec<LabSite>,
    /// The hosts to boot.
    pub hosts: Vec<HostSpec>,
    /// Where visitors go: address, a path that answers 200 when healthy, the path they
    /// request after the fault, and how many visit at once.
    pub visit: (&'static str, &'static str, &'static str, usize),
    /// The fault.
    pub inject: fn(&LabFleet) -> anyhow::Result<()>,
    /// What must follow.
    pub then: Then,
}

/// An incident's verdict as `layer / cause / status / emitted_by`.
pub fn verdict(i: &Value) -> String {
    format!(
        "{} / {} / {} / {}",
        i["layer"].as_str().unwrap_or("?"),
        i["cause"].as_str().unwrap_or("?"),
        i["status"],
        i["emitted_by"].as_str().unwrap_or("?")
    )
}

/// The matrix cell that runs scenario `number`'s fault with the same verdict, if one
/// does: the lab suite leaves those to the matrix.
pub fn matrix_cell(number: u32) -> Option<&'static str> {
    Some(match number {
        1 => "service_down.nginx.loopback.single.warm",
        2 => "crash_loop.nginx.loopback.single.warm",
        3 => "wrong_target.nginx.loopback.single.warm",
        4 => "wrong_target.nginx.fastcgi.single.warm",
        5 => "tls_mismatch.nginx.loopback.single.warm",
        6 => "dns_failure.nginx.remote.single.warm",
        7 => "firewall_blocked.nginx.remote.single.warm",
        8 => "header_too_big.nginx.loopback.single.warm",
        9 => "premature_close.nginx.loopback.single.warm",
        10 => "proxy_down.nginx.loopback.edge.warm",
        11 => "app_503.nginx.loopback.single.warm",
        12 => "saturated.nginx.fastcgi.single.warm",
        13 => "control.nginx.loopback.single.warm",
        // 14: the matrix judges the open incident, not its resolution.
        _ => return None,
    })
}

fn site1() -> Vec<LabSite> {
    vec![LabSite::new("site1", "http://10.77.0.11/", &["host1"])]
}

/// The verdict a scenario expects.
pub fn expect(
    layer: &'static str,
    cause: &'static str,
    status: u64,
    emitted_by: &'static str,
) -> Expect {
    Expect {
        layer,
        cause,
        status,
        emitted_by,
    }
}

fn stop_app(f: &LabFleet) -> anyhow::Result<()> {
    f.host("host1")?.systemctl(&["stop", "app"])
}

/// The 14 scenarios, in order.
pub fn cases() -> Vec<Case> {
    let h1 = "10.77.0.11:80";
    vec![
        Case {
            number: 1,
            fault: "app unit stopped",
            sites: site1(),
            hosts: vec![web_host("host1", 1)],
            visit: (h1, "/", "/", 2),
            inject: stop_app,
            then: Then::Attribute(expect("upstream", "service_down", 502, "proxy")),
        },
        Case {
            number: 2,
            fault: "app crash-looping under Restart=always",
            sites: site1(),
            hosts: vec![web_host("host1", 1)],
            visit: (h1, "/", "/", 2),
            inject: |f| {
                let h = f.host("host1")?;
                h.write_file(
                    "/etc/systemd/system/app.service.d/crash.conf".as_ref(),
                    "[Service]\nExecStart=\nExecStart=/usr/bin/python3 /opt/gw502-lab/fault_app.py --crash\n",
                    0o644,
                )?;
                h.systemctl(&["daemon-reload"])?;
                h.systemctl(&["restart", "app"])
            },
            then: Then::Attribute(expect("upstream", "crash_loop", 502, "proxy")),
        },
        Case {
            number: 3,
            fault: "nginx proxy_pass to a port where nothing listens, app on another",
            sites: site1(),
            hosts: vec![web_host("host1", 1)],
            visit: (h1, "/", "/", 2),
            inject: |f| {
                shapes::reload_site(
                    f.host("host1")?,
                    &fixtures::nginx_proxy(80, "127.0.0.1:8081"),
                )
            },
            then: Then::Attribute(expect("handoff", "wrong_port", 502, "proxy")),
        },
        Case {
            number: 4,
            fault: "fastcgi_pass to a missing PHP-FPM socket, pool on another path",
            sites: site1(),
            hosts: vec![fixtures::php_host("host1", 1, 4)],
            visit: (h1, "/index.php", "/index.php", 2),
            inject: |f| {
                let site =
                    fixtures::nginx_fastcgi(80, "/run/php/php-fpm-app.sock", fixtures::PHP_DOCROOT);
                shapes::reload_site(f.host("host1")?, &site)
            },
            then: Then::Attribute(expect("handoff", "wrong_socket_path", 502, "proxy")),
        },
        Case {
            number: 5,
            fault: "proxy_pass https:// to a plain-HTTP app",
            sites: site1(),
            hosts: vec![web_host("host1", 1)],
            visit: (h1, "/", "/", 2),
            inject: |f| {
                let site = fixtures::nginx_proxy(80, "127.0.0.1:8080")
                    .replace("proxy_pass http://", "proxy_pass https://");
                shapes::reload_site(f.host("host1")?, &site)
            },
            then: Then::Attribute(expect("handoff", "tls_mismatch", 502, "proxy")),
        },
        Case {
            number: 6,
            fault: "upstream host name that does not resolve",
            sites: site1(),
            hosts: vec![
                web_host("host1", 1)
                    .files(shapes::nxdomain_resolver())
                    .file("/etc/resolv.conf", "nameserver 127.0.0.1\n", 0o644)
                    .enabled("lab-dns"),
            ],
            visit: (h1, "/", "/", 2),
            inject: |f| {
                let site = fixtures::nginx_proxy(80, "127.0.0.1:8080").replace(
                    "proxy_pass http://127.0.0.1:8080;",
                    "resolver 127.0.0.1 valid=5s;\n        resolver_timeout 3s;\n        \
                     set $backend app-backend.lab;\n        proxy_pass http://$backend:8080;",
                );
                shapes::reload_site(f.host("host1")?, &site)
            },
            then: Then::Attribute(expect("handoff", "dns_failure", 502, "proxy")),
        },
        Case {
            number: 7,
            fault: "app on a second host, nft drop on its port in that host",
            sites: vec![LabSite::new("site1", "http://10.77.0.11/", &["host1"])],
            hosts: vec![
                shapes::proxy_host("host1", 1, "10.77.0.12:8080"),
                shapes::app_host("host2", 2, 8080),
            ],
            visit: (h1, "/", "/", 2),
            inject: |f| shapes::drop_port(f.host("host2")?, 8080),
            then: Then::Attribute(expect("handoff", "firewall_blocked", 504, "proxy")),
        },
        Case {
            number: 8,
            fault: "app answers with 64 KB of headers",
            sites: site1(),
            hosts: vec![web_host("host1", 1)],
            visit: (h1, "/", "/", 2),
            inject: |f| shapes::set_mode(f.host("host1")?, "big_headers"),
            then: Then::Attribute(expect("response", "header_too_big", 502, "proxy")),
        },
        Case {
            number: 9,
            fault: "app closes the connection without answering",
            sites: site1(),
            hosts: vec![web_host("host1", 1)],
            visit: (h1, "/", "/", 2),
            inject: |f| shapes::set_mode(f.host("host1")?, "close"),
            then: Then::Attribute(expect("response", "premature_close", 502, "proxy")),
        },
        Case {
            number: 10,
            fault: "nginx stopped on the origin behind an HAProxy edge host",
            sites: vec![LabSite::new("site1", "http://10.77.0.12/", &["origin"])],
            hosts: vec![
                web_host("origin", 1),
                fixtures::edge_host("edge", 2, "10.77.0.11:80".parse().unwrap()),
            ],
            visit: ("10.77.0.12:80", "/", "/", 2),
            inject: |f| f.host("origin")?.systemctl(&["stop", "nginx"]),
            then: Then::Attribute(expect("proxy", "proxy_down", 503, "edge")),
        },
        Case {
            number: 11,
            fault: "app itself answers 503",
            sites: site1(),
            hosts: vec![web_host("host1", 1)],
            visit: (h1, "/", "/", 2),
            inject: |f| shapes::set_mode(f.host("host1")?, "status 503"),
            then: Then::Attribute(expect(
                "upstream",
                "upstream_returned_error",
                503,
                "upstream",
            )),
        },
        Case {
            number: 12,
            fault: "PHP-FPM pm.max_children = 1, slow script under concurrent load",
            sites: vec![LabSite::new(
                "site1",
                "http://10.77.0.11/index.php",
                &["host1"],
            )],
            hosts: vec![shapes::php_host("host1", 1)],
            visit: (h1, "/index.php", "/index.php?sleep=3", 12),
            inject: |_| Ok(()),
            then: Then::Attribute(expect("upstream", "saturated", 502, "proxy")),
        },
        Case {
            number: 13,
            fault: "healthy control: normal traffic for the whole window",
            sites: site1(),
            hosts: vec![web_host("host1", 1)],
            visit: (h1, "/", "/", 2),
            inject: |_| Ok(()),
            then: Then::Quiet,
        },
        Case {
            number: 14,
            fault: "recovery: app stopped, then started again",
            sites: site1(),
            hosts: vec![web_host("host1", 1)],
            visit: (h1, "/", "/", 2),
            inject: stop_app,
            then: Then::Recover(expect("upstream", "service_down", 502, "proxy"), |f| {
                f.host("host1")?.systemctl(&["start", "app"])
            }),
        },
    ]
}
