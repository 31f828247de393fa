//! The lab hosts of one matrix cell and its fault switch: the origin (proxy and, unless
//! the app is remote, the app), an app host for remote apps, an HAProxy edge in front of
//! one or three origins, the site the collector watches, and where visitors go.
//!
//! Hosts are realistic by default: every proxy serves a second, healthy vhost, and the
//! other proxies are installed but masked. Noisy hosts add unrelated listeners with
//! realistic unit names (an exporter, a cache, a backup agent on a high port); non-UTC
//! hosts live in `Europe/Berlin` or `America/Los_Angeles` ([`Cell::zone`]). A
//! `dns_failure` origin names its remote app through a resolver of its own
//! (`nxdomain.py`, a zone file the fault edits); a `saturated` origin runs a PHP-FPM
//! pool of two under more visitors than that.

use std::net::{SocketAddr, SocketAddrV4};

use crate::lab::spec::host_ip;
use crate::lab::{Host, HostSpec, LabFile};
use crate::scenario::shapes::{self, MODE_FILE};
use crate::scenario::{LabFleet, LabSite};

use super::containers;
use super::proxies::{self, DOCROOT, FPM_SOCKET, RESOLVER, Upstream};
use super::tls::{self, APP_CERT, APP_KEY};
use super::{Cell, Condition, Fault, Topology, Transport};

const FAULT_APP: &str = include_str!("../scenario/fault_app.py");
const MODE_PHP: &str = include_str!("../../fixtures/matrix/mode.php");
const NOISE_PY: &str = include_str!("../../fixtures/matrix/noise.py");
/// The unix socket of the app on unix transport.
pub const APP_SOCKET: &str = "/run/lab-app/app.sock";
/// The port of the app's TLS listener on HTTPS transport (on loopback).
pub const HTTPS_PORT: u16 = 8443;
/// The DNS name of a remote app host in the `dns_failure` cells, served by the
/// origin's own resolver (`nxdomain.py`) from [`ZONE_FILE`].
pub const APP_NAME: &str = "app-backend.lab";
/// The zone file of the origin's resolver.
const ZONE_FILE: &str = "/etc/gw502-lab/zone";
/// Visitors at once on a cell (each a GET, then 250 ms pause, in a loop).
const VISITORS: usize = 2;
/// Visitors at once on a `saturated` cell: more than its pool's workers and accept
/// queue hold while each request takes [`SLOW_MS`].
const SATURATING_VISITORS: usize = 8;
/// How long the app takes per request once a `saturated` cell's script turns slow:
/// under the proxies' read timeout even after a wait in the accept queue.
const SLOW_MS: u64 = 1500;

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
    /// Visitors at once.
    pub visitors: usize,
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

/// Lay `cells` out side by side as one lab batch, from host index 1.
pub fn batch(cells: &[Cell]) -> Vec<Layout> {
    let mut base = 1;
    cells
        .iter()
        .enumerate()
        .map(|(n, cell)| {
            let l = layout(*cell, n, base);
            base += width(cell);
            l
        })
        .collect()
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
            Some(_) if cell.fault == Fault::DnsFailure => {
                Upstream::Named(format!("{APP_NAME}:8080"))
            }
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
            let mut files = app_files(cell.transport, "127.0.0.1");
            // Only the origin the fault hits runs the small pool: behind a round robin
            // the others take the visitors with their usual one.
            if cell.fault == Fault::Saturated && *host == origins[0].0 {
                small_pool(&mut files);
            }
            spec = spec.files(files);
            spec = spec.enabled(app_unit(cell.transport));
        }
        if let (Some(ip), Fault::DnsFailure) = (remote_app, cell.fault) {
            spec = resolver(spec, &format!("{APP_NAME} {ip}\n"));
        }
        if verify {
            spec = spec.files([tls::ca_file()]);
        }
        hosts.push(condition(spec, &cell));
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
        visitors: if cell.fault == Fault::Saturated {
            SATURATING_VISITORS
        } else {
            VISITORS
        },
    }
}

/// The origin's own resolver (`nxdomain.py` on 127.0.0.1:53, named in
/// `/etc/resolv.conf`), answering from `zone`.
fn resolver(spec: HostSpec, zone: &str) -> HostSpec {
    spec.files(shapes::nxdomain_resolver())
        .file(ZONE_FILE, zone, 0o644)
        .file(
            "/etc/resolv.conf",
            format!("nameserver {RESOLVER}\n"),
            0o644,
        )
        .enabled("lab-dns")
}

