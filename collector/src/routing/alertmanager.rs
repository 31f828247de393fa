//! The Prometheus Alertmanager receiver: incidents become alerts posted to
//! `/api/v2/alerts`. Firing alerts carry no `endsAt` and are re-sent every
//! `resend_interval` (by the dispatcher) so Alertmanager keeps them active;
//! a resolve sends `endsAt` = now.

use std::collections::BTreeMap;

use gw502_proto::v1::Incident;
use serde::Serialize;

use super::log::Event;
use super::receiver::AlertmanagerReceiver;
use super::retry::Outcome;
use super::webhook::{rfc3339, transport_error};

/// The `alertname` label of every gw502 alert.
pub const ALERT_NAME: &str = "Gw502Incident";

/// One alert in Alertmanager's v2 `postableAlerts` shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostableAlert {
    /// `alertname`, `site`, `layer`, `cause`, `owner`, `host`, `incident_id`,
    /// `status`; labels with empty values are left out.
    pub labels: BTreeMap<String, String>,
    /// `summary`, `next_check`, `emitted_by`.
    pub annotations: BTreeMap<String, String>,
    /// When the incident opened, RFC 3339.
    #[serde(rename = "startsAt", skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<String>,
    /// Only on resolve: the time of the resolve.
    #[serde(rename = "endsAt", skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    /// A link to the incident, when configured.
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

/// Builds the alert for an incident. `now_ms` is the resolve time used for
/// `endsAt`; `generator_url` may contain `{id}`.
pub fn alert(
    incident: &Incident,
    event: Event,
    owner_override: Option<&str>,
    now_ms: i64,
    generator_url: Option<&str>,
) -> PostableAlert {
    let v = incident.verdict.clone().unwrap_or_default();
    let owner = owner_override.map_or(v.owner, str::to_owned);
    let status = if v.status == 0 {
        String::new()
    } else {
        v.status.to_string()
    };
    let labels = [
        ("alertname", ALERT_NAME.to_owned()),
        ("site", incident.site.clone()),
        ("layer", v.layer),
        ("cause", v.cause),
        ("owner", owner),
        ("host", incident.host.clone()),
        ("incident_id", incident.id.to_string()),
        ("status", status),
    ];
    let annotations = [
        ("summary", v.summary),
        ("next_check", v.next_check),
        ("emitted_by", v.emitted_by),
    ];
    let non_empty = |pairs: &[(&str, String)]| {
        pairs
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(k, value)| ((*k).to_owned(), value.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    PostableAlert {
        labels: non_empty(&labels),
        annotations: non_empty(&annotations),
        starts_at: rfc3339(incident.opened_at_ms),
        ends_at: match event {
            Event::Firing => None,
            Event::Resolved => rfc3339(now_ms),
        },
        generator_url: generator_url.map(|g| g.replace("{id}", &incident.id.to_string())),
    }
}

/// POSTs alerts to the receiver in one request.
pub(crate) async fn post(
    client: &reqwest::Client,
    receiver: &AlertmanagerReceiver,
    alerts: &[PostableAlert],
) -> Outcome {
    let request = client
        .post(receiver.alerts_url.clone())
        .timeout(receiver.timeout)
        .json(alerts);
    match request.send().await {
        Ok(response) => Outcome::from_status(response.status().as_u16()),
        Err(e) => Outcome::Retry {
            status: None,
            error: transport_error(&e),
        },
    }
}

#[cfg(test)]
mod tests {
    use gw502_proto::v1::Verdict;

    use super::*;

    #[test]
    fn resolve_sets_ends_at_and_labels_skip_empty() {
        let incident = Incident {
            id: 42,
            site: "shop.example".into(),
            opened_at_ms: 1_700_000_000_000,
            verdict: Some(Verdict {
                layer: "upstream".into(),
                cause: "saturated".into(),
                owner: "app".into(),
                status: 502,
                summary: "php-fpm pool full".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let firing = alert(&incident, Event::Firing, None, 1_700_000_060_000, None);
        assert_eq!(firing.ends_at, None);
        assert_eq!(firing.labels["owner"], "app");
        assert_eq!(firing.labels["status"], "502");
        assert_eq!(firing.labels["incident_id"], "42");
        assert!(!firing.labels.contains_key("host"));
        assert!(!firing.annotations.contains_key("next_check"));
        let resolved = alert(
            &incident,
            Event::Resolved,
            Some("app-team"),
            1_700_000_060_000,
            Some("https://gw502.example/incidents/{id}"),
        );
        assert_eq!(resolved.ends_at.as_deref(), Some("2023-11-14T22:14:20Z"));
        assert_eq!(resolved.labels["owner"], "app-team");
        let json = serde_json::to_value(&resolved).unwrap();
        assert_eq!(json["generatorURL"], "https://gw502.example/incidents/42");
        assert_eq!(json["startsAt"], "2023-11-14T22:13:20Z");
    }
}
