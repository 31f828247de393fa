//! Configs, units and whole host shapes for lab scenarios.
//!
//! The texts live in `tests/fixtures/lab/` (see its README.md) with `{{NAME}}`
//! placeholders; the builders here fill them in and say where in a host they go. The
//! shapes ([`proxy_host`], [`php_host`], [`edge_host`]) are the common hosts of the
//! attribution scenarios: nginx in front of an app unit, nginx in front of PHP-FPM, and an
//! HAProxy edge in front of an origin host.

use std::net::SocketAddrV4;
use std::path::PathBuf;

use super::spec::{HostSpec, LabFile};

const APP_PY: &str = include_str!("../../fixtures/lab/app.py");
const APP_SERVICE: &str = include_str!("../../fixtures/lab/app.service");
const NGINX_PROXY: &str = include_str!("../../fixtures/lab/nginx-proxy.conf");
const NGINX_FASTCGI: &str = include_str!("../../fixtures/lab/nginx-fastcgi.conf");
const PHP_FPM_POOL: &str = include_str!("../../fixtures/lab/php-fpm-pool.conf");
const INDEX_PHP: &str = include_str!("../../fixtures/lab/index.php");
const HAPROXY_EDGE: &str = include_str!("../../fixtures/lab/haproxy-edge.cfg");

/// Where the nginx site of a lab host goes (Debian's default site, replaced).
pub const NGINX_SITE: &str = "/etc/nginx/sites-enabled/default";
/// The PHP-FPM socket of [`php_host`] (Debian's default path).
pub const FPM_SOCKET: &str = "/run/php/php8.2-fpm.sock";
/// The document root of [`php_host`].
pub const PHP_DOCROOT: &str = "/var/www/gw502-lab";

/// Replace each `{{KEY}}` in `template`.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (key, value)| {
            text.replace(&format!("{{{{{key}}}}}"), value)
        })
}

/// Whether `value` is safe to place in a config line (no separators, quotes or spaces).
fn config_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/[]@".contains(&b))
}

/// An nginx site listening on `listen_port` that proxies everything to `upstream`
/// (`host:port`), with `/nginx-static.txt` answered by nginx itself.
///
/// # Panics
///
/// If `upstream` is not a plain `host:port` token (fixtures are written by tests).
pub fn nginx_proxy(listen_port: u16, upstream: &str) -> String {
    assert!(
        config_token(upstream),
        "upstream {upstream:?} is not a host:port"
    );
    fill(
        NGINX_PROXY,
        &[
            ("LISTEN_PORT", &listen_port.to_string()),
            ("UPSTREAM", upstream),
        ],
    )
}

/// [`nginx_proxy`] placed as the host's only nginx site.
pub fn nginx_proxy_site(listen_port: u16, upstream: &str) -> LabFile {
    (NGINX_SITE.into(), nginx_proxy(listen_port, upstream), 0o644)
}

/// The app program, its body file and its unit `<unit>.service`, answering `body` on
/// `bind:port` (see `tests/fixtures/lab/app.py` for its fault paths).
///
/// # Panics
///
/// If `unit` or `bind` is not a plain name.
pub fn app_unit(unit: &str, bind: &str, port: u16, body: &str) -> Vec<LabFile> {
    assert!(
        config_token(unit) && !unit.contains('/'),
        "unit {unit:?} is not a plain name"
    );
    assert!(config_token(bind), "bind {bind:?} is not an address");
    let service = fill(
        APP_SERVICE,
        &[("UNIT", unit), ("BIND", bind), ("PORT", &port.to_string())],
    );
    vec![
        ("/opt/gw502-lab/app.py".into(), APP_PY.to_owned(), 0o755),
        (
            PathBuf::from(format!("/opt/gw502-lab/{unit}.body")),
            body.to_owned(),
            0o644,
        ),
        (
            PathBuf::from(format!("/etc/systemd/system/{unit}.service")),
            service,
            0o644,
        ),
    ]
}

/// A PHP-FPM pool `www` on unix socket `socket` with a static `max_children` workers.
pub fn php_fpm_pool(socket: &str, max_children: u32) -> String {
    assert!(config_token(socket), "socket {socket:?} is not a path");
    fill(
        PHP_FPM_POOL,
        &[
            ("FPM_SOCKET", socket),
            ("MAX_CHILDREN", &max_children.max(1).to_string()),
        ],
    )
}

