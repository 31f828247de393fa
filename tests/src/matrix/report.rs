//! `docs/ACCURACY.md`: a matrix run's per-cell results, the exact layer+cause rate, the
//! layer rate, false incidents on healthy controls, and seconds from fault to the right
//! verdict (median and worst, warm and cold, in all and per fault), plus the skipped
//! combinations and why.

use std::fmt::Write as _;

use super::runner::CellResult;
use super::{Cell, Condition};

/// Where the generated part of `docs/ACCURACY.md` ends: what follows is hand-written
/// (notes on a run, re-runs after fixes) and a full run keeps it.
pub const NOTES: &str = "<!-- notes: kept by the full run -->";

/// The figures of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Cells run.
    pub cells: usize,
    /// Cells the lab could not run (a host did not boot, a site never came up): not
    /// judged, so the rates below leave them out.
    pub lab_errors: usize,
    /// Cells with the right incident and no other (controls: none at all): layer, cause,
    /// status and emitter.
    pub exact: usize,
    /// Cells whose one open incident has the right layer and cause, whatever status the
    /// proxy answered (the "exact layer+cause").
    pub layer_cause: usize,
    /// Cells with an incident of the right layer open (controls: none at all).
    pub layer: usize,
    /// Controls run.
    pub controls: usize,
    /// Incidents opened on controls.
    pub false_incidents: usize,
    /// Median and worst seconds to the right verdict, warm cells.
    pub warm: Option<(f64, f64)>,
    /// Median and worst seconds from the agents' start to the right verdict, cold cells.
    pub cold: Option<(f64, f64)>,
    /// Seconds from when the fault showed to the right verdict (`from_shown`), warm
    /// cells that recorded it.
    pub warm_shown: Timed,
    /// The same, cold cells.
    pub cold_shown: Timed,
}

/// Cells timed, and the median and worst of their seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timed {
    /// Cells with a figure.
    pub cells: usize,
    /// Median and worst seconds.
    pub spread: Option<(f64, f64)>,
}

impl Timed {
    fn of(seconds: Vec<f64>) -> Self {
        Self {
            cells: seconds.len(),
            spread: median_worst(seconds),
        }
    }
}

/// Sum up `results`.
pub fn figures(results: &[CellResult]) -> Figures {
    let timed = |cold: bool, seconds: fn(&CellResult) -> Option<f64>| {
        Timed::of(
            results
                .iter()
                .filter(|r| (r.cell.condition == Condition::Cold) == cold)
                .filter_map(seconds)
                .collect(),
        )
    };
    Figures {
        cells: results.len(),
        lab_errors: results.iter().filter(|r| is_lab_error(r)).count(),
        exact: results.iter().filter(|r| r.pass).count(),
        layer_cause: results.iter().filter(|r| layer_and_cause(r)).count(),
        layer: results.iter().filter(|r| r.layer_ok).count(),
        controls: results
            .iter()
            .filter(|r| r.cell.expected().is_none())
            .count(),
        false_incidents: results.iter().map(|r| r.false_incidents).sum(),
        warm: timed(false, |r| r.seconds).spread,
        cold: timed(true, |r| r.seconds).spread,
        warm_shown: timed(false, |r| r.from_shown),
        cold_shown: timed(true, |r| r.from_shown),
    }
}

/// Whether the cell passed, or missed on the status or emitter alone: one incident open,
/// opened on the fault, with the expected layer and cause (Apache answers a read timeout
/// 504 or 502; the verdict gives the status visitors got).
pub fn layer_and_cause(r: &CellResult) -> bool {
    let Some(e) = r.cell.expected().filter(|_| !r.pass) else {
        return r.pass;
    };
    let words = format!("{} / {} / ", e.layer, e.cause);
    match r.got.split("; ").collect::<Vec<_>>().as_slice() {
        [one] => one.starts_with(&words) && !one.contains("before the fault"),
        _ => false,
    }
}

/// The median and the worst of `seconds`, if any.
fn median_worst(mut seconds: Vec<f64>) -> Option<(f64, f64)> {
    seconds.sort_by(f64::total_cmp);
    Some((*seconds.get(seconds.len() / 2)?, *seconds.last()?))
}

/// Whether the lab failed the cell before it could be judged (`lab_matrix`'s
/// `run_with` records those as `lab error: ...`).
pub fn is_lab_error(r: &CellResult) -> bool {
    r.got.starts_with("lab error")
}

/// `text` as one Markdown table cell: a lab error carries a multi-line boot log, which
/// would end the table; it is cut to one line of at most 300 characters.
fn table_cell(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut: String = line.chars().take(300).collect();
    let cut = if cut.len() < line.len() {
        cut + " …"
    } else {
        cut
    };
    cut.replace('|', "\\|")
}

