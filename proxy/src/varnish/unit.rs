//! How `varnish.service` starts varnishd: the `ExecStart` of the unit file and
//! its drop-ins (an empty `ExecStart=` resets, the last one wins, `\`
//! continues a line), and what its argv says: the VCL (`-f`), the listen
//! addresses (`-a`), the admin address and secret (`-T`, `-S`) and the
//! working directory (`-n`) that `varnishadm` and `varnishlog` need.

use std::path::PathBuf;

/// What varnishd's command line says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Invocation {
    /// `-f`: the VCL file.
    pub vcl: Option<PathBuf>,
    /// `-a`: listen addresses as written (`:6081`, `127.0.0.1:80,HTTP`).
    pub listens: Vec<String>,
    /// `-T`: the admin address.
    pub admin: Option<String>,
    /// `-S`: the admin secret file.
    pub secret: Option<PathBuf>,
    /// `-n`: the working directory (instance name).
    pub workdir: Option<PathBuf>,
}

/// The argv of the effective `ExecStart` of a unit, given the unit file then
/// its drop-ins in the order systemd reads them; `None` when none sets one.
pub fn exec_start(files: &[String]) -> Option<Vec<String>> {
    let mut argv = None;
    for text in files {
        let mut in_service = false;
        let mut logical = String::new();
        for raw in text.lines() {
            let line = raw.trim();
            if let Some(cont) = line.strip_suffix('\\') {
                logical.push_str(cont);
                logical.push(' ');
                continue;
            }
            logical.push_str(line);
            let line = std::mem::take(&mut logical);
            let line = line.trim();
            if line.starts_with('[') {
                in_service = line == "[Service]";
                continue;
            }
            if !in_service || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some((key, value)) = line.split_once('=')
                && key.trim() == "ExecStart"
            {
                let words = split_words(value.trim());
                argv = (!words.is_empty()).then_some(words);
            }
        }
    }
    argv.map(|mut a| {
        // Exec prefixes (`-`, `@`, `+`, `!`, `:`) on the binary.
        if let Some(first) = a.first_mut() {
            *first = first
                .trim_start_matches(['-', '@', '+', '!', ':'])
                .to_string();
        }
        a
    })
}

/// Reads varnishd's options from its argv (binary first).
pub fn invocation(argv: &[String]) -> Invocation {
    let mut inv = Invocation::default();
    let mut words = argv.iter().skip(1);
    while let Some(w) = words.next() {
        let (flag, inline) = match w.strip_prefix('-') {
            Some(rest) if rest.len() > 1 && !rest.starts_with('-') => (&w[..2], Some(&rest[1..])),
            Some(_) => (w.as_str(), None),
            None => continue,
        };
        let takes = matches!(
            flag,
            "-f" | "-a"
                | "-T"
                | "-S"
                | "-n"
                | "-s"
                | "-p"
                | "-j"
                | "-l"
                | "-P"
                | "-t"
                | "-b"
                | "-i"
                | "-M"
                | "-I"
                | "-E"
                | "-h"
                | "-r"
                | "-W"
        );
        if !takes {
            continue;
        }
        let Some(value) = inline.map(str::to_string).or_else(|| words.next().cloned()) else {
            break;
        };
        match flag {
            "-f" if !value.is_empty() => inv.vcl = Some(PathBuf::from(value)),
            "-a" => inv.listens.push(value),
            "-T" if value != "none" => inv.admin = Some(value),
            "-S" if value != "none" => inv.secret = Some(PathBuf::from(value)),
            "-n" => inv.workdir = Some(PathBuf::from(value)),
            _ => {}
        }
    }
    inv
}

/// Splits an `ExecStart` value into words: whitespace separates, double and
/// single quotes group, a backslash escapes the next character.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, quote) {
            ('\\', _) => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    started = true;
                }
            }
            ('"' | '\'', None) => {
                quote = Some(c);
                started = true;
            }
            (q, Some(open)) if q == open => quote = None,
            (w, None) if w.is_whitespace() => {
                if started {
                    out.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            _ => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = include_str!("../../fixtures/varnish/varnish.service");

    #[test]
    fn debians_unit_names_its_vcl_admin_and_secret() {
        let argv = exec_start(&[DEBIAN.to_string()]).unwrap();
        assert_eq!(argv[0], "/usr/sbin/varnishd");
        let inv = invocation(&argv);
        assert_eq!(inv.vcl, Some(PathBuf::from("/etc/varnish/default.vcl")));
        assert_eq!(inv.listens, [":6081"]);
        assert_eq!(inv.admin.as_deref(), Some("localhost:6082"));
        assert_eq!(inv.secret, Some(PathBuf::from("/etc/varnish/secret")));
        assert_eq!(inv.workdir, None);
    }

    #[test]
    fn a_drop_in_resets_and_replaces_exec_start() {
        let drop_in = "[Service]\nExecStart=\nExecStart=-/usr/sbin/varnishd -F -a :80 -a 127.0.0.1:8443,PROXY \\\n  -f \"/etc/varnish/site one.vcl\" -n/var/lib/varnish/site -S none\n";
        let argv = exec_start(&[DEBIAN.to_string(), drop_in.to_string()]).unwrap();
        let inv = invocation(&argv);
        assert_eq!(argv[0], "/usr/sbin/varnishd");
        assert_eq!(inv.vcl, Some(PathBuf::from("/etc/varnish/site one.vcl")));
        assert_eq!(inv.listens, [":80", "127.0.0.1:8443,PROXY"]);
        assert_eq!(inv.workdir, Some(PathBuf::from("/var/lib/varnish/site")));
        assert_eq!((inv.admin, inv.secret), (None, None));
        // Only a reset: no ExecStart left.
        assert_eq!(
            exec_start(&[DEBIAN.to_string(), "[Service]\nExecStart=\n".into()]),
            None
        );
        assert_eq!(exec_start(&["[Unit]\nExecStart=/bin/x\n".into()]), None);
        assert_eq!(
            invocation(&["varnishd".into(), "-f".into()]),
            Invocation::default()
        );
    }
}
