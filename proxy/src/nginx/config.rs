//! Reads `nginx -T` output into a [`ProxyConfig`]: virtual servers, upstream
//! targets (with `upstream` groups expanded), log files and `log_format`s.
//!
//! `nginx -T` prints every file it loaded after a `# configuration file
//! /path:` header but leaves `include` directives in place, so includes are
//! expanded here by matching their globs against the dumped file names.
//! [`parse_dump`] is pure: the caller runs nginx.

pub mod syntax;

use std::collections::BTreeMap;

use gw502_proto::v1::{ProxyConfig, UpstreamTarget, VirtualServer};

use crate::target::{default_port, split_url, target};
use syntax::{Directive, glob_match, parse, split_dump};

/// How deep `include` may nest before it is ignored (nginx itself stops cycles).
const MAX_INCLUDE_DEPTH: usize = 10;
/// The most directives kept after include expansion.
const MAX_EXPANDED: usize = 500_000;
/// nginx's built-in `combined` log format.
pub const COMBINED: &str = "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent \"$http_referer\" \"$http_user_agent\"";
/// Debian's compiled-in prefix, for relative log paths.
pub const DEFAULT_PREFIX: &str = "/usr/share/nginx";
/// Debian's compiled-in main config file.
pub const DEFAULT_CONF: &str = "/etc/nginx/nginx.conf";
/// Debian's compiled-in error log.
pub const DEFAULT_ERROR_LOG: &str = "/var/log/nginx/error.log";
/// Debian's compiled-in access log.
pub const DEFAULT_ACCESS_LOG: &str = "/var/log/nginx/access.log";

/// What an `nginx -T` dump says, beyond the wire `ProxyConfig`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NginxDump {
    /// Servers, targets and log files (kind `nginx`; unit, hash and test are
    /// left for the caller).
    pub config: ProxyConfig,
    /// The files the dump contains, in order.
    pub files: Vec<String>,
    /// `log_format` name to template.
    pub log_formats: BTreeMap<String, String>,
    /// Access log path to the template of the format it is written in.
    pub access_log_formats: BTreeMap<String, String>,
    /// Arguments of every `resolver` directive.
    pub resolvers: Vec<String>,
    /// `proxy_buffer_size` at http level, if set.
    pub proxy_buffer_size: Option<String>,
    /// `fastcgi_buffer_size` at http level, if set.
    pub fastcgi_buffer_size: Option<String>,
}

/// Parses `nginx -T` output with Debian's prefix for relative paths.
pub fn parse_dump(text: &str) -> NginxDump {
    parse_dump_with_prefix(text, DEFAULT_PREFIX)
}

/// Parses `nginx -T` output; relative log paths are resolved under `prefix`.
pub fn parse_dump_with_prefix(text: &str, prefix: &str) -> NginxDump {
    let files = split_dump(text);
    let mut dump = NginxDump {
        files: files.iter().map(|(p, _)| p.clone()).collect(),
        ..NginxDump::default()
    };
    dump.config.kind = gw502_vocab::ProxyKind::Nginx.as_str().to_string();
    let Some((main_path, main_text)) = files.first() else {
        return dump;
    };
    let conf_dir = main_path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let parsed: Vec<(String, Vec<Directive>)> =
        files.iter().map(|(p, t)| (p.clone(), parse(t))).collect();
    let mut budget = MAX_EXPANDED;
    let top = expand(parse(main_text), &parsed, conf_dir, 0, &mut budget);
    let mut walk = Walk {
        dump: &mut dump,
        prefix,
        groups: BTreeMap::new(),
        tls: UpstreamTls::default(),
        sets: BTreeMap::new(),
    };
    walk.top(&top);
    dump
}

/// The `include` patterns of one config file, made absolute against the
/// file's directory (nginx resolves them against the main file's directory;
/// both agree for the usual `/etc/nginx` layout), for reading the files
/// that `nginx -T` would have dumped.
pub fn includes(file: &str, text: &str) -> Vec<String> {
    let dir = file.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let mut out = Vec::new();
    let mut stack = vec![parse(text)];
    while let Some(directives) = stack.pop() {
        for d in directives {
            if d.name == "include"
                && d.block.is_none()
                && let Some(pattern) = d.args.first()
            {
                out.push(if pattern.starts_with('/') {
                    pattern.clone()
                } else {
                    format!("{dir}/{pattern}")
                });
            }
            if let Some(block) = d.block {
                stack.push(block);
            }
        }
    }
    out
}

