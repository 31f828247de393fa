//! Reads `haproxy.cfg` into a [`ProxyConfig`]: `frontend` and `listen`
//! sections become virtual servers (named after the section, with their
//! `bind` lines), and `server` lines of `backend`/`listen` sections become
//! targets grouped by backend and tied to the frontends that use them.

use std::collections::BTreeMap;

use gw502_proto::v1::{ProxyConfig, UpstreamTarget, VirtualServer};

use crate::target::target;

/// Where Debian's rsyslog snippet writes HAProxy's log.
pub const DEFAULT_LOG: &str = "/var/log/haproxy.log";

#[derive(Default)]
struct Section {
    kind: String,
    name: String,
    binds: Vec<String>,
    backends: Vec<String>,
    servers: Vec<UpstreamTarget>,
    tcp: bool,
    /// `use-fcgi-app`: the backend's servers speak FastCGI.
    fcgi: bool,
    /// The `fcgi-app` a backend uses.
    fcgi_app: String,
    /// An `fcgi-app` section's `docroot` and `index`.
    docroot: String,
    index: String,
}

/// Parses haproxy.cfg text (pure).
pub fn parse_cfg(text: &str) -> ProxyConfig {
    let mut sections: Vec<Section> = Vec::new();
    let mut defaults_tcp = false;
    // `ca-base` in `global`: the directory relative `ca-file` names are under.
    let mut ca_base = String::new();
    for raw in text.lines() {
        let line = raw.split_once('#').map(|(l, _)| l).unwrap_or(raw);
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some((&keyword, args)) = words.split_first() else {
            continue;
        };
        match keyword {
            "global" | "defaults" | "frontend" | "backend" | "listen" | "resolvers" | "peers"
            | "userlist" | "program" | "http-errors" | "cache" | "ring" | "mailers"
            | "fcgi-app" => {
                sections.push(Section {
                    kind: keyword.to_string(),
                    name: args.first().map(|s| s.to_string()).unwrap_or_default(),
                    tcp: defaults_tcp,
                    ..Section::default()
                });
                continue;
            }
            _ => {}
        }
        let Some(section) = sections.last_mut() else {
            continue;
        };
        match (keyword, args) {
            ("mode", [mode, ..]) => {
                section.tcp = *mode == "tcp";
                if section.kind == "defaults" {
                    defaults_tcp = section.tcp;
                }
            }
            ("bind", [addr, rest @ ..]) => {
                let mut bind = addr.to_string();
                for r in rest {
                    bind.push(' ');
                    bind.push_str(r);
                }
                section.binds.push(bind);
            }
            ("default_backend" | "use_backend", [name, ..]) => {
                section.backends.push(name.to_string());
            }
            ("use-fcgi-app", [app, ..]) => {
                section.fcgi = true;
                section.fcgi_app = app.to_string();
            }
            ("docroot", [dir, ..]) if section.kind == "fcgi-app" => {
                section.docroot = dir.to_string()
            }
            ("index", [file, ..]) if section.kind == "fcgi-app" => section.index = file.to_string(),
            ("ca-base", [dir, ..]) if section.kind == "global" => ca_base = dir.to_string(),
            ("server", [_name, addr, params @ ..]) => {
                let ssl = params.contains(&"ssl");
                let fcgi = section.fcgi || params.windows(2).any(|w| w == ["proto", "fcgi"]);
                let protocol = match (section.tcp, fcgi, ssl) {
                    (true, _, _) => "tcp",
                    (false, true, _) => "fastcgi",
                    (false, false, true) => "https",
                    (false, false, false) => "http",
                };
                let address = addr.strip_prefix("unix@").map(|p| format!("unix:{p}"));
                let address = address.as_deref().unwrap_or(addr);
                let mut t = target(protocol, address, 0, "server");
                t.group = section.name.clone();
                t.runtime_resolve = params.contains(&"resolvers");
                // HAProxy verifies a server's certificate unless told not to.
                t.tls_verify = ssl && !params.windows(2).any(|w| w == ["verify", "none"]);
                if ssl {
                    server_tls(&mut t, params, &ca_base);
                }
                section.servers.push(t);
            }
            _ => {}
        }
    }
    fcgi_scripts(&mut sections);
    assemble(sections)
}

