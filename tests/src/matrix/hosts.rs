//! The lab hosts of one matrix cell and its fault switch: the origin (proxy and, unless
//! the app is remote, the app), an app host for remote apps, an HAProxy edge in front of
//! one or three origins, the site the collector watches, and where visitors go.
//!
//! Hosts are realistic by default: every proxy serves a second, healthy vhost, and the
//! other proxies are installed but masked. Noisy hosts add unrelated listeners with
//! realistic unit names (an exporter, a cache, a backup agent on a high port); non-UTC
//! hosts live in `Europe/Berlin`.

use std::net::{SocketAddr, SocketAddrV4};

use crate::lab::spec::host_ip;
use crate::lab::{Host, HostSpec, LabFile};
use crate::scenario::shapes::{self, MODE_FILE};
use crate::scenario::{LabFleet, LabSite};

use super::containers;
use super::proxies::{self, DOCROOT, FPM_SOCKET, Upstream};
use super::tls::{self, APP_CERT, APP_KEY};
use super::{Cell, Condition, Fault, Topology, Transport};

const FAULT_APP: &str = include_str!("../scenario/fault_app.py");
const MODE_PHP: &str = include_str!("../../fixtures/matrix/mode.php");
const NOISE_PY: &str = include_str!("../../fixtures/matrix/noise.py");
/// The unix socket of the app on unix transport.
pub const APP_SOCKET: &str = "/run/lab-app/app.sock";
/// The port of the app's TLS listener on HTTPS transport (on loopback).
pub const HTTPS_PORT: u16 = 8443;

/// A cell laid out on lab hosts.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The cell.
    pub cell: Cell,
    /// The collector's site.
    pub site: LabSite,
    /// The hosts to boot.
    pub hosts: Vec<HostSpec>,
    /// Where visitors connect.
    pub visit: SocketAddr,
    /// The `Host` header visitors send.
    pub host_header: String,
    /// The origin host the fault hits.
    pub origin: String,
    /// The host that runs the app the fault hits.
    pub app_host: String,
    /// The app's unit there.
    pub app_unit: &'static str,
}

/// How many host indices a cell takes.
pub fn width(cell: &Cell) -> u8 {
    let app = u8::from(cell.transport == Transport::Remote);
    match cell.topology {
        Topology::Single => 1 + app,
        Topology::Edge => 2 + app,
        Topology::RoundRobin => 4,
    }
}

/// Lay `cell` out on hosts `base..base + width(cell)`; `n` makes names unique in a batch.
pub fn layout(cell: Cell, n: usize, base: u8) -> Layout {
    let name = format!("shop{n}.example");
    let origins: Vec<(String, u8)> = match cell.topology {
        Topology::RoundRobin => (0..3).map(|i| (format!("c{n}o{i}"), base + i)).collect(),
        _ => vec![(format!("c{n}o0"), base)],
    };
    let mut next = base + origins.len() as u8;
    let mut hosts = Vec::new();
    let mut app_host = origins[0].0.clone();
    let remote_app = if cell.transport == Transport::Remote {
        let (host, index) = (format!("c{n}app"), next);
        next += 1;
        app_host.clone_from(&host);
        hosts.push(
            HostSpec::new(&host, index)
                .files(app_files(Transport::Loopback, "0.0.0.0"))
                .enabled("app"),
        );
        Some(host_ip(index))
    } else {
        None
    };
    for (host, index) in &origins {
        // The certificate fault's proxy verifies the app from boot on: the fault changes
        // the certificate, not the proxy's config.
        let verify = cell.fault == Fault::TlsCertificateError;
        let upstream = match remote_app {
            Some(ip) => Upstream::Http(format!("{ip}:8080")),
            None if verify => Upstream::HttpsVerified(format!("127.0.0.1:{HTTPS_PORT}")),
            None => upstream(cell.transport, false),
        };
        let mut spec = HostSpec::new(host, *index)
            .files(proxies::site_files(
                cell.proxy,
                &upstream,
                &name,
                cell.condition != Condition::ByAddress,
            ))
            .enabled(cell.proxy.unit());
        if let Some(front) = cell.proxy.front() {
            spec = spec.enabled(front);
        }
        if cell.transport == Transport::Container {
            spec = containers::host(spec);
        } else if remote_app.is_none() {
            spec = spec.files(app_files(cell.transport, "127.0.0.1"));
            spec = spec.enabled(app_unit(cell.transport));
        }
        if verify {
            spec = spec.files([tls::ca_file()]);
        }
        hosts.push(condition(spec, cell.condition));
    }
    let origin_ip = host_ip(origins[0].1);
    let (visit, site) = if cell.topology == Topology::Single {
        let site_name = if cell.condition == Condition::ByAddress {
            name.clone()
        } else {
            format!("site{n}")
        };
        (
            SocketAddr::from((origin_ip, 80)),
            LabSite::new(
                &site_name,
                &format!("http://{origin_ip}/"),
                &[&origins[0].0],
            ),
        )
    } else {
        let edge = format!("c{n}edge");
        let servers: Vec<SocketAddrV4> = origins
            .iter()
            .map(|(_, i)| SocketAddrV4::new(host_ip(*i), 80))
            .collect();
        hosts.push(
            HostSpec::new(&edge, next)
                .file("/etc/haproxy/haproxy.cfg", edge_cfg(&servers), 0o644)
                .enabled("haproxy"),
        );
        let names: Vec<&str> = origins.iter().map(|(h, _)| h.as_str()).collect();
        let ip = host_ip(next);
        (
            SocketAddr::from((ip, 80)),
            LabSite::new(&format!("site{n}"), &format!("http://{ip}/"), &names),
        )
    };
    Layout {
        cell,
        site,
        hosts,
        visit,
        host_header: name,
        origin: origins[0].0.clone(),
        app_host,
        app_unit: app_unit(cell.transport),
    }
}

