//! The spool's files: one encoded report per file in the spool directory,
//! named by a counter that survives restarts (`00000000000000000042.report`),
//! so listing the directory gives the reports back in order.
//!
//! A file is written to a `.tmp` name and renamed, so a crash or a full disk
//! never leaves half a report under a report's name. Writing the bytes goes
//! through [`WriteFile`], the seam tests use to make the disk refuse without
//! filling one; reading, renaming and removing are always the real calls.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Writes the bytes of one file; `fs::write` unless a test injects errors.
pub type WriteFile = Arc<dyn Fn(&Path, &[u8]) -> io::Result<()> + Send + Sync>;

/// One spooled file: its counter and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Entry {
    pub(super) counter: u64,
    pub(super) bytes: u64,
}

/// The spool directory.
pub(super) struct Disk {
    dir: PathBuf,
    write: WriteFile,
}

impl fmt::Debug for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Disk").field("dir", &self.dir).finish()
    }
}

impl Disk {
    /// The spool in `dir`, written with `fs::write`.
    pub(super) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            write: Arc::new(|path, body| fs::write(path, body)),
        }
    }

    /// Replaces how file bytes are written (tests).
    #[cfg(test)]
    pub(super) fn set_writer(&mut self, write: WriteFile) {
        self.write = write;
    }

    /// The directory.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The spooled reports, oldest first, creating the directory if missing.
    pub(super) fn list(&self) -> io::Result<Vec<Entry>> {
        fs::create_dir_all(&self.dir)?;
        let mut entries = Vec::new();
        for item in fs::read_dir(&self.dir)? {
            let item = item?;
            let name = item.file_name();
            let Some(counter) = name.to_str().and_then(parse_name) else {
                continue;
            };
            let bytes = item.metadata()?.len();
            entries.push(Entry { counter, bytes });
        }
        entries.sort_by_key(|e| e.counter);
        Ok(entries)
    }

    /// Writes report `counter`. On an error nothing is left behind.
    pub(super) fn write(&self, counter: u64, body: &[u8]) -> io::Result<()> {
        let path = self.path(counter);
        let tmp = path.with_extension("tmp");
        let written = (self.write)(&tmp, body).or_else(|error| {
            if error.kind() != io::ErrorKind::NotFound {
                return Err(error);
            }
            // The directory went away (or never was): make it again.
            fs::create_dir_all(&self.dir)?;
            (self.write)(&tmp, body)
        });
        let renamed = written.and_then(|()| fs::rename(&tmp, &path));
        if renamed.is_err() {
            // A partial file would only take the space a later write needs.
            let _ = fs::remove_file(&tmp);
        }
        renamed
    }

    /// Reads report `counter` back.
    pub(super) fn read(&self, counter: u64) -> io::Result<Vec<u8>> {
        fs::read(self.path(counter))
    }

    /// Deletes report `counter`; one already gone is fine.
    pub(super) fn remove(&self, counter: u64) -> io::Result<()> {
        match fs::remove_file(self.path(counter)) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    /// The file of report `counter`.
    pub(super) fn path(&self, counter: u64) -> PathBuf {
        self.dir.join(format!("{counter:020}.report"))
    }
}

fn parse_name(name: &str) -> Option<u64> {
    name.strip_suffix(".report")?.parse().ok()
}
