//! Small filesystem steps with the path in every error, and the external tools the
//! build runs (`dpkg-deb`, `dpkg-shlibdeps`, `gzip`, `strip`) with their stderr kept.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::error::PackagingError;

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PackagingError {
    let path = path.to_owned();
    move |source| PackagingError::Io {
        action,
        path,
        source,
    }
}

/// Create `dir` and its parents.
pub fn create_dir(dir: &Path) -> Result<(), PackagingError> {
    fs::create_dir_all(dir).map_err(io("create directory", dir))
}

/// Write `bytes` to `path` (creating its parent) with permission `mode`.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PackagingError> {
    if let Some(parent) = path.parent() {
        create_dir(parent)?;
    }
    fs::write(path, bytes).map_err(io("write", path))?;
    set_mode(path, mode)
}

/// Copy `from` to `to` (creating its parent) with permission `mode`.
pub fn copy(from: &Path, to: &Path, mode: u32) -> Result<(), PackagingError> {
    if let Some(parent) = to.parent() {
        create_dir(parent)?;
    }
    fs::copy(from, to).map_err(io("copy", from))?;
    set_mode(to, mode)
}

/// Set the permission bits of `path`.
pub fn set_mode(path: &Path, mode: u32) -> Result<(), PackagingError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io("chmod", path))
}

/// Remove `dir` and everything below it; a missing dir is fine.
pub fn remove_dir(dir: &Path) -> Result<(), PackagingError> {
    match fs::remove_dir_all(dir) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(io("remove", dir)(error)),
        _ => Ok(()),
    }
}

/// Every regular file under `root` (not following symlinks), sorted, with its size.
pub fn walk_files(root: &Path) -> Result<Vec<(std::path::PathBuf, u64)>, PackagingError> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).map_err(io("read directory", &dir))? {
            let entry = entry.map_err(io("read directory", &dir))?;
            let meta = entry.metadata().map_err(io("stat", &entry.path()))?;
            if meta.is_dir() {
                pending.push(entry.path());
            } else if meta.is_file() {
                out.push((entry.path(), meta.len()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every directory under `root` (itself included).
pub fn walk_dirs(root: &Path) -> Result<Vec<std::path::PathBuf>, PackagingError> {
    let mut out = vec![root.to_owned()];
    let mut i = 0;
    while i < out.len() {
        let dir = out[i].clone();
        for entry in fs::read_dir(&dir).map_err(io("read directory", &dir))? {
            let entry = entry.map_err(io("read directory", &dir))?;
            if entry
                .file_type()
                .map_err(io("stat", &entry.path()))?
                .is_dir()
            {
                out.push(entry.path());
            }
        }
        i += 1;
    }
    Ok(out)
}

/// Run a tool to completion; a non-zero exit is an error carrying its stderr.
pub fn run(command: &mut Command) -> Result<Output, PackagingError> {
    let tool = command.get_program().to_string_lossy().into_owned();
    let output = command.output().map_err(|source| PackagingError::Spawn {
        tool: tool.clone(),
        source,
    })?;
    if !output.status.success() {
        return Err(PackagingError::Tool {
            tool,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output)
}
