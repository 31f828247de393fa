//! The full run's journal: one JSON line per judged cell, appended the moment the cell
//! is judged. A full run reads it first and runs only the cells it does not hold yet, so
//! a run cut short (a session's end, a reboot, a lab error) resumes where it stopped,
//! and `docs/ACCURACY.md` is written from every cell in the journal. Each line names the
//! commit it ran on, so a report that spans commits says so.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde_json::{Value, json};

use super::runner::CellResult;
use super::{Cell, cells};

/// The judged cells in `path`, by cell, with the commit each ran on; a later line for
/// a cell replaces an earlier one. Lines naming a cell the matrix no longer has are
/// left out (the matrix changed since).
pub fn load(path: &Path) -> anyhow::Result<BTreeMap<Cell, (CellResult, String)>> {
    Ok(judged(path)?.into_iter().collect())
}

/// The cells in `path` by when their newest result was judged, longest ago first.
pub fn oldest_first(path: &Path) -> anyhow::Result<Vec<Cell>> {
    let mut newest: BTreeMap<Cell, usize> = BTreeMap::new();
    for (n, (cell, _)) in judged(path)?.into_iter().enumerate() {
        newest.insert(cell, n);
    }
    let mut cells: Vec<Cell> = newest.keys().copied().collect();
    cells.sort_by_key(|c| newest[c]);
    Ok(cells)
}

/// Every line of `path` that names a cell of today's matrix, in the order judged.
fn judged(path: &Path) -> anyhow::Result<Vec<(Cell, (CellResult, String))>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let by_id: BTreeMap<String, Cell> = cells().into_iter().map(|c| (c.id(), c)).collect();
    let mut out = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
        let Some(cell) = v["cell"].as_str().and_then(|id| by_id.get(id)) else {
            continue;
        };
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        let result = CellResult {
            cell: *cell,
            expected: text("expected"),
            got: text("got"),
            pass: v["pass"].as_bool().unwrap_or(false),
            layer_ok: v["layer_ok"].as_bool().unwrap_or(false),
            seconds: v["seconds"].as_f64(),
            from_shown: v["from_shown"].as_f64(),
            false_incidents: v["false_incidents"].as_u64().unwrap_or(0) as usize,
        };
        out.push((*cell, (result, text("commit"))));
    }
    Ok(out)
}

/// Append `result`, run on `commit`, to `path`.
pub fn append(path: &Path, result: &CellResult, commit: &str) -> anyhow::Result<()> {
    let line = json!({
        "cell": result.cell.id(),
        "expected": result.expected,
        "got": result.got,
        "pass": result.pass,
        "layer_ok": result.layer_ok,
        "seconds": result.seconds,
        "from_shown": result.from_shown,
        "false_incidents": result.false_incidents,
        "commit": commit,
    });
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    writeln!(file, "{line}").with_context(|| format!("append to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_round_trips_and_the_last_line_for_a_cell_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        assert!(
            load(&path).unwrap().is_empty(),
            "no journal is an empty one"
        );
        let cell = cells().into_iter().find(|c| c.skip().is_none()).unwrap();
        let mut r = CellResult {
            cell,
            expected: "upstream / service_down / 502 / proxy".into(),
            got: "no incident".into(),
            pass: false,
            layer_ok: false,
            seconds: None,
            from_shown: None,
            false_incidents: 0,
        };
        append(&path, &r, "aaaa").unwrap();
        r.pass = true;
        r.seconds = Some(2.5);
        r.from_shown = Some(1.25);
        append(&path, &r, "bbbb").unwrap();
        std::fs::write(
            &path,
            std::fs::read_to_string(&path).unwrap() + "{\"cell\":\"no.such.cell\"}\n",
        )
        .unwrap();
        let got = load(&path).unwrap();
        assert_eq!(got.len(), 1);
        let (back, commit) = &got[&cell];
        assert!(back.pass);
        assert_eq!(back.seconds, Some(2.5));
        assert_eq!(back.from_shown, Some(1.25));
        assert_eq!(commit, "bbbb");
    }

    #[test]
    fn cells_come_oldest_first_by_their_newest_result() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let [a, b, c]: [Cell; 3] = cells()[..3].try_into().unwrap();
        let result = |cell| CellResult {
            cell,
            expected: String::new(),
            got: String::new(),
            pass: true,
            layer_ok: true,
            seconds: None,
            from_shown: None,
            false_incidents: 0,
        };
        for cell in [a, b, c, a] {
            append(&path, &result(cell), "aaaa").unwrap();
        }
        assert_eq!(oldest_first(&path).unwrap(), [b, c, a]);
    }

    #[test]
    fn a_broken_line_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        std::fs::write(&path, "{not json\n").unwrap();
        let e = format!("{:#}", load(&path).unwrap_err());
        assert!(e.contains("run.jsonl:1"), "{e}");
    }
}
