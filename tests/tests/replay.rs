//! The replay corpus, without a lab: every fixture under `tests/fixtures/replay/` (the
//! evidence the engine saw when a lab matrix cell was judged, see
//! `tests/src/matrix/replay.rs`) goes through `gw502_attribution::attribute()` again.
//! The test prints the exact layer+cause rate and the layer rate, and fails when a cell
//! that passed in the lab no longer gives its expected verdict.

use std::path::Path;

use gw502_tests::matrix::replay::Recorded;

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
    for path in &paths {
        let text = std::fs::read_to_string(path).unwrap();
        let rec = Recorded::from_json(&serde_json::from_str(&text).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
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
    println!(
        "replayed {n} cells: exact layer+cause {exact}/{n} ({:.1}%), layer {layer}/{n} ({:.1}%)",
        100.0 * exact as f64 / n as f64,
        100.0 * layer as f64 / n as f64
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
