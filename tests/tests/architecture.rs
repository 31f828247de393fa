//! The shape of the workspace: no crate has a cycle among its top-level
//! modules. Every crate found under the workspace root (any directory with a
//! `Cargo.toml` and a `src/`) is read, so a crate added later is checked
//! without editing this test. The reader and the cycle search live in
//! `gw502_tests::module_graph`, which has its own tests on small examples
//! with and without cycles.

use std::path::{Path, PathBuf};

use gw502_tests::module_graph::{cycles, graph, read_tree};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Crate directories: any directory up to two levels below the root that
/// holds a `Cargo.toml` and a `src/`, outside `target/` and hidden folders.
fn crate_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut pending = vec![(root.to_path_buf(), 0)];
    while let Some((dir, level)) = pending.pop() {
        if dir.join("Cargo.toml").exists() && dir.join("src").is_dir() {
            dirs.push(dir.clone());
        }
        if level == 2 {
            continue;
        }
        let entries = std::fs::read_dir(&dir).expect("read workspace directory");
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let skip = name.starts_with('.') || name == "target" || name == "src";
            if !skip && entry.path().is_dir() {
                pending.push((entry.path(), level + 1));
            }
        }
    }
    dirs.sort();
    dirs
}

/// The crate roots of one crate: `lib.rs`, `main.rs` and `bin/*.rs`.
fn crate_roots(dir: &Path) -> Vec<PathBuf> {
    let src = dir.join("src");
    let mut roots: Vec<PathBuf> = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .filter(|p| p.exists())
        .collect();
    if let Ok(bins) = std::fs::read_dir(src.join("bin")) {
        roots.extend(
            bins.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "rs")),
        );
    }
    roots
}

#[test]
fn no_crate_has_a_module_import_cycle() {
    let root = workspace_root();
    let dirs = crate_dirs(&root);
    for expected in [
        "agent",
        "attribution",
        "collector",
        "cli",
        "probe",
        "proto",
        "proxy",
        "vocab",
        "tests",
    ] {
        assert!(
            dirs.contains(&root.join(expected)),
            "crate {expected} not found among {dirs:?}"
        );
    }
    let mut problems = Vec::new();
    let mut checked = 0;
    for dir in &dirs {
        for crate_root in crate_roots(dir) {
            let files = read_tree(&crate_root).expect("read module tree");
            checked += files.len();
            let shown = crate_root.strip_prefix(&root).unwrap_or(&crate_root);
            for cycle in cycles(&graph(&files)) {
                problems.push(format!("{}: {cycle}", shown.display()));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} files read; the walk is broken"
    );
    assert!(
        problems.is_empty(),
        "module import cycles:\n{}",
        problems.join("\n")
    );
}
