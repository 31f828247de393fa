//! The page shell of the web view (head, navigation, footer) and the small
//! pieces every page uses: times, ages, path segments, query strings,
//! state badges.
//!
//! The style sheet and the live-update script are served from this process
//! (`/static/...`), so the Content-Security-Policy can forbid inline script
//! and style: text that slipped past escaping still could not run.

use maud::{DOCTYPE, Markup, html};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::form_urlencoded;

/// The style sheet, served at `/static/style.css`.
pub const STYLE: &str = include_str!("style.css");

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// `/` and `/incidents/{id}`.
    Incidents,
    /// `/hosts` and `/hosts/{id}`.
    Hosts,
    /// `/sites`.
    Sites,
    /// An error page.
    None,
}

/// A rendered page before it is put in the shell.
#[derive(Debug)]
pub struct Page {
    /// `<title>`.
    pub title: String,
    /// Current navigation entry.
    pub nav: Nav,
    /// The `/events` URL the live script listens to, if any.
    pub live: Option<String>,
    /// The contents of `<main>`.
    pub body: Markup,
}

/// What every page carries besides its body.
#[derive(Debug, Clone)]
pub struct Frame<'a> {
    /// `<title>` and the heading.
    pub title: &'a str,
    /// Current navigation entry.
    pub nav: Nav,
    /// The collector URL, shown in the footer.
    pub collector: &'a str,
    /// The `/events` URL the live script listens to, if the page has one.
    pub live: Option<String>,
}

/// A whole page around `body`.
pub fn shell(frame: &Frame<'_>, body: Markup) -> Markup {
    let item = |nav: Nav, href: &str, label: &str| {
        html! {
            a href=(href) aria-current=[(frame.nav == nav).then_some("page")] { (label) }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (frame.title) " · gw502" }
                link rel="stylesheet" href="/static/style.css";
                @if frame.live.is_some() {
                    script src="/static/live.js" defer {}
                }
            }
            body {
                header.top {
                    a.brand href="/" { span.mark { "502" } " gw502" }
                    nav {
                        (item(Nav::Incidents, "/", "Incidents"))
                        (item(Nav::Hosts, "/hosts", "Hosts"))
                        (item(Nav::Sites, "/sites", "Sites"))
                    }
                    @if let Some(live) = &frame.live {
                        span.live id="live" data-live=(live) title="reloads when an incident changes" { "static" }
                    }
                }
                main { (body) }
                footer {
                    "collector " code { (frame.collector) }
                    " · read with your operator certificate"
                }
            }
        }
    }
}

/// An RFC 3339 time as `<time>`, shown as `2024-05-01 10:00:00 UTC`; `–` when unset.
pub fn when(t: &Option<String>) -> Markup {
    match t {
        Some(t) => html! { time datetime=(t) { (readable(t)) } },
        None => html! { span.none { "–" } },
    }
}

fn readable(t: &str) -> String {
    match OffsetDateTime::parse(t, &Rfc3339) {
        Ok(d) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        ),
        Err(_) => t.to_owned(),
    }
}

/// Epoch milliseconds of an RFC 3339 time; 0 when unset or malformed.
pub fn ms_of(t: &Option<String>) -> i64 {
    t.as_deref()
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .map(|d| i64::try_from(d.unix_timestamp_nanos() / 1_000_000).unwrap_or(0))
        .unwrap_or(0)
}

/// How long ago `t` was (`42s`, `5m`, `3h`, `2d`), `–` when unset.
pub fn ago(t: &Option<String>, now_ms: i64) -> String {
    match ms_of(t) {
        0 => "–".into(),
        at => crate::render::age(now_ms, at),
    }
}

/// Percent-encodes one path segment (everything but RFC 3986 unreserved).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a percent-encoded path segment; `None` when malformed or not UTF-8.
pub fn unseg(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A badge for an incident state, probe outcome or unit state.
pub fn badge(word: &str) -> Markup {
    let class = match word {
        "open" | "failed" | "refused" | "firing" | "timeout" | "inactive" => "badge bad",
        "resolved" | "ok" | "active" | "delivered" | "running" => "badge good",
        "pending" | "activating" | "deactivating" | "reloading" => "badge warn",
        _ => "badge",
    };
    html! { span class=(class) { (word) } }
}

/// A value or `–` when empty.
pub fn or_dash(s: &str) -> Markup {
    if s.is_empty() {
        html! { span.none { "–" } }
    } else {
        html! { (s) }
    }
}

/// A query string with the given pairs, empty values left out.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        s.append_pair(k, v);
    }
    s.finish()
}

/// An HTTP status, `–` for none.
pub fn status_word(status: u32) -> String {
    if status == 0 {
        "–".into()
    } else {
        status.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_round_trip() {
        assert_eq!(seg("web-1.example"), "web-1.example");
        assert_eq!(seg("a b/<c>"), "a%20b%2F%3Cc%3E");
        assert_eq!(unseg("a%20b%2F%3Cc%3E").as_deref(), Some("a b/<c>"));
        assert_eq!(unseg("bad%2"), None);
        assert_eq!(unseg("%ff"), None);
    }

    #[test]
    fn times() {
        let t = Some("2024-05-01T10:00:00.25Z".to_string());
        assert_eq!(ms_of(&t), 1_714_557_600_250);
        assert_eq!(ago(&t, 1_714_557_600_250 + 300_000), "5m");
        assert_eq!(ago(&None, 5), "–");
        assert_eq!(
            readable("2024-05-01T10:00:00.25Z"),
            "2024-05-01 10:00:00 UTC"
        );
    }

    #[test]
    fn text_is_escaped_in_the_shell() {
        let frame = Frame {
            title: "<script>x</script>",
            nav: Nav::Hosts,
            collector: "https://\"c\"",
            live: Some("/events?site=<x>".into()),
        };
        let page = shell(&frame, html! { p { "<b>" } }).into_string();
        assert!(!page.contains("<script>x"), "{page}");
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;"), "{page}");
        assert!(page.contains("&lt;b&gt;"), "{page}");
        assert!(
            page.contains(r#"href="/hosts" aria-current="page""#),
            "{page}"
        );
        assert!(!page.contains(r#"href="/sites" aria-current"#), "{page}");
    }
}
