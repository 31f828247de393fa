//! `varnishadm backend.list`: each backend's health as Varnish sees it, from
//! the JSON form (`backend.list -j`, what the agent runs) or the table form
//! (`backend.list`, `-p` adds probe details below each row). A backend is
//! `sick` when its probe window has fewer good probes than the threshold, or
//! when an operator forced it (`varnishadm backend.set_health NAME sick`).

use gw502_proto::v1::BackendHealth;

/// Reads `backend.list -j`: `[3, [argv], time, { "vcl.backend": {…}, … }]`.
/// `None` when the text is not that shape.
pub fn parse_backend_list_json(text: &str) -> Option<Vec<BackendHealth>> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let table = value.as_array()?.get(3)?.as_object()?;
    let mut out = Vec::new();
    for (name, b) in table {
        let message = b.get("probe_message").and_then(|m| m.as_array());
        let num = |i: usize| {
            message
                .and_then(|m| m.get(i))
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0)
        };
        let health = message
            .and_then(|m| m.get(2))
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .to_string();
        let last_change = b.get("last_change").and_then(serde_json::Value::as_f64);
        out.push(BackendHealth {
            name: name.clone(),
            admin: word(b.get("admin_health")),
            health,
            probe_good: num(0),
            probe_window: num(1),
            last_change_ms: last_change.map_or(0, |s| (s * 1000.0) as i64),
            ..BackendHealth::default()
        });
    }
    Some(out)
}

fn word(v: Option<&serde_json::Value>) -> String {
    v.and_then(|v| v.as_str()).unwrap_or("").to_string()
}

/// Reads the table of `backend.list` (with or without `-p`): one row per
/// backend, `name admin good/window health last-change`; probe detail lines
/// (indented) are skipped. Rows of another shape are skipped.
pub fn parse_backend_list(text: &str) -> Vec<BackendHealth> {
    text.lines()
        .filter(|l| !l.starts_with(' ') && !l.starts_with("Backend name"))
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            let (name, admin, probe, health) = (w.first()?, w.get(1)?, w.get(2)?, w.get(3)?);
            let (good, window) = probe.split_once('/')?;
            Some(BackendHealth {
                name: (*name).to_string(),
                admin: (*admin).to_string(),
                health: (*health).to_string(),
                probe_good: good.parse().ok()?,
                probe_window: window.parse().ok()?,
                ..BackendHealth::default()
            })
        })
        .collect()
}

/// The backend name without its VCL prefix (`boot.default` to `default`).
pub fn backend_name(full: &str) -> &str {
    full.rsplit('.').next().unwrap_or(full)
}

/// Whether Varnish will not send requests to it.
pub fn is_sick(b: &BackendHealth) -> bool {
    b.health == "sick" || b.admin == "sick"
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = include_str!("../../fixtures/varnish/backend.list-j.json");
    const TABLE: &str = include_str!("../../fixtures/varnish/backend.list.txt");
    const PROBES: &str = include_str!("../../fixtures/varnish/backend.list-p.txt");

    #[test]
    fn json_and_tables_agree() {
        let json = parse_backend_list_json(JSON).unwrap();
        let table = parse_backend_list(TABLE);
        let probes = parse_backend_list(PROBES);
        assert_eq!(json.len(), 12);
        let sick: Vec<&str> = json
            .iter()
            .filter(|b| is_sick(b))
            .map(|b| b.name.as_str())
            .collect();
        assert_eq!(sick, ["boot.app_sick"]);
        for list in [&table, &probes] {
            assert_eq!(list.len(), json.len());
            for b in list.iter() {
                let j = json.iter().find(|j| j.name == b.name).unwrap();
                assert_eq!(
                    (&b.admin, &b.health, b.probe_good, b.probe_window),
                    (&j.admin, &j.health, j.probe_good, j.probe_window),
                    "{}",
                    b.name
                );
            }
        }
        let probed = json.iter().find(|b| b.name == "boot.app_probed").unwrap();
        assert_eq!(
            (
                probed.admin.as_str(),
                probed.probe_good,
                probed.probe_window
            ),
            ("probe", 5, 5)
        );
        assert_eq!(probed.last_change_ms, 1_796_153_955_075);
        assert_eq!(backend_name(&probed.name), "app_probed");
    }

    #[test]
    fn forced_sick_and_junk() {
        let forced = BackendHealth {
            admin: "sick".into(),
            health: "healthy".into(),
            ..BackendHealth::default()
        };
        assert!(is_sick(&forced));
        for junk in ["", "[]", "[1,2,3,4]", "{", "[3, [], 1, {\"a\": 1}]"] {
            let _ = parse_backend_list_json(junk);
        }
        assert!(parse_backend_list_json("not json").is_none());
        assert!(parse_backend_list("Backend name Admin\nx y z\n").is_empty());
    }
}
