//! VCL discovery: the backends a VCL file declares
//! (`backend NAME { .host = "…"; .port = "…"; }`, unix `.path` backends of
//! Varnish 6.4+), as upstream targets grouped by backend name. Comments
//! (`#`, `//`, `/* */`) are skipped, probes and other nested blocks inside a
//! backend are read past, and `backend NAME none;` declares no target.

use gw502_proto::v1::{ProxyConfig, UpstreamTarget};

/// Parses a VCL text into a config with one target per backend.
pub fn parse_vcl(text: &str) -> ProxyConfig {
    let clean = strip_comments(text);
    let mut targets = Vec::new();
    let mut rest = clean.as_str();
    while let Some(at) = find_word(rest, "backend") {
        rest = &rest[at + "backend".len()..];
        let name: String = rest
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        let after = rest.trim_start()[name.len()..].trim_start();
        if name.is_empty() || !after.starts_with('{') {
            continue;
        }
        let body = block(&after[1..]);
        rest = &after[1 + body.len()..];
        if let Some(t) = target(&name, body) {
            targets.push(t);
        }
    }
    ProxyConfig {
        targets,
        ..ProxyConfig::default()
    }
}

/// The text of a `{ … }` block whose opening brace was just consumed, up to
/// (not including) its closing brace, or to the end of `s`.
fn block(s: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return &s[..i],
            '}' => depth -= 1,
            _ => {}
        }
    }
    s
}

/// The target one backend block declares; `None` without `.host` or `.path`.
fn target(name: &str, body: &str) -> Option<UpstreamTarget> {
    // Only the backend's own fields: nested blocks (`.probe = { … }`) name other things.
    let mut own = String::new();
    let mut depth = 0usize;
    for c in body.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            _ if depth == 0 => own.push(c),
            _ => {}
        }
    }
    let field = |key: &str| -> Option<String> {
        own.split(';').find_map(|stmt| {
            let (k, v) = stmt.split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
        })
    };
    let base = UpstreamTarget {
        protocol: "http".to_string(),
        group: name.to_string(),
        directive: "backend".to_string(),
        ..UpstreamTarget::default()
    };
    if let Some(path) = field(".path").filter(|p| p.starts_with('/')) {
        return Some(UpstreamTarget {
            address: format!("unix:{path}"),
            unix_path: path,
            ..base
        });
    }
    let host = field(".host").filter(|h| !h.is_empty())?;
    let port = field(".port").map_or(80, |p| service_port(&p));
    let host = host.trim_matches(['[', ']']).to_string();
    let address = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Some(UpstreamTarget {
        address,
        host,
        port: u32::from(port),
        ..base
    })
}

/// A `.port` value: a number, or the service names VCL allows for HTTP.
fn service_port(p: &str) -> u16 {
    match p {
        "http" | "www" => 80,
        "https" => 443,
        _ => p.parse().unwrap_or(0),
    }
}

/// Byte offset of `word` standing alone (not part of an identifier).
fn find_word(s: &str, word: &str) -> Option<usize> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-';
    let mut from = 0;
    while let Some(i) = s[from..].find(word) {
        let at = from + i;
        let before = s[..at].chars().next_back().is_none_or(|c| !ident(c));
        let after = s[at + word.len()..]
            .chars()
            .next()
            .is_none_or(|c| !ident(c));
        if before && after {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

/// The text without comments; string literals are kept as written.
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            in_string = c != '"';
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('#', _) | ('/', Some('/')) => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
                out.push(' ');
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = include_str!("../../fixtures/varnish/debian-default.vcl");
    const CAPTURE: &str = include_str!("../../fixtures/varnish/capture.vcl");

    #[test]
    fn debians_default_vcl_names_one_backend() {
        let c = parse_vcl(DEBIAN);
        assert_eq!(c.targets.len(), 1);
        let t = &c.targets[0];
        assert_eq!(
            (
                t.address.as_str(),
                t.host.as_str(),
                t.port,
                t.group.as_str()
            ),
            ("127.0.0.1:8080", "127.0.0.1", 8080, "default")
        );
        assert_eq!(
            (t.protocol.as_str(), t.directive.as_str()),
            ("http", "backend")
        );
    }

    #[test]
    fn probes_and_nested_blocks_are_read_past() {
        let c = parse_vcl(CAPTURE);
        let groups: Vec<&str> = c.targets.iter().map(|t| t.group.as_str()).collect();
        assert_eq!(
            groups,
            [
                "default",
                "app_probed",
                "app_sick",
                "refused",
                "hang",
                "premature",
                "reset",
                "junk",
                "big",
                "short",
                "huge",
                "write_err"
            ]
        );
        assert!(
            c.targets
                .iter()
                .all(|t| t.host == "127.0.0.1" && t.port > 0)
        );
    }

    #[test]
    fn comments_unix_paths_names_and_junk() {
        let text = r#"
            # backend ghost { .host = "10.0.0.1"; }
            /* backend ghost2 { .host = "10.0.0.2"; } */
            backend sock { .path = "/run/app.sock"; }
            backend v6 { .host = "::1"; .port = "http"; } // trailing
            backend nothing none;
            backend_hint_is_not_a_backend { .host = "x"; }
            sub vcl_recv { set req.backend_hint = sock; }
        "#;
        let c = parse_vcl(text);
        let addrs: Vec<&str> = c.targets.iter().map(|t| t.address.as_str()).collect();
        assert_eq!(addrs, ["unix:/run/app.sock", "[::1]:80"]);
        assert_eq!(c.targets[0].unix_path, "/run/app.sock");
        for junk in [
            "backend",
            "backend x {",
            "backend { .host = \"a\"; }",
            "\"",
            "/*",
        ] {
            let _ = parse_vcl(junk);
        }
    }
}
