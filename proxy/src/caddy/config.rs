//! Reads a Caddyfile into a [`ProxyConfig`]: site blocks (their addresses
//! become server names and listens), `reverse_proxy` and `php_fastcgi`
//! upstreams (matchers skipped, `unix//path`, `h2c://`, `https://` understood),
//! and `log { output file ... }` files. Imports and snippets are not followed.

use gw502_proto::v1::{ProxyConfig, VirtualServer};

use crate::target::{default_port, target};

/// Parses Caddyfile text (pure).
pub fn parse_caddyfile(text: &str) -> ProxyConfig {
    let mut config = ProxyConfig {
        kind: gw502_vocab::ProxyKind::Caddy.as_str().to_string(),
        ..ProxyConfig::default()
    };
    let mut depth = 0usize;
    let mut site: Option<VirtualServer> = None;
    // The current site block's first target, `root` and constant `rewrite`: they
    // decide the script its `php_fastcgi` runs for `/` (see [`php_script`]).
    let (mut site_first, mut root, mut rewrite) = (0, None::<String>, None::<String>);
    let mut handle = String::new();
    let mut in_log = false;
    // The targets of the `reverse_proxy` block being read (its transport may say
    // `tls_insecure_skip_verify`).
    let mut proxy_block = 0..0;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let opens = line.ends_with('{');
        let closes = line == "}";
        if closes {
            depth = depth.saturating_sub(1);
            match depth {
                0 => {
                    if let Some(script) = php_script(root.take(), rewrite.take()) {
                        for t in &mut config.targets[site_first..] {
                            if t.protocol == "fastcgi" && t.fastcgi_script.is_empty() {
                                t.fastcgi_script = script.clone();
                            }
                        }
                    }
                    config.servers.extend(site.take());
                }
                1 => {
                    handle.clear();
                    in_log = false;
                }
                _ => {}
            }
            continue;
        }
        if depth == 0 {
            let addrs: Vec<&str> = words
                .iter()
                .map(|w| w.trim_end_matches(','))
                .filter(|w| !w.is_empty() && *w != "{")
                .collect();
            if !addrs.is_empty() {
                site = Some(site_server(&addrs));
                (site_first, root, rewrite) = (config.targets.len(), None, None);
            }
        } else if let Some(vs) = site.as_mut() {
            match words.first().copied() {
                Some("reverse_proxy" | "php_fastcgi") => {
                    let directive = words[0];
                    let first = config.targets.len();
                    for up in words[1..].iter().take_while(|w| **w != "{") {
                        if up.starts_with('/') || up.starts_with('@') || up.starts_with('*') {
                            continue;
                        }
                        let (scheme, addr) = up.split_once("://").unwrap_or(("", up));
                        let protocol = match (directive, scheme) {
                            ("php_fastcgi", _) => "fastcgi",
                            (_, "https") => "https",
                            (_, "h2c") => "grpc",
                            _ => "http",
                        };
                        let addr = match addr.strip_prefix("unix/") {
                            Some(path) => format!("unix:{path}"),
                            None => addr.to_string(),
                        };
                        let mut t = target(protocol, &addr, default_port(protocol), directive);
                        // Caddy verifies an https upstream unless told not to.
                        t.tls_verify = protocol == "https";
                        t.server_names = vs.names.clone();
                        t.location = match words.get(1) {
                            Some(m) if m.starts_with('/') || m.starts_with('@') => m.to_string(),
                            _ => handle.clone(),
                        };
                        config.targets.push(t);
                    }
                    proxy_block = first..config.targets.len();
                }
                Some("tls_insecure_skip_verify") => {
                    for t in &mut config.targets[proxy_block.clone()] {
                        t.tls_verify = false;
                    }
                }
                // `tls_trust_pool file <pem>` is the Caddy 2.9+ spelling.
                Some("tls_trusted_ca_certs" | "tls_trust_pool") => {
                    let files = if words[0] == "tls_trust_pool" {
                        words.get(1).filter(|w| **w == "file").and(words.get(2))
                    } else {
                        words.get(1)
                    };
                    if let Some(file) = files.filter(|f| **f != "{") {
                        let block = &mut config.targets[proxy_block.clone()];
                        for t in block.iter_mut().filter(|t| t.protocol == "https") {
                            t.tls_ca_file = file.to_string();
                        }
                    }
                }
                // A placeholder (`{upstream_hostport}`) is known only per request.
                Some("tls_server_name") => {
                    if let Some(name) = words.get(1).filter(|n| !n.contains('{')) {
                        let block = &mut config.targets[proxy_block.clone()];
                        for t in block.iter_mut().filter(|t| t.protocol == "https") {
                            t.tls_server_name = name.to_string();
                        }
                    }
                }
                Some("handle" | "handle_path" | "route") if opens => {
                    handle = words
                        .get(1)
                        .filter(|w| **w != "{")
                        .map(|w| w.to_string())
                        .unwrap_or_default();
                }
                // `root [*] <path>` and `rewrite [*] <to>` for every request (depth 1).
                Some("root") if depth == 1 => root = all_requests(&words).or(root),
                Some("rewrite") if depth == 1 => rewrite = all_requests(&words).or(rewrite),
                Some("log") if opens => in_log = true,
                Some("output") if in_log && words.get(1) == Some(&"file") => {
                    if let Some(path) = words.get(2) {
                        vs.access_logs.push(path.to_string());
                    }
                }
                _ => {}
            }
        }
        if opens {
            depth += 1;
        }
    }
    config.servers.extend(site.take());
    config
}

