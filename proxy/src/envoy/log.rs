//! Envoy's access log, the one place Envoy says why a request failed: the
//! response flags (`UF`, `UH`, `UT`, `UC`, `URX`, `NR`, `UO`, `UPE`, ...),
//! the response code details (`upstream_reset_before_response_started{...}`)
//! and the upstream transport failure reason (TLS errors), in the default
//! text format and in `json_format` logs (key spellings `response_flags`,
//! `responseFlags`, `RESPONSE_FLAGS` all read). Shapes are those of
//! `proxy/fixtures/envoy/`.

use serde_json::Value;

use gw502_vocab::Cause::{self, *};

use crate::line::{CLOSED_OR_RESET, ErrorLine, MAX_LINE, REFUSED, cut, text};
use crate::traefik::log::rfc3339_ms;

/// A response that was not HTTP, or whose header broke a limit (`UPE`).
const PROTOCOL_ERROR: &[Cause] = &[ProtocolMismatch, InvalidHeader, HeaderTooBig];

/// Parses one Envoy access-log line (pure). `None` for lines of another
/// shape; lines of requests that did not fail carry no cause.
pub fn parse_line(raw: &[u8]) -> Option<ErrorLine> {
    if raw.len() > MAX_LINE * 8 {
        return None;
    }
    let line = text(raw);
    let line = line.trim_end();
    if line.starts_with('{') {
        json_line(line)
    } else {
        text_line(line)
    }
}

/// The default format: `[START] "METHOD PATH PROTO" CODE FLAGS RX TX DUR
/// UPSTREAM_TIME "XFF" "UA" "REQ_ID" "AUTHORITY" "UPSTREAM_HOST"`.
fn text_line(line: &str) -> Option<ErrorLine> {
    let rest = line.strip_prefix('[')?;
    let (start, rest) = rest.split_once("] \"")?;
    let (request, rest) = rest.split_once("\" ")?;
    let mut words = rest.split(' ');
    let code: u16 = words.next()?.parse().ok()?;
    let flags = words.next()?;
    let quoted: Vec<&str> = rest.split('"').skip(1).step_by(2).collect();
    let dash = |s: Option<&&str>| {
        s.filter(|s| **s != "-" && !s.is_empty())
            .map(|s| s.to_string())
    };
    Some(build(
        rfc3339_ms(start),
        request,
        code,
        flags,
        "",
        "",
        dash(quoted.get(3)),
        dash(quoted.get(4)),
    ))
}

fn json_line(line: &str) -> Option<ErrorLine> {
    let v: Value = serde_json::from_str(line).ok()?;
    let obj = v.as_object()?;
    let get = |name: &str| -> Option<String> {
        let (_, value) = obj.iter().find(|(k, _)| norm(k) == name)?;
        match value {
            Value::String(s) if s != "-" && !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    // `-` (no flag) is a flag value: the line is Envoy's all the same.
    let flags = obj
        .iter()
        .find(|(k, _)| norm(k) == "responseflags")?
        .1
        .as_str()?
        .to_string();
    let code: u16 = get("responsecode")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let request = format!(
        "{} {} {}",
        get("method").unwrap_or_default(),
        get("path").unwrap_or_default(),
        get("protocol").unwrap_or_default()
    );
    Some(build(
        get("starttime").as_deref().and_then(rfc3339_ms),
        request.trim(),
        code,
        &flags,
        &get("responsecodedetails").unwrap_or_default(),
        &get("upstreamtransportfailurereason").unwrap_or_default(),
        get("authority"),
        get("upstreamhost"),
    ))
}

/// `response_flags`, `responseFlags` and `RESPONSE_FLAGS` alike.
fn norm(key: &str) -> String {
    key.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn build(
    at_ms: Option<i64>,
    request: &str,
    code: u16,
    flags: &str,
    details: &str,
    reason: &str,
    authority: Option<String>,
    upstream: Option<String>,
) -> ErrorLine {
    let cause = classify(flags, details, reason);
    let mut message = format!("{code} {flags}");
    for extra in [details, reason] {
        if !extra.is_empty() {
            message.push(' ');
            message.push_str(extra);
        }
    }
    ErrorLine {
        at_ms,
        level: if cause.is_empty() { "info" } else { "error" }.to_string(),
        message: cut(&message, MAX_LINE).to_string(),
        request: Some(request.to_string()).filter(|r| !r.is_empty()),
        upstream,
        host: authority,
        cause,
        status: code,
        ..ErrorLine::default()
    }
}

/// The cause of a response from its flags, narrowed by the details and the
/// transport failure reason when the format logs them.
pub fn classify(flags: &str, details: &str, reason: &str) -> &'static [Cause] {
    let set: Vec<&str> = flags.split(',').map(str::trim).collect();
    let has = |f: &str| set.contains(&f);
    let both = format!("{details} {reason}");
    let said = |s: &str| both.contains(s);
    if has("UF") {
        if said("CERTIFICATE_VERIFY_FAILED") || said("CERTIFICATE") || said("certificate") {
            &[TlsCertificateError]
        } else if said("TLS_error") || said("SSL_routines") {
            &[TlsMismatch]
        } else if said("connection_timeout")
            || said("No_route_to_host")
            || said("Network_is_unreachable")
        {
            &[FirewallBlocked]
        } else {
            REFUSED
        }
    } else if has("UH") {
        &[NoLiveUpstreams]
    } else if has("UT") || has("UMSDR") || has("SI") {
        &[Timeout]
    } else if has("UC") || has("UR") {
        if said("remote_reset") || said("connection_reset") {
            &[ConnectionReset]
        } else {
            CLOSED_OR_RESET
        }
    } else if has("UPE") {
        PROTOCOL_ERROR
    } else if has("UO") || has("OM") || has("DO") {
        &[Saturated]
    } else if has("NR") || has("NC") {
        &[ProxyConfigInvalid]
    } else if has("DF") {
        &[DnsFailure]
    } else if has("LH") {
        &[ServiceDown]
    } else {
        // `-`, `DC`, `UAEX`, `RL`, `FI`, `DI`, `DPE`, ...: not an upstream failure.
        &[]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_details_narrow_the_cause() {
        assert_eq!(classify("UF,URX", "", ""), REFUSED);
        assert_eq!(
            classify(
                "URX,UF",
                "upstream_reset_before_response_started{remote_connection_failure|TLS_error:|268435703:SSL_routines:OPENSSL_internal:WRONG_VERSION_NUMBER:TLS_error_end}",
                ""
            ),
            &[TlsMismatch]
        );
        assert_eq!(
            classify(
                "UF",
                "",
                "TLS_error:|268435581:SSL_routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED:TLS_error_end"
            ),
            &[TlsCertificateError]
        );
        assert_eq!(
            classify(
                "UC",
                "upstream_reset_before_response_started{remote_reset}",
                ""
            ),
            &[ConnectionReset]
        );
        assert_eq!(classify("-", "via_upstream", ""), &[] as &[Cause]);
        assert_eq!(
            classify("DC", "downstream_remote_disconnect", ""),
            &[] as &[Cause]
        );
        assert_eq!(norm("RESPONSE_FLAGS"), "responseflags");
        assert!(parse_line(b"\xff[").is_none());
        assert!(parse_line(br#"{"no":"flags"}"#).is_none());
    }
}
