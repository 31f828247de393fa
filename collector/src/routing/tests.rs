//! Table tests of routing rules and of config validation, through the TOML
//! an operator writes.

use std::collections::BTreeMap;

use gw502_proto::v1::{Incident, Verdict};
use serde::Deserialize;

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    routing: RoutingSettings,
}

fn settings(toml_text: &str) -> Result<RoutingSettings, toml::de::Error> {
    toml::from_str::<Config>(toml_text).map(|c| c.routing)
}

fn router(toml_text: &str) -> Router {
    settings(toml_text).unwrap().validate().unwrap()
}

const RULES: &str = r#"
[routing]
default_receiver = "am"

[[routing.rules]]
match = { owner = "app", layer = "upstream", cause = "saturated", site = "shop.example", labels = { tier = "gold" } }
receiver = "app-team"
owner = "app-team"

[[routing.rules]]
match = { site = "*.shop.example", layer = "handoff" }
receiver = "platform"
continue = true

[[routing.rules]]
match = { layer = "handoff", labels = { env = "prod*" } }
receiver = "pager"
owner = "oncall"

[[routing.rules]]
match = { layer = "handoff" }
receiver = "platform"

[[routing.rules]]
match = { owner = "cdn" }
receiver = "platform"
continue = true

[[routing.rules]]
match = { cause = "edge_*" }
receiver = "edge-team"

[routing.receivers.am]
kind = "alertmanager"
url = "http://127.0.0.1:9093"

[routing.receivers.app-team]
kind = "webhook"
url = "https://hooks.example/gw502"
secret_env = "PATH"

[routing.receivers.platform]
kind = "webhook"
url = "https://hooks.example/platform"
secret_env = "PATH"

[routing.receivers.pager]
kind = "webhook"
url = "https://pager.example/in"
secret_env = "PATH"
timeout = "2s"

[routing.receivers.edge-team]
kind = "webhook"
url = "http://127.0.0.1:8080/edge"
secret_env = "PATH"
"#;

