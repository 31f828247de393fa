//! Reads Apache httpd configuration text into a [`ProxyConfig`]:
//! `<VirtualHost>` blocks with `ServerName`/`ServerAlias`, `ProxyPass` targets
//! (`unix:/path|http://...` included), `SetHandler "proxy:fcgi://..."` and
//! `proxy:unix:/path|fcgi://...` handlers, `BalancerMember`s of
//! `<Proxy balancer://name>`, and `ErrorLog`/`CustomLog` files.
//! Includes are not followed: the caller passes the text of every enabled file.

use gw502_proto::v1::{ProxyConfig, UpstreamTarget, VirtualServer};

use crate::target::{default_port, split_url, target};

/// Debian's `${APACHE_LOG_DIR}`.
pub const LOG_DIR: &str = "/var/log/apache2";

/// One `CustomLog` file and the format nickname or template it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomLog {
    /// The log file.
    pub path: String,
    /// A nickname (`combined`, `vhost_combined`) or a literal format.
    pub format: String,
}

/// The parsed configuration plus the access log formats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApacheConfig {
    /// Servers, targets and logs (kind `apache`).
    pub config: ProxyConfig,
    /// Every `CustomLog` with its format.
    pub custom_logs: Vec<CustomLog>,
}

/// Parses the concatenated text of Apache config files (pure).
pub fn parse_conf(text: &str) -> ApacheConfig {
    let mut out = ApacheConfig::default();
    out.config.kind = gw502_vocab::ProxyKind::Apache.as_str().to_string();
    let mut vhost: Option<VirtualServer> = None;
    let mut location = String::new();
    let mut balancer = String::new();
    // `SSLProxyVerify require` (or `optional`) at top level, in the open vhost, and the
    // index of the open vhost's first target.
    let (mut verify_all, mut verify_vhost, mut vhost_first) = (false, None, 0);
    // `SSLProxyCACertificateFile` at top level and in the open vhost.
    let (mut ca_all, mut ca_vhost) = (String::new(), None::<String>);
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let words: Vec<String> = words(line);
        let Some((keyword, args)) = words.split_first() else {
            continue;
        };
        let lower = keyword.to_ascii_lowercase();
        match lower.as_str() {
            "<virtualhost" => {
                vhost_first = out.config.targets.len();
                verify_vhost = None;
                ca_vhost = None;
                vhost = Some(VirtualServer {
                    listens: args
                        .iter()
                        .map(|a| a.trim_end_matches('>').to_string())
                        .collect(),
                    ..VirtualServer::default()
                })
            }
            "</virtualhost>" => {
                if let Some(vs) = vhost.take() {
                    out.config.servers.push(vs);
                }
                let verify = verify_vhost.take().unwrap_or(verify_all);
                let ca = ca_vhost.take().unwrap_or_else(|| ca_all.clone());
                for t in &mut out.config.targets[vhost_first..] {
                    proxy_tls(t, verify, &ca);
                }
                vhost_first = out.config.targets.len();
            }
            "sslproxyverify" => {
                let on = args.first().is_some_and(|a| {
                    matches!(a.to_ascii_lowercase().as_str(), "require" | "optional")
                });
                match vhost {
                    Some(_) => verify_vhost = Some(on),
                    None => verify_all = on,
                }
            }
            "sslproxycacertificatefile" => {
                let file = args.first().cloned().unwrap_or_default();
                match vhost {
                    Some(_) => ca_vhost = Some(file),
                    None => ca_all = file,
                }
            }
            "<location" | "<locationmatch" | "<filesmatch" | "<files" => {
                location = args.join(" ").trim_end_matches('>').to_string();
            }
            "</location>" | "</locationmatch>" | "</filesmatch>" | "</files>" => location.clear(),
            "<proxy" => {
                let name = args.join(" ").trim_end_matches('>').to_string();
                balancer = name
                    .strip_prefix("balancer://")
                    .unwrap_or(&name)
                    .to_string();
            }
            "</proxy>" => balancer.clear(),
            "servername" | "serveralias" => {
                if let Some(vs) = vhost.as_mut() {
                    vs.names.extend(args.iter().cloned());
                }
            }
            "errorlog" | "customlog" => {
                let Some(path) = args.first().map(|p| log_path(p)) else {
                    continue;
                };
                if path.starts_with('|') || path.starts_with("syslog") {
                    continue;
                }
                let error = lower == "errorlog";
                if !error {
                    let format = args.get(1).cloned().unwrap_or_else(|| "common".to_string());
                    out.custom_logs.push(CustomLog {
                        path: path.clone(),
                        format,
                    });
                }
                let list = match (vhost.as_mut(), error) {
                    (Some(vs), true) => &mut vs.error_logs,
                    (Some(vs), false) => &mut vs.access_logs,
                    (None, true) => &mut out.config.error_logs,
                    (None, false) => &mut out.config.access_logs,
                };
                list.push(path);
            }
            // `ProxyPassMatch REGEX URL`: the usual way to hand PHP to PHP-FPM.
            "proxypass" | "proxypassmatch" => {
                let (loc, url) = match args {
                    [url] => (location.clone(), url.clone()),
                    [path, url, ..] => (path.clone(), url.clone()),
                    [] => continue,
                };
                if url == "!" || url.starts_with("balancer://") {
                    continue;
                }
                push(
                    &mut out.config,
                    &vhost,
                    proxy_target(&url, "ProxyPass"),
                    &loc,
                );
            }
            "balancermember" => {
                if let Some(url) = args.first() {
                    let mut t = proxy_target(url, "BalancerMember");
                    t.group = balancer.clone();
                    push(&mut out.config, &vhost, t, &location);
                }
            }
            "sethandler" => {
                if let Some(handler) = args.first().and_then(|h| h.strip_prefix("proxy:")) {
                    push(
                        &mut out.config,
                        &vhost,
                        proxy_target(handler, "SetHandler"),
                        &location,
                    );
                }
            }
            _ => {}
        }
    }
    for t in &mut out.config.targets[vhost_first..] {
        proxy_tls(t, verify_all, &ca_all);
    }
    if out.config.error_logs.is_empty() {
        out.config.error_logs.push(format!("{LOG_DIR}/error.log"));
    }
    out
}