/// The script a backend's `fcgi-app` runs for `/`: its `docroot` joined with
/// its `index` (without an index HAProxy sends the directory, which runs
/// nothing, so the script stays unknown).
fn fcgi_scripts(sections: &mut [Section]) {
    let scripts: BTreeMap<String, String> = sections
        .iter()
        .filter(|s| s.kind == "fcgi-app" && !s.docroot.is_empty() && !s.index.is_empty())
        .map(|s| {
            let script = format!("{}/{}", s.docroot.trim_end_matches('/'), s.index);
            (s.name.clone(), script)
        })
        .collect();
    for section in sections.iter_mut() {
        if let Some(script) = scripts.get(&section.fcgi_app) {
            for t in &mut section.servers {
                t.fastcgi_script = script.clone();
            }
        }
    }
}

/// The value after `key` among a server line's parameters.
fn param<'a>(params: &[&'a str], key: &str) -> Option<&'a str> {
    params.windows(2).find(|w| w[0] == key).map(|w| w[1])
}

/// The CA file and the checked name of an `ssl` server: `ca-file` (under
/// `ca-base` when relative), `verifyhost`, else a constant `sni str(name)`,
/// which HAProxy checks the certificate against when `verifyhost` is absent.
fn server_tls(t: &mut UpstreamTarget, params: &[&str], ca_base: &str) {
    if let Some(file) = param(params, "ca-file") {
        t.tls_ca_file = if file.starts_with('/') || ca_base.is_empty() {
            file.to_string()
        } else {
            format!("{}/{file}", ca_base.trim_end_matches('/'))
        };
    }
    let sni = param(params, "sni")
        .and_then(|e| e.strip_prefix("str(")?.strip_suffix(')'))
        .filter(|n| !n.is_empty() && !n.contains(['(', ',', '%']));
    if let Some(name) = param(params, "verifyhost").or(sni) {
        t.tls_server_name = name.to_string();
    }
}

