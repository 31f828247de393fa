//! The header parse on `Proxy-Status` values real software sends
//! (`recorded.tsv`; provenance in `probe/fixtures/recorded/README.md`): h2o's
//! CONNECT proxy, the Pingora-based Pingclair, PostgREST, and Envoy 1.40
//! (captured here, its `details` carrying the response flag). Every value
//! reads, with the member, error word and next hop it carries; the RFC
//! error words name causes, PostgREST's SQLSTATE codes name none.

use super::{ProxyStatusError, first_error, parse};

const RECORDED: &str = include_str!("recorded.tsv");

/// The rows of `recorded.tsv`: source, value, proxy, error word, next hop.
fn rows() -> Vec<[&'static str; 5]> {
    RECORDED
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            cols.try_into().expect("five tab-separated columns")
        })
        .collect()
}

#[test]
fn every_recorded_value_reads_with_its_member_error_and_next_hop() {
    let rows = rows();
    assert_eq!(rows.len(), 20);
    for [source, value, proxy, error, next_hop] in rows {
        let members = parse(value).unwrap_or_else(|e| panic!("{source}: {e}"));
        assert_eq!(members.len(), 1, "{value}");
        let m = &members[0];
        assert_eq!(m.proxy, proxy, "{value}");
        let word = match &m.error {
            None => "-".to_string(),
            Some(Ok(e)) => e.to_string(),
            Some(Err(unknown)) => unknown.word.clone(),
        };
        assert_eq!(word, error, "{value}");
        assert_eq!(m.next_hop.as_deref().unwrap_or("-"), next_hop, "{value}");
    }
}

#[test]
fn recorded_rfc_words_name_causes_and_sqlstate_codes_name_none() {
    for [source, value, _, error, _] in rows() {
        let members = parse(value).expect("a recorded value reads");
        let known = members[0].error.as_ref().and_then(|e| e.as_ref().ok());
        match source {
            "postgrest" => {
                // An app's own code, not an RFC 9209 type: visible, no cause.
                assert!(matches!(&members[0].error, Some(Err(e)) if e.word == error));
            }
            _ if error == "-" => assert!(first_error(&members).is_none(), "{value}"),
            _ => {
                let e: ProxyStatusError = error.parse().expect("an RFC 9209 word");
                assert_eq!(known, Some(&e), "{value}");
            }
        }
    }
    // Envoy's details keep the response code details and the flag.
    let envoy = rows()
        .into_iter()
        .find(|r| r[0] == "envoy")
        .expect("an envoy row");
    let members = parse(envoy[1]).expect("reads");
    assert_eq!(
        members[0].details.as_deref(),
        Some(
            "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}; UF"
        )
    );
    // h2o's refused CONNECT: the unquoted next hop no longer hides the error.
    let h2o = parse("h2o/test; error=connection_refused; next-hop=127.0.0.1").expect("reads");
    let cause = first_error(&h2o)
        .and_then(|m| m.error.clone())
        .and_then(Result::ok)
        .map(|e| e.causes()[0]);
    assert_eq!(cause, Some(crate::Cause::ServiceDown));
}

#[test]
fn the_lenient_read_only_takes_what_has_the_shape_of_members() {
    // Strictly valid values never reach it: quoted commas still read.
    let strict = parse(r#"a; error=http_protocol_error; details="x, y""#).expect("valid");
    assert_eq!(strict[0].details.as_deref(), Some("x, y"));
    // Invalid and not member-shaped: still an error that says why.
    for bad in [
        "a;;b",
        "\"unterminated",
        "h2o; =1",
        "1abc; error=dns_error",
        "a; Error=x=1",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
    // Two hops, the inner one invalid: both read, the inner error first.
    let chain = parse("origin; error=connection_timeout; next-hop=10.0.0.7, cdn").expect("reads");
    assert_eq!(chain.len(), 2);
    assert_eq!(
        first_error(&chain).map(|m| m.proxy.as_str()),
        Some("origin")
    );
    assert_eq!(chain[0].next_hop.as_deref(), Some("10.0.0.7"));
}
