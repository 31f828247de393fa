//! `gw502ctl completions SHELL` through the real binary: each script is the
//! shell's own format, names the commands, and bash and fish accept it.

use std::process::Command;

fn completions(shell: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_gw502ctl"))
        .args(["completions", shell])
        .env_clear()
        .output()
        .expect("gw502ctl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 script")
}

/// Whether `shell -n` parses `script` (skipped when the shell is absent).
fn parses(shell: &str, script: &str) -> Option<bool> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script");
    std::fs::write(&path, script).unwrap();
    let status = Command::new(shell).arg("-n").arg(&path).status().ok()?;
    Some(status.success())
}

#[test]
fn bash_zsh_and_fish_scripts_complete_every_command_offline() {
    let bash = completions("bash");
    assert!(bash.contains("_gw502ctl()"), "{bash}");
    for word in [
        "incidents",
        "hosts",
        "sites",
        "explain",
        "pki",
        "completions",
    ] {
        assert!(bash.contains(word), "bash completes {word}");
    }
    assert_eq!(parses("bash", &bash), Some(true), "bash -n accepts it");

    let zsh = completions("zsh");
    assert!(zsh.starts_with("#compdef gw502ctl"), "{zsh}");

    let fish = completions("fish");
    assert!(fish.contains("complete -c gw502ctl"), "{fish}");
    if let Some(ok) = parses("fish", &fish) {
        assert!(ok, "fish -n accepts it");
    }

    let bad = Command::new(env!("CARGO_BIN_EXE_gw502ctl"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(
        bad.status.code(),
        Some(64),
        "an unknown shell is a usage error, exit 64 as --help says"
    );
}
