//! Writing into a lab host's overlay root without escaping it.
//!
//! A host's root is an overlay over the machine's `/`, so it is full of absolute symlinks
//! (`/etc/nginx/sites-enabled/default -> /etc/nginx/sites-available/default`,
//! `/var/run -> /run`). Followed naively from the machine, such a link points at the
//! machine's own file, and a write would change the machine. Every path here is resolved
//! the way the host would resolve it, with the overlay root as `/`, before anything is
//! written, linked or removed.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Component, Path, PathBuf};

/// Symlinks followed before a path is declared a loop.
const MAX_SYMLINKS: usize = 40;

/// Resolve `path` (absolute, as seen inside the host) to a path under `root`, following
/// symlinks (the last component too) as if `root` were `/`. Missing components are fine:
/// they resolve to where they would be created.
pub fn resolve_in_root(root: &Path, path: &Path) -> io::Result<PathBuf> {
    resolve(root, path, true)
}

/// Like [`resolve_in_root`] but leaves a final symlink itself in place, for replacing or
/// removing the link rather than what it points to.
pub fn resolve_parent_in_root(root: &Path, path: &Path) -> io::Result<PathBuf> {
    resolve(root, path, false)
}

fn resolve(root: &Path, path: &Path, follow_last: bool) -> io::Result<PathBuf> {
    if !path.is_absolute() {
        return Err(invalid(format!(
            "path inside host must be absolute: {}",
            path.display()
        )));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(invalid(format!(
            "path inside host must not contain ..: {}",
            path.display()
        )));
    }
    // `pending` holds the components still to walk, last one at the end.
    let mut pending: Vec<std::ffi::OsString> = normal_components(path);
    pending.reverse();
    let mut inside = PathBuf::from("/");
    let mut links = 0;
    while let Some(name) = pending.pop() {
        let candidate = inside.join(&name);
        let on_machine = under(root, &candidate);
        let is_last = pending.is_empty();
        let is_link = fs::symlink_metadata(&on_machine).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link || (is_last && !follow_last) {
            inside = candidate;
            continue;
        }
        links += 1;
        if links > MAX_SYMLINKS {
            return Err(invalid(format!(
                "too many symlinks under {}",
                path.display()
            )));
        }
        let target = fs::read_link(&on_machine)?;
        if target.is_absolute() {
            inside = PathBuf::from("/");
        }
        let mut rest = Vec::new();
        for component in target.components() {
            match component {
                Component::Normal(part) => rest.push(Some(part.to_owned())),
                Component::ParentDir => rest.push(None),
                _ => {}
            }
        }
        // Walk `..` eagerly (clamped at the root) and queue the rest in order.
        let mut queued = Vec::new();
        for part in rest {
            match part {
                Some(part) => queued.push(part),
                None if !queued.is_empty() => {
                    queued.pop();
                }
                None => {
                    inside.pop();
                }
            }
        }
        pending.extend(queued.into_iter().rev());
    }
    Ok(under(root, &inside))
}

fn normal_components(path: &Path) -> Vec<std::ffi::OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_owned()),
            _ => None,
        })
        .collect()
}