/// An nginx site on `listen_port` passing `*.php` under `docroot` to PHP-FPM at `socket`.
pub fn nginx_fastcgi(listen_port: u16, socket: &str, docroot: &str) -> String {
    assert!(
        config_token(socket) && config_token(docroot),
        "bad socket or docroot"
    );
    fill(
        NGINX_FASTCGI,
        &[
            ("LISTEN_PORT", &listen_port.to_string()),
            ("FPM_SOCKET", socket),
            ("DOCROOT", docroot),
        ],
    )
}

/// A whole `haproxy.cfg`: an HTTP frontend on `listen_port` sending everything to `origin`.
pub fn haproxy_edge(listen_port: u16, origin: SocketAddrV4) -> String {
    fill(
        HAPROXY_EDGE,
        &[
            ("LISTEN_PORT", &listen_port.to_string()),
            ("ORIGIN", &origin.to_string()),
        ],
    )
}

/// A web host: nginx on port 80 proxying to the app unit `app` on 127.0.0.1:8080, which
/// answers `body`.
pub fn proxy_host(name: &str, index: u8, body: &str) -> HostSpec {
    HostSpec::new(name, index)
        .files(app_unit("app", "127.0.0.1", 8080, body))
        .file(NGINX_SITE, nginx_proxy(80, "127.0.0.1:8080"), 0o644)
        .enabled("nginx")
        .enabled("app")
}

/// A PHP host: nginx on port 80 in front of PHP-FPM with `max_children` workers serving
/// `index.php` (`?sleep=N` holds a worker).
pub fn php_host(name: &str, index: u8, max_children: u32) -> HostSpec {
    HostSpec::new(name, index)
        .file(
            "/etc/php/8.2/fpm/pool.d/www.conf",
            php_fpm_pool(FPM_SOCKET, max_children),
            0o644,
        )
        .file(format!("{PHP_DOCROOT}/index.php"), INDEX_PHP, 0o644)
        .file(
            NGINX_SITE,
            nginx_fastcgi(80, FPM_SOCKET, PHP_DOCROOT),
            0o644,
        )
        .enabled("nginx")
        .enabled("php8.2-fpm")
}

/// An edge host: HAProxy on port 80 in front of `origin`.
pub fn edge_host(name: &str, index: u8, origin: SocketAddrV4) -> HostSpec {
    HostSpec::new(name, index)
        .file("/etc/haproxy/haproxy.cfg", haproxy_edge(80, origin), 0o644)
        .enabled("haproxy")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn templates_are_filled_completely() {
        let texts = [
            nginx_proxy(80, "127.0.0.1:8080"),
            nginx_fastcgi(80, FPM_SOCKET, PHP_DOCROOT),
            php_fpm_pool(FPM_SOCKET, 1),
            haproxy_edge(80, SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 11), 80)),
        ];
        for text in &texts {
            assert!(!text.contains("{{"), "unfilled placeholder in:\n{text}");
        }
        assert!(texts[0].contains("proxy_pass http://127.0.0.1:8080;"));
        assert!(texts[2].contains("pm.max_children = 1"));
        assert!(texts[3].contains("server origin1 10.77.0.11:80"));
        let app = app_unit("app", "127.0.0.1", 8080, "hi\n");
        assert!(
            app[2]
                .1
                .contains("--port 8080 --body-file /opt/gw502-lab/app.body")
        );
        assert!(!app[2].1.contains("{{"));
    }

    #[test]
    #[should_panic(expected = "not a host:port")]
    fn upstream_with_separator_is_refused() {
        nginx_proxy(80, "127.0.0.1:8080; evil");
    }

    #[test]
    fn shapes_validate() {
        proxy_host("host1", 1, "hello\n").validate().unwrap();
        php_host("host2", 2, 1).validate().unwrap();
        let origin = SocketAddrV4::new(Ipv4Addr::new(10, 77, 0, 11), 80);
        edge_host("edge", 3, origin).validate().unwrap();
    }
}