fn assemble(sections: Vec<Section>) -> ProxyConfig {
    let mut users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in sections
        .iter()
        .filter(|s| s.kind == "frontend" || s.kind == "listen")
    {
        for b in &s.backends {
            users.entry(b.clone()).or_default().push(s.name.clone());
        }
        if s.kind == "listen" {
            users
                .entry(s.name.clone())
                .or_default()
                .push(s.name.clone());
        }
    }
    let mut config = ProxyConfig {
        kind: gw502_vocab::ProxyKind::Haproxy.as_str().to_string(),
        error_logs: vec![DEFAULT_LOG.to_string()],
        ..ProxyConfig::default()
    };
    for s in sections {
        if s.kind == "frontend" || s.kind == "listen" {
            config.servers.push(VirtualServer {
                names: vec![s.name.clone()],
                listens: s.binds,
                ..VirtualServer::default()
            });
        }
        if s.kind == "backend" || s.kind == "listen" {
            let names = users.get(&s.name).cloned().unwrap_or_default();
            for mut t in s.servers {
                t.server_names = names.clone();
                config.targets.push(t);
            }
        }
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = include_str!("../../fixtures/haproxy/haproxy.cfg");

    #[test]
    fn parses_frontends_backends_and_listen() {
        let c = parse_cfg(CFG);
        let names: Vec<&str> = c.servers.iter().map(|s| s.names[0].as_str()).collect();
        assert_eq!(names, vec!["web", "db"]);
        assert_eq!(c.servers[0].listens, vec!["127.0.0.1:18090"]);
        let app: Vec<_> = c.targets.iter().filter(|t| t.group == "app").collect();
        assert_eq!(app.len(), 3);
        assert_eq!((app[0].host.as_str(), app[0].port), ("127.0.0.1", 3000));
        assert_eq!(app[0].server_names, vec!["web"]);
        assert_eq!(app[1].protocol, "https");
        assert_eq!(app[2].unix_path, "/run/app/app.sock");
        let db = c.targets.iter().find(|t| t.group == "db").unwrap();
        assert_eq!((db.protocol.as_str(), db.port), ("tcp", 5432));
        assert_eq!(db.server_names, vec!["db"]);
    }

    #[test]
    fn fastcgi_servers_are_fastcgi_targets() {
        // The HAProxy 2.1+ shape: a backend using an `fcgi-app`, its server `proto fcgi`.
        let cfg = "defaults\n    mode http\nfrontend web\n    bind :80\n    default_backend php\n\
                   fcgi-app php-fpm\n    docroot /var/www/html\n\
                   backend php\n    use-fcgi-app php-fpm\n    server fpm unix@/run/php/php8.2-fpm.sock\n\
                   backend tcp_fpm\n    server fpm 127.0.0.1:9000 proto fcgi\n";
        let c = parse_cfg(cfg);
        let protocols: Vec<(&str, &str)> = c
            .targets
            .iter()
            .map(|t| (t.group.as_str(), t.protocol.as_str()))
            .collect();
        assert_eq!(protocols, [("php", "fastcgi"), ("tcp_fpm", "fastcgi")]);
        assert_eq!(c.targets[0].unix_path, "/run/php/php8.2-fpm.sock");
        // No `index`: a request for `/` names a directory, no script.
        assert_eq!(c.targets[0].fastcgi_script, "");
        let indexed = parse_cfg(&cfg.replace(
            "docroot /var/www/html\n",
            "docroot /var/www/html/\n    index index.php\n",
        ));
        assert_eq!(indexed.targets[0].fastcgi_script, "/var/www/html/index.php");
        assert_eq!(
            indexed.targets[1].fastcgi_script, "",
            "a backend without the app"
        );
    }

    #[test]
    fn ssl_servers_are_verified_unless_verify_none() {
        let cfg = "defaults\n    mode http\nfrontend web\n    bind :80\n    default_backend app\n\
                   backend app\n    server a 10.0.0.1:443 ssl verify none\n\
                   \x20   server b 10.0.0.2:443 ssl verify required ca-file /etc/ssl/ca.pem\n\
                   \x20   server c 10.0.0.3:80\n";
        let verify: Vec<bool> = parse_cfg(cfg)
            .targets
            .iter()
            .map(|t| t.tls_verify)
            .collect();
        assert_eq!(verify, [false, true, false]);
    }

    #[test]
    fn ssl_servers_carry_their_ca_file_and_checked_name() {
        let cfg = "global
    ca-base /etc/ssl/private-ca
                   defaults
    mode http
frontend web
    bind :80
    default_backend app
                   backend app
                       server a 10.0.0.1:443 ssl verify required ca-file /etc/haproxy/ca.pem verifyhost app.internal
                       server b 10.0.0.2:443 ssl ca-file internal.pem sni str(api.internal)
                       server c 10.0.0.3:443 ssl ca-file internal.pem sni req.hdr(host)
                       server d 10.0.0.4:80 ca-file /etc/haproxy/ca.pem
";
        let c = parse_cfg(cfg);
        let tls: Vec<(&str, &str)> = c
            .targets
            .iter()
            .map(|t| (t.tls_ca_file.as_str(), t.tls_server_name.as_str()))
            .collect();
        assert_eq!(
            tls,
            [
                ("/etc/haproxy/ca.pem", "app.internal"),
                ("/etc/ssl/private-ca/internal.pem", "api.internal"),
                ("/etc/ssl/private-ca/internal.pem", ""),
                ("", "")
            ]
        );
    }
}