fn upstream(transport: Transport, wrong: bool) -> Upstream {
    match (transport, wrong) {
        (Transport::Https, false) => Upstream::Https(format!("127.0.0.1:{HTTPS_PORT}")),
        (Transport::Https, true) => Upstream::Https(format!("127.0.0.1:{}", HTTPS_PORT + 1)),
        (Transport::Unix, false) => Upstream::Unix(APP_SOCKET.into()),
        (Transport::Unix, true) => Upstream::Unix("/run/lab-app/shop.sock".into()),
        (Transport::FastCgi, false) => Upstream::FastCgi(FPM_SOCKET.into()),
        (Transport::FastCgi, true) => Upstream::FastCgi("/run/php/php-fpm-shop.sock".into()),
        (_, false) => Upstream::Http("127.0.0.1:8080".into()),
        (_, true) => Upstream::Http("127.0.0.1:8081".into()),
    }
}

fn app_unit(transport: Transport) -> &'static str {
    match transport {
        Transport::FastCgi => "php8.2-fpm.service",
        Transport::Container => containers::APP_UNIT,
        _ => "app.service",
    }
}

/// The app of a host: `fault_app.py` on TCP, a unix socket or TLS (with the certificate
/// made for this run), or PHP-FPM with `mode.php`.
fn app_files(transport: Transport, bind: &str) -> Vec<LabFile> {
    let mode = (MODE_FILE.into(), "ok\n".to_owned(), 0o644);
    match transport {
        Transport::FastCgi => vec![
            mode,
            (
                "/etc/php/8.2/fpm/pool.d/www.conf".into(),
                format!(
                    "; gw502 lab matrix: the pool behind the proxy\n[www]\nuser = www-data\n\
                     group = www-data\nlisten = {FPM_SOCKET}\nlisten.mode = 0666\npm = static\n\
                     pm.max_children = 4\ncatch_workers_output = yes\n"
                ),
                0o644,
            ),
            (
                format!("{DOCROOT}/mode.php").into(),
                MODE_PHP.to_owned(),
                0o644,
            ),
        ],
        Transport::Unix => vec![
            mode,
            (
                "/opt/gw502-lab/fault_app.py".into(),
                FAULT_APP.to_owned(),
                0o755,
            ),
            (
                "/etc/systemd/system/app.service".into(),
                format!(
                    "[Unit]\nDescription=shop app on {APP_SOCKET}\nStartLimitIntervalSec=0\n\n\
                     [Service]\nRuntimeDirectory=lab-app\n\
                     ExecStart=/usr/bin/python3 /opt/gw502-lab/fault_app.py --unix {APP_SOCKET}\n\
                     Restart=always\nRestartSec=1\n\n[Install]\nWantedBy=multi-user.target\n"
                ),
                0o644,
            ),
        ],
        Transport::Https => {
            let mut files = tls::app_files();
            files.extend([
                mode,
                (
                    "/opt/gw502-lab/fault_app.py".into(),
                    FAULT_APP.to_owned(),
                    0o755,
                ),
                (
                    "/etc/systemd/system/app.service".into(),
                    format!(
                        "[Unit]\nDescription=shop app on https://{bind}:{HTTPS_PORT}\n\
                         After=network.target\nStartLimitIntervalSec=0\n\n[Service]\n\
                         ExecStart=/usr/bin/python3 /opt/gw502-lab/fault_app.py --bind {bind} \
                         --port {HTTPS_PORT} --tls-cert {APP_CERT} --tls-key {APP_KEY}\n\
                         Restart=always\nRestartSec=1\n\n[Install]\nWantedBy=multi-user.target\n"
                    ),
                    0o644,
                ),
            ]);
            files
        }
        _ => shapes::app_unit(bind, 8080),
    }
}