/// Joins files into the shape of `nginx -T` output, main file first.
pub fn join_dump(files: &[(String, String)]) -> String {
    let mut out = String::new();
    for (path, text) in files {
        out.push_str("# configuration file ");
        out.push_str(path);
        out.push_str(":\n");
        out.push_str(text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// Replaces `include` directives by the directives of the files they name.
fn expand(
    directives: Vec<Directive>,
    files: &[(String, Vec<Directive>)],
    conf_dir: &str,
    depth: usize,
    budget: &mut usize,
) -> Vec<Directive> {
    let mut out = Vec::with_capacity(directives.len());
    for mut d in directives {
        if *budget == 0 {
            break;
        }
        *budget -= 1;
        if d.name == "include" && d.block.is_none() {
            if depth >= MAX_INCLUDE_DEPTH {
                continue;
            }
            let Some(pattern) = d.args.first() else {
                continue;
            };
            let pattern = if pattern.starts_with('/') {
                pattern.clone()
            } else {
                format!("{conf_dir}/{pattern}")
            };
            for (path, included) in files {
                if glob_match(&pattern, path) {
                    out.extend(expand(included.clone(), files, conf_dir, depth + 1, budget));
                }
            }
            continue;
        }
        if let Some(block) = d.block.take() {
            d.block = Some(expand(block, files, conf_dir, depth, budget));
        }
        out.push(d);
    }
    out
}

struct Walk<'a> {
    dump: &'a mut NginxDump,
    prefix: &'a str,
    /// upstream group name to its servers (address, runtime resolve).
    groups: BTreeMap<String, Vec<(String, bool)>>,
    /// The upstream TLS settings of the `http` block (servers and locations inherit them).
    tls: UpstreamTls,
    /// Variables the enclosing server and location blocks `set` to a literal value
    /// (`set $backend app.internal;`), the nearest block winning.
    sets: BTreeMap<String, String>,
}

/// How the proxy checks upstream certificates, as a block sets or inherits it:
/// `proxy_ssl_*` for `proxy_pass`, `grpc_ssl_*` for `grpc_pass`.
#[derive(Debug, Clone, Default)]
struct UpstreamTls {
    proxy: SslCheck,
    grpc: SslCheck,
}

/// One family of `*_ssl_*` directives.
#[derive(Debug, Clone, Default)]
struct SslCheck {
    /// `*_ssl_verify on`.
    verify: bool,
    /// `*_ssl_trusted_certificate`.
    ca_file: String,
    /// `*_ssl_name`, when a constant.
    name: String,
}

/// The first argument of the last `name` directive in `body`.
fn last_set<'a>(body: &'a [Directive], name: &str) -> Option<&'a str> {
    body.iter()
        .rev()
        .find(|d| d.name == name)
        .and_then(|d| d.args.first())
        .map(String::as_str)
}

/// `fastcgi_param SCRIPT_FILENAME` of the block holding a `fastcgi_pass`, when it names
/// one file for every request (no variable such as `$document_root$fastcgi_script_name`).
fn fixed_script_filename(body: &[Directive]) -> Option<String> {
    let d = body.iter().rev().find(|d| {
        d.name == "fastcgi_param" && d.args.first().is_some_and(|a| a == "SCRIPT_FILENAME")
    })?;
    let value = d.args.get(1)?;
    (!value.contains('$')).then(|| value.clone())
}

/// The upstream TLS settings of a block, each directive inheriting separately
/// from the enclosing block as nginx does.
fn upstream_tls(body: &[Directive], inherited: &UpstreamTls) -> UpstreamTls {
    UpstreamTls {
        proxy: ssl_check(body, "proxy", &inherited.proxy),
        grpc: ssl_check(body, "grpc", &inherited.grpc),
    }
}

fn ssl_check(body: &[Directive], family: &str, inherited: &SslCheck) -> SslCheck {
    let verify =
        last_set(body, &format!("{family}_ssl_verify")).map_or(inherited.verify, |v| v == "on");
    let ca_file = last_set(body, &format!("{family}_ssl_trusted_certificate"))
        .map_or_else(|| inherited.ca_file.clone(), str::to_string);
    // A name with a variable (`$host`, the default `$proxy_host`) is known only per request.
    let name = last_set(body, &format!("{family}_ssl_name")).map_or_else(
        || inherited.name.clone(),
        |n| {
            if n.contains('$') {
                String::new()
            } else {
                n.to_string()
            }
        },
    );
    SslCheck {
        verify,
        ca_file,
        name,
    }
}

