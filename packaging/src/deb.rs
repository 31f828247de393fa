//! Building one `.deb`: stage the package's tree, write `DEBIAN/`, run `dpkg-deb`.
//!
//! The tree is staged under `OUT/stage/PACKAGE` (removed once packed) with explicit
//! modes (directories and data 0755/0644, the binary and maintainer scripts 0755) and
//! packed with `dpkg-deb --root-owner-group`, so every file is `root:root` without
//! fakeroot. The
//! binary is stripped (`strip`, as `dh_strip` does). `Depends` comes from
//! `dpkg-shlibdeps` on the staged binary, plus `systemd` for the daemons (units,
//! `systemd-sysusers`). dpkg, dpkg-dev, gzip and binutils are the only tools needed;
//! no debhelper and no cargo-deb.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use md5::{Digest, Md5};

use crate::error::PackagingError;
use crate::files;
use crate::pages::{self, Generated};
use crate::scripts;
use crate::spec::Package;

/// The maintainer named in every package unless `--maintainer` says otherwise.
pub const MAINTAINER: &str = "gw502 maintainers <gw502@example.invalid>";
/// The Debian revision appended to the workspace version.
pub const REVISION: &str = "1";

/// Where the binaries come from and where packages go.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Directory holding the built binaries (`target/release`).
    pub bin_dir: PathBuf,
    /// Directory the `.deb` files (and the staging trees) are written to.
    pub out_dir: PathBuf,
    /// Upstream version (the workspace's).
    pub version: String,
    /// The `Maintainer` field.
    pub maintainer: String,
}

impl BuildOptions {
    /// The package version: upstream version and Debian revision.
    pub fn deb_version(&self) -> String {
        format!("{}-{REVISION}", self.version)
    }
}

/// Build `package`; returns the path of the `.deb`.
pub fn build(package: &Package, options: &BuildOptions) -> Result<PathBuf, PackagingError> {
    let binary = options.bin_dir.join(package.name);
    if !binary.is_file() {
        return Err(PackagingError::MissingBinary {
            path: binary,
            package: package.name.to_owned(),
        });
    }
    let arch = architecture()?;
    let stage = options.out_dir.join("stage").join(package.name);
    files::remove_dir(&stage)?;
    let installed = stage.join("usr/bin").join(package.name);
    files::copy(&binary, &installed, 0o755)?;
    files::run(
        Command::new("strip")
            .args(["--remove-section=.comment", "--remove-section=.note"])
            .arg(&installed),
    )?;
    stage_docs(package, options, &stage)?;
    let conffiles = stage_daemon(package, &stage)?;
    let debian = stage.join("DEBIAN");
    files::create_dir(&debian)?;
    if let Some(daemon) = &package.daemon {
        for (name, text) in scripts::maintainer_scripts(package.name, daemon) {
            files::write(&debian.join(name), text.as_bytes(), 0o755)?;
        }
    }
    if !conffiles.is_empty() {
        let text: String = conffiles.iter().map(|c| format!("{c}\n")).collect();
        files::write(&debian.join("conffiles"), text.as_bytes(), 0o644)?;
    }
    let (md5sums, installed_kib) = md5sums(&stage)?;
    files::write(&debian.join("md5sums"), md5sums.as_bytes(), 0o644)?;
    let mut depends = shlib_depends(package.name, &installed)?;
    if package.daemon.is_some() {
        depends.push("systemd".to_owned());
    }
    let control = control(package, options, &arch, &depends, installed_kib);
    files::write(&debian.join("control"), control.as_bytes(), 0o644)?;
    for dir in files::walk_dirs(&stage)? {
        files::set_mode(&dir, 0o755)?;
    }
    let deb = options.out_dir.join(format!(
        "{}_{}_{arch}.deb",
        package.name,
        options.deb_version()
    ));
    files::run(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&stage)
            .arg(&deb),
    )?;
    files::remove_dir(&stage)?;
    // The shared parent of the staging trees goes once the last one is gone.
    let _ = std::fs::remove_dir(options.out_dir.join("stage"));
    Ok(deb)
}