/// The condition's marks on an origin host.
fn condition(spec: HostSpec, condition: Condition) -> HostSpec {
    match condition {
        Condition::Noisy => {
            let mut spec = spec.file("/opt/gw502-lab/noise.py", NOISE_PY, 0o755);
            for (unit, what, args) in [
                ("nginx-exporter", "metrics exporter", "http 127.0.0.1 9113"),
                ("cache", "key-value cache", "tcp 127.0.0.1 6379"),
                ("backup-agent", "backup agent", "tcp 0.0.0.0 49152"),
            ] {
                spec = spec
                    .file(
                        format!("/etc/systemd/system/{unit}.service"),
                        format!(
                            "[Unit]\nDescription={what}\n\n[Service]\n\
                             ExecStart=/usr/bin/python3 /opt/gw502-lab/noise.py {args}\n\
                             Restart=always\n\n[Install]\nWantedBy=multi-user.target\n"
                        ),
                        0o644,
                    )
                    .enabled(unit);
            }
            spec
        }
        Condition::NonUtc => spec
            .link("/etc/localtime", "/usr/share/zoneinfo/Europe/Berlin")
            .file("/etc/timezone", "Europe/Berlin\n", 0o644),
        _ => spec,
    }
}

/// An HAProxy edge round-robin over `origins` (one server is a plain edge).
fn edge_cfg(origins: &[SocketAddrV4]) -> String {
    let mut text = String::from(
        "# gw502 lab matrix: an HAProxy edge in front of the origins.\nglobal\n    \
         log /dev/log local0\n    user haproxy\n    group haproxy\n\ndefaults\n    log global\n    \
         mode http\n    option httplog\n    timeout connect 5s\n    timeout client 30s\n    \
         timeout server 30s\n\nfrontend edge\n    bind :80\n    default_backend origins\n\n\
         backend origins\n    balance roundrobin\n",
    );
    for (i, o) in origins.iter().enumerate() {
        text.push_str(&format!("    server origin{i} {o}\n"));
    }
    text
}

/// Inject the cell's fault.
pub fn inject(fleet: &LabFleet, l: &Layout) -> anyhow::Result<()> {
    let app: &Host = fleet.host(&l.app_host)?;
    let origin: &Host = fleet.host(&l.origin)?;
    let by_name = l.cell.condition != Condition::ByAddress;
    if l.cell.transport == Transport::Container
        && let Some(result) = containers::inject(app, l.cell.fault)
    {
        return result;
    }
    match l.cell.fault {
        Fault::Control => Ok(()),
        Fault::ServiceDown => app.systemctl(&["stop", l.app_unit]),
        // The app fails at start on its own config, its command line unchanged (what ties
        // it to the target stays); PHP-FPM gets a start command that fails.
        Fault::CrashLoop if l.app_unit == "app.service" => {
            shapes::set_mode(app, "crash")?;
            app.systemctl(&["restart", "--no-block", l.app_unit])
        }
        Fault::CrashLoop => {
            let dropin = format!("/etc/systemd/system/{}.d/crash.conf", l.app_unit);
            app.write_file(
                dropin.as_ref(),
                "[Unit]\nStartLimitIntervalSec=0\n[Service]\nType=simple\nExecStart=\n\
                 ExecStart=/bin/sh -c 'echo cannot load settings: /etc/shop/app.ini missing >&2; exit 3'\n\
                 Restart=always\nRestartSec=1\n",
                0o644,
            )?;
            app.systemctl(&["daemon-reload"])?;
            // The start fails by design; do not wait for it (PHP-FPM's start job reports it).
            app.systemctl(&["restart", "--no-block", l.app_unit])
        }
        Fault::WrongTarget => {
            let up = match l.cell.transport {
                Transport::Remote => Upstream::Http(format!("{}:8081", app.ip())),
                t => upstream(t, true),
            };
            let files = proxies::site_files(l.cell.proxy, &up, &l.host_header, by_name);
            proxies::reload(origin, l.cell.proxy, &files)
        }
        // Plain HTTP to the TLS listener on HTTPS transport, TLS to the plain one otherwise.
        Fault::TlsMismatch => {
            let up = match l.cell.transport {
                Transport::Https => Upstream::Http(format!("127.0.0.1:{HTTPS_PORT}")),
                _ => Upstream::Https("127.0.0.1:8080".into()),
            };
            let files = proxies::site_files(l.cell.proxy, &up, &l.host_header, by_name);
            proxies::reload(origin, l.cell.proxy, &files)
        }
        Fault::AppError => shapes::set_mode(app, "status 503"),
        // The app picks up the changed file at its next handshake, as servers that
        // reload a renewed certificate do: no restart, no config change.
        Fault::TlsCertificateError => {
            app.write_file(APP_CERT.as_ref(), &tls::app_cert().expired_pem, 0o644)
        }
        Fault::Timeout => shapes::set_mode(app, "hang"),
        Fault::DependencyFailure => shapes::set_mode(app, "db_down"),
        Fault::PrematureClose => shapes::set_mode(app, "close"),
        Fault::HeaderTooBig => shapes::set_mode(app, "big_headers"),
        Fault::FirewallBlocked => shapes::drop_port(app, 8080),
        Fault::ProxyDown => origin.systemctl(&["stop", l.cell.proxy.unit()]),
        Fault::SocketPermissionDenied => deny_socket(app, l.cell.transport),
        Fault::ProtocolMismatch => {
            let up = match l.cell.transport {
                Transport::FastCgi => Upstream::Unix(FPM_SOCKET.into()),
                _ => Upstream::FastCgi("127.0.0.1:8080".into()),
            };
            let files = proxies::site_files(l.cell.proxy, &up, &l.host_header, by_name);
            proxies::reload(origin, l.cell.proxy, &files)
        }
        Fault::OomKilled | Fault::Unhealthy | Fault::BindMismatch => {
            anyhow::bail!("{} is a container fault", l.cell.id())
        }
    }
}

