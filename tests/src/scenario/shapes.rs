//! Host shapes and fault switches of the attribution scenarios, on top of
//! [`crate::lab::fixtures`]: nginx in front of an app whose behaviour can be switched at
//! run time (`fault_app.py`), a PHP-FPM pool small enough to saturate, a host whose
//! resolver knows no names (`nxdomain.py`), and an nftables drop inside a host.

use std::path::Path;

use crate::lab::fixtures::{self, NGINX_SITE};
use crate::lab::{Host, HostSpec, LabFile};

const FAULT_APP: &str = include_str!("fault_app.py");
const NXDOMAIN: &str = include_str!("nxdomain.py");
/// The mode file `fault_app.py` reads on every request.
pub const MODE_FILE: &str = "/etc/gw502-lab/mode";
const APP_BIN: &str = "/opt/gw502-lab/fault_app.py";

/// `app.service` running `fault_app.py` on `bind:port`, restarted whenever it exits (as
/// production units usually are).
pub fn app_unit(bind: &str, port: u16) -> Vec<LabFile> {
    let unit = format!(
        "[Unit]\nDescription=gw502 lab app on {bind}:{port}\nAfter=network.target\n\
         StartLimitIntervalSec=0\n\n[Service]\n\
         ExecStart=/usr/bin/python3 {APP_BIN} --bind {bind} --port {port}\n\
         Restart=always\nRestartSec=1\n\n[Install]\nWantedBy=multi-user.target\n"
    );
    vec![
        (APP_BIN.into(), FAULT_APP.to_owned(), 0o755),
        (MODE_FILE.into(), "ok\n".to_owned(), 0o644),
        ("/etc/systemd/system/app.service".into(), unit, 0o644),
    ]
}

/// nginx on :80 whose one site is `site` (a whole server block), plus the app on
/// 127.0.0.1:8080.
pub fn web_host_with(name: &str, index: u8, site: String) -> HostSpec {
    HostSpec::new(name, index)
        .files(app_unit("127.0.0.1", 8080))
        .file(NGINX_SITE, site, 0o644)
        .enabled("nginx")
        .enabled("app")
}

/// nginx on :80 proxying to the app on 127.0.0.1:8080.
pub fn web_host(name: &str, index: u8) -> HostSpec {
    web_host_with(name, index, fixtures::nginx_proxy(80, "127.0.0.1:8080"))
}

/// Only nginx on :80, proxying to `upstream` (`host:port`) on another host.
pub fn proxy_host(name: &str, index: u8, upstream: &str) -> HostSpec {
    HostSpec::new(name, index)
        .file(NGINX_SITE, fixtures::nginx_proxy(80, upstream), 0o644)
        .enabled("nginx")
}

/// Only the app, listening on every address at `port` (an app host behind another
/// host's proxy).
pub fn app_host(name: &str, index: u8, port: u16) -> HostSpec {
    HostSpec::new(name, index)
        .files(app_unit("0.0.0.0", port))
        .enabled("app")
}

/// nginx in front of a PHP-FPM pool of one worker with a tiny accept backlog.
pub fn php_host(name: &str, index: u8) -> HostSpec {
    let pool = "; gw502 lab: a pool that one slow request saturates\n[www]\nuser = www-data\n\
                group = www-data\nlisten = /run/php/php8.2-fpm.sock\nlisten.owner = www-data\n\
                listen.group = www-data\nlisten.backlog = 2\npm = dynamic\npm.max_children = 1\n\
                pm.start_servers = 1\npm.min_spare_servers = 1\npm.max_spare_servers = 1\n\
                catch_workers_output = yes\n";
    fixtures::php_host(name, index, 1).file("/etc/php/8.2/fpm/pool.d/www.conf", pool, 0o644)
}

/// The resolver of the host: `nxdomain.py` on 127.0.0.1:53 as a unit.
pub fn nxdomain_resolver() -> Vec<LabFile> {
    let unit = "[Unit]\nDescription=gw502 lab resolver that knows no names\n\n[Service]\n\
                ExecStart=/usr/bin/python3 /opt/gw502-lab/nxdomain.py\n\n\
                [Install]\nWantedBy=multi-user.target\n";
    vec![
        (
            "/opt/gw502-lab/nxdomain.py".into(),
            NXDOMAIN.to_owned(),
            0o755,
        ),
        (
            "/etc/systemd/system/lab-dns.service".into(),
            unit.to_owned(),
            0o644,
        ),
    ]
}

/// Switch the app of `host` to `mode` (see `fault_app.py`); effective on the next request.
pub fn set_mode(host: &Host, mode: &str) -> anyhow::Result<()> {
    host.write_file(Path::new(MODE_FILE), &format!("{mode}\n"), 0o644)
}

/// Replace the nginx site of `host` with `site` and reload nginx.
pub fn reload_site(host: &Host, site: &str) -> anyhow::Result<()> {
    host.write_file(Path::new(NGINX_SITE), site, 0o644)?;
    host.systemctl(&["reload", "nginx"])
}

/// Drop every inbound TCP packet to `port` inside `host` (nftables in its own netns).
pub fn drop_port(host: &Host, port: u16) -> anyhow::Result<()> {
    let port = port.to_string();
    let steps: [&[&str]; 3] = [
        &["nft", "add", "table", "inet", "gw502lab"],
        &[
            "nft", "add", "chain", "inet", "gw502lab", "input", "{", "type", "filter", "hook",
            "input", "priority", "0", ";", "}",
        ],
        &[
            "nft", "add", "rule", "inet", "gw502lab", "input", "tcp", "dport", &port, "drop",
        ],
    ];
    host.exec_all(&steps)
}