/// The argument of a `root`/`rewrite` line that applies to every request:
/// `root * /srv/www` or `root /srv/www`, not one behind a path or named matcher.
fn all_requests(words: &[&str]) -> Option<String> {
    match words {
        [_, "*", arg] | [_, arg] if !arg.contains('{') && *arg != "{" => Some(arg.to_string()),
        _ => None,
    }
}

/// The script `php_fastcgi` runs for `/`: the site's root joined with a
/// rewrite to one `.php` file, else with `index.php` (its default
/// `try_files {path} {path}/index.php index.php`). `None` without a root.
fn php_script(root: Option<String>, rewrite: Option<String>) -> Option<String> {
    let root = root?;
    let file = rewrite
        .filter(|r| r.starts_with('/') && r.ends_with(".php"))
        .unwrap_or_else(|| "/index.php".into());
    Some(format!("{}{file}", root.trim_end_matches('/')))
}

/// A site block's addresses: names without scheme/port, listens as written.
fn site_server(addrs: &[&str]) -> VirtualServer {
    let mut vs = VirtualServer::default();
    for a in addrs {
        let rest = a.split_once("://").map(|(_, r)| r).unwrap_or(a);
        let host = rest.rsplit_once(':').map(|(h, _)| h).unwrap_or(rest);
        if !host.is_empty() {
            vs.names.push(host.to_string());
        }
        vs.listens.push(a.to_string());
    }
    vs
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = include_str!("../../fixtures/caddy/Caddyfile");

    #[test]
    fn php_fastcgi_runs_the_root_s_index_or_its_constant_rewrite() {
        let script = |text: &str| {
            parse_caddyfile(text)
                .targets
                .into_iter()
                .map(|t| t.fastcgi_script)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            script(
                "app.example {\n root * /var/www/app/public/\n php_fastcgi unix//run/php/php8.2-fpm.sock\n}\n"
            ),
            ["/var/www/app/public/index.php"]
        );
        // The gw502 lab's matrix site: a constant rewrite, root after it.
        assert_eq!(
            script(
                "http://shop0.example:80, http://:80 {\n rewrite * /mode.php\n php_fastcgi unix//run/php/php8.2-fpm.sock {\n  read_timeout 4s\n }\n root * /var/www/gw502-lab\n log\n}\n"
            ),
            ["/var/www/gw502-lab/mode.php"]
        );
        // No root, or a root only for some paths: the script is unknown.
        assert_eq!(
            script("a.example {\n php_fastcgi 127.0.0.1:9000\n}\n"),
            [""]
        );
        assert_eq!(
            script("a.example {\n root /blog* /srv/blog\n php_fastcgi 127.0.0.1:9000\n}\n"),
            [""]
        );
    }

    #[test]
    fn parses_sites_upstreams_and_logs() {
        let c = parse_caddyfile(FILE);
        assert_eq!(c.servers.len(), 2, "{:?}", c.servers);
        assert_eq!(
            c.servers[0].names,
            vec!["shop.example.test", "www.shop.example.test"]
        );
        assert_eq!(c.servers[0].access_logs, vec!["/var/log/caddy/shop.log"]);
        assert_eq!(c.servers[1].names, vec!["legacy.example.test"]);
        let t = &c.targets;
        assert_eq!(t.len(), 5, "{t:?}");
        assert_eq!((t[0].port, t[0].location.as_str()), (3000, "/api/*"));
        assert_eq!(t[1].port, 3001);
        assert_eq!(
            (t[2].protocol.as_str(), t[2].unix_path.as_str()),
            ("fastcgi", "/run/php/php8.2-fpm.sock")
        );
        assert_eq!(
            (t[3].protocol.as_str(), t[3].location.as_str()),
            ("grpc", "/grpc/*")
        );
        assert_eq!((t[4].protocol.as_str(), t[4].port), ("https", 443));
        assert_eq!(t[4].server_names, vec!["legacy.example.test"]);
    }

    #[test]
    fn https_upstreams_are_verified_unless_skipped() {
        let c = parse_caddyfile(
            "a.example {\n    reverse_proxy https://127.0.0.1:8443 {\n        transport http {\n\
             \x20           tls_insecure_skip_verify\n        }\n    }\n}\n\
             b.example {\n    reverse_proxy https://10.0.0.2\n}\n\
             c.example {\n    reverse_proxy 10.0.0.3:80\n}\n",
        );
        let verify: Vec<bool> = c.targets.iter().map(|t| t.tls_verify).collect();
        assert_eq!(verify, [false, true, false]);
    }

    #[test]
    fn https_upstreams_carry_the_trusted_ca_and_server_name() {
        let c = parse_caddyfile(
            "a.example {\n    reverse_proxy https://10.0.0.1:8443 {\n        transport http {\n\
             \x20           tls_trusted_ca_certs /etc/caddy/internal-ca.pem\n\
             \x20           tls_server_name app.internal\n        }\n    }\n}\n\
             b.example {\n    reverse_proxy https://10.0.0.2 {\n        transport http {\n\
             \x20           tls_trust_pool file /etc/caddy/pool.pem\n\
             \x20           tls_server_name {upstream_hostport}\n        }\n    }\n}\n\
             c.example {\n    reverse_proxy https://10.0.0.3\n}\n",
        );
        let tls: Vec<(&str, &str)> = c
            .targets
            .iter()
            .map(|t| (t.tls_ca_file.as_str(), t.tls_server_name.as_str()))
            .collect();
        assert_eq!(
            tls,
            [
                ("/etc/caddy/internal-ca.pem", "app.internal"),
                ("/etc/caddy/pool.pem", ""),
                ("", "")
            ]
        );
    }
}
