//! Pure parsing of the store's database URL: which backend it names, the URL
//! handed to sqlx (a plain path becomes a SQLite URL that creates the file),
//! and a redacted form for logs and errors that never shows a password.

use super::Backend;

/// The file of a normalized SQLite URL; `None` for in-memory and PostgreSQL.
pub(crate) fn sqlite_file(sqlx_url: &str) -> Option<std::path::PathBuf> {
    let rest = sqlx_url.strip_prefix("sqlite:")?;
    let path = rest.strip_prefix("//").unwrap_or(rest);
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| path.into())
}

/// The sqlx URL for `url` and the backend it names, or `None` if it names
/// neither SQLite nor PostgreSQL.
///
/// - `postgres://…` / `postgresql://…`: PostgreSQL, unchanged.
/// - `sqlite::memory:`: an in-memory SQLite database, unchanged.
/// - `sqlite://…` / `sqlite:…`: SQLite; `mode=rwc` is added unless a mode is given.
/// - anything else without a scheme is a file path: `sqlite://<path>?mode=rwc`.
pub(crate) fn normalize(url: &str) -> Option<(Backend, String)> {
    let url = url.trim();
    if url.is_empty() {
        return None;
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Some((Backend::Postgres, url.to_owned()));
    }
    if url == "sqlite::memory:" || url.starts_with("sqlite::memory:?") {
        return Some((Backend::Sqlite, url.to_owned()));
    }
    let sqlite = if url.starts_with("sqlite:") {
        url.to_owned()
    } else if url.contains("://") {
        return None;
    } else {
        format!("sqlite://{url}")
    };
    let (base, query) = match sqlite.split_once('?') {
        Some((base, query)) => (base, query),
        None => (sqlite.as_str(), ""),
    };
    if query.split('&').any(|pair| pair.starts_with("mode=")) {
        return Some((Backend::Sqlite, sqlite.clone()));
    }
    let query = if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Some((Backend::Sqlite, format!("{base}?{query}")))
}

/// `url` with the password of its userinfo and any `password=` query value
/// replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(authority_end);
            match authority.rsplit_once('@') {
                Some((userinfo, hostport)) => match userinfo.split_once(':') {
                    Some((user, _password)) => format!("{scheme}://{user}:***@{hostport}{tail}"),
                    None => url.to_owned(),
                },
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    };
    if let Some(query_start) = out.find('?') {
        let (head, query) = out.split_at(query_start + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}{}", query.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_files_are_found_in_normalized_urls() {
        let file = |u: &str| sqlite_file(u).map(|p| p.display().to_string());
        assert_eq!(
            file("sqlite:///var/lib/gw502/c.db?mode=rwc").as_deref(),
            Some("/var/lib/gw502/c.db")
        );
        assert_eq!(
            file("sqlite://data/c.db?mode=rwc").as_deref(),
            Some("data/c.db")
        );
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("postgres://h/db"), None);
    }

    #[test]
    fn normalizes_every_accepted_form() {
        let cases = [
            (
                "postgres://u:p@h/db",
                Some((Backend::Postgres, "postgres://u:p@h/db")),
            ),
            (
                "postgresql://h/db",
                Some((Backend::Postgres, "postgresql://h/db")),
            ),
            (
                "sqlite::memory:",
                Some((Backend::Sqlite, "sqlite::memory:")),
            ),
            (
                "sqlite:///var/lib/gw502/c.db",
                Some((Backend::Sqlite, "sqlite:///var/lib/gw502/c.db?mode=rwc")),
            ),
            (
                "sqlite://c.db?mode=ro",
                Some((Backend::Sqlite, "sqlite://c.db?mode=ro")),
            ),
            (
                "sqlite:c.db?cache=shared",
                Some((Backend::Sqlite, "sqlite:c.db?cache=shared&mode=rwc")),
            ),
            (
                "/var/lib/gw502/c.db",
                Some((Backend::Sqlite, "sqlite:///var/lib/gw502/c.db?mode=rwc")),
            ),
            ("c.db", Some((Backend::Sqlite, "sqlite://c.db?mode=rwc"))),
            ("mysql://h/db", None),
            ("  ", None),
        ];
        for (input, want) in cases {
            let got = normalize(input);
            let want = want.map(|(b, u)| (b, u.to_owned()));
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://gw502:s3cret@db:5432/x"),
            "postgres://gw502:***@db:5432/x"
        );
        assert_eq!(redact("postgres://gw502@db/x"), "postgres://gw502@db/x");
        assert_eq!(
            redact("postgres://db/x?user=a&password=s3cret"),
            "postgres://db/x?user=a&password=***"
        );
        assert_eq!(
            redact("postgres://u:p%40ss@db/x?sslmode=disable"),
            "postgres://u:***@db/x?sslmode=disable"
        );
        assert_eq!(
            redact("sqlite:///tmp/x.db?mode=rwc"),
            "sqlite:///tmp/x.db?mode=rwc"
        );
    }
}
