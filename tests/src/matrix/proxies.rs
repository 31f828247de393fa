//! The origin proxy of a matrix host, written once per proxy and upstream: nginx,
//! HAProxy, Apache (mod_proxy, mod_proxy_fcgi), Caddy and Varnish, each in front of an
//! HTTP app on TCP, an HTTP app on a unix socket, or a PHP-FPM pool over FastCGI
//! (Varnish: TCP and unix backends only). Every config
//! serves the site under its name plus a second, healthy vhost (`status.internal`), as
//! real hosts do. A fault that changes the proxy's config writes a new one with
//! [`site_files`] and reloads with [`reload`].
//!
//! Every proxy waits [`READ_TIMEOUT_SECS`] for the app's response header, so an app
//! that never answers is the proxy's own timeout status within seconds.

use crate::lab::{Host, LabFile};

use super::Proxy;
use super::tls::{APP_CA, APP_TLS_NAME};

/// How long every proxy waits for the app's response header: under the collector's
/// 8 s edge probe timeout (`tests/src/scenario/collector.rs`), so the edge probe sees
/// the proxy's timeout answer rather than timing out itself.
pub const READ_TIMEOUT_SECS: u64 = 4;
/// How long Varnish in front of nginx waits for nginx: longer than nginx waits for
/// the app, so the stack's timeout is nginx's.
const FRONT_TIMEOUT_SECS: u64 = 10;

/// The document root of the FastCGI app.
pub const DOCROOT: &str = "/var/www/gw502-lab";
/// The PHP-FPM socket.
pub const FPM_SOCKET: &str = "/run/php/php8.2-fpm.sock";

/// Where the proxy sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// Plain HTTP to `host:port`.
    Http(String),
    /// TLS to `host:port` (verification off, as internal upstreams often are).
    Https(String),
    /// TLS to `host:port`, the certificate verified against the lab CA ([`APP_CA`]) for
    /// the name [`APP_TLS_NAME`].
    HttpsVerified(String),
    /// Plain HTTP over a unix socket.
    Unix(String),
    /// FastCGI to a unix socket path or `host:port`.
    FastCgi(String),
    /// Plain HTTP to `name:port`, the name looked up at run time through the host's
    /// resolver ([`RESOLVER`]), as a DNS change reaches each proxy without a restart:
    /// nginx through `resolver` and a variable, HAProxy through a `resolvers` section,
    /// Apache through `addressttl`, Caddy on every dial (its keep-alive pool off).
    Named(String),
}

/// The resolver the proxies of [`Upstream::Named`] ask (the origin's own, on port 53).
pub const RESOLVER: &str = "127.0.0.1";
/// How long a proxy keeps an answer (or a failure) for a [`Upstream::Named`] name.
pub const DNS_HOLD_SECS: u64 = 2;

/// Whether `value` is safe in a config line.
fn token(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/[]".contains(&b))
}

/// The files that make `proxy` serve the site (vhost `name`, the default vhost
/// unless `site_default` is false) from `upstream`.
///
/// # Panics
///
/// If the upstream is not a plain address or path (matrix cells are written by tests).
pub fn site_files(
    proxy: Proxy,
    upstream: &Upstream,
    name: &str,
    site_default: bool,
) -> Vec<LabFile> {
    let target = match upstream {
        Upstream::Http(a)
        | Upstream::Https(a)
        | Upstream::HttpsVerified(a)
        | Upstream::Unix(a)
        | Upstream::FastCgi(a)
        | Upstream::Named(a) => a,
    };
    assert!(
        token(target) && token(name),
        "upstream {target:?} is not an address"
    );
    match proxy {
        Proxy::Nginx => vec![(
            "/etc/nginx/sites-enabled/default".into(),
            nginx(upstream, name, site_default),
            0o644,
        )],
        Proxy::Haproxy => vec![("/etc/haproxy/haproxy.cfg".into(), haproxy(upstream), 0o644)],
        Proxy::Apache => {
            let mut files = apache_modules();
            files.push((
                "/etc/apache2/sites-enabled/000-default.conf".into(),
                apache(upstream, name, site_default),
                0o644,
            ));
            files
        }
        Proxy::Caddy => vec![("/etc/caddy/Caddyfile".into(), caddy(upstream, name), 0o644)],
        Proxy::Varnish => varnish_files(upstream, name, site_default, READ_TIMEOUT_SECS),
        // nginx on 127.0.0.1:8088 (not 8081: the wrong port of `WrongTarget`) behind Varnish on 80.
        Proxy::VarnishNginx => {
            let inner = nginx(upstream, name, site_default)
                .replace("listen 80", &format!("listen {VARNISH_NGINX}"));
            let mut files = varnish_files(
                &Upstream::Http(VARNISH_NGINX.into()),
                name,
                site_default,
                FRONT_TIMEOUT_SECS,
            );
            files.push(("/etc/nginx/sites-enabled/default".into(), inner, 0o644));
            files
        }
    }
}

