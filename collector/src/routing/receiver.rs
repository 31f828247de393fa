//! Validated receivers: where deliveries go and how. Built by
//! [`super::RoutingSettings::validate`]; sent to by the dispatcher through
//! [`super::webhook`] and [`super::alertmanager`].

use std::fmt;
use std::time::Duration;

use reqwest::Url;

/// A receiver ready to send to.
#[derive(Debug, Clone)]
pub enum Receiver {
    /// A generic HTTPS endpoint that gets signed JSON.
    Webhook(WebhookReceiver),
    /// A Prometheus Alertmanager, through its v2 API.
    Alertmanager(AlertmanagerReceiver),
}

impl Receiver {
    /// The receiver's kind as written in the config: `webhook` or `alertmanager`.
    pub fn kind(&self) -> &'static str {
        match self {
            Receiver::Webhook(_) => "webhook",
            Receiver::Alertmanager(_) => "alertmanager",
        }
    }
}

/// A webhook receiver.
#[derive(Debug, Clone)]
pub struct WebhookReceiver {
    /// Where to POST.
    pub url: Url,
    /// The HMAC key for `X-Gw502-Signature`.
    pub secret: Secret,
    /// The limit for one request, connect to last body byte.
    pub timeout: Duration,
}

/// An Alertmanager receiver.
#[derive(Debug, Clone)]
pub struct AlertmanagerReceiver {
    /// The Alertmanager's `/api/v2/alerts` endpoint.
    pub alerts_url: Url,
    /// How often firing alerts are re-sent while their incident stays open.
    pub resend_interval: Duration,
    /// The limit for one request.
    pub timeout: Duration,
    /// A link for `generatorURL`; `{id}` is replaced by the incident id.
    pub generator_url: Option<String>,
}

/// A shared secret; its `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    /// Wraps key bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The key bytes.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// The Alertmanager v2 alerts endpoint under a base URL, keeping any path
/// prefix (`--web.route-prefix`). Fails with the parser's reason.
pub(crate) fn alerts_endpoint(base: &Url) -> Result<Url, String> {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.join("api/v2/alerts").map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_endpoint_keeps_prefix() {
        let cases = [
            (
                "http://127.0.0.1:9093",
                "http://127.0.0.1:9093/api/v2/alerts",
            ),
            (
                "http://127.0.0.1:9093/",
                "http://127.0.0.1:9093/api/v2/alerts",
            ),
            ("http://am.local/am", "http://am.local/am/api/v2/alerts"),
            ("http://am.local/am/", "http://am.local/am/api/v2/alerts"),
        ];
        for (base, want) in cases {
            let url = alerts_endpoint(&Url::parse(base).unwrap()).unwrap();
            assert_eq!(url.as_str(), want, "{base}");
        }
    }

    #[test]
    fn secret_debug_hides_bytes() {
        assert_eq!(
            format!("{:?}", Secret::new(b"hunter2".to_vec())),
            "Secret(7 bytes)"
        );
    }
}