/// Man pages (gzip'd), completions, copyright and README.
fn stage_docs(
    package: &Package,
    options: &BuildOptions,
    stage: &Path,
) -> Result<(), PackagingError> {
    let command = (package.command)();
    for page in pages::man_pages(command.clone(), package.man_section, &options.version)? {
        let path = place(stage, &page, 0o644)?;
        files::run(Command::new("gzip").args(["-9", "-n", "-f"]).arg(&path))?;
    }
    for completion in pages::completions(command, package.name) {
        place(stage, &completion, 0o644)?;
    }
    let doc = stage.join("usr/share/doc").join(package.name);
    let date = build_date();
    files::write(
        &doc.join("copyright"),
        copyright(date.year()).as_bytes(),
        0o644,
    )?;
    let changelog = doc.join("changelog.Debian");
    files::write(&changelog, changelog_entry(options, date).as_bytes(), 0o644)?;
    files::run(
        Command::new("gzip")
            .args(["-9", "-n", "-f"])
            .arg(&changelog),
    )?;
    files::write(
        &doc.join("README.md"),
        include_bytes!("../../README.md"),
        0o644,
    )?;
    Ok(())
}

/// Unit, sysusers entry and example config of a daemon; returns the conffiles.
fn stage_daemon(package: &Package, stage: &Path) -> Result<Vec<String>, PackagingError> {
    let Some(daemon) = &package.daemon else {
        return Ok(Vec::new());
    };
    let unit = stage.join("lib/systemd/system").join(daemon.unit);
    files::write(&unit, daemon.unit_text.as_bytes(), 0o644)?;
    if let Some(entry) = package.sysusers() {
        let path = inside(stage, &package.sysusers_path());
        files::write(&path, entry.as_bytes(), 0o644)?;
    }
    let config = format!("/etc/gw502/{}", daemon.config);
    files::write(
        &inside(stage, &config),
        daemon.config_text.as_bytes(),
        0o644,
    )?;
    files::create_dir(&stage.join("etc/gw502/pki"))?;
    Ok(vec![config])
}

fn place(stage: &Path, file: &Generated, mode: u32) -> Result<PathBuf, PackagingError> {
    let path = inside(stage, &file.dir.to_string_lossy()).join(&file.name);
    files::write(&path, &file.bytes, mode)?;
    Ok(path)
}

/// `absolute` (a path on the installed system) under the staging root.
fn inside(stage: &Path, absolute: &str) -> PathBuf {
    stage.join(absolute.trim_start_matches('/'))
}

/// `DEBIAN/md5sums` of every file but `DEBIAN/`, and the installed size in KiB.
fn md5sums(stage: &Path) -> Result<(String, u64), PackagingError> {
    let mut text = String::new();
    let mut kib = 0;
    for (path, size) in files::walk_files(stage)? {
        let Ok(relative) = path.strip_prefix(stage) else {
            continue;
        };
        if relative.starts_with("DEBIAN") {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|source| PackagingError::Io {
            action: "read",
            path: path.clone(),
            source,
        })?;
        let digest = Md5::digest(&bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        let _ = writeln!(text, "{hex}  {}", relative.display());
        kib += size.div_ceil(1024);
    }
    kib += files::walk_dirs(stage)?.len() as u64;
    Ok((text, kib))
}

/// The Debian architecture of this machine (`dpkg --print-architecture`).
pub fn architecture() -> Result<String, PackagingError> {
    let out = files::run(Command::new("dpkg").arg("--print-architecture"))?;
    let arch = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if arch.is_empty() || !arch.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(PackagingError::Output {
            tool: "dpkg --print-architecture".into(),
            output: arch,
        });
    }
    Ok(arch)
}

/// The shared-library dependencies of `binary` from `dpkg-shlibdeps`, e.g.
/// `["libc6 (>= 2.34)", "libgcc-s1 (>= 4.2)"]`. It wants a `debian/control` naming the
/// package, so it runs in a scratch dir holding one.
fn shlib_depends(package: &str, binary: &Path) -> Result<Vec<String>, PackagingError> {
    let scratch = binary
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .map(|stage| stage.with_extension("shlibdeps"))
        .unwrap_or_else(|| PathBuf::from("shlibdeps"));
    files::remove_dir(&scratch)?;
    let control = format!("Source: gw502\n\nPackage: {package}\nArchitecture: any\n");
    files::write(&scratch.join("debian/control"), control.as_bytes(), 0o644)?;
    let binary = std::path::absolute(binary).map_err(|source| PackagingError::Io {
        action: "resolve",
        path: binary.to_owned(),
        source,
    })?;
    let mut arg = std::ffi::OsString::from("-e");
    arg.push(&binary);
    let out = files::run(
        Command::new("dpkg-shlibdeps")
            .arg("-O")
            .arg(arg)
            .current_dir(&scratch),
    )?;
    files::remove_dir(&scratch)?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let Some(value) = text.lines().find_map(|l| l.strip_prefix("shlibs:Depends=")) else {
        return Err(PackagingError::Output {
            tool: "dpkg-shlibdeps".into(),
            output: text,
        });
    };
    Ok(value
        .split(',')
        .map(|d| d.trim().to_owned())
        .filter(|d| !d.is_empty())
        .collect())
}

