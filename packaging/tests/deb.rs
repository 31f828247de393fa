//! The three `.deb` packages as dpkg sees them: built from the workspace's binaries
//! (`cargo build --workspace --bins` first) and read back with `dpkg-deb`: control
//! fields, file list and modes, conffiles, gzip'd man pages, completions at the
//! shells' vendor paths, maintainer scripts that `sh -n` accepts, and a packaged binary
//! that runs. The lab test `tests/tests/lab_package.rs` installs the agent package on a
//! real systemd host.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gw502_packaging::deb::{self, BuildOptions};
use gw502_packaging::spec;

/// The workspace's built binaries: `target/<profile>` above this test's `deps` dir.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_owned();
    for p in &spec::PACKAGES {
        assert!(
            dir.join(p.name).is_file(),
            "{} is not built: run `cargo build --workspace --bins` first",
            dir.join(p.name).display()
        );
    }
    dir
}

/// The three packages, built once per test process.
fn built() -> &'static (tempfile::TempDir, Vec<PathBuf>) {
    static BUILT: OnceLock<(tempfile::TempDir, Vec<PathBuf>)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = tempfile::tempdir().unwrap();
        let options = BuildOptions {
            bin_dir: bin_dir(),
            out_dir: out.path().to_owned(),
            version: env!("CARGO_PKG_VERSION").into(),
            maintainer: deb::MAINTAINER.into(),
        };
        let debs = spec::PACKAGES
            .iter()
            .map(|p| deb::build(p, &options).unwrap())
            .collect();
        (out, debs)
    })
}

fn deb(name: &str) -> &'static Path {
    let index = spec::PACKAGES.iter().position(|p| p.name == name).unwrap();
    &built().1[index]
}

/// `dpkg-deb ARGS DEB TAIL` (the field name of `--field` goes after the archive).
fn dpkg_deb(args: &[&str], deb: &Path, tail: &[&str]) -> String {
    let out = Command::new("dpkg-deb")
        .args(args)
        .arg(deb)
        .args(tail)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dpkg-deb {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `(mode, owner, path)` of every entry in the package.
fn contents(deb: &Path) -> Vec<(String, String, String)> {
    dpkg_deb(&["--contents"], deb, &[])
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0].to_owned(), f[1].to_owned(), f[5].to_owned())
        })
        .collect()
}

fn entry<'a>(list: &'a [(String, String, String)], path: &str) -> &'a (String, String, String) {
    list.iter()
        .find(|(_, _, p)| p == &format!(".{path}"))
        .unwrap_or_else(|| panic!("{path} not in package: {list:#?}"))
}

#[test]
fn agent_package_installs_binary_unit_user_config_pages_and_completions() {
    let agent = deb("gw502-agent");
    let name = agent.file_name().unwrap().to_string_lossy();
    assert!(name.starts_with("gw502-agent_0.1.0-1_"), "{name}");
    let list = contents(agent);
    assert!(
        list.iter().all(|(_, owner, _)| owner == "root/root"),
        "{list:#?}"
    );
    assert_eq!(entry(&list, "/usr/bin/gw502-agent").0, "-rwxr-xr-x");
    for path in [
        "/lib/systemd/system/gw502-agent.service",
        "/usr/lib/sysusers.d/gw502-agent.conf",
        "/etc/gw502/agent.toml",
        "/usr/share/man/man8/gw502-agent.8.gz",
        "/usr/share/man/man8/gw502-agent-snapshot.8.gz",
        "/usr/share/bash-completion/completions/gw502-agent",
        "/usr/share/zsh/vendor-completions/_gw502-agent",
        "/usr/share/fish/vendor_completions.d/gw502-agent.fish",
        "/usr/share/doc/gw502-agent/copyright",
        "/usr/share/doc/gw502-agent/changelog.Debian.gz",
    ] {
        assert_eq!(entry(&list, path).0, "-rw-r--r--", "{path}");
    }
    assert_eq!(entry(&list, "/etc/gw502/pki/").0, "drwxr-xr-x");

    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("dpkg-deb")
        .arg("--extract")
        .arg(agent)
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let root = dir.path();
    assert_eq!(
        std::fs::read_to_string(root.join("lib/systemd/system/gw502-agent.service")).unwrap(),
        include_str!("../../deploy/gw502-agent.service"),
        "the unit is deploy/'s, byte for byte"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("etc/gw502/agent.toml")).unwrap(),
        include_str!("../../deploy/agent.toml")
    );
    let gz = std::fs::read(root.join("usr/share/man/man8/gw502-agent.8.gz")).unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
    let page = Command::new("gzip")
        .args(["-dc"])
        .arg(root.join("usr/share/man/man8/gw502-agent.8.gz"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&page.stdout).contains(".TH GW502-AGENT 8"));
    let version = Command::new(root.join("usr/bin/gw502-agent"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "gw502-agent 0.1.0",
        "the packaged binary runs"
    );
}

