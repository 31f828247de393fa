//! Labels on the command line: `--label KEY=VALUE` filters over the labels
//! the collector returns with hosts, sites and incidents, and their text form
//! in tables (`customer=acme,env=prod`, sorted by key).
//!
//! Incident lists are filtered by the collector (so `--limit` counts only
//! matching rows); hosts, sites and watched events are filtered here. A
//! scoped operator certificate is enforced by the collector either way.

use std::collections::{BTreeMap, HashMap};

/// True when `labels` carry every `wanted` pair.
pub fn matches(wanted: &[(String, String)], labels: &HashMap<String, String>) -> bool {
    wanted.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The wanted pairs as the request map.
pub fn to_map(wanted: &[(String, String)]) -> HashMap<String, String> {
    wanted.iter().cloned().collect()
}

/// `customer=acme,env=prod`, sorted by key; empty for no labels.
pub fn text(labels: &HashMap<String, String>) -> String {
    let sorted: BTreeMap<&String, &String> = labels.iter().collect();
    sorted
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_wanted_pair_must_match() {
        let labels = map(&[("env", "prod"), ("customer", "acme")]);
        let want = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(matches(&want(&[]), &labels));
        assert!(matches(&want(&[("customer", "acme")]), &labels));
        assert!(!matches(
            &want(&[("customer", "acme"), ("env", "test")]),
            &labels
        ));
        assert!(!matches(&want(&[("tier", "gold")]), &labels));
        assert_eq!(text(&labels), "customer=acme,env=prod");
        assert_eq!(text(&map(&[])), "");
    }
}