/// The `DEBIAN/control` text.
pub fn control(
    package: &Package,
    options: &BuildOptions,
    arch: &str,
    depends: &[String],
    installed_kib: u64,
) -> String {
    let mut text = format!(
        "Package: {}\nVersion: {}\nArchitecture: {arch}\nMaintainer: {}\n\
         Installed-Size: {installed_kib}\n",
        package.name,
        options.deb_version(),
        options.maintainer
    );
    if !depends.is_empty() {
        let _ = writeln!(text, "Depends: {}", depends.join(", "));
    }
    let _ = write!(
        text,
        "Section: {}\nPriority: optional\nDescription: {}\n",
        package.section, package.summary
    );
    for (i, paragraph) in package.description.iter().enumerate() {
        if i > 0 {
            text.push_str(" .\n");
        }
        for line in wrap(paragraph, 72) {
            let _ = writeln!(text, " {line}");
        }
    }
    text
}

/// Greedy word wrap at `width` columns.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The build's date: `SOURCE_DATE_EPOCH` when set (reproducible builds), else now.
fn build_date() -> time::OffsetDateTime {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .unwrap_or_else(time::OffsetDateTime::now_utc)
}

/// The one-entry `changelog.Debian` every Debian package carries.
fn changelog_entry(options: &BuildOptions, date: time::OffsetDateTime) -> String {
    let when = date
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    format!(
        "gw502 ({}) unstable; urgency=medium\n\n  \
         * Built by gw502-packaging from the gw502 workspace.\n\n \
         -- {}  {when}\n",
        options.deb_version(),
        options.maintainer
    )
}

/// A machine-readable `debian/copyright` for the workspace license.
fn copyright(year: i32) -> String {
    format!(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: gw502\n\
         \n\
         Files: *\n\
         Copyright: {year} gw502 authors\n\
         License: Apache-2.0\n\
         \x20On Debian systems, the full text of the Apache License 2.0 is in\n\
         \x20/usr/share/common-licenses/Apache-2.0.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::package;

    fn options() -> BuildOptions {
        BuildOptions {
            bin_dir: PathBuf::from("/nonexistent"),
            out_dir: PathBuf::from("/nonexistent"),
            version: "0.1.0".into(),
            maintainer: MAINTAINER.into(),
        }
    }

    #[test]
    fn control_has_the_fields_dpkg_needs_and_a_folded_description() {
        let agent = package("gw502-agent").unwrap();
        let deps = vec!["libc6 (>= 2.34)".to_owned(), "systemd".to_owned()];
        let text = control(agent, &options(), "amd64", &deps, 4242);
        for field in [
            "Package: gw502-agent\n",
            "Version: 0.1.0-1\n",
            "Architecture: amd64\n",
            "Maintainer: gw502 maintainers <gw502@example.invalid>\n",
            "Installed-Size: 4242\n",
            "Depends: libc6 (>= 2.34), systemd\n",
            "Section: net\n",
            "Description: host agent reporting the evidence behind HTTP 502s\n",
        ] {
            assert!(text.contains(field), "{field:?} missing:\n{text}");
        }
        let body: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("Description:"))
            .skip(1)
            .collect();
        assert!(body.contains(&" ."), "paragraph separator:\n{text}");
        assert!(body.iter().all(|l| l.starts_with(' ') && l.len() <= 73));
    }

    #[test]
    fn changelog_entry_is_in_debian_format() {
        let date = time::OffsetDateTime::from_unix_timestamp(1_764_615_600).unwrap();
        assert_eq!(
            changelog_entry(&options(), date),
            "gw502 (0.1.0-1) unstable; urgency=medium\n\n  \
             * Built by gw502-packaging from the gw502 workspace.\n\n \
             -- gw502 maintainers <gw502@example.invalid>  Mon, 01 Dec 2025 19:00:00 +0000\n"
        );
    }

    #[test]
    fn missing_binary_names_the_build_command() {
        let error = build(package("gw502ctl").unwrap(), &options()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "/nonexistent/gw502ctl is missing: build it first (cargo build --release -p gw502ctl)"
        );
    }
}