/// Seconds to the right verdict per fault, warm and cold (median and worst), in
/// matrix order: a fault that waits for a proxy's own timeout shows it here.
fn timing_by_fault(results: &[CellResult]) -> String {
    let mut out = String::from(
        "| fault | cells timed, warm | warm median / worst | cells timed, cold | cold median / worst |\n\
         |---|---|---|---|---|\n",
    );
    let mut faults: Vec<_> = results.iter().map(|r| r.cell.fault).collect();
    faults.sort();
    faults.dedup();
    for fault in faults {
        let of = |cold: bool| {
            let t: Vec<f64> = results
                .iter()
                .filter(|r| r.cell.fault == fault && (r.cell.condition == Condition::Cold) == cold)
                .filter_map(|r| r.seconds)
                .collect();
            let n = t.len();
            let spread =
                median_worst(t).map_or("-".into(), |(m, w)| format!("{m:.1} s / {w:.1} s"));
            (n, spread)
        };
        let ((nw, warm), (nc, cold)) = (of(false), of(true));
        if nw + nc > 0 {
            let _ = writeln!(out, "| {} | {nw} | {warm} | {nc} | {cold} |", fault.word());
        }
    }
    out.push('\n');
    out
}

/// `n` of `of` in percent, rounded down to a tenth: one miss in 2,000 is 99.9%, never a
/// 100.0% that hides it.
fn pct(n: usize, of: usize) -> f64 {
    (1000 * n)
        .checked_div(of)
        .map_or(0.0, |tenths| tenths as f64 / 10.0)
}

/// The cells whose newest result ran on one build.
#[derive(Debug, Clone)]
pub struct Build {
    /// Its commit (`-dirty` when the tree had changes).
    pub commit: String,
    /// Its cells' results.
    pub results: Vec<CellResult>,
}

/// The figures of each of `builds` (newest first): a journal gathered over several
/// builds has one build's figures here, the newest ones, however old its other cells.
fn by_build(builds: &[Build]) -> String {
    let mut out = String::from(
        "Newest builds first; a cell counts for the build its newest result ran on.\n\n\
         | build | cells | strict | layer+cause | from shown, warm | from shown, cold | fault to verdict, warm |\n\
         |---|---|---|---|---|---|---|\n",
    );
    let timed = |t: Timed| {
        t.spread.map_or("-".into(), |(m, w)| {
            format!("median {m:.1} s, worst {w:.1} s ({} cells)", t.cells)
        })
    };
    for b in builds {
        let f = figures(&b.results);
        let judged = f.cells - f.lab_errors;
        let _ = writeln!(
            out,
            "| {} | {} | {} = {:.1}% | {} = {:.1}% | {} | {} | {} |",
            b.commit,
            f.cells,
            f.exact,
            pct(f.exact, judged),
            f.layer_cause,
            pct(f.layer_cause, judged),
            timed(f.warm_shown),
            timed(f.cold_shown),
            f.warm.map_or("-".into(), |(m, w)| format!(
                "median {m:.1} s, worst {w:.1} s"
            )),
        );
    }
    out.push('\n');
    out
}