/// Write `files` into `host` and reload `proxy` there.
pub fn reload(host: &Host, proxy: Proxy, files: &[LabFile]) -> anyhow::Result<()> {
    for (path, text, mode) in files {
        host.write_file(path, text, *mode)?;
    }
    host.systemctl(&["reload", proxy.unit()])
}

fn nginx(upstream: &Upstream, name: &str, site_default: bool) -> String {
    let default = if site_default { " default_server" } else { "" };
    let other_default = if site_default { "" } else { " default_server" };
    let pass = match upstream {
        Upstream::Http(a) => format!("proxy_pass http://{a};"),
        Upstream::Https(a) => format!("proxy_pass https://{a};"),
        Upstream::HttpsVerified(a) => format!(
            "proxy_pass https://{a};\n        proxy_ssl_verify on;\n        \
             proxy_ssl_trusted_certificate {APP_CA};\n        proxy_ssl_name {APP_TLS_NAME};\n        \
             proxy_ssl_server_name on;"
        ),
        Upstream::Unix(p) => format!("proxy_pass http://unix:{p}:;"),
        // nginx resolves a literal name once, at load; a name in a variable is looked
        // up per request through `resolver`.
        Upstream::Named(a) => {
            let (host, port) = a.rsplit_once(':').unwrap_or((a.as_str(), "80"));
            format!(
                "resolver {RESOLVER} valid={DNS_HOLD_SECS}s;\n        resolver_timeout 2s;\n        \
                 set $app_host {host};\n        proxy_pass http://$app_host:{port};"
            )
        }
        Upstream::FastCgi(a) => {
            let a = a
                .strip_prefix('/')
                .map_or(a.clone(), |_| format!("unix:{a}"));
            format!(
                "include fastcgi_params;\n        \
                 fastcgi_param SCRIPT_FILENAME {DOCROOT}/mode.php;\n        \
                 fastcgi_read_timeout {READ_TIMEOUT_SECS}s;\n        fastcgi_pass {a};"
            )
        }
    };
    format!(
        "# gw502 lab matrix: the site and a second, healthy vhost.\n\
         server {{\n    listen 80{default};\n    server_name {name};\n\
         \x20   location / {{\n        {pass}\n        proxy_set_header Host $host;\n\
         \x20       proxy_connect_timeout 5s;\n        proxy_read_timeout {READ_TIMEOUT_SECS}s;\n    }}\n}}\n\
         server {{\n    listen 80{other_default};\n    server_name status.internal;\n\
         \x20   location / {{\n        default_type text/plain;\n        return 200 \"ok\\n\";\n    }}\n}}\n"
    )
}

