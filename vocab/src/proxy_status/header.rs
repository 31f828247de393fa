//! The RFC 9209 `Proxy-Status` response header: each hop that handled the
//! response may add one member, `<proxy>; error=<type>; next-hop=...;
//! received-status=...; details="..."`, nearest to the origin first. The
//! value is an RFC 8941 list, parsed with `sfv`; the error types are the
//! words of [`ProxyStatusError`]. It lives here, beside the words, because
//! both the prober (which records the header) and the attribution engine
//! (which reads it back from an observation) need the same parse.

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

/// Parses the header value; a value that is not an RFC 8941 list is an
/// error that says why. Inner lists (not allowed by RFC 9209) are skipped.
pub fn parse(value: &str) -> Result<Vec<ProxyStatus>, BadProxyStatus> {
    let list: List = Parser::new(value).parse().map_err(|e| BadProxyStatus {
        value: value.to_string(),
        reason: e.to_string(),
    })?;
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
                error: text("error").map(|w| w.parse()),
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
