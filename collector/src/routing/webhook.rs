//! The generic webhook receiver: a signed JSON POST per delivery. The
//! payload and signature are pure functions so receivers' authors (and the
//! tests) can reproduce them; docs/ROUTING.md describes both.

use std::time::{SystemTime, UNIX_EPOCH};

use gw502_proto::v1::Incident;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

pub use gw502_vocab::clock::rfc3339;
use gw502_vocab::contract::{self, IncidentJson};

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
    pub incident: IncidentJson,
}

/// Builds the payload; `owner_override` replaces the verdict's owner.
pub fn payload(incident: &Incident, event: Event, owner_override: Option<&str>) -> WebhookPayload {
    let mut body = contract::incident(incident);
    if let Some(owner) = owner_override {
        body.verdict.owner = owner.to_owned();
    }
    WebhookPayload {
        version: PAYLOAD_VERSION,
        event: event.as_str(),
        incident: body,
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
        .header("X-Gw502-Delivery", delivery_id.unwrap_or(0).to_string());
    let request = match delivery_id {
        Some(id) => request.header("Idempotency-Key", idempotency_key(id)),
        None => request,
    }
    .body(body.to_vec());
    match request.send().await {
        Ok(response) => Outcome::from_status(response.status().as_u16()),
        Err(e) => Outcome::Retry {
            status: None,
            error: transport_error(&e),
        },
    }
}

/// The `Idempotency-Key` of delivery `id`: the same on every redelivery of
/// one delivery-log row, different for every other row.
pub fn idempotency_key(delivery_id: i64) -> String {
    format!("gw502-delivery-{delivery_id}")
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