fn haproxy(upstream: &Upstream) -> String {
    let (server, fcgi) = match upstream {
        Upstream::Http(a) => (format!("server app1 {a}"), ""),
        Upstream::Https(a) => (format!("server app1 {a} ssl verify none"), ""),
        Upstream::HttpsVerified(a) => (
            format!(
                "server app1 {a} ssl verify required ca-file {APP_CA} verifyhost {APP_TLS_NAME} \
                 sni str({APP_TLS_NAME})"
            ),
            "",
        ),
        Upstream::Unix(p) => (format!("server app1 {p}"), ""),
        Upstream::Named(a) => (
            format!("server app1 {a} resolvers lab init-addr last,libc,none"),
            HAPROXY_RESOLVERS,
        ),
        Upstream::FastCgi(a) => (
            format!("use-fcgi-app php\n    server app1 {a} proto fcgi"),
            "fcgi-app php\n    docroot /var/www/gw502-lab\n    index mode.php\n    \
             path-info ^(/.+\\.php)(/.*)?$\n\n",
        ),
    };
    format!(
        "# gw502 lab matrix: HAProxy as the origin proxy.\n\
         global\n    log /dev/log local0\n    stats socket /run/haproxy/admin.sock mode 660 level admin\n\
         \x20   user haproxy\n    group haproxy\n\n\
         defaults\n    log global\n    mode http\n    option httplog\n    timeout connect 5s\n\
         \x20   timeout client 30s\n    timeout server {READ_TIMEOUT_SECS}s\n\n{fcgi}\
         frontend site\n    bind :80\n    acl status hdr(host) -i status.internal\n\
         \x20   http-request return status 200 content-type text/plain string ok if status\n\
         \x20   default_backend app\n\n\
         backend app\n{}    {server}\n",
        if matches!(upstream, Upstream::FastCgi(_)) {
            "    http-request set-path /mode.php\n"
        } else {
            ""
        }
    )
}

/// HAProxy's resolvers for [`Upstream::Named`]: the host's resolver, every answer
/// and failure held [`DNS_HOLD_SECS`] (a name that stops resolving takes its server out
/// of service, `DNS NX status`).
const HAPROXY_RESOLVERS: &str = "resolvers lab\n    nameserver local 127.0.0.1:53\n    \
     resolve_retries 2\n    timeout resolve 1s\n    timeout retry 1s\n    hold valid 2s\n    \
     hold nx 2s\n    hold other 2s\n    hold refused 2s\n    hold timeout 2s\n    \
     hold obsolete 2s\n\n";

/// The modules the Apache sites need, as `a2enmod` would link them.
fn apache_modules() -> Vec<LabFile> {
    ["proxy", "proxy_http", "proxy_fcgi", "ssl", "socache_shmcb"]
        .iter()
        .map(|m| {
            (
                format!("/etc/apache2/mods-enabled/{m}.load").into(),
                format!("LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so\n"),
                0o644,
            )
        })
        .collect()
}

fn apache(upstream: &Upstream, name: &str, site_default: bool) -> String {
    let pass = match upstream {
        // A 5 s connect timeout, as the nginx and HAProxy sites have (Apache's default is
        // `Timeout`, 300 s on Debian, longer than any probe waits).
        Upstream::Http(a) => format!(
            "ProxyPass / http://{a}/ connectiontimeout=5\n    ProxyPassReverse / http://{a}/"
        ),
        Upstream::Https(a) => format!(
            "SSLProxyEngine on\n    SSLProxyVerify none\n    SSLProxyCheckPeerName off\n    \
             SSLProxyCheckPeerCN off\n    ProxyPass / https://{a}/"
        ),
        // Apache checks the peer name against the URL's host and matches no IP address
        // SANs (2.4.67: `AH02411: SSL Proxy: Peer certificate does not match for hostname
        // 127.0.0.1`), so the URL names the app by its certificate's name.
        Upstream::HttpsVerified(a) => {
            let port = a.rsplit_once(':').map_or("443", |(_, p)| p);
            format!(
                "SSLProxyEngine on\n    SSLProxyVerify require\n    \
                 SSLProxyCACertificateFile {APP_CA}\n    SSLProxyCheckPeerName on\n    \
                 SSLProxyCheckPeerExpire on\n    ProxyPass / https://{APP_TLS_NAME}:{port}/"
            )
        }
        Upstream::Unix(p) => format!("ProxyPass / unix:{p}|http://localhost/"),
        // mod_proxy keeps a worker's resolved address until `addressttl` runs out.
        Upstream::Named(a) => format!(
            "ProxyPass / http://{a}/ connectiontimeout=5 addressttl={DNS_HOLD_SECS}\n    \
             ProxyPassReverse / http://{a}/"
        ),
        Upstream::FastCgi(a) => {
            let backend = if a.starts_with('/') {
                format!("unix:{a}|fcgi://localhost")
            } else {
                format!("fcgi://{a}")
            };
            format!("ProxyPassMatch ^/.*$ \"{backend}{DOCROOT}/mode.php\"")
        }
    };
    let site = format!(
        "<VirtualHost *:80>\n    ServerName {name}\n    {pass}\n    ProxyTimeout {READ_TIMEOUT_SECS}\n</VirtualHost>\n"
    );
    let other = "<VirtualHost *:80>\n    ServerName status.internal\n    \
                 DocumentRoot /var/www/html\n</VirtualHost>\n";
    // Apache's default vhost is the first one read.
    if site_default {
        format!("# gw502 lab matrix: the site and a second, healthy vhost.\n{site}{other}")
    } else {
        format!("# gw502 lab matrix: a healthy default vhost, then the site.\n{other}{site}")
    }
}

