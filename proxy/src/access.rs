//! Access-log line parsing for status counting: a line format compiled from an
//! nginx `log_format` template (`$status`, `$upstream_status`, `$host`) or an
//! Apache `LogFormat` (`%>s`, `%v`, `%t`), and a pure matcher that pulls the
//! status, upstream status, virtual host and time out of one line.

use time::OffsetDateTime;
use time::macros::format_description;

use crate::line::cut;
use crate::nginx::COMBINED;

/// The longest line matched; longer lines are cut.
const MAX_LINE: usize = 16 * 1024;

/// A field of a log format that the counter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Status,
    UpstreamStatus,
    Host,
    TimeLocal,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Field(Field),
}

/// A compiled access-log line format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessFormat {
    pieces: Vec<Piece>,
}

impl Default for AccessFormat {
    fn default() -> Self {
        Self::combined()
    }
}

/// What one access-log line says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLine {
    /// The status sent to the client.
    pub status: u16,
    /// `$upstream_status` as logged, when the format has it.
    pub upstream_status: Option<String>,
    /// The virtual host (`$host`, `%v`), when the format has it.
    pub host: Option<String>,
    /// Request time, when the format has `$time_local` / `%t`.
    pub at_ms: Option<i64>,
}

impl AccessFormat {
    /// nginx's built-in `combined` format.
    pub fn combined() -> Self {
        Self::nginx(COMBINED)
    }

    /// Apache's `vhost_combined` (`%v:%p %h %l %u %t "%r" %>s %O ...`).
    pub fn vhost_combined() -> Self {
        Self::apache("%v:%p %h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"")
    }

    /// An Apache format by Debian nickname, or a literal format string.
    pub fn apache_named(name: &str) -> Self {
        match name {
            "vhost_combined" => Self::vhost_combined(),
            "combined" => {
                Self::apache("%h %l %u %t \"%r\" %>s %O \"%{Referer}i\" \"%{User-Agent}i\"")
            }
            "common" => Self::apache("%h %l %u %t \"%r\" %>s %O"),
            other if other.contains('%') => Self::apache(other),
            _ => Self::apache("%h %l %u %t \"%r\" %>s %O"),
        }
    }

    /// Compiles an nginx `log_format` template.
    pub fn nginx(template: &str) -> Self {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '$' {
                lit.push(c);
                continue;
            }
            let braced = chars.peek() == Some(&'{');
            if braced {
                chars.next();
            }
            let mut name = String::new();
            while let Some(&n) = chars.peek() {
                if n.is_ascii_alphanumeric() || n == '_' {
                    name.push(n);
                    chars.next();
                } else {
                    break;
                }
            }
            if braced && chars.peek() == Some(&'}') {
                chars.next();
            }
            let field = match name.as_str() {
                "status" => Field::Status,
                "upstream_status" => Field::UpstreamStatus,
                "host" | "http_host" | "server_name" => Field::Host,
                "time_local" => Field::TimeLocal,
                _ => Field::Other,
            };
            push(&mut pieces, &mut lit, field);
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        Self { pieces }
    }

    /// Compiles an Apache `LogFormat` string.
    pub fn apache(template: &str) -> Self {
        let mut pieces = Vec::new();
        let mut lit = String::new();
        let mut chars = template.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                lit.push(c);
                continue;
            }
            // Modifiers (`>`, `<`, status lists) and `{...}` arguments.
            let mut arg = false;
            while let Some(&m) = chars.peek() {
                if m == '>' || m == '<' || m == '!' || m == ',' || m.is_ascii_digit() {
                    chars.next();
                } else if m == '{' {
                    arg = true;
                    for n in chars.by_ref() {
                        if n == '}' {
                            break;
                        }
                    }
                } else {
                    break;
                }
            }
            match chars.next() {
                Some('%') => lit.push('%'),
                Some('s') => push(&mut pieces, &mut lit, Field::Status),
                Some('v') => push(&mut pieces, &mut lit, Field::Host),
                Some('t') if !arg => {
                    lit.push('[');
                    push(&mut pieces, &mut lit, Field::TimeLocal);
                    lit.push(']');
                }
                Some(_) => push(&mut pieces, &mut lit, Field::Other),
                None => {}
            }
        }
        if !lit.is_empty() {
            pieces.push(Piece::Literal(lit));
        }
        Self { pieces }
    }
}

fn push(pieces: &mut Vec<Piece>, lit: &mut String, field: Field) {
    if !lit.is_empty() {
        pieces.push(Piece::Literal(std::mem::take(lit)));
    }
    pieces.push(Piece::Field(field));
}

/// Matches one access-log line against `format` (pure). `None` when the line
/// does not have the format's shape or carries no numeric status.
pub fn parse_line(line: &str, format: &AccessFormat) -> Option<AccessLine> {
    let mut rest = cut(line.trim_end_matches(['\r', '\n']), MAX_LINE);
    let mut out = AccessLine {
        status: 0,
        upstream_status: None,
        host: None,
        at_ms: None,
    };
    let mut pieces = format.pieces.iter().peekable();
    while let Some(piece) = pieces.next() {
        match piece {
            Piece::Literal(l) => rest = rest.strip_prefix(l.as_str())?,
            Piece::Field(field) => {
                let value = match pieces.peek() {
                    Some(Piece::Literal(next)) => {
                        let end = rest.find(next.as_str())?;
                        let v = &rest[..end];
                        rest = &rest[end..];
                        v
                    }
                    Some(Piece::Field(_)) => "",
                    None => std::mem::take(&mut rest),
                };
                match field {
                    Field::Status => out.status = value.parse().ok()?,
                    Field::UpstreamStatus => out.upstream_status = Some(value.to_string()),
                    Field::Host if !value.is_empty() && value != "-" => {
                        out.host = Some(value.to_string())
                    }
                    Field::TimeLocal => out.at_ms = parse_time_local(value),
                    _ => {}
                }
            }
        }
    }
    (out.status != 0).then_some(out)
}

/// `10/Oct/2000:13:55:36 -0700` to epoch milliseconds.
fn parse_time_local(value: &str) -> Option<i64> {
    let fmt = format_description!(
        "[day]/[month repr:short]/[year]:[hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute]"
    );
    let t = OffsetDateTime::parse(value, fmt).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests;