#[test]
fn control_fields_conffiles_and_scripts() {
    let agent = deb("gw502-agent");
    let depends = dpkg_deb(&["--field"], agent, &["Depends"]);
    assert!(depends.contains("libc6 (>= "), "{depends}");
    assert!(depends.trim_end().ends_with("systemd"), "{depends}");
    let arch = dpkg_deb(&["--field"], agent, &["Architecture"]);
    assert_eq!(arch.trim(), deb::architecture().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new("dpkg-deb")
        .arg("--control")
        .arg(agent)
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("conffiles")).unwrap(),
        "/etc/gw502/agent.toml\n"
    );
    for script in ["postinst", "prerm", "postrm"] {
        let path = dir.path().join(script);
        let check = Command::new("sh").arg("-n").arg(&path).output().unwrap();
        assert!(
            check.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let md5sums = std::fs::read_to_string(dir.path().join("md5sums")).unwrap();
    assert!(md5sums.contains("  usr/bin/gw502-agent\n"), "{md5sums}");
    assert!(!md5sums.contains("DEBIAN"), "{md5sums}");

    let ctl = deb("gw502ctl");
    let list = contents(ctl);
    assert_eq!(entry(&list, "/usr/bin/gw502ctl").0, "-rwxr-xr-x");
    entry(&list, "/usr/share/man/man1/gw502ctl-incidents-show.1.gz");
    entry(&list, "/usr/share/zsh/vendor-completions/_gw502ctl");
    assert!(
        !list
            .iter()
            .any(|(_, _, p)| p.starts_with("./etc") || p.contains("systemd")),
        "gw502ctl has no unit or config: {list:#?}"
    );
    let depends = dpkg_deb(&["--field"], ctl, &["Depends"]);
    assert!(!depends.contains("systemd"), "{depends}");
    let info = dpkg_deb(&["--info"], ctl, &[]);
    assert!(!info.contains("postinst"), "no scripts for the CLI: {info}");
}

#[test]
fn collector_and_agent_can_share_a_machine() {
    let agent: Vec<String> = contents(deb("gw502-agent"))
        .into_iter()
        .filter(|(mode, _, _)| !mode.starts_with('d'))
        .map(|(_, _, p)| p)
        .collect();
    let collector = contents(deb("gw502-collector"));
    let shared: Vec<&String> = collector
        .iter()
        .filter(|(mode, _, p)| !mode.starts_with('d') && agent.contains(p))
        .map(|(_, _, p)| p)
        .collect();
    assert!(
        shared.is_empty(),
        "dpkg refuses files owned twice: {shared:?}"
    );
    entry(&collector, "/usr/lib/sysusers.d/gw502-collector.conf");
    entry(&collector, "/etc/gw502/collector.toml");
    entry(&collector, "/usr/share/man/man8/gw502-collector-run.8.gz");
}