/// How mod_ssl checks an https target: `SSLProxyVerify` and the CA file. The
/// name checked is the URL's host, so no other name is recorded.
fn proxy_tls(t: &mut UpstreamTarget, verify: bool, ca_file: &str) {
    if t.protocol == "https" {
        t.tls_verify = verify;
        t.tls_ca_file = ca_file.to_string();
    }
}

fn push(config: &mut ProxyConfig, vhost: &Option<VirtualServer>, mut t: UpstreamTarget, loc: &str) {
    t.server_names = vhost.as_ref().map(|v| v.names.clone()).unwrap_or_default();
    t.location = loc.to_string();
    config.targets.push(t);
}

/// A mod_proxy URL: `http://h:p/`, `fcgi://h:p/`, `unix:/path|fcgi://localhost/`.
fn proxy_target(url: &str, directive: &str) -> UpstreamTarget {
    let (unix, url) = match url.split_once('|') {
        Some((sock, rest)) if sock.starts_with("unix:") => (Some(sock), rest),
        _ => (None, url),
    };
    let (scheme, authority) = split_url(url);
    let protocol = match scheme.to_ascii_lowercase().as_str() {
        "fcgi" => "fastcgi".to_string(),
        "ws" => "http".to_string(),
        "wss" => "https".to_string(),
        "h2c" => "http".to_string(),
        "h2" => "https".to_string(),
        other => other.to_string(),
    };
    let mut t = match unix {
        Some(sock) => target(&protocol, sock, 0, directive),
        None => target(&protocol, authority, default_port(&protocol), directive),
    };
    if protocol == "fastcgi" {
        t.fastcgi_script = fixed_script(url).unwrap_or_default();
    }
    t
}

/// The script of an `fcgi://host/path/app.php` URL when it names one file for every
/// request: no back-reference (`$1`), not a directory the request path is appended to.
fn fixed_script(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = &rest[rest.find('/')?..];
    (path.len() > 1 && !path.ends_with('/') && !path.contains('$')).then(|| path.to_string())
}

fn log_path(raw: &str) -> String {
    raw.replace("${APACHE_LOG_DIR}", LOG_DIR)
}

