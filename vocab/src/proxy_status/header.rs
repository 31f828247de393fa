//! The RFC 9209 `Proxy-Status` response header: each hop that handled the
//! response may add one member, `<proxy>; error=<type>; next-hop=...;
//! received-status=...; details="..."`, nearest to the origin first. The
//! value is an RFC 8941 list, parsed with `sfv`; the error types are the
//! words of [`ProxyStatusError`]. It lives here, beside the words, because
//! both the prober (which records the header) and the attribution engine
//! (which reads it back from an observation) need the same parse.
//!
//! Real senders do not all write valid structured fields (see the recorded
//! values in `recorded.tsv`): h2o writes `next-hop=127.0.0.1` unquoted, which
//! RFC 8941 cannot parse, and PostgREST names PostgreSQL codes such as
//! `error=42501`, an integer. A value the strict parse refuses is read again
//! member by member ([`lenient`]), and an error parameter that is no token
//! is kept as an unknown word, so neither hides the hop's error type.

use sfv::{BareItem, List, ListEntry, Parser};

use super::ProxyStatusError;
use crate::UnknownWord;

/// One hop's member of the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyStatus {
    /// The hop's name (a token or string: `cloudflare`, `"edge-7"`).
    pub proxy: String,
    /// Its error type; `None` when the hop reports no error.
    pub error: Option<Result<ProxyStatusError, UnknownWord>>,
    /// The next hop it used (`next-hop`).
    pub next_hop: Option<String>,
    /// The status it received from the next hop (`received-status`).
    pub received_status: Option<u16>,
    /// Free text for people (`details`).
    pub details: Option<String>,
}

/// A header value that is not an RFC 8941 list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("proxy-status {value:?} is not a structured-field list: {reason}")]
pub struct BadProxyStatus {
    /// The value as received.
    pub value: String,
    /// What the structured-field parser said.
    pub reason: String,
}

/// Parses the header value. A value that is not an RFC 8941 list is read
/// again by [`lenient`]; one that neither reads is an error that says why.
/// Inner lists (not allowed by RFC 9209) are skipped.
pub fn parse(value: &str) -> Result<Vec<ProxyStatus>, BadProxyStatus> {
    let list: List = match Parser::new(value).parse() {
        Ok(list) => list,
        Err(e) => {
            return lenient(value).ok_or_else(|| BadProxyStatus {
                value: value.to_string(),
                reason: e.to_string(),
            });
        }
    };
    Ok(list
        .into_iter()
        .filter_map(|entry| match entry {
            ListEntry::Item(item) => Some(item),
            ListEntry::InnerList(_) => None,
        })
        .map(|item| {
            let text = |name: &str| item.params.get(name).and_then(text_of);
            ProxyStatus {
                proxy: text_of(&item.bare_item).unwrap_or_default(),
                error: item.params.get("error").map(|w| any_text(w).parse()),
                next_hop: text("next-hop"),
                received_status: item
                    .params
                    .get("received-status")
                    .and_then(BareItem::as_integer)
                    .and_then(|i| u16::try_from(i64::from(i)).ok()),
                details: text("details"),
            }
        })
        .collect())
}

/// A token or string as text.
fn text_of(item: &BareItem) -> Option<String> {
    item.as_token()
        .map(|t| t.as_str().to_string())
        .or_else(|| item.as_string().map(|s| s.as_str().to_string()))
}

/// Any bare item as text: an integer or decimal (`error=42501`) as written.
fn any_text(item: &BareItem) -> String {
    text_of(item)
        .or_else(|| item.as_integer().map(|i| i.to_string()))
        .or_else(|| item.as_decimal().map(|d| d.to_string()))
        .unwrap_or_default()
}

/// Whether `s` is an RFC 8941 token (a member name).
fn is_token(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'*')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b))
}

/// Whether `s` is an RFC 8941 parameter key.
fn is_key(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'*')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-.*".contains(&b))
}

/// Reads a value the strict parse refused, member by member: a token name,
/// then `; key=value` parameters whose value is taken as written (quotes
/// stripped). `None` unless every member and parameter has that shape; a
/// comma inside a quoted `details` is not supported here.
fn lenient(value: &str) -> Option<Vec<ProxyStatus>> {
    value
        .split(',')
        .map(|member| {
            let mut parts = member.split(';').map(str::trim);
            let proxy = parts.next().filter(|p| is_token(p))?;
            let mut status = ProxyStatus {
                proxy: proxy.to_string(),
                error: None,
                next_hop: None,
                received_status: None,
                details: None,
            };
            for param in parts {
                let (key, raw) = param.split_once('=').unwrap_or((param, ""));
                let (key, raw) = (key.trim(), raw.trim());
                if !is_key(key) {
                    return None;
                }
                let text = raw
                    .strip_prefix('"')
                    .and_then(|r| r.strip_suffix('"'))
                    .unwrap_or(raw)
                    .to_string();
                match key {
                    "error" => status.error = Some(text.parse()),
                    "next-hop" => status.next_hop = Some(text),
                    "received-status" => status.received_status = text.parse().ok(),
                    "details" => status.details = Some(text),
                    _ => {}
                }
            }
            Some(status)
        })
        .collect()
}

/// The member nearest the origin that names an error: the hop that first
/// could not use what the next hop gave it.
pub fn first_error(members: &[ProxyStatus]) -> Option<&ProxyStatus> {
    members.iter().find(|m| m.error.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values in the shape of RFC 9209 §2's examples.
    #[test]
    fn rfc_examples_parse() {
        let one = parse("ExampleCDN").unwrap();
        assert_eq!(one[0].proxy, "ExampleCDN");
        assert_eq!(one[0].error, None);

        let chain = parse("FooProxy, ExampleCDN").unwrap();
        assert_eq!(
            chain.iter().map(|m| m.proxy.as_str()).collect::<Vec<_>>(),
            ["FooProxy", "ExampleCDN"]
        );

        let refused = parse("SomeCDN; error=connection_refused").unwrap();
        assert_eq!(
            refused[0].error,
            Some(Ok(ProxyStatusError::ConnectionRefused))
        );

        let hop = parse(
            r#"ExampleCDN; error="http_protocol_error"; details="Malformed response header: space before colon""#,
        );
        // A string where a token belongs still names the type.
        let hop = hop.unwrap();
        assert_eq!(hop[0].error, Some(Ok(ProxyStatusError::HttpProtocolError)));
        assert_eq!(
            hop[0].details.as_deref(),
            Some("Malformed response header: space before colon")
        );

        let status =
            parse(r#"ExampleCDN; received-status=200; next-hop="origin.example.net""#).unwrap();
        assert_eq!(status[0].received_status, Some(200));
        assert_eq!(status[0].next_hop.as_deref(), Some("origin.example.net"));
    }

    #[test]
    fn the_hop_nearest_the_origin_with_an_error_wins_and_bad_values_say_why() {
        let members =
            parse("origin-lb; error=connection_timeout, cdn; error=http_response_incomplete")
                .unwrap();
        assert_eq!(first_error(&members).unwrap().proxy, "origin-lb");
        let unknown = parse("x; error=gremlins").unwrap();
        assert!(matches!(&unknown[0].error, Some(Err(e)) if e.word == "gremlins"));
        assert!(parse("a;;b").is_err());
        assert!(parse("\"unterminated").is_err());
    }
}
