//! The import graph of a crate's top-level modules, read from its sources,
//! and the cycles in it.
//!
//! "Arrows point down" (STYLE.md): no module may import, directly or through
//! others, the module that imports it. `tests/tests/architecture.rs` runs this
//! over every crate in the workspace. The reader is deliberately small: it
//! follows `mod x;` declarations from each crate root (`lib.rs`, `main.rs`,
//! `bin/*.rs`), strips comments and literals, and resolves every `crate::`,
//! `self::` and `super::` path (including `use` groups) to the top-level
//! module it names. An arrow is drawn only between two different top-level
//! modules; paths into the crate root itself are ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Arrows between top-level modules: importer -> imported.
pub type Graph = BTreeMap<String, BTreeSet<String>>;

/// One source file of a module tree: its module path and its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The module path of the file, from the crate root (`[]` for the root).
    pub module: Vec<String>,
    /// The file's text.
    pub text: String,
}

/// Reads the module tree that starts at `root` (`src/lib.rs`, `src/main.rs`)
/// by following `mod name;` declarations.
pub fn read_tree(root: &Path) -> std::io::Result<Vec<SourceFile>> {
    let mut files = Vec::new();
    let mut pending = vec![(root.to_path_buf(), Vec::<String>::new(), true)];
    while let Some((path, module, owns_dir)) = pending.pop() {
        let text = std::fs::read_to_string(&path)?;
        // `a.rs` keeps its children in `a/`; `lib.rs`, `main.rs` and `mod.rs`
        // keep them beside themselves.
        let dir: PathBuf = if owns_dir {
            path.parent().map(Path::to_path_buf).unwrap_or_default()
        } else {
            path.with_extension("")
        };
        for child in declared_files(&text) {
            let flat = dir.join(format!("{child}.rs"));
            let nested = dir.join(&child).join("mod.rs");
            let mut child_module = module.clone();
            child_module.push(child);
            if flat.exists() {
                pending.push((flat, child_module, false));
            } else if nested.exists() {
                pending.push((nested, child_module, true));
            }
        }
        files.push(SourceFile { module, text });
    }
    Ok(files)
}

/// The arrows between top-level modules of one module tree.
pub fn graph(files: &[SourceFile]) -> Graph {
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|f| f.module.first().cloned())
        .chain(
            files
                .iter()
                .filter(|f| f.module.is_empty())
                .flat_map(|f| inline_modules(&tokens(&f.text))),
        )
        .collect();
    let mut graph = Graph::new();
    for file in files {
        for (from, to) in file_edges(file) {
            if from != to && tops.contains(&to) && tops.contains(&from) {
                graph.entry(from).or_default().insert(to);
            }
        }
    }
    graph
}

/// Every cycle's modules, one list per strongly connected component of more
/// than one module, each written as a closed path `a -> b -> a`.
pub fn cycles(graph: &Graph) -> Vec<String> {
    let nodes: BTreeSet<&String> = graph
        .keys()
        .chain(graph.values().flat_map(|to| to.iter()))
        .collect();
    let mut found = Vec::new();
    let mut seen_in_cycle = BTreeSet::new();
    for start in nodes {
        if seen_in_cycle.contains(start) {
            continue;
        }
        if let Some(path) = path_back(graph, start) {
            seen_in_cycle.extend(path.iter().cloned());
            found.push(format!("{} -> {start}", path.join(" -> ")));
        }
    }
    found
}

