//! What a unit's own definition says it serves: its `ExecStart` naming the
//! target's port or socket path, or its `WorkingDirectory` named after the
//! site. These tie a cold-start candidate (a stopped or failed service the
//! agent never saw listen) to a target; the agent reports the argv with
//! secret-looking values already redacted.
//!
//! The port rule is strict on purpose, since a number in an argv can be
//! anything (`--workers 3000`, `--timeout 3000`). The port counts only:
//!
//! - after a colon with a local or matching host part: `:3000`,
//!   `127.0.0.1:3000`, `0.0.0.0:3000`, `[::]:3000`, `tcp://localhost:3000`;
//! - as the value of an option or variable named like a port, bind, listen
//!   or address (`--port=3000`, `PORT=3000`, `--port 3000`, `-p 3000`,
//!   `-b 3000`).

use super::super::target::Target;

/// Option and variable names whose value is where the service listens.
const LISTEN_WORDS: &[&str] = &["port", "bind", "listen", "addr"];

/// Short flags that take a port or an address (`-p 3000`, `-b :3000`, `-l`).
const SHORT_FLAGS: &[&str] = &["p", "b", "l"];

/// Host parts of `host:port` that mean "here".
const LOCAL_HOSTS: &[&str] = &[
    "",
    "*",
    "0.0.0.0",
    "::",
    "[::]",
    "::1",
    "[::1]",
    "localhost",
    "127.0.0.1",
];

/// Whether an option or variable name is about where to listen.
fn listen_name(name: &str) -> bool {
    let name = name.trim_start_matches('-').to_ascii_lowercase();
    SHORT_FLAGS.contains(&name.as_str()) || LISTEN_WORDS.iter().any(|w| name.contains(w))
}

/// The argv split into words: each argument, and the words of a shell
/// script argument (`sh -c "exec app --port 3000"`).
fn argv_words(argv: &[String]) -> Vec<&str> {
    argv.iter()
        .flat_map(|a| a.split(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ';' | ',')))
        .filter(|w| !w.is_empty())
        .collect()
}

/// Whether `value` is `host:port` with a local or the target's host part.
fn names_host_port(value: &str, port: &str, target_host: &str) -> bool {
    let value = value.trim_end_matches('/');
    let value = value.split_once("://").map_or(value, |(_, rest)| rest);
    let Some(host) = value
        .strip_suffix(port)
        .and_then(|rest| rest.strip_suffix(':'))
    else {
        return false;
    };
    LOCAL_HOSTS.contains(&host)
        || host
            .trim_matches(['[', ']'])
            .eq_ignore_ascii_case(target_host)
}

/// Whether an argv names TCP `port` (on `host`) as where the service listens.
pub(crate) fn names_port(argv: &[String], port: u16, host: &str) -> bool {
    let port = port.to_string();
    let words = argv_words(argv);
    words.iter().enumerate().any(|(i, word)| {
        let (name, value) = match word.split_once('=') {
            Some((name, value)) => (Some(name), value),
            None => (None, *word),
        };
        if names_host_port(value, &port, host) {
            return true;
        }
        let flagged = match name {
            Some(name) => listen_name(name),
            None => i > 0 && words[i - 1].starts_with('-') && listen_name(words[i - 1]),
        };
        value == port && flagged
    })
}

/// Whether an argv names the unix socket `path` (not a longer path).
pub(crate) fn names_path(argv: &[String], path: &str) -> bool {
    argv.iter().any(|a| {
        a.match_indices(path).any(|(at, _)| {
            let next = a[at + path.len()..].chars().next();
            next.is_none_or(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')))
        })
    })
}

/// Whether an `ExecStart` argv names the target (its port or socket path).
pub(crate) fn declares(argv: &[String], target: &Target) -> bool {
    match (&target.unix, target.port) {
        (Some(path), _) => names_path(argv, path),
        (None, Some(port)) => names_port(argv, port, &target.host),
        (None, None) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn ports_tie_after_a_colon_or_a_listen_option_only() {
        for line in [
            "/usr/bin/node /srv/app/server.js --port 3000",
            "/usr/bin/node /srv/app/server.js --port=3000",
            "/srv/venv/bin/gunicorn --bind 127.0.0.1:3000 shop.wsgi",
            "/srv/venv/bin/gunicorn -b 0.0.0.0:3000 shop.wsgi",
            "/usr/bin/env PORT=3000 /srv/app/bin/app",
            "/usr/bin/puma -p 3000",
            "/srv/app/app --listen=[::]:3000",
            "/srv/app/app --http-addr=tcp://localhost:3000/",
        ] {
            assert!(names_port(&argv(line), 3000, "127.0.0.1"), "{line}");
        }
        for line in [
            "/usr/bin/node /srv/app/server.js --port 30000",
            "/srv/backup/restic --limit-upload 3000",
            "/srv/app/app --timeout=3000",
            "/srv/worker/run --database 10.0.0.9:3000",
            "/srv/app/app --port 3001 :13000",
        ] {
            assert!(!names_port(&argv(line), 3000, "127.0.0.1"), "{line}");
        }
        assert!(names_port(
            &argv("/srv/api/api --bind api.internal:8080"),
            8080,
            "api.internal"
        ));
    }

    #[test]
    fn a_shell_script_argument_is_read_word_by_word() {
        let recorded = [
            "/bin/sh".to_string(),
            "-c".to_string(),
            "echo \"<3>crash: cannot connect to database at 127.0.0.1:5432\"; exit 3".to_string(),
        ];
        assert!(names_port(&recorded, 5432, "127.0.0.1"));
        assert!(!names_port(&recorded, 3000, "127.0.0.1"));
        let script = [
            "/bin/sh".to_string(),
            "-c".to_string(),
            "exec /srv/app/app --port 3000".to_string(),
        ];
        assert!(names_port(&script, 3000, "127.0.0.1"));
    }

    #[test]
    fn socket_paths_tie_whole_paths_only() {
        let gunicorn = argv("/srv/venv/bin/gunicorn --bind unix:/run/app.sock shop.wsgi");
        assert!(names_path(&gunicorn, "/run/app.sock"));
        assert!(!names_path(&gunicorn, "/run/app"));
        assert!(!names_path(
            &argv("/srv/app --socket=/run/app.sock2"),
            "/run/app.sock"
        ));
    }
}