impl Walk<'_> {
    fn top(&mut self, top: &[Directive]) {
        for d in top {
            match (d.name.as_str(), &d.block) {
                ("error_log", None) => self.error_log(d, None),
                ("http", Some(block)) => self.context(block, false),
                ("stream", Some(block)) => self.context(block, true),
                _ => {}
            }
        }
        if self.dump.config.error_logs.is_empty() {
            self.dump
                .config
                .error_logs
                .push(DEFAULT_ERROR_LOG.to_string());
        }
    }

    fn context(&mut self, block: &[Directive], stream: bool) {
        for d in block.iter().filter(|d| d.name == "upstream") {
            let (Some(name), Some(servers)) = (d.args.first(), &d.block) else {
                continue;
            };
            let members = servers
                .iter()
                .filter(|s| s.name == "server")
                .filter_map(|s| {
                    let addr = s.args.first()?;
                    Some((addr.clone(), s.args.iter().any(|a| a == "resolve")))
                })
                .collect();
            self.groups.insert(name.clone(), members);
        }
        self.tls = if stream {
            UpstreamTls::default()
        } else {
            upstream_tls(block, &UpstreamTls::default())
        };
        let mut has_access_log = false;
        for d in block {
            match d.name.as_str() {
                "error_log" => self.error_log(d, None),
                "access_log" if !stream => {
                    has_access_log = true;
                    self.access_log(d, None);
                }
                "log_format" if !stream => {
                    if let Some((name, parts)) = d.args.split_first() {
                        let parts: Vec<&String> =
                            parts.iter().filter(|p| !p.starts_with("escape=")).collect();
                        let template = parts.iter().map(|s| s.as_str()).collect::<String>();
                        self.dump.log_formats.insert(name.clone(), template);
                    }
                }
                "resolver" => self.dump.resolvers.push(d.args.join(" ")),
                "proxy_buffer_size" => self.dump.proxy_buffer_size = d.args.first().cloned(),
                "fastcgi_buffer_size" => self.dump.fastcgi_buffer_size = d.args.first().cloned(),
                "server" => {
                    if let Some(body) = &d.block {
                        self.server(body, stream);
                    }
                }
                _ => {}
            }
        }
        if !stream && !has_access_log {
            let path = DEFAULT_ACCESS_LOG.to_string();
            self.dump
                .access_log_formats
                .insert(path.clone(), COMBINED.to_string());
            self.dump.config.access_logs.push(path);
        }
    }

    fn server(&mut self, body: &[Directive], stream: bool) {
        let mut vs = VirtualServer::default();
        for d in body {
            match d.name.as_str() {
                "server_name" => vs.names.extend(d.args.iter().cloned()),
                "listen" => vs.listens.push(d.args.join(" ")),
                _ => {}
            }
        }
        let tls = upstream_tls(body, &self.tls);
        self.passes(body, &vs.names.clone(), "", stream, &tls, &mut vs);
        self.dump.config.servers.push(vs);
    }

    /// Finds pass directives and logs in a server body, descending into
    /// `location`, `if` and `limit_except` blocks.
    fn passes(
        &mut self,
        body: &[Directive],
        names: &[String],
        location: &str,
        stream: bool,
        tls: &UpstreamTls,
        vs: &mut VirtualServer,
    ) {
        // `set` runs in the rewrite phase, before any pass, wherever it stands in the block.
        let outer = self.sets.clone();
        for d in body.iter().filter(|d| d.name == "set" && d.block.is_none()) {
            if let [name, value] = d.args.as_slice()
                && let Some(name) = name.strip_prefix('$')
            {
                if value.contains('$') {
                    self.sets.remove(name);
                } else {
                    self.sets.insert(name.to_string(), value.clone());
                }
            }
        }
        self.passes_in(body, names, location, stream, tls, vs);
        self.sets = outer;
    }

    fn passes_in(
        &mut self,
        body: &[Directive],
        names: &[String],
        location: &str,
        stream: bool,
        tls: &UpstreamTls,
        vs: &mut VirtualServer,
    ) {
        for d in body {
            if let Some(block) = &d.block {
                let loc = if d.name == "location" {
                    d.args.join(" ")
                } else {
                    location.to_string()
                };
                self.passes(block, names, &loc, stream, &upstream_tls(block, tls), vs);
                continue;
            }
            match d.name.as_str() {
                "access_log" if !stream => self.access_log(d, Some(vs)),
                "error_log" => self.error_log(d, Some(vs)),
                "proxy_pass" | "fastcgi_pass" | "uwsgi_pass" | "scgi_pass" | "grpc_pass" => {
                    let Some(value) = d.args.first() else {
                        continue;
                    };
                    for mut t in self.pass_targets(&d.name, value, stream) {
                        t.server_names = names.to_vec();
                        t.location = location.to_string();
                        if matches!(t.protocol.as_str(), "https" | "grpcs") {
                            let ssl = if d.name == "grpc_pass" {
                                &tls.grpc
                            } else {
                                &tls.proxy
                            };
                            t.tls_verify = ssl.verify;
                            t.tls_ca_file.clone_from(&ssl.ca_file);
                            t.tls_server_name.clone_from(&ssl.name);
                        }
                        if d.name == "fastcgi_pass" {
                            t.fastcgi_script = fixed_script_filename(body).unwrap_or_default();
                        }
                        self.dump.config.targets.push(t);
                    }
                }
                _ => {}
            }
        }
    }

    fn pass_targets(&self, directive: &str, value: &str, stream: bool) -> Vec<UpstreamTarget> {
        let (scheme, authority) = split_url(value);
        let protocol = match directive {
            "proxy_pass" if stream => "tcp",
            "proxy_pass" => scheme,
            "fastcgi_pass" => "fastcgi",
            "uwsgi_pass" => "uwsgi",
            "scgi_pass" => "scgi",
            _ if scheme == "grpcs" => "grpcs",
            _ => "grpc",
        };
        if let Some(members) = self.groups.get(authority) {
            return members
                .iter()
                .map(|(addr, resolve)| {
                    let mut t = target(protocol, addr, 80, directive);
                    t.group = authority.to_string();
                    t.runtime_resolve |= *resolve;
                    t
                })
                .collect();
        }
        // A name held in a variable that a block sets to a literal is that name, looked
        // up per request through `resolver` (the usual way to make nginx re-resolve).
        let known = self.substitute(authority);
        let authority = known.as_deref().unwrap_or(authority);
        let mut t = target(protocol, authority, default_port(protocol), directive);
        t.runtime_resolve = value.contains('$');
        if authority.contains('$') {
            t.host.clear();
            t.port = 0;
        }
        vec![t]
    }

    /// `text` with every `$name` / `${name}` replaced by its literal [`Walk::sets`]
    /// value, or `None` when it has none or one is not known.
    fn substitute(&self, text: &str) -> Option<String> {
        if !text.contains('$') {
            return None;
        }
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (name, next) = match after.strip_prefix('{') {
                Some(braced) => {
                    let end = braced.find('}')?;
                    (&braced[..end], &braced[end + 1..])
                }
                None => {
                    let end = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (&after[..end], &after[end..])
                }
            };
            out.push_str(self.sets.get(name)?);
            rest = next;
        }
        out.push_str(rest);
        Some(out)
    }

    fn log_path(&self, raw: &str) -> Option<String> {
        if raw == "off"
            || raw == "stderr"
            || raw.starts_with("syslog:")
            || raw.starts_with("memory:")
        {
            return None;
        }
        if raw.starts_with('/') {
            Some(raw.to_string())
        } else {
            Some(format!("{}/{raw}", self.prefix.trim_end_matches('/')))
        }
    }

    fn error_log(&mut self, d: &Directive, vs: Option<&mut VirtualServer>) {
        let Some(path) = d.args.first().and_then(|a| self.log_path(a)) else {
            return;
        };
        let list = match vs {
            Some(vs) => &mut vs.error_logs,
            None => &mut self.dump.config.error_logs,
        };
        if !list.contains(&path) {
            list.push(path);
        }
    }

    fn access_log(&mut self, d: &Directive, vs: Option<&mut VirtualServer>) {
        let Some(path) = d.args.first().and_then(|a| self.log_path(a)) else {
            return;
        };
        let format = d.args.get(1).map(String::as_str).unwrap_or("combined");
        let template = match self.dump.log_formats.get(format) {
            Some(t) => t.clone(),
            None => COMBINED.to_string(),
        };
        self.dump.access_log_formats.insert(path.clone(), template);
        let list = match vs {
            Some(vs) => &mut vs.access_logs,
            None => &mut self.dump.config.access_logs,
        };
        if !list.contains(&path) {
            list.push(path);
        }
    }
}

#[cfg(test)]
mod tests;