/// A shortest path from `start` back to itself, if there is one.
fn path_back(graph: &Graph, start: &String) -> Option<Vec<String>> {
    let mut parent: BTreeMap<&String, &String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(node) = queue.pop_front() {
        for next in graph.get(node).into_iter().flatten() {
            if next == start {
                let mut path = vec![node.clone()];
                let mut at = node;
                while at != start {
                    at = parent[at];
                    path.push(at.clone());
                }
                path.reverse();
                return Some(path);
            }
            if !parent.contains_key(next) && next != start {
                parent.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}

/// Names declared as `mod name;` (files), not inline `mod name { … }`.
fn declared_files(text: &str) -> Vec<String> {
    let toks = tokens(text);
    toks.windows(3)
        .filter(|w| w[0] == "mod" && w[2] == ";" && is_ident(&w[1]))
        .map(|w| w[1].clone())
        .collect()
}

/// Names declared as inline `mod name { … }` at the top of a file.
fn inline_modules(toks: &[String]) -> Vec<String> {
    toks.windows(3)
        .filter(|w| w[0] == "mod" && w[2] == "{" && is_ident(&w[1]))
        .map(|w| w[1].clone())
        .collect()
}

/// The (importer, imported) top-level module pairs of one file.
fn file_edges(file: &SourceFile) -> Vec<(String, String)> {
    let toks = tokens(&file.text);
    let mut edges = Vec::new();
    // Inline modules: (name, brace depth at which it closes).
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let tok = toks[i].as_str();
        match tok {
            "{" => depth += 1,
            "}" => {
                depth = depth.saturating_sub(1);
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            "mod" if toks.get(i + 2).is_some_and(|t| t == "{") => {
                inline.push((toks[i + 1].clone(), depth));
            }
            "crate" | "super" | "self" if toks.get(i + 1).is_some_and(|t| t == "::") => {
                let preceded_by_path = i > 0 && toks[i - 1] == "::";
                if !preceded_by_path {
                    let mut here = file.module.clone();
                    here.extend(inline.iter().map(|(name, _)| name.clone()));
                    let (targets, next) = resolve(&toks, i, &here);
                    if let Some(from) = here.first() {
                        edges.extend(targets.into_iter().map(|to| (from.clone(), to)));
                    }
                    i = next;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    edges
}

/// Resolves the path starting at `toks[start]` (`crate`, `super` or `self`)
/// from module `here`; returns the top-level modules it names and the index
/// of the first token after the resolved prefix.
fn resolve(toks: &[String], start: usize, here: &[String]) -> (Vec<String>, usize) {
    let mut path: Vec<String> = match toks[start].as_str() {
        "crate" => Vec::new(),
        "super" => here[..here.len().saturating_sub(1)].to_vec(),
        _ => here.to_vec(),
    };
    let mut i = start + 1;
    while toks.get(i).is_some_and(|t| t == "::") {
        match toks.get(i + 1).map(String::as_str) {
            Some("super") => {
                path.pop();
            }
            Some("self") => {}
            Some("{") if path.is_empty() => {
                return (group_heads(toks, i + 1), i + 2);
            }
            Some(name) if is_ident(name) => {
                path.push(name.to_string());
                if path.len() > 1 {
                    return (vec![path[0].clone()], i + 2);
                }
            }
            _ => break,
        }
        i += 2;
    }
    (path.first().cloned().into_iter().collect(), i)
}

/// The first name of every item of the `use` group opening at `toks[open]`.
fn group_heads(toks: &[String], open: usize) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut expect_head = true;
    for tok in &toks[open..] {
        match tok.as_str() {
            "{" => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            "}" => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            "," if depth == 1 => {
                expect_head = true;
                continue;
            }
            name if depth == 1 && expect_head && is_ident(name) && name != "self" => {
                heads.push(name.to_string());
            }
            _ => {}
        }
        if depth == 1 {
            expect_head = false;
        }
    }
    heads
}

fn is_ident(tok: &str) -> bool {
    tok.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// Identifiers, `::` and single punctuation characters, with comments,
/// string, char and byte literals removed.
fn tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && raw_string(&chars, i) {
            i = skip_raw_string(&chars, i + 1);
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{1F}') or a lifetime ('a).
            if next == Some('\\') {
                i += 2;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if chars.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
        } else if c.is_alphanumeric() || c == '_' {
            let begin = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(chars[begin..i].iter().collect());
        } else if c == ':' && next == Some(':') {
            out.push("::".to_string());
            i += 2;
        } else {
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
            i += 1;
        }
    }
    out
}

/// Whether `r` at `at` opens a raw string (`r"…"`, `r#"…"#`), not an identifier.
fn raw_string(chars: &[char], at: usize) -> bool {
    let starts_token = at == 0 || !(chars[at - 1].is_alphanumeric() || chars[at - 1] == '_');
    let mut j = at + 1;
    while chars.get(j) == Some(&'#') {
        j += 1;
    }
    starts_token && chars.get(j) == Some(&'"')
}

/// Skips a raw string whose hashes start at `at`; returns the index after it.
fn skip_raw_string(chars: &[char], mut at: usize) -> usize {
    let mut hashes = 0;
    while chars.get(at) == Some(&'#') {
        hashes += 1;
        at += 1;
    }
    at += 1;
    while at < chars.len() {
        if chars[at] == '"' && (1..=hashes).all(|k| chars.get(at + k) == Some(&'#')) {
            return at + 1 + hashes;
        }
        at += 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(module: &[&str], text: &str) -> SourceFile {
        SourceFile {
            module: module.iter().map(|m| m.to_string()).collect(),
            text: text.to_string(),
        }
    }

    /// The collector's old shape: query owns the proto conversion that
    /// incidents and edge_loop need, and calls edge_loop itself.
    fn circle() -> Vec<SourceFile> {
        vec![
            file(
                &[],
                "pub mod query; pub mod incidents; pub mod edge_loop; pub mod hub;",
            ),
            file(
                &["query"],
                "use crate::hub::Hub;\nuse crate::incidents::{host_state, site_evidence};\n\
                 fn explain() { crate::edge_loop::probe(); }",
            ),
            file(
                &["incidents"],
                "use crate::{hub::Hub, query::incident_proto};",
            ),
            file(
                &["edge_loop"],
                "use super::incidents::Evaluator;\nuse crate::hub;",
            ),
            file(
                &["hub"],
                "// use crate::query;\nconst S: &str = \"crate::query::x\";",
            ),
        ]
    }

    #[test]
    fn finds_a_cycle_through_three_modules() {
        let g = graph(&circle());
        let found = cycles(&g);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0], "edge_loop -> incidents -> query -> edge_loop");
        assert!(
            !g.contains_key("hub"),
            "comments and strings are not imports"
        );
    }

    #[test]
    fn breaking_one_arrow_breaks_the_cycle() {
        let mut files = circle();
        files[2] = file(&["incidents"], "use crate::hub::Hub;");
        assert!(cycles(&graph(&files)).is_empty());
    }

    #[test]
    fn super_inside_a_nested_module_stays_inside_its_top_module() {
        let files = vec![
            file(&[], "mod a; mod b;"),
            file(&["a"], "mod tests { use super::*; }"),
            file(&["a", "inner"], "use super::Thing; use super::super::b::X;"),
            file(&["b"], "fn f() { let _ = super::a::f(); }"),
        ];
        let g = graph(&files);
        assert_eq!(g["a"], BTreeSet::from(["b".to_string()]));
        assert_eq!(cycles(&g), vec!["a -> b -> a".to_string()]);
    }

    #[test]
    fn groups_lifetimes_and_visibility_do_not_confuse_the_reader() {
        let files = vec![
            file(&[], "mod a; mod b; mod c;"),
            file(
                &["a"],
                "pub(crate) fn f<'a>(x: &'a str) -> char { let _ = r#\"crate::c::x\"#; '\"' }\n\
                 use crate::{b::{self, Y}, self as root};",
            ),
            file(&["b"], "use crate::c;"),
        ];
        let g = graph(&files);
        assert_eq!(g["a"], BTreeSet::from(["b".to_string()]));
        assert!(cycles(&g).is_empty());
    }
}