/// The pool of [`deny_socket`]: its own user owns the socket with mode 0600, as a
/// package upgrade that resets `listen.owner`/`listen.mode` leaves a per-site pool.
const DENIED_POOL: &str = "; gw502 lab matrix: the pool as its own user, the socket only its own\n\
     [www]\nuser = shop\ngroup = shop\nlisten = /run/php/php8.2-fpm.sock\nlisten.owner = shop\n\
     listen.group = shop\nlisten.mode = 0600\npm = static\npm.max_children = 4\n\
     catch_workers_output = yes\n";

/// The app's socket becomes its user's alone (0600): the unix app's socket is chmod-ed
/// in place; the PHP-FPM pool runs as its own user (made by `systemd-sysusers`, as a
/// package does) with `listen.mode = 0600` and is restarted.
fn deny_socket(app: &Host, transport: Transport) -> anyhow::Result<()> {
    match transport {
        Transport::FastCgi => {
            app.write_file(
                "/etc/sysusers.d/shop.conf".as_ref(),
                "u shop - \"shop app\" /var/www/gw502-lab\n",
                0o644,
            )?;
            app.exec_ok(&["systemd-sysusers"])?;
            app.write_file(
                "/etc/php/8.2/fpm/pool.d/www.conf".as_ref(),
                DENIED_POOL,
                0o644,
            )?;
            app.systemctl(&["restart", "php8.2-fpm.service"])
        }
        _ => app.exec_ok(&["chmod", "0600", APP_SOCKET]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{Proxy, cells};

    #[test]
    fn every_runnable_cell_lays_out_valid_hosts_in_its_width() {
        for (n, cell) in cells()
            .into_iter()
            .filter(|c| c.skip().is_none())
            .enumerate()
        {
            let l = layout(cell, n % 10, 1);
            assert_eq!(l.hosts.len(), usize::from(width(&cell)), "{}", cell.id());
            for h in &l.hosts {
                h.validate().unwrap();
            }
        }
    }

    #[test]
    fn a_remote_app_sits_on_its_own_host() {
        let cell = Cell {
            fault: Fault::FirewallBlocked,
            proxy: Proxy::Haproxy,
            transport: Transport::Remote,
            topology: Topology::Single,
            condition: Condition::Warm,
        };
        let l = layout(cell, 3, 5);
        assert_eq!(l.app_host, "c3app");
        assert_eq!(l.site.hosts, vec!["c3o0".to_owned()]);
        let cfg = &l.hosts[1].files[0].1;
        assert!(cfg.contains("server app1 10.77.0.16:8080"), "{cfg}");
    }
}
