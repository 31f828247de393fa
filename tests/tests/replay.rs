//! The replay corpus, without a lab: every fixture under `tests/fixtures/replay/` (the
//! evidence the engine saw when a lab matrix cell was judged, see
//! `tests/src/matrix/replay.rs`) goes through `gw502_attribution::attribute()` again.
//! The test prints the exact layer+cause rate and the layer rate, and fails when a cell
//! that passed in the lab no longer gives its expected verdict.
//! No replayed verdict may name a unit outside its cell's chain (`hosts::outside_chain`).

use std::collections::HashMap;
use std::path::Path;

use gw502_tests::matrix::hosts::outside_chain;
use gw502_tests::matrix::replay::{Recorded, expectation};
use gw502_tests::matrix::{Cell, cells};

#[test]
fn replay_corpus_has_no_regressions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/replay");
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/replay exists")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no replay fixtures in {}", dir.display());
    let (mut exact, mut layer, mut regressions, mut misses) = (0, 0, Vec::new(), Vec::new());
    let (mut strict, mut status_misses) = (0, Vec::new());
    let mut foreign = Vec::new();
    let matrix: HashMap<String, Cell> = cells().into_iter().map(|c| (c.id(), c)).collect();
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let mut rec = Recorded::from_json(&serde_json::from_str(&text).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
        let cell = matrix.get(&rec.cell);
        // Judged by the model of now, so a corrected expectation meets every recording.
        if let Some(cell) = cell {
            rec.expected = expectation(cell);
        }
        let verdicts = rec.replay();
        let ok = rec.judge(&verdicts, false);
        exact += usize::from(ok);
        layer += usize::from(rec.judge_layer(&verdicts));
        let got: Vec<String> = verdicts
            .iter()
            .map(|v| {
                let p = gw502_proto::v1::Verdict::from(v);
                format!(
                    "{} / {} / {} / {}",
                    p.layer, p.cause, p.status, p.emitted_by
                )
            })
            .collect();
        if let Some(cell) = cell {
            let text = format!(
                "{:?}",
                verdicts
                    .iter()
                    .map(gw502_proto::v1::Verdict::from)
                    .collect::<Vec<_>>()
            );
            for unit in outside_chain(cell) {
                if text.contains(unit) {
                    foreign.push(format!("{}: names {unit}: {text}", rec.cell));
                }
            }
        }
        if rec.judge(&verdicts, true) {
            strict += 1;
        } else if ok {
            status_misses.push(format!(
                "{}: expected {:?}, got {got:?}",
                rec.cell, rec.expected
            ));
        }
        if !ok {
            misses.push(format!(
                "{}: expected {:?}, got {got:?}",
                rec.cell, rec.expected
            ));
        }
        if rec.passed && !rec.judge(&verdicts, true) {
            regressions.push(format!(
                "{}: expected {:?}, got {got:?}",
                rec.cell, rec.expected
            ));
        }
    }
    let n = paths.len();
    for miss in &misses {
        println!("miss {miss}");
    }
    for miss in &status_misses {
        println!("status or emitter miss {miss}");
    }
    println!(
        "replayed {n} cells: exact layer+cause {exact}/{n} ({:.1}%), layer {layer}/{n} ({:.1}%), \
         strict (status and emitter too) {strict}/{n} ({:.1}%)",
        100.0 * exact as f64 / n as f64,
        100.0 * layer as f64 / n as f64,
        100.0 * strict as f64 / n as f64
    );
    assert!(
        foreign.is_empty(),
        "verdicts naming a unit outside the cell's chain:\n{}",
        foreign.join("\n")
    );
    assert!(
        regressions.is_empty(),
        "regressions:\n{}",
        regressions.join("\n")
    );
}

#[test]
fn a_fixture_round_trips_and_a_changed_expectation_is_caught() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/replay");
    let Some(path) = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
    else {
        panic!("no replay fixtures in {}", dir.display());
    };
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let rec = Recorded::from_json(&v).unwrap();
    assert_eq!(
        Recorded::from_json(&rec.to_json()).unwrap().to_json(),
        rec.to_json()
    );
    let verdicts = rec.replay();
    let mut wrong = rec.clone();
    wrong.expected = Some([
        "client".into(),
        "client_path".into(),
        "0".into(),
        "unknown".into(),
    ]);
    assert!(!wrong.judge(&verdicts, false) || verdicts.is_empty() && rec.expected.is_none());
}

/// `wrong_target.nginx.remote.single.byaddr`, recorded before the collector remembered
/// served units across hosts: nginx targets the app host's port 8081 and nothing on
/// the app host ties `app.service` (on 8080) to the chain, so the verdict was
/// `insufficient_evidence`. With the memory of the healthy period (the origin's probe
/// of port 8080 answered while `app.service` listened there) the same evidence gives
/// `handoff / wrong_port`, and forgetting it gives the old verdict back.
#[test]
fn the_collectors_memory_ties_an_app_on_another_host() {
    use gw502_collector::incidents::served;
    use gw502_collector::store::ServedRow;
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/replay/wrong_target.nginx.remote.single.byaddr.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let rec = Recorded::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
    let origin = rec.evidence.site.origin_hosts[0].clone();
    let app = rec
        .evidence
        .hosts
        .iter()
        .find(|h| h.host_id != origin)
        .expect("the app host is in the evidence");
    let address = app.state.addresses[0].split('/').next().unwrap().to_owned();
    let memory = [ServedRow {
        host_id: app.host_id.clone(),
        unit: "app.service".into(),
        target: format!("{address}:8080"),
        proxy_host: origin,
        seen_ms: rec.evidence.now_ms - 60_000,
    }];
    let mut without = rec.clone();
    for h in &mut without.evidence.hosts {
        for u in h.state.systemd.iter_mut().flat_map(|s| &mut s.units) {
            u.roles
                .retain(|r| r != "upstream" || u.name != "app.service");
        }
    }
    let cause = |r: &Recorded| {
        r.replay()
            .iter()
            .map(|v| gw502_proto::v1::Verdict::from(v).cause)
            .collect::<Vec<_>>()
    };
    assert_eq!(cause(&without), ["insufficient_evidence"]);
    let mut with = without.clone();
    served::apply(&mut with.evidence.hosts, &memory);
    assert_eq!(cause(&with), ["wrong_port"]);
    assert!(with.judge(&with.replay(), true), "{:?}", with.replay());
}

/// `header_too_big.haproxy.fastcgi.single.cold`, recorded on Debian 12's HAProxy 2.6.12,
/// which aborts on PHP-FPM's 64 KB head (`BUG_ON c_empty(ic)`) until systemd gives up:
/// its master exits 139 (a worker's SIGSEGV, 128+11). The verdict names the crash and
/// where to read it, not only a stopped unit.
#[test]
fn a_proxy_that_crashed_on_what_it_relayed_is_named_as_crashed() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/replay/header_too_big.haproxy.fastcgi.single.cold.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let verdicts = Recorded::from_json(&v).unwrap().replay();
    let [v] = verdicts.as_slice() else {
        panic!("one verdict: {verdicts:?}");
    };
    let p = gw502_proto::v1::Verdict::from(v);
    assert_eq!(
        (p.layer.as_str(), p.cause.as_str()),
        ("proxy", "proxy_down")
    );
    assert!(v.summary.contains("crashed"), "{}", v.summary);
    assert!(
        v.next_check
            .contains("haproxy.service on c4o0 died of SIGSEGV (restarts=6)"),
        "{}",
        v.next_check
    );
}
