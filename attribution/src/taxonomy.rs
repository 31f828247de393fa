//! docs/TAXONOMY.md checked against the code (test only). The contract
//! document is parsed, not grepped: the §2 cause table gives (layer, cause)
//! pairs; the `emitted_by`, `owner` and `evidence` bullets give the hop
//! words, the default owner of each layer and the evidence sources; the
//! precedence paragraph gives the cause order. Each must match
//! `gw502-vocab` and [`super::precedence::PRECEDENCE`] in both directions:
//! a word in the code that the doc lacks, and a word in the doc that the
//! code lacks, are both problems.

use std::collections::BTreeSet;

use gw502_vocab::{Cause, Hop, Layer, Owner, Source};

use super::precedence::PRECEDENCE;

/// The project's contract document.
const TAXONOMY: &str = include_str!("../../docs/TAXONOMY.md");

/// The backticked words of a piece of text, in order.
fn ticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The text of the bullet starting with `` - `name`: ``.
fn bullet<'a>(doc: &'a str, name: &str) -> Option<&'a str> {
    let head = format!("- `{name}`:");
    doc.lines().find_map(|l| l.strip_prefix(head.as_str()))
}

/// `(layer, cause)` rows of the §2 table.
fn cause_rows(doc: &str) -> Vec<(&str, &str)> {
    let Some(start) = doc.find("## 2. Layers and causes") else {
        return Vec::new();
    };
    doc[start..]
        .lines()
        .skip_while(|l| !l.starts_with("| layer | cause"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let mut cells = l.split('|').skip(1).map(str::trim);
            let layer = cells.next()?.trim_matches('`');
            let cause = cells.next()?.trim_matches('`');
            Some((layer, cause))
        })
        .collect()
}

/// Compares a documented word set with the code's, naming both differences.
fn same_words(what: &str, doc: &[&str], code: &[String], problems: &mut Vec<String>) {
    let doc: BTreeSet<&str> = doc.iter().copied().collect();
    let code: BTreeSet<&str> = code.iter().map(String::as_str).collect();
    for w in code.difference(&doc) {
        problems.push(format!("{what} `{w}` is in the code but not documented"));
    }
    for w in doc.difference(&code) {
        problems.push(format!("{what} `{w}` is documented but not in the code"));
    }
}

/// Every disagreement between the document and the code.
fn check(doc: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let rows = cause_rows(doc);
    for c in Cause::ALL {
        match rows.iter().find(|(_, cause)| *cause == c.as_str()) {
            None => problems.push(format!("cause `{c}` is in the code but not documented")),
            Some((layer, _)) if *layer != c.layer().as_str() => problems.push(format!(
                "cause `{c}` is documented in layer `{layer}`, the code says `{}`",
                c.layer()
            )),
            Some(_) => {}
        }
    }
    for (_, cause) in &rows {
        if cause.parse::<Cause>().is_err() {
            problems.push(format!("cause `{cause}` is documented but not in the code"));
        }
    }
    let layers: Vec<&str> = rows.iter().map(|(l, _)| *l).collect();
    same_words("layer", &layers, &words(Layer::ALL), &mut problems);
    match bullet(doc, "emitted_by") {
        Some(text) => same_words("emitted_by", &ticked(text), &words(Hop::ALL), &mut problems),
        None => problems.push("no `emitted_by` bullet".into()),
    }
    match bullet(doc, "evidence") {
        Some(text) => {
            let sources = text.split_once("The sources are").map_or("", |(_, s)| s);
            same_words(
                "evidence source",
                &ticked(sources),
                &words(Source::ALL),
                &mut problems,
            );
        }
        None => problems.push("no `evidence` bullet".into()),
    }
    owners(doc, &mut problems);
    let order: Vec<&str> = doc
        .split_once("the cause earlier in this order wins")
        .map_or(Vec::new(), |(_, rest)| {
            ticked(rest.split("\n\n").next().unwrap_or(""))
        });
    let code: Vec<&str> = PRECEDENCE.iter().map(|c| c.as_str()).collect();
    if order != code {
        problems.push(format!(
            "precedence order documented as {order:?}, the code says {code:?}"
        ));
    }
    problems
}