/// Makes the PHP-FPM pool of `files` small enough to exhaust: two workers at most
/// (`pm = dynamic`, so PHP-FPM warns `server reached pm.max_children setting`) and an
/// accept queue of one, so connects beyond it fail at once (EAGAIN) as on a busy host.
/// Both workers start at once: with one, the probes of a healthy site alone (the
/// collector's, the agent's) overflowed the queue now and then before the fault.
fn small_pool(files: &mut [LabFile]) {
    for (path, text, _) in files.iter_mut() {
        if path.ends_with("pool.d/www.conf") {
            *text = format!(
                "; gw502 lab matrix: a small pool behind the proxy\n[www]\nuser = www-data\n\
                 group = www-data\nlisten = {FPM_SOCKET}\nlisten.mode = 0666\nlisten.backlog = 1\n\
                 pm = dynamic\npm.max_children = 2\npm.start_servers = 2\npm.min_spare_servers = 1\n\
                 pm.max_spare_servers = 2\ncatch_workers_output = yes\n"
            );
        }
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

/// Units on a cell's hosts that are outside its site's chain: the noise services,
/// the proxies installed but not serving it, and the image's other services. A verdict
/// that names one fails the cell: naming an unrelated unit is worse than saying the
/// evidence is insufficient.
pub fn outside_chain(cell: &Cell) -> Vec<&'static str> {
    const ON_HOSTS: [&str; 12] = [
        "nginx-exporter.service",
        "cache.service",
        "backup-agent.service",
        "nginx.service",
        "haproxy.service",
        "apache2.service",
        "caddy.service",
        "varnish.service",
        "php8.2-fpm.service",
        "postgresql.service",
        "prometheus-alertmanager.service",
        "prometheus-node-exporter.service",
    ];
    let mut chain = vec![cell.proxy.unit(), app_unit(cell.transport)];
    chain.extend(cell.proxy.front());
    if cell.topology != Topology::Single {
        chain.push("haproxy.service");
    }
    if cell.fault == Fault::DependencyFailure {
        // The app's database, which its journal names.
        chain.push("postgresql.service");
    }
    ON_HOSTS
        .into_iter()
        .filter(|u| !chain.contains(u))
        .collect()
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
fn condition(spec: HostSpec, cell: &Cell) -> HostSpec {
    if let Some(zone) = cell.zone() {
        return spec
            .link("/etc/localtime", format!("/usr/share/zoneinfo/{zone}"))
            .file("/etc/timezone", format!("{zone}\n"), 0o644);
    }
    match cell.condition {
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
        Fault::ConnectionReset => shapes::set_mode(app, "reset"),
        // Read at start: the restarted app stays up and binds nothing, its command line
        // unchanged (what ties the unit to the target stays).
        Fault::NotListening if l.app_unit == "app.service" => {
            shapes::set_mode(app, "starting")?;
            app.systemctl(&["restart", l.app_unit])
        }
        Fault::NotListening => {
            anyhow::bail!("{}: only the lab app can run without binding", l.cell.id())
        }
        Fault::HeaderTooBig => shapes::set_mode(app, "big_headers"),
        Fault::FirewallBlocked => shapes::drop_port(app, 8080),
        Fault::ProxyDown => origin.systemctl(&["stop", l.cell.proxy.unit()]),
        // The record is deleted; the proxy finds out at its next lookup.
        Fault::DnsFailure => origin.write_file(
            ZONE_FILE.as_ref(),
            &format!("# {APP_NAME} removed\n"),
            0o644,
        ),
        // The script turns slow (a slow query, say) under the same visitors.
        Fault::Saturated => shapes::set_mode(app, &format!("slow {SLOW_MS}")),
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

    #[test]
    fn a_dns_cell_names_the_app_through_the_origins_own_resolver() {
        let cell = Cell {
            fault: Fault::DnsFailure,
            proxy: Proxy::Nginx,
            transport: Transport::Remote,
            topology: Topology::Single,
            condition: Condition::Warm,
        };
        let l = layout(cell, 2, 5);
        let origin = &l.hosts[1];
        let file = |path: &str| {
            origin
                .files
                .iter()
                .rev()
                .find(|f| f.0.to_str() == Some(path))
                .map(|f| f.1.clone())
                .unwrap_or_default()
        };
        assert!(
            file("/etc/nginx/sites-enabled/default").contains("set $app_host app-backend.lab;")
        );
        assert_eq!(file(ZONE_FILE), "app-backend.lab 10.77.0.16\n");
        assert_eq!(file("/etc/resolv.conf"), "nameserver 127.0.0.1\n");
        assert!(origin.enable.iter().any(|u| u == "lab-dns"));
        assert_eq!(l.visitors, VISITORS);
    }

    #[test]
    fn a_saturated_cell_has_a_small_pool_and_more_visitors_than_it_holds() {
        let cell = Cell {
            fault: Fault::Saturated,
            proxy: Proxy::Caddy,
            transport: Transport::FastCgi,
            topology: Topology::Single,
            condition: Condition::Warm,
        };
        let l = layout(cell, 0, 1);
        let pool = l.hosts[0]
            .files
            .iter()
            .find(|f| f.0.ends_with("pool.d/www.conf"))
            .map(|f| f.1.clone())
            .unwrap_or_default();
        assert!(
            pool.contains("pm = dynamic\npm.max_children = 2\n"),
            "{pool}"
        );
        assert!(pool.contains("listen.backlog = 1\n"));
        assert!(l.visitors > 2 + 2);
        let rr = layout(
            Cell {
                topology: Topology::RoundRobin,
                ..cell
            },
            0,
            1,
        );
        let small = |h: &HostSpec| h.files.iter().any(|f| f.1.contains("listen.backlog = 1"));
        assert_eq!(
            rr.hosts.iter().filter(|h| small(h)).count(),
            1,
            "only the origin the fault hits"
        );
        let other = layout(
            Cell {
                fault: Fault::Timeout,
                ..cell
            },
            0,
            1,
        );
        assert!(
            other.hosts[0]
                .files
                .iter()
                .any(|f| f.1.contains("pm = static"))
        );
    }
}
