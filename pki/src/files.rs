//! The on-disk layout of the fleet PKI and atomic, mode-restricted writes.
//!
//! Every file is written to a temporary sibling, synced, then renamed over
//! the destination, so a crash never leaves a half-written key or a key that
//! was briefly readable by others.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{PkiError, Role};

/// Mode of private keys.
pub const KEY_MODE: u32 = 0o600;
/// Mode of certificates (public).
pub const CERT_MODE: u32 = 0o644;

/// Path of the CA certificate under `dir`.
pub fn ca_cert(dir: &Path) -> PathBuf {
    dir.join("ca.crt")
}

/// Path of the CA private key under `dir`.
pub fn ca_key(dir: &Path) -> PathBuf {
    dir.join("ca.key")
}

/// Paths of the certificate and key of `role`/`name` under `dir`.
pub fn leaf(dir: &Path, role: Role, name: &str) -> (PathBuf, PathBuf) {
    let base = dir.join(role.dir_name());
    (
        base.join(format!("{name}.crt")),
        base.join(format!("{name}.key")),
    )
}

/// Creates `dir` and its parents.
pub fn create_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        action: "create directory",
        path: dir.to_owned(),
        source,
    })
}

/// Writes `data` to `path` with `mode`, atomically (temp file + rename).
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), PkiError> {
    let io = |action, path: &Path| {
        let path = path.to_owned();
        move |source| PkiError::Io {
            action,
            path,
            source,
        }
    };
    let parent = path.parent().unwrap_or(Path::new("."));
    create_dir(parent)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{file_name}.tmp-{}", std::process::id()));
    // A leftover from a crashed run would make create_new fail.
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io("create", &tmp))?;
    let written = file
        .write_all(data)
        .and_then(|()| file.sync_all())
        .map_err(io("write", &tmp));
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path).map_err(io("rename into", path))) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Reads a whole PEM file.
pub fn read(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|source| PkiError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/x.key");
        write_atomic(&path, b"one", KEY_MODE).unwrap();
        write_atomic(&path, b"two", KEY_MODE).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(leftovers.len(), 1);
    }

    #[test]
    fn write_error_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        fs::write(&blocker, b"").unwrap();
        let err = write_atomic(&blocker.join("x.key"), b"k", KEY_MODE).unwrap_err();
        assert!(
            err.to_string().contains(&*blocker.to_string_lossy()),
            "{err}"
        );
    }
}
