//! The generic webhook receiver: a signed JSON POST per delivery. The
//! payload and signature are pure functions so receivers' authors (and the
//! tests) can reproduce them; docs/ROUTING.md describes both.

use std::time::{SystemTime, UNIX_EPOCH};

use gw502_proto::v1::Incident;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::log::Event;
use super::receiver::WebhookReceiver;
use super::retry::Outcome;

/// The payload's `version`.
pub const PAYLOAD_VERSION: &str = "1";

/// The JSON body of a webhook delivery.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookPayload {
    /// Always [`PAYLOAD_VERSION`].
    pub version: &'static str,
    /// `firing` or `resolved`.
    pub event: &'static str,
    /// The incident.
    pub incident: IncidentBody,
}

/// The incident as a webhook sees it. Times are RFC 3339 UTC, `null` when unset.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentBody {
    /// The incident id.
    pub id: u64,
    /// The site name.
    pub site: String,
    /// The host, empty for site-wide incidents.
    pub host: String,
    /// `open` or `resolved`.
    pub state: String,
    /// When it opened.
    pub opened_at: Option<String>,
    /// When it last changed.
    pub updated_at: Option<String>,
    /// When it resolved.
    pub resolved_at: Option<String>,
    /// The HTTP status visitors saw.
    pub status: u32,
    /// The hop that produced the status.
    pub emitted_by: String,
    /// The hop at fault.
    pub layer: String,
    /// The cause (TAXONOMY.md).
    pub cause: String,
    /// 0.0 to 1.0.
    pub confidence: f64,
    /// What to look at next.
    pub next_check: String,
    /// Who should act, after routing overrides.
    pub owner: String,
    /// A unit or config change shortly before the failure.
    pub recent_change: Option<RecentChangeBody>,
    /// What the verdict rests on.
    pub evidence: Vec<EvidenceBody>,
    /// One sentence for people.
    pub summary: String,
    /// For `insufficient_evidence`: what is missing.
    pub missing: Vec<String>,
}

/// A recent change in the payload.
#[derive(Debug, Clone, Serialize)]
pub struct RecentChangeBody {
    /// The host it happened on.
    pub host: String,
    /// `unit_start`, `unit_stop`, `unit_restart`, `unit_reload` or `config_change`.
    pub kind: String,
    /// The unit or file.
    pub subject: String,
    /// When.
    pub at: Option<String>,
}

/// One evidence item in the payload.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceBody {
    /// `edge_probe`, `proxy_log`, `systemd`, ...
    pub source: String,
    /// The host it came from.
    pub host: String,
    /// When it was observed.
    pub observed_at: Option<String>,
    /// What was seen.
    pub detail: String,
}

/// Unix milliseconds as RFC 3339 UTC; `None` for 0 (unset) and out-of-range values.
pub fn rfc3339(ms: i64) -> Option<String> {
    if ms <= 0 {
        return None;
    }
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()?;
    at.format(&Rfc3339).ok()
}

/// Builds the payload; `owner_override` replaces the verdict's owner.
pub fn payload(incident: &Incident, event: Event, owner_override: Option<&str>) -> WebhookPayload {
    let v = incident.verdict.clone().unwrap_or_default();
    WebhookPayload {
        version: PAYLOAD_VERSION,
        event: event.as_str(),
        incident: IncidentBody {
            id: incident.id,
            site: incident.site.clone(),
            host: incident.host.clone(),
            state: incident.state.clone(),
            opened_at: rfc3339(incident.opened_at_ms),
            updated_at: rfc3339(incident.updated_at_ms),
            resolved_at: rfc3339(incident.resolved_at_ms),
            status: v.status,
            emitted_by: v.emitted_by,
            layer: v.layer,
            cause: v.cause,
            confidence: v.confidence,
            next_check: v.next_check,
            owner: owner_override.map_or(v.owner, str::to_owned),
            recent_change: v.recent_change.map(|c| RecentChangeBody {
                host: c.host,
                kind: c.kind,
                subject: c.subject,
                at: rfc3339(c.at_ms),
            }),
            evidence: v
                .evidence
                .into_iter()
                .map(|e| EvidenceBody {
                    source: e.source,
                    host: e.host,
                    observed_at: rfc3339(e.observed_at_ms),
                    detail: e.detail,
                })
                .collect(),
            summary: v.summary,
            missing: v.missing,
        },
    }
}

/// The `X-Gw502-Signature` value: `sha256=` and the hex HMAC-SHA256 of
/// `"<timestamp>.<body>"` keyed with the secret.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("hmac accepts any key length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Sends one try of a delivery: signs `body` with the current time and POSTs it.
pub(crate) async fn send(
    client: &reqwest::Client,
    receiver: &WebhookReceiver,
    delivery_id: Option<i64>,
    event: Event,
    body: &[u8],
) -> Outcome {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let request = client
        .post(receiver.url.clone())
        .timeout(receiver.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Gw502-Timestamp", timestamp.to_string())
        .header(
            "X-Gw502-Signature",
            signature(receiver.secret.expose(), timestamp, body),
        )
        .header("X-Gw502-Event", event.as_str())
        .header("X-Gw502-Delivery", delivery_id.unwrap_or(0).to_string())
        .body(body.to_vec());
    match request.send().await {
        Ok(response) => Outcome::from_status(response.status().as_u16()),
        Err(e) => Outcome::Retry {
            status: None,
            error: transport_error(&e),
        },
    }
}

/// A short lowercase description of a transport failure, with its causes.
pub(crate) fn transport_error(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect failed"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use gw502_proto::v1::{Evidence, Verdict};

    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // printf '1700000000.{}' | openssl dgst -sha256 -hmac s3cret
        assert_eq!(
            signature(b"s3cret", 1_700_000_000, b"{}"),
            "sha256=97926816e98fbb41ccb1673225ff29a2f35369099990e1b1561651e7bd097ebf"
        );
    }

    #[test]
    fn payload_uses_override_and_rfc3339() {
        let incident = Incident {
            id: 9,
            site: "shop.example".into(),
            state: "open".into(),
            opened_at_ms: 1_700_000_000_000,
            verdict: Some(Verdict {
                owner: "app".into(),
                cause: "saturated".into(),
                evidence: vec![Evidence {
                    source: "proxy_log".into(),
                    observed_at_ms: 1_700_000_000_500,
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let body =
            serde_json::to_value(payload(&incident, Event::Firing, Some("app-team"))).unwrap();
        assert_eq!(body["version"], "1");
        assert_eq!(body["event"], "firing");
        assert_eq!(body["incident"]["owner"], "app-team");
        assert_eq!(body["incident"]["opened_at"], "2023-11-14T22:13:20Z");
        assert_eq!(body["incident"]["resolved_at"], serde_json::Value::Null);
        assert_eq!(
            body["incident"]["evidence"][0]["observed_at"],
            "2023-11-14T22:13:20.5Z"
        );
    }
}