/// Splits a directive line into words, honouring double quotes.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' if quoted => cur.extend(chars.next()),
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = include_str!("../../fixtures/apache/site.conf");

    #[test]
    fn parses_vhosts_proxypass_handlers_and_logs() {
        let a = parse_conf(SITE);
        assert_eq!(a.config.servers.len(), 1);
        let vs = &a.config.servers[0];
        assert_eq!(vs.names, vec!["shop.example.test", "www.shop.example.test"]);
        assert_eq!(vs.listens, vec!["*:80"]);
        assert_eq!(vs.error_logs, vec!["/var/log/apache2/shop-error.log"]);
        let t = &a.config.targets;
        assert_eq!(
            (t[0].protocol.as_str(), t[0].port, t[0].location.as_str()),
            ("http", 3000, "/api/")
        );
        assert_eq!(
            (t[1].protocol.as_str(), t[1].unix_path.as_str()),
            ("http", "/run/app/app.sock")
        );
        assert_eq!(
            (t[2].protocol.as_str(), t[2].unix_path.as_str()),
            ("fastcgi", "/run/php/php8.2-fpm.sock")
        );
        assert_eq!(t[2].location, "\\.php$");
        assert_eq!((t[3].protocol.as_str(), t[3].port), ("fastcgi", 9000));
        assert_eq!((t[4].group.as_str(), t[4].port), ("pool", 3001));
        assert_eq!(t[0].server_names, vs.names);
        assert_eq!(a.custom_logs[0].format, "vhost_combined");
        assert_eq!(a.config.error_logs, vec!["/var/log/apache2/error.log"]);
    }

    #[test]
    fn proxypassmatch_to_php_fpm_is_a_fastcgi_target() {
        let conf = "<VirtualHost *:80>\n    ServerName shop.example\n    \
                    ProxyPassMatch ^/(.*\\.php)$ \"unix:/run/php/php8.2-fpm.sock|fcgi://localhost/var/www/shop/\"\n\
                    </VirtualHost>\n";
        let t = &parse_conf(conf).config.targets;
        assert_eq!(t.len(), 1, "{t:?}");
        assert_eq!(
            (t[0].protocol.as_str(), t[0].unix_path.as_str()),
            ("fastcgi", "/run/php/php8.2-fpm.sock")
        );
        assert_eq!(t[0].server_names, ["shop.example"]);
        assert_eq!(
            t[0].fastcgi_script, "",
            "the script comes from the request path"
        );
    }

    #[test]
    fn a_fastcgi_url_naming_one_script_is_the_probes_script() {
        let conf = "<VirtualHost *:80>\n    ServerName shop.example\n    \
                    ProxyPassMatch ^/.*$ \"unix:/run/php/php8.2-fpm.sock|fcgi://localhost/var/www/shop/index.php\"\n\
                    ProxyPassMatch ^/api/(.*)$ fcgi://127.0.0.1:9000/var/www/api/$1\n\
                    </VirtualHost>\n";
        let scripts: Vec<String> = parse_conf(conf)
            .config
            .targets
            .into_iter()
            .map(|t| t.fastcgi_script)
            .collect();
        assert_eq!(scripts, ["/var/www/shop/index.php", ""]);
    }

    #[test]
    fn sslproxyverify_require_marks_the_vhost_https_targets() {
        let c = parse_conf(
            "<VirtualHost *:80>\n    ServerName a.example\n    SSLProxyEngine on\n\
             \x20   SSLProxyVerify none\n    ProxyPass / https://127.0.0.1:8443/\n</VirtualHost>\n\
             <VirtualHost *:80>\n    ServerName b.example\n    SSLProxyEngine on\n\
             \x20   ProxyPass / https://10.0.0.2/\n    ProxyPass /plain http://10.0.0.3/\n\
             \x20   SSLProxyVerify require\n</VirtualHost>\n",
        );
        let verify: Vec<bool> = c.config.targets.iter().map(|t| t.tls_verify).collect();
        assert_eq!(verify, [false, true, false]);
    }

    #[test]
    fn sslproxycacertificatefile_is_inherited_and_overridden_per_vhost() {
        let c = parse_conf(
            "SSLProxyCACertificateFile /etc/ssl/private/ca.pem
             <VirtualHost *:80>
    ServerName a.example
    SSLProxyEngine on
                 SSLProxyVerify require
    ProxyPass / https://app.internal:8443/
                 ProxyPass /plain http://10.0.0.3/
</VirtualHost>
             <VirtualHost *:80>
    ServerName b.example
    SSLProxyEngine on
                 SSLProxyVerify require
                 SSLProxyCACertificateFile \"/etc/apache2/ssl/b ca.pem\"
                 ProxyPass / https://10.0.0.2/
</VirtualHost>
",
        );
        let ca: Vec<(&str, &str)> = c
            .config
            .targets
            .iter()
            .map(|t| (t.host.as_str(), t.tls_ca_file.as_str()))
            .collect();
        assert_eq!(
            ca,
            [
                ("app.internal", "/etc/ssl/private/ca.pem"),
                ("10.0.0.3", ""),
                ("10.0.0.2", "/etc/apache2/ssl/b ca.pem")
            ]
        );
    }
}