/// The Markdown document; `builds` (newest first, may be empty) get a table of their own.
pub fn markdown(
    results: &[CellResult],
    builds: &[Build],
    skipped: &[Cell],
    how: &str,
    when: &str,
    secs: f64,
) -> String {
    let f = figures(results);
    let mut out = String::from(
        "# Attribution accuracy: the fault matrix\n\n\
         Every lab host runs the agent as shipped: `deploy/gw502-agent.service` unchanged, the \
         user from `deploy/gw502.sysusers` (applied with `systemd-sysusers`), its sandbox. A \
         cell is a fault crossed with a proxy, a transport, a topology and a condition \
         (`tests/src/matrix.rs`). Judging is strict: a cell passes only when the expected \
         incident is open and no other incident is open for its site (boot-time ones \
         included); a healthy control passes only when no incident opened at all. Seconds \
         run from the start of the cell's own fault injection (warm) or from the agents' \
         start (cold) to the `opened_at` of the right incident; agents report every 2 s. \
         \"From shown\" (passing cells) runs from \
         when the fault showed, the first visitor request that came back failed (a read \
         timeout fails its first request only when the proxy gives up), on a cold start no \
         earlier than the first report of the site's agents, to when `gw502ctl incidents` \
         first listed the right verdict (polled every 0.4 s, so it errs long).\n\n",
    );
    let _ = writeln!(out, "Run: {when}, {how}, {secs:.0} s.\n");
    let _ = writeln!(out, "| figure | value |\n|---|---|");
    let judged = f.cells - f.lab_errors;
    let _ = writeln!(out, "| cells run | {} |", f.cells);
    if f.lab_errors > 0 {
        let _ = writeln!(
            out,
            "| cells the lab could not run (not judged, left out of the rates) | {} |",
            f.lab_errors
        );
    }
    let _ = writeln!(
        out,
        "| exact verdict: layer, cause, status and emitter (strict) | {} / {judged} = {:.1}% |",
        f.exact,
        pct(f.exact, judged)
    );
    let _ = writeln!(
        out,
        "| exact layer+cause (one incident, status aside) | {} / {judged} = {:.1}% |",
        f.layer_cause,
        pct(f.layer_cause, judged)
    );
    let _ = writeln!(
        out,
        "| exact layer | {} / {judged} = {:.1}% |",
        f.layer,
        pct(f.layer, judged)
    );
    let _ = writeln!(
        out,
        "| false incidents on {} healthy controls | {} |",
        f.controls, f.false_incidents
    );
    let spread = |s: Option<(f64, f64)>| {
        s.map_or("-".into(), |(m, w)| {
            format!("median {m:.1} s, worst {w:.1} s")
        })
    };
    let rows = [
        ("fault", "warm", f.warm, f.warm_shown),
        ("agents' start", "cold", f.cold, f.cold_shown),
    ];
    for (from, condition, seconds, shown) in rows {
        let _ = writeln!(
            out,
            "| {from} to right verdict, {condition} | {} |",
            spread(seconds)
        );
        if shown.cells > 0 {
            let _ = writeln!(
                out,
                "| from shown to right verdict listed, {condition} ({} cells) | {} |",
                shown.cells,
                spread(shown.spread)
            );
        }
    }
    out.push('\n');
    if !builds.is_empty() {
        out.push_str(&by_build(builds));
    }
    out.push_str(&timing_by_fault(results));
    out.push_str("| cell | expected | got (open incidents of the site) | seconds | from shown | result |\n|---|---|---|---|---|---|\n");
    for r in results {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            r.cell.id(),
            r.expected,
            table_cell(&r.got),
            r.seconds.map_or("-".into(), |s| format!("{s:.1}")),
            r.from_shown.map_or("-".into(), |s| format!("{s:.1}")),
            match (r.pass, layer_and_cause(r)) {
                (true, _) => "pass",
                (false, true) => "FAIL (status)",
                (false, false) => "FAIL",
            }
        );
    }
    if !skipped.is_empty() {
        out.push_str("\n## Skipped combinations\n\n| reason | cells |\n|---|---|\n");
        let mut reasons: Vec<(&str, usize)> = Vec::new();
        for c in skipped {
            let reason = c.skip().unwrap_or("");
            match reasons.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, n)) => *n += 1,
                None => reasons.push((reason, 1)),
            }
        }
        for (reason, n) in reasons {
            let _ = writeln!(out, "| {reason} | {n} |");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::{Condition, Fault, Proxy, Topology, Transport};

    /// Each build's row has its own cells' figures, in the order given.
    #[test]
    fn each_build_has_its_own_row() {
        let cell = |condition| Cell {
            fault: Fault::Timeout,
            proxy: Proxy::Nginx,
            transport: Transport::Unix,
            topology: Topology::Single,
            condition,
        };
        let result = |condition, pass, shown| CellResult {
            cell: cell(condition),
            expected: "upstream / timeout / 504 / proxy".into(),
            got: if pass {
                "upstream / timeout / 504 / proxy on c0o0 (open)"
            } else {
                "no incident"
            }
            .into(),
            pass,
            layer_ok: true,
            seconds: Some(5.0),
            from_shown: shown,
            false_incidents: 0,
        };
        let builds = [
            Build {
                commit: "new".into(),
                results: vec![
                    result(Condition::Warm, true, Some(-0.5)),
                    result(Condition::Noisy, true, Some(1.5)),
                    result(Condition::Cold, true, Some(3.0)),
                ],
            },
            Build {
                commit: "old".into(),
                results: vec![result(Condition::Warm, false, None)],
            },
        ];
        let table = by_build(&builds);
        let rows: Vec<&str> = table
            .lines()
            .filter(|l| l.starts_with("| new") || l.starts_with("| old"))
            .collect();
        assert_eq!(
            rows,
            [
                "| new | 3 | 3 = 100.0% | 3 = 100.0% | median 1.5 s, worst 1.5 s (2 cells) | median 3.0 s, worst 3.0 s (1 cells) | median 5.0 s, worst 5.0 s |",
                "| old | 1 | 0 = 0.0% | 0 = 0.0% | - | - | median 5.0 s, worst 5.0 s |",
            ]
        );
    }

    /// A strict miss on the status alone still counts for layer+cause; a second
    /// incident, one opened before the fault or another cause does not.
    #[test]
    fn layer_and_cause_sets_aside_only_the_status() {
        let cell = Cell {
            fault: Fault::Timeout,
            proxy: Proxy::Apache,
            transport: Transport::Unix,
            topology: Topology::Single,
            condition: Condition::Cold,
        };
        let judged = |got: &str| {
            layer_and_cause(&CellResult {
                cell,
                expected: "upstream / timeout / 504 / proxy".into(),
                got: got.into(),
                pass: false,
                layer_ok: true,
                seconds: None,
                from_shown: None,
                false_incidents: 0,
            })
        };
        assert!(judged("upstream / timeout / 502 / proxy on c3o0 (open)"));
        assert!(judged(
            "upstream / timeout / 502 / proxy on c3o0 (open), visitors saw 502 ×31, no answer ×2"
        ));
        assert!(!judged(
            "upstream / timeout / 502 / proxy on c3o0 (open), opened 1 s before the fault"
        ));
        assert!(!judged(
            "upstream / timeout / 504 / proxy on c3o0 (open); proxy / proxy_down / 0 / unknown on c3o0 (open)"
        ));
        assert!(!judged(
            "upstream / service_down / 502 / proxy on c3o0 (open)"
        ));
    }
}
