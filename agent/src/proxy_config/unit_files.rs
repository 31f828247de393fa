//! A proxy's systemd unit as files: the unit file and its drop-ins, read
//! under the agent's roots in the order systemd reads them, and whether the
//! unit is in use (enabled, or its process runs). Varnish needs both: its
//! `ExecStart` names the VCL (`-f`) and the admin and log handles (`-T`,
//! `-S`, `-n`), and its package ships a VCL naming `127.0.0.1:8080`, which
//! is a phantom target on a host where Varnish is installed but unused.

use std::path::{Path, PathBuf};

use crate::source::Roots;

/// Where unit files live, in systemd's order of precedence.
const UNIT_DIRS: [&str; 4] = [
    "/etc/systemd/system",
    "/run/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// The most bytes read of one unit file.
const MAX_UNIT_BYTES: u64 = 64 * 1024;
/// The most drop-ins read per unit.
const MAX_DROP_INS: usize = 32;

/// The unit file of `unit` (the first found; a mask to `/dev/null` reads
/// empty) followed by its `.d/*.conf` drop-ins sorted by file name, a name
/// in an earlier directory hiding the same name in a later one.
pub async fn read(roots: &Roots, unit: &str) -> Vec<String> {
    let mut out = Vec::new();
    for dir in UNIT_DIRS {
        if let Some(text) = read_text(&roots.host_path(&Path::new(dir).join(unit))).await {
            out.push(text);
            break;
        }
    }
    let mut drop_ins: Vec<(String, PathBuf)> = Vec::new();
    for dir in UNIT_DIRS {
        let d = roots.host_path(&Path::new(dir).join(format!("{unit}.d")));
        let Ok(mut entries) = tokio::fs::read_dir(&d).await else {
            continue;
        };
        while let Ok(Some(e)) = entries.next_entry().await {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.ends_with(".conf") && !drop_ins.iter().any(|(n, _)| *n == name) {
                drop_ins.push((name, e.path()));
            }
        }
    }
    drop_ins.sort();
    for (_, path) in drop_ins.into_iter().take(MAX_DROP_INS) {
        if let Some(text) = read_text(&path).await {
            out.push(text);
        }
    }
    out
}

/// Whether `unit` is enabled (linked from a `.wants` directory under
/// `/etc/systemd/system`) or a process named `process` runs.
pub async fn in_use(roots: &Roots, unit: &str, process: &str) -> bool {
    let etc = roots.host_path(Path::new("/etc/systemd/system"));
    if let Ok(mut entries) = tokio::fs::read_dir(&etc).await {
        while let Ok(Some(e)) = entries.next_entry().await {
            let wants = e.file_name().to_string_lossy().ends_with(".wants");
            if wants
                && tokio::fs::symlink_metadata(e.path().join(unit))
                    .await
                    .is_ok()
            {
                return true;
            }
        }
    }
    runs(&roots.proc, process).await
}

/// Whether a process whose `comm` is `process` (cut to 15 bytes, as the
/// kernel keeps it) is in `proc`.
async fn runs(proc: &Path, process: &str) -> bool {
    let want = &process.as_bytes()[..process.len().min(15)];
    let Ok(mut entries) = tokio::fs::read_dir(proc).await else {
        return false;
    };
    while let Ok(Some(e)) = entries.next_entry().await {
        let pid = e.file_name();
        if !pid.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(comm) = tokio::fs::read(e.path().join("comm")).await
            && comm.strip_suffix(b"\n").unwrap_or(&comm) == want
        {
            return true;
        }
    }
    false
}

async fn read_text(path: &Path) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await.ok()?;
    let mut buf = Vec::new();
    file.take(MAX_UNIT_BYTES).read_to_end(&mut buf).await.ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(dir: &Path) -> Roots {
        Roots {
            etc: dir.join("etc"),
            run: dir.join("run"),
            proc: dir.join("proc"),
            ..Roots::default()
        }
    }

    #[tokio::test]
    async fn unit_then_drop_ins_in_systemds_order() {
        let dir = tempfile::tempdir().unwrap();
        let r = roots(dir.path());
        let etc = dir.path().join("etc/systemd/system");
        let run = dir.path().join("run/systemd/system");
        std::fs::create_dir_all(etc.join("varnish.service.d")).unwrap();
        std::fs::create_dir_all(run.join("varnish.service.d")).unwrap();
        std::fs::write(run.join("varnish.service"), "[Service]\nExecStart=/run/x\n").unwrap();
        std::fs::write(etc.join("varnish.service.d/b.conf"), "etc b").unwrap();
        std::fs::write(run.join("varnish.service.d/b.conf"), "run b").unwrap();
        std::fs::write(run.join("varnish.service.d/a.conf"), "run a").unwrap();
        std::fs::write(run.join("varnish.service.d/a.txt"), "ignored").unwrap();
        let files = read(&r, "varnish.service").await;
        assert_eq!(files, ["[Service]\nExecStart=/run/x\n", "run a", "etc b"]);
        assert!(read(&r, "absent.service").await.is_empty());
    }

    /// Varnish is listed only while in use, with the VCL its unit names.
    #[tokio::test]
    async fn varnish_is_read_from_the_vcl_its_unit_names() {
        use crate::source::{Scope, Source};
        use gw502_proxy::{Proxy, ProxyKind, varnish::Varnish};
        let dir = tempfile::tempdir().unwrap();
        let r = roots(dir.path());
        let etc = dir.path().join("etc");
        std::fs::create_dir_all(etc.join("varnish")).unwrap();
        std::fs::create_dir_all(etc.join("systemd/system/varnish.service.d")).unwrap();
        std::fs::create_dir_all(dir.path().join("proc")).unwrap();
        std::fs::write(
            etc.join("varnish/default.vcl"),
            include_str!("../../../proxy/fixtures/varnish/debian-default.vcl"),
        )
        .unwrap();
        std::fs::write(
            etc.join("varnish/site.vcl"),
            "vcl 4.1;\nbackend app { .host = \"127.0.0.1\"; .port = \"3000\"; }\n",
        )
        .unwrap();
        let mut settings = super::super::tests::none_installed();
        settings
            .locations
            .insert(ProxyKind::Varnish, Varnish.default_location());
        let mut src = super::super::ProxyConfigSource::new(settings);
        let scope = Scope {
            roots: r.clone(),
            ..Scope::default()
        };
        // Installed, not enabled, not running: not listed (its default VCL names 8080).
        let section = src.collect(&scope).await.unwrap();
        assert!(section.proxies.is_empty(), "{section:?}");
        std::fs::write(
            etc.join("systemd/system/varnish.service"),
            include_str!("../../../proxy/fixtures/varnish/varnish.service"),
        )
        .unwrap();
        std::fs::create_dir_all(etc.join("systemd/system/multi-user.target.wants")).unwrap();
        std::os::unix::fs::symlink(
            "/etc/systemd/system/varnish.service",
            etc.join("systemd/system/multi-user.target.wants/varnish.service"),
        )
        .unwrap();
        let section = src.collect(&scope).await.unwrap();
        assert_eq!(section.proxies[0].targets[0].address, "127.0.0.1:8080");
        std::fs::write(
            etc.join("systemd/system/varnish.service.d/site.conf"),
            "[Service]\nExecStart=\nExecStart=/usr/sbin/varnishd -F -a :80 -f /etc/varnish/site.vcl\n",
        )
        .unwrap();
        let section = src.collect(&scope).await.unwrap();
        let p = &section.proxies[0];
        assert_eq!(
            (p.kind.as_str(), p.unit.as_str()),
            ("varnish", "varnish.service")
        );
        let t = &p.targets[0];
        assert_eq!(
            (t.address.as_str(), t.group.as_str()),
            ("127.0.0.1:3000", "app")
        );
    }

    #[tokio::test]
    async fn in_use_when_enabled_or_running() {
        let dir = tempfile::tempdir().unwrap();
        let r = roots(dir.path());
        let wants = dir
            .path()
            .join("etc/systemd/system/multi-user.target.wants");
        std::fs::create_dir_all(&wants).unwrap();
        std::fs::create_dir_all(dir.path().join("proc/42")).unwrap();
        std::fs::write(dir.path().join("proc/42/comm"), "nginx\n").unwrap();
        assert!(!in_use(&r, "varnish.service", "varnishd").await);
        std::fs::write(dir.path().join("proc/42/comm"), "varnishd\n").unwrap();
        assert!(in_use(&r, "varnish.service", "varnishd").await);
        std::fs::write(dir.path().join("proc/42/comm"), "cache-main\n").unwrap();
        std::os::unix::fs::symlink(
            "/lib/systemd/system/varnish.service",
            wants.join("varnish.service"),
        )
        .unwrap();
        assert!(in_use(&r, "varnish.service", "varnishd").await);
    }
}