fn incident(site: &str, owner: &str, layer: &str, cause: &str) -> Incident {
    Incident {
        id: 1,
        site: site.into(),
        host: "web1".into(),
        state: "open".into(),
        verdict: Some(Verdict {
            owner: owner.into(),
            layer: layer.into(),
            cause: cause.into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// An incident, its site's labels, and the receivers (with owner overrides) it should reach.
type Row = (
    Incident,
    BTreeMap<String, String>,
    Vec<(&'static str, Option<&'static str>)>,
);

#[test]
fn rules_table() {
    let router = router(RULES);
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    // (incident, site labels, expected receivers with owner overrides)
    let table: Vec<Row> = vec![
        // Every key of rule 0 matches: first match wins, owner overridden.
        (
            incident("shop.example", "app", "upstream", "saturated"),
            labels(&[("tier", "gold"), ("env", "prod")]),
            vec![("app-team", Some("app-team"))],
        ),
        // A label value differs: falls through to the default.
        (
            incident("shop.example", "app", "upstream", "saturated"),
            labels(&[("tier", "silver")]),
            vec![("am", None)],
        ),
        // The label is missing altogether.
        (
            incident("shop.example", "app", "upstream", "saturated"),
            labels(&[]),
            vec![("am", None)],
        ),
        // A different cause misses rule 0.
        (
            incident("shop.example", "app", "upstream", "timeout"),
            labels(&[("tier", "gold")]),
            vec![("am", None)],
        ),
        // Glob site + continue, then the label glob rule stops.
        (
            incident("www.shop.example", "platform", "handoff", "wrong_port"),
            labels(&[("env", "production")]),
            vec![("platform", None), ("pager", Some("oncall"))],
        ),
        // Continue, label rule misses, the later handoff rule names the same
        // receiver again: delivered once.
        (
            incident("www.shop.example", "platform", "handoff", "wrong_port"),
            labels(&[("env", "staging")]),
            vec![("platform", None)],
        ),
        // The glob `*.shop.example` does not match the bare domain.
        (
            incident("shop.example", "platform", "handoff", "bind_mismatch"),
            labels(&[("env", "prod")]),
            vec![("pager", Some("oncall"))],
        ),
        // continue = true on the owner rule, then the cause glob.
        (
            incident("blog.example", "cdn", "edge", "edge_tls_to_origin"),
            labels(&[]),
            vec![("platform", None), ("edge-team", None)],
        ),
        // A rule matched (continue) but no later one: no default added.
        (
            incident("blog.example", "cdn", "edge", "client_path"),
            labels(&[]),
            vec![("platform", None)],
        ),
        // Nothing matches: the default receiver.
        (
            incident("blog.example", "app", "dependency", "dependency_failure"),
            labels(&[]),
            vec![("am", None)],
        ),
    ];
    for (i, (incident, labels, want)) in table.into_iter().enumerate() {
        let got = router.route(&incident, &labels);
        let want: Vec<Route> = want
            .into_iter()
            .map(|(r, o)| Route {
                receiver: r.into(),
                owner_override: o.map(Into::into),
            })
            .collect();
        assert_eq!(got, want, "row {i}");
    }
}

#[test]
fn no_default_means_no_route() {
    let router = router(
        r#"
        [routing]
        [[routing.rules]]
        match = { layer = "proxy" }
        receiver = "am"
        [routing.receivers.am]
        kind = "alertmanager"
        url = "http://127.0.0.1:9093/"
        "#,
    );
    let miss = incident("a.example", "app", "upstream", "timeout");
    assert!(router.route(&miss, &BTreeMap::new()).is_empty());
    // An incident without a verdict only matches rules without verdict keys.
    let bare = Incident::default();
    assert!(router.route(&bare, &BTreeMap::new()).is_empty());
    assert_eq!(router.retry.max_attempts, 5);
}

#[test]
fn validation_reports_every_problem_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.secret");
    let empty = dir.path().join("empty.secret");
    std::fs::write(&empty, "\n").unwrap();
    let text = format!(
        r#"
        [routing]
        default_receiver = "nobody"
        max_attempts = 0
        backoff = "soon"
        [[routing.rules]]
        receiver = "am"
        [[routing.rules]]
        receiver = "hook"
        [[routing.rules]]
        receiver = "x"
        owner = ""
        [routing.receivers.am]
        kind = "alertmanager"
        url = "ftp://127.0.0.1:9093"
        resend_interval = "0s"
        [routing.receivers.hook]
        kind = "webhook"
        url = "not a url"
        secret_file = "{missing}"
        timeout = "5 parsecs"
        [routing.receivers.empty]
        kind = "webhook"
        url = "https://hooks.example/"
        secret_file = "{empty}"
        [routing.receivers.both]
        kind = "webhook"
        url = "https://hooks.example/"
        secret_file = "{empty}"
        secret_env = "PATH"
        [routing.receivers.env]
        kind = "webhook"
        url = "https://hooks.example/"
        secret_env = "GW502_TEST_SURELY_UNSET_VARIABLE"
        "#,
        missing = missing.display(),
        empty = empty.display(),
    );
    let errors = settings(&text).unwrap().validate().unwrap_err();
    let mut got: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    got.sort();
    let mut want = vec![
        "routing.backoff: invalid duration \"soon\": ".to_owned(),
        "routing.default_receiver: no receiver named \"nobody\"".to_owned(),
        "routing.max_attempts: 0 is out of range 1..=100".to_owned(),
        "routing.receivers.am.resend_interval: invalid duration \"0s\": must be more than zero".to_owned(),
        "routing.receivers.am.url: invalid url \"ftp://127.0.0.1:9093\": only http and https urls with a host are supported".to_owned(),
        "routing.receivers.both: set exactly one of secret_file and secret_env".to_owned(),
        "routing.receivers.empty.secret_file: the secret is empty or longer than 4096 bytes".to_owned(),
        "routing.receivers.env.secret_env: environment variable GW502_TEST_SURELY_UNSET_VARIABLE is not set".to_owned(),
        format!("routing.receivers.hook.secret_file: cannot read secret file {}: ", missing.display()),
        "routing.receivers.hook.timeout: invalid duration \"5 parsecs\": ".to_owned(),
        "routing.receivers.hook.url: invalid url \"not a url\": ".to_owned(),
        "routing.rules[2].owner: must not be empty".to_owned(),
        "routing.rules[2].receiver: no receiver named \"x\"".to_owned(),
    ];
    want.sort();
    assert_eq!(got.len(), want.len(), "{got:#?}");
    for (g, w) in got.iter().zip(&want) {
        assert!(g.starts_with(w.as_str()), "{g:?} does not start with {w:?}");
    }
}

#[test]
fn unknown_keys_are_refused() {
    let err = settings(
        r#"
        [routing.receivers.am]
        kind = "alertmanager"
        url = "http://127.0.0.1:9093"
        secret_file = "/nope"
        "#,
    )
    .expect_err("secret_file is not an alertmanager key");
    assert!(err.to_string().contains("secret_file"), "{err}");
    let err = settings("[routing]\nmatch_all = true\n").expect_err("unknown top key");
    assert!(err.to_string().contains("match_all"), "{err}");
    let err = settings("[[routing.rules]]\nreceiver = \"a\"\nmatch = { severity = \"high\" }\n")
        .expect_err("unknown match key");
    assert!(err.to_string().contains("severity"), "{err}");
}

#[test]
fn secret_file_is_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hook.secret");
    std::fs::write(&path, "s3cret\n").unwrap();
    let router = router(&format!(
        "[routing.receivers.hook]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/\"\nsecret_file = \"{}\"\n",
        path.display()
    ));
    let Some(Receiver::Webhook(hook)) = router.receiver("hook") else {
        panic!("hook is a webhook")
    };
    assert_eq!(hook.secret.expose(), b"s3cret");
    assert_eq!(hook.timeout, std::time::Duration::from_secs(5));
}

#[test]
fn matchers_are_checked_against_the_vocabulary() {
    let errors = settings(
        r#"
        [routing]
        default_receiver = "am"
        [[routing.rules]]
        match = { cause = "servce_down", layer = "upstreams" }
        receiver = "am"
        [[routing.rules]]
        match = { owner = "app-team", emitted_by = "nginx" }
        receiver = "am"
        [[routing.rules]]
        match = { cause = "tls_*", owner = "*" , layer = "*stream", emitted_by = "edge" }
        owner = "app-team"
        receiver = "am"
        [[routing.rules]]
        match = { cause = "*_timeout" }
        receiver = "am"
        [routing.receivers.am]
        kind = "alertmanager"
        url = "http://127.0.0.1:9093/"
        "#,
    )
    .unwrap()
    .validate()
    .unwrap_err();
    let got: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let keys: Vec<&str> = errors.iter().map(|e| e.key.as_str()).collect();
    // Rule 2 is all real words or globs matching some; the owner override is free-form.
    assert_eq!(
        keys,
        [
            "routing.rules[0].match.layer",
            "routing.rules[0].match.cause",
            "routing.rules[1].match.owner",
            "routing.rules[1].match.emitted_by",
            "routing.rules[3].match.cause",
        ],
        "{got:#?}"
    );
    assert!(
        got[1].starts_with(
            "routing.rules[0].match.cause: \"servce_down\" is no cause (one of: client_path, "
        ),
        "{}",
        got[1]
    );
    assert!(got[1].contains("service_down"), "{}", got[1]);
    assert!(
        got[3].ends_with("(one of: edge, proxy, upstream, cache, unknown)"),
        "{}",
        got[3]
    );
}