/// The `owner` bullet: "The default is `customer` for client, `cdn` for
/// edge, ..., and `app` for upstream, response and dependency."
fn owners(doc: &str, problems: &mut Vec<String>) {
    let Some(text) = bullet(doc, "owner") else {
        problems.push("no `owner` bullet".into());
        return;
    };
    let defaults = text
        .split_once("The default is")
        .map_or("", |(_, s)| s.split('.').next().unwrap_or(""));
    let pieces: Vec<&str> = defaults.split('`').collect();
    let mut seen = Vec::new();
    let mut covered = BTreeSet::new();
    for pair in pieces.get(1..).unwrap_or(&[]).chunks(2) {
        let [owner, layers] = pair else { continue };
        seen.push(*owner);
        let layers = layers.trim_start().trim_start_matches("for ");
        for word in layers
            .split([',', ' '])
            .filter(|w| !w.is_empty() && *w != "and")
        {
            match word.parse::<Layer>() {
                Ok(l) => {
                    covered.insert(l);
                    if Owner::for_layer(l).as_str() != *owner {
                        problems.push(format!(
                            "layer `{l}` is documented as owned by `{owner}`, the code says `{}`",
                            Owner::for_layer(l)
                        ));
                    }
                }
                Err(_) => problems.push(format!("owner of unknown layer `{word}` documented")),
            }
        }
    }
    same_words("owner", &seen, &words(Owner::ALL), problems);
    for l in Layer::ALL.iter().filter(|l| !covered.contains(*l)) {
        problems.push(format!("layer `{l}` has no documented default owner"));
    }
}

/// The wire spellings of a vocabulary.
fn words<T: Copy + std::fmt::Display>(all: &[T]) -> Vec<String> {
    all.iter().map(T::to_string).collect()
}

#[test]
fn taxonomy_md_matches_the_code() {
    let problems = check(TAXONOMY);
    assert!(
        problems.is_empty(),
        "docs/TAXONOMY.md:\n{}",
        problems.join("\n")
    );
}

#[test]
fn a_doctored_taxonomy_fails() {
    let row = "| `upstream` | `timeout` | connected but no response header in time | 504 |\n";
    assert!(TAXONOMY.contains(row));
    let missing = TAXONOMY.replace(row, "");
    assert!(
        check(&missing).contains(&"cause `timeout` is in the code but not documented".to_string()),
        "{:?}",
        check(&missing)
    );
    let extra = TAXONOMY.replace(
        row,
        &format!("{row}| `upstream` | `oom_killed` | x | 502 |\n"),
    );
    assert!(check(&extra).contains(&"cause `oom_killed` is documented but not in the code".into()));
    let moved = TAXONOMY.replace(row, &row.replace("`upstream`", "`response`"));
    assert_eq!(
        check(&moved),
        vec!["cause `timeout` is documented in layer `response`, the code says `upstream`"]
    );
    let no_dns = TAXONOMY.replace("`dns`, `proxy_config`", "`proxy_config`");
    assert_eq!(
        check(&no_dns),
        vec!["evidence source `dns` is in the code but not documented"]
    );
    let hop = TAXONOMY.replace("`upstream`, `unknown`.", "`upstream`, `unknown`, `app`.");
    assert_eq!(
        check(&hop),
        vec!["emitted_by `app` is documented but not in the code"]
    );
    let owner = TAXONOMY.replace("`cdn` for edge", "`app` for edge");
    assert!(
        check(&owner)
            .iter()
            .any(|p| p.contains("layer `edge` is documented as owned by `app`"))
    );
    let order = TAXONOMY.replace(
        "`proxy_config_invalid`, `proxy_down`,",
        "`proxy_down`, `proxy_config_invalid`,",
    );
    assert!(
        check(&order)
            .iter()
            .any(|p| p.starts_with("precedence order"))
    );
}
