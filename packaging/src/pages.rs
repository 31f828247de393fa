//! Man pages and shell completions, generated from the binaries' own clap commands.
//!
//! Nothing here is written by hand: [`man_pages`] renders one roff page per command
//! and per subcommand with `clap_mangen` (`gw502ctl.1`, `gw502ctl-incidents-show.1`,
//! `gw502-agent.8`, ...), and [`completions`] renders bash, zsh and fish completions
//! with `clap_complete`, the same generator `gw502ctl completions SHELL` prints from.
//! A flag added to a binary therefore shows up in its page and completions on the next
//! package build.

use std::path::{Path, PathBuf};

use clap_complete::Shell;

use crate::error::PackagingError;

/// One generated file: its name and contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    /// File name, e.g. `gw502ctl-incidents.1` or `_gw502ctl`.
    pub name: String,
    /// Where it belongs on an installed system, e.g. `/usr/share/man/man1`.
    pub dir: PathBuf,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// The shells completions are generated for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// The man pages of `command` in `section` (1 for user commands, 8 for daemons): one
/// for the command and one for each visible subcommand, recursively, named the way
/// `man` finds them (`gw502ctl-pki-issue.1`).
pub fn man_pages(
    command: clap::Command,
    section: u8,
    version: &str,
) -> Result<Vec<Generated>, PackagingError> {
    let mut command = command.disable_help_subcommand(true);
    command.build();
    let mut pages = Vec::new();
    walk(&command, section, version, &mut pages)?;
    Ok(pages)
}

fn walk(
    command: &clap::Command,
    section: u8,
    version: &str,
    pages: &mut Vec<Generated>,
) -> Result<(), PackagingError> {
    let name = command
        .get_display_name()
        .unwrap_or_else(|| command.get_name())
        .to_owned();
    let mut bytes = Vec::new();
    clap_mangen::Man::new(command.clone())
        .title(name.to_uppercase())
        .section(section.to_string())
        .source(format!("gw502 {version}"))
        .manual("gw502 Manual")
        .render(&mut bytes)
        .map_err(|source| PackagingError::Render {
            what: format!("man page {name}"),
            source,
        })?;
    pages.push(Generated {
        name: format!("{name}.{section}"),
        dir: PathBuf::from(format!("/usr/share/man/man{section}")),
        bytes,
    });
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        walk(sub, section, version, pages)?;
    }
    Ok(())
}

/// The completions of `command` (installed as `bin`) for bash, zsh and fish, each at
/// the path its shell loads vendor completions from.
pub fn completions(command: clap::Command, bin: &str) -> Vec<Generated> {
    SHELLS
        .iter()
        .map(|&shell| {
            let mut command = command.clone();
            let mut bytes = Vec::new();
            clap_complete::generate(shell, &mut command, bin, &mut bytes);
            let (dir, name) = completion_path(shell, bin);
            Generated {
                name,
                dir: PathBuf::from(dir),
                bytes,
            }
        })
        .collect()
}

/// Directory and file name of `bin`'s completion for `shell` (Debian's vendor paths).
pub fn completion_path(shell: Shell, bin: &str) -> (&'static str, String) {
    match shell {
        Shell::Zsh => ("/usr/share/zsh/vendor-completions", format!("_{bin}")),
        Shell::Fish => (
            "/usr/share/fish/vendor_completions.d",
            format!("{bin}.fish"),
        ),
        _ => ("/usr/share/bash-completion/completions", bin.to_owned()),
    }
}

/// Write `files` under `out` for `docs --out`: man pages in `man1/` and `man8/`,
/// completions in `bash/`, `zsh/` and `fish/`.
pub fn write_flat(out: &Path, files: &[Generated]) -> Result<Vec<PathBuf>, PackagingError> {
    let mut written = Vec::new();
    for file in files {
        let shell = SHELLS
            .iter()
            .find(|&&shell| file.dir == Path::new(completion_path(shell, "").0));
        let dir = match shell {
            Some(shell) => out.join(shell.to_string()),
            None => out.join(file.dir.file_name().unwrap_or_default()),
        };
        crate::files::create_dir(&dir)?;
        let path = dir.join(&file.name);
        crate::files::write(&path, &file.bytes, 0o644)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(pages: &[Generated]) -> Vec<&str> {
        pages.iter().map(|p| p.name.as_str()).collect()
    }

    #[test]
    fn ctl_pages_cover_every_subcommand() {
        let pages = man_pages(gw502ctl::args::command(), 1, "0.1.0").unwrap();
        let names = names(&pages);
        for want in [
            "gw502ctl.1",
            "gw502ctl-incidents.1",
            "gw502ctl-incidents-show.1",
            "gw502ctl-pki-issue.1",
            "gw502ctl-completions.1",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
        let top = String::from_utf8(pages[0].bytes.clone()).unwrap();
        assert!(
            top.starts_with(".ie"),
            "roff: {}",
            &top[..40.min(top.len())]
        );
        assert!(top.contains(".TH GW502CTL 1"), "{top}");
        assert!(top.contains("\\-\\-collector"), "global flags documented");
    }

    #[test]
    fn daemon_pages_are_section_8_with_their_flags() {
        let pages = man_pages(gw502_agent::args::command(), 8, "0.1.0").unwrap();
        assert_eq!(pages[0].name, "gw502-agent.8");
        assert_eq!(pages[0].dir, Path::new("/usr/share/man/man8"));
        let top = String::from_utf8(pages[0].bytes.clone()).unwrap();
        assert!(top.contains("\\-\\-log\\-format"), "{top}");
        assert!(top.contains("GW502_AGENT_CONFIG"), "{top}");
        let pages = man_pages(gw502_collector::args::command(), 8, "0.1.0").unwrap();
        assert!(names(&pages).contains(&"gw502-collector-check-config.8"));
    }

    #[test]
    fn docs_out_sorts_pages_by_section_and_completions_by_shell() {
        let out = tempfile::tempdir().unwrap();
        let mut files = man_pages(gw502_agent::args::command(), 8, "0.1.0").unwrap();
        files.extend(completions(gw502_agent::args::command(), "gw502-agent"));
        let written = write_flat(out.path(), &files).unwrap();
        for want in [
            "man8/gw502-agent.8",
            "man8/gw502-agent-check-config.8",
            "bash/gw502-agent",
            "zsh/_gw502-agent",
            "fish/gw502-agent.fish",
        ] {
            assert!(
                written.contains(&out.path().join(want)),
                "{want}: {written:?}"
            );
            assert!(out.path().join(want).is_file());
        }
    }

    #[test]
    fn completions_name_the_binary_and_its_subcommands() {
        let files = completions(gw502_collector::args::command(), "gw502-collector");
        let by_name = |n: &str| {
            let f = files.iter().find(|f| f.name == n).unwrap();
            String::from_utf8(f.bytes.clone()).unwrap()
        };
        assert!(by_name("gw502-collector").contains("check-config"));
        assert!(by_name("_gw502-collector").starts_with("#compdef gw502-collector"));
        assert!(by_name("gw502-collector.fish").contains("complete -c gw502-collector"));
        let ctl = completions(gw502ctl::args::command(), "gw502ctl");
        assert_eq!(
            ctl[2].dir,
            Path::new("/usr/share/fish/vendor_completions.d")
        );
    }
}