/// `inside` (absolute in the host) as a path on the machine under `root`.
fn under(root: &Path, inside: &Path) -> PathBuf {
    root.join(inside.strip_prefix("/").unwrap_or(inside))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Write `contents` to `path` inside the host rooted at `root` with permission `mode`,
/// creating parent directories.
pub fn write_file(root: &Path, path: &Path, contents: &str, mode: u32) -> io::Result<()> {
    let target = resolve_in_root(root, path)?;
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(&target, contents)?;
    fs::set_permissions(&target, fs::Permissions::from_mode(mode))
}

/// Make `path` inside the host a symlink to `target` (a path as the host sees it),
/// replacing whatever is at `path`.
pub fn link(root: &Path, path: &Path, target: &Path) -> io::Result<()> {
    let at = resolve_parent_in_root(root, path)?;
    if let Some(parent) = at.parent() {
        fs::create_dir_all(parent)?;
    }
    remove(root, path)?;
    symlink(target, &at)
}

/// Remove the file or symlink at `path` inside the host; a missing path is fine.
pub fn remove(root: &Path, path: &Path) -> io::Result<()> {
    let at = resolve_parent_in_root(root, path)?;
    match fs::remove_file(&at) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Whether `path` inside the host exists (following symlinks inside the root).
pub fn exists(root: &Path, path: &Path) -> bool {
    resolve_in_root(root, path).is_ok_and(|at| at.exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, tempfile::TempDir) {
        let root = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let r = root.path();
        fs::create_dir_all(r.join("etc/nginx/sites-available")).unwrap();
        fs::create_dir_all(r.join("etc/nginx/sites-enabled")).unwrap();
        fs::create_dir_all(r.join("run")).unwrap();
        // Absolute links as in the real image: they must stay inside the root.
        symlink(
            "/etc/nginx/sites-available/default",
            r.join("etc/nginx/sites-enabled/default"),
        )
        .unwrap();
        fs::create_dir_all(r.join("var")).unwrap();
        symlink("/run", r.join("var/run")).unwrap();
        symlink("../../run", r.join("etc/nginx/up")).unwrap();
        symlink(machine.path(), r.join("escape")).unwrap();
        symlink("/loop", r.join("loop")).unwrap();
        (root, machine)
    }

    #[test]
    fn absolute_links_resolve_inside_root() {
        let (root, _machine) = tree();
        let r = root.path();
        let got = resolve_in_root(r, Path::new("/etc/nginx/sites-enabled/default")).unwrap();
        assert_eq!(got, r.join("etc/nginx/sites-available/default"));
        let got = resolve_in_root(r, Path::new("/var/run/x.pid")).unwrap();
        assert_eq!(got, r.join("run/x.pid"));
        let got = resolve_in_root(r, Path::new("/etc/nginx/up/sock")).unwrap();
        assert_eq!(got, r.join("run/sock"));
        let kept = resolve_parent_in_root(r, Path::new("/etc/nginx/sites-enabled/default"));
        assert_eq!(kept.unwrap(), r.join("etc/nginx/sites-enabled/default"));
    }

    #[test]
    fn link_to_machine_path_stays_in_root() {
        let (root, machine) = tree();
        write_file(root.path(), Path::new("/escape/owned"), "x", 0o644).unwrap();
        assert!(!machine.path().join("owned").exists());
        let inside = under(root.path(), machine.path()).join("owned");
        assert_eq!(fs::read_to_string(inside).unwrap(), "x");
    }

    #[test]
    fn bad_paths_are_refused() {
        let (root, _machine) = tree();
        let r = root.path();
        assert!(resolve_in_root(r, Path::new("etc/hosts")).is_err());
        assert!(resolve_in_root(r, Path::new("/etc/../../hosts")).is_err());
        assert!(resolve_in_root(r, Path::new("/loop/x")).is_err());
    }

    #[test]
    fn write_link_remove_roundtrip() {
        let (root, _machine) = tree();
        let r = root.path();
        let site = Path::new("/etc/nginx/sites-enabled/default");
        write_file(r, site, "server {}\n", 0o640).unwrap();
        let real = r.join("etc/nginx/sites-available/default");
        assert_eq!(fs::read_to_string(&real).unwrap(), "server {}\n");
        assert_eq!(
            fs::metadata(&real).unwrap().permissions().mode() & 0o777,
            0o640
        );
        let unit = Path::new("/etc/systemd/system/postgresql.service");
        link(r, unit, Path::new("/dev/null")).unwrap();
        assert_eq!(
            fs::read_link(r.join("etc/systemd/system/postgresql.service")).unwrap(),
            Path::new("/dev/null")
        );
        remove(r, unit).unwrap();
        remove(r, unit).unwrap();
        assert!(!exists(r, unit));
    }
}