fn caddy(upstream: &Upstream, name: &str) -> String {
    let t = READ_TIMEOUT_SECS;
    let http = |to: String, tls: &str| {
        format!(
            "reverse_proxy {to} {{\n        transport http {{\n{tls}            \
             response_header_timeout {t}s\n        }}\n    }}"
        )
    };
    let handler = match upstream {
        Upstream::Http(a) => http(a.clone(), ""),
        // Caddy looks the name up when it dials, and reuses its keep-alive connections
        // to the old address meanwhile (seen: a removed record showed as one 502 in 15
        // requests). Without the pool every request dials, so the change shows at the
        // next request, as on the other proxies.
        Upstream::Named(a) => http(a.clone(), "            keepalive off\n"),
        Upstream::Https(a) => http(
            format!("https://{a}"),
            "            tls_insecure_skip_verify\n",
        ),
        Upstream::HttpsVerified(a) => http(
            format!("https://{a}"),
            &format!(
                "            tls_trusted_ca_certs {APP_CA}\n            \
                 tls_server_name {APP_TLS_NAME}\n"
            ),
        ),
        Upstream::Unix(p) => http(format!("unix/{p}"), ""),
        Upstream::FastCgi(a) => {
            let a = if a.starts_with('/') {
                format!("unix/{a}")
            } else {
                a.clone()
            };
            format!(
                "root * {DOCROOT}\n    rewrite * /mode.php\n    \
                 php_fastcgi {a} {{\n        read_timeout {t}s\n    }}"
            )
        }
    };
    format!(
        "# gw502 lab matrix: Caddy as the origin proxy.\n\
         {{\n    auto_https off\n}}\n\n\
         http://{name}:80, http://:80 {{\n    {handler}\n    log\n}}\n\n\
         http://status.internal:80 {{\n    respond \"ok\" 200\n}}\n"
    )
}

/// The VCL the lab's Varnish loads: named by the unit's `ExecStart` (a drop-in),
/// not Debian's `default.vcl`, as the agent must find it there.
const VARNISH_VCL: &str = "/etc/varnish/gw502-site.vcl";

/// Debian's `ExecStart` on port 80 with the lab's VCL and a 16 MB log ring (the
/// default 80 MB would sit in every Varnish host's tmpfs).
const VARNISH_DROP_IN: &str = "# gw502 lab matrix: Varnish on port 80 with the site's VCL.\n\
     [Service]\nExecStart=\n\
     ExecStart=/usr/sbin/varnishd -j unix,user=vcache -F -a :80 -T localhost:6082 \
     -f /etc/varnish/gw502-site.vcl -S /etc/varnish/secret -s malloc,64m -p vsl_space=16M\n";

/// Where nginx listens behind Varnish in the Varnish-and-nginx stack.
const VARNISH_NGINX: &str = "127.0.0.1:8088";

fn varnish_files(
    upstream: &Upstream,
    name: &str,
    site_default: bool,
    first_byte_secs: u64,
) -> Vec<LabFile> {
    vec![
        (
            VARNISH_VCL.into(),
            varnish(upstream, name, site_default, first_byte_secs),
            0o644,
        ),
        (
            "/etc/systemd/system/varnish.service.d/gw502-lab.conf".into(),
            VARNISH_DROP_IN.into(),
            0o644,
        ),
    ]
}

fn varnish(upstream: &Upstream, name: &str, site_default: bool, first_byte_secs: u64) -> String {
    let backend = match upstream {
        Upstream::Unix(p) | Upstream::FastCgi(p) if p.starts_with('/') => {
            format!(".path = \"{p}\";")
        }
        Upstream::Http(a)
        | Upstream::Https(a)
        | Upstream::HttpsVerified(a)
        | Upstream::Unix(a)
        | Upstream::FastCgi(a)
        | Upstream::Named(a) => {
            let (host, port) = a.rsplit_once(':').unwrap_or((a.as_str(), "80"));
            format!(".host = \"{host}\"; .port = \"{port}\";")
        }
    };
    // The healthy vhost answers from Varnish itself; with the site not the default,
    // every other name does.
    let other = if site_default {
        "req.http.host == \"status.internal\"".to_string()
    } else {
        format!("req.http.host != \"{name}\"")
    };
    format!(
        "# gw502 lab matrix: Varnish caching the app; `pass` so every request reaches it.\n\
         vcl 4.1;\n\n\
         backend app {{\n    {backend}\n    .connect_timeout = 5s;\n    .first_byte_timeout = {first_byte_secs}s;\n}}\n\n\
         sub vcl_recv {{\n    if ({other}) {{\n        return (synth(200, \"ok\"));\n    }}\n    \
         return (pass);\n}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file `site_files` writes for `proxy`, as one text.
    fn all_files(proxy: Proxy, up: &Upstream) -> String {
        site_files(proxy, up, "shop.example", true)
            .into_iter()
            .map(|f| f.1)
            .collect()
    }

    #[test]
    fn every_proxy_writes_the_site_under_its_name_and_a_second_vhost() {
        let ups = [
            Upstream::Http("127.0.0.1:8080".into()),
            Upstream::Https("127.0.0.1:8080".into()),
            Upstream::Unix("/run/lab-app/app.sock".into()),
            Upstream::FastCgi(FPM_SOCKET.into()),
            Upstream::HttpsVerified("127.0.0.1:8443".into()),
        ];
        for proxy in Proxy::ALL {
            for up in &ups {
                let files = site_files(proxy, up, "shop.example", true);
                let text: String = files.iter().map(|f| f.1.as_str()).collect();
                assert!(text.contains("status.internal"), "{proxy:?} {up:?}");
                assert!(!text.contains("{{"), "{text}");
            }
        }
        let nginx = &site_files(Proxy::Nginx, &ups[2], "shop.example", false)[0].1;
        assert!(nginx.contains("proxy_pass http://unix:/run/lab-app/app.sock:;"));
        assert!(nginx.contains("listen 80 default_server;\n    server_name status.internal;"));
        let vcl = &site_files(Proxy::Varnish, &ups[0], "shop.example", true)[0].1;
        assert!(
            vcl.contains(".host = \"127.0.0.1\"; .port = \"8080\";"),
            "{vcl}"
        );
        let drop_in = site_files(Proxy::Varnish, &ups[2], "shop.example", false);
        assert!(drop_in[0].1.contains(".path = \"/run/lab-app/app.sock\";"));
        assert!(drop_in[0].1.contains("req.http.host != \"shop.example\""));
        assert!(
            drop_in[1]
                .1
                .contains("ExecStart=\nExecStart=/usr/sbin/varnishd")
        );
        assert!(drop_in[1].1.contains(&format!("-f {VARNISH_VCL} ")));
        let stack = site_files(Proxy::VarnishNginx, &ups[0], "shop.example", true);
        assert!(stack[0].1.contains(".port = \"8088\";"), "{}", stack[0].1);
        assert!(stack[2].1.contains("listen 127.0.0.1:8088 default_server;"));
        assert!(stack[2].1.contains("proxy_pass http://127.0.0.1:8080;"));
        let apache = &site_files(Proxy::Apache, &ups[3], "shop.example", true)[5].1;
        assert!(apache.contains("unix:/run/php/php8.2-fpm.sock|fcgi://localhost/var/www"));
    }

    #[test]
    fn a_verifying_proxy_names_the_lab_ca_and_the_certificate_name() {
        let up = Upstream::HttpsVerified("127.0.0.1:8443".into());
        let text = |p| all_files(p, &up);
        let nginx = text(Proxy::Nginx);
        assert!(nginx.contains("proxy_ssl_verify on;"), "{nginx}");
        assert!(nginx.contains("proxy_ssl_name localhost;"));
        let haproxy = text(Proxy::Haproxy);
        assert!(haproxy.contains(
            "server app1 127.0.0.1:8443 ssl verify required ca-file /etc/gw502-lab/ca.crt verifyhost localhost"
        ));
        let apache = text(Proxy::Apache);
        assert!(apache.contains("SSLProxyVerify require"), "{apache}");
        assert!(apache.contains("SSLProxyCheckPeerName on"));
        assert!(apache.contains("ProxyPass / https://localhost:8443/"));
        let caddy = text(Proxy::Caddy);
        assert!(
            caddy.contains("tls_trusted_ca_certs /etc/gw502-lab/ca.crt"),
            "{caddy}"
        );
        assert!(!caddy.contains("tls_insecure_skip_verify"));
        // Every proxy's read timeout is short, Caddy's and nginx's FastCGI included.
        assert!(caddy.contains("response_header_timeout 4s"));
        let fcgi = Upstream::FastCgi(FPM_SOCKET.into());
        let nginx_fcgi = &site_files(Proxy::Nginx, &fcgi, "shop.example", true)[0].1;
        assert!(nginx_fcgi.contains("fastcgi_read_timeout 4s;"));
        let caddy_fcgi = &site_files(Proxy::Caddy, &fcgi, "shop.example", true)[0].1;
        assert!(caddy_fcgi.contains("read_timeout 4s"), "{caddy_fcgi}");
    }

    #[test]
    fn a_named_upstream_is_looked_up_at_run_time_by_every_proxy() {
        let up = Upstream::Named("app-backend.lab:8080".into());
        let text = |p| all_files(p, &up);
        let nginx = text(Proxy::Nginx);
        assert!(nginx.contains("resolver 127.0.0.1 valid=2s;"), "{nginx}");
        assert!(nginx.contains("set $app_host app-backend.lab;"));
        assert!(nginx.contains("proxy_pass http://$app_host:8080;"));
        let haproxy = text(Proxy::Haproxy);
        assert!(haproxy.contains("resolvers lab\n    nameserver local 127.0.0.1:53"));
        assert!(
            haproxy.contains(
                "server app1 app-backend.lab:8080 resolvers lab init-addr last,libc,none"
            )
        );
        let apache = text(Proxy::Apache);
        assert!(
            apache.contains(
                "ProxyPass / http://app-backend.lab:8080/ connectiontimeout=5 addressttl=2"
            )
        );
        let caddy = text(Proxy::Caddy);
        assert!(
            caddy.contains("reverse_proxy app-backend.lab:8080"),
            "{caddy}"
        );
        assert!(caddy.contains("keepalive off"));
        assert!(!text(Proxy::Nginx).contains("keepalive off"));
    }

    #[test]
    #[should_panic(expected = "not an address")]
    fn separators_are_refused() {
        site_files(Proxy::Nginx, &Upstream::Http("a; b".into()), "x", true);
    }
}
