//! Follows log files between reports like `tail -F`: remembers (dev, inode,
//! offset) per file, starts at the end of a file the first time it sees it
//! (history is not replayed), finishes the old file after a rotation before
//! reading the new one from its start, restarts at 0 after a truncation, and
//! reads at most a fixed number of bytes per file per call, skipping (and
//! counting) older bytes when it falls behind.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use gw502_proxy::line::MAX_LINE;

/// What one call read from one file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct TailRead {
    /// Complete lines, without their newline.
    pub lines: Vec<Vec<u8>>,
    /// Bytes skipped because more was written than the per-call bound.
    pub skipped_bytes: u64,
}

#[derive(Debug)]
struct Followed {
    file: File,
    dev: u64,
    ino: u64,
    offset: u64,
    partial: Vec<u8>,
}

/// The follower; one per source.
#[derive(Debug)]
pub struct Tailer {
    files: BTreeMap<PathBuf, Followed>,
    max_bytes: u64,
}

impl Default for Tailer {
    fn default() -> Self {
        Self::new(4 * 1024 * 1024)
    }
}

impl Tailer {
    /// A follower reading at most `max_bytes` per file per call.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            files: BTreeMap::new(),
            max_bytes: max_bytes.max(1),
        }
    }

    /// Reads what was appended to `path` since the last call. The first call
    /// for a path only records its end.
    pub fn read(&mut self, path: &Path) -> io::Result<TailRead> {
        let mut out = TailRead::default();
        let current = std::fs::metadata(path);
        if let Some(mut old) = self.files.remove(path) {
            let same = matches!(&current, Ok(m) if m.dev() == old.dev && m.ino() == old.ino);
            if same {
                let size = old.file.metadata()?.len();
                if size < old.offset {
                    old.offset = 0;
                    old.partial.clear();
                }
                self.drain(&mut old, &mut out)?;
                self.files.insert(path.to_path_buf(), old);
                return Ok(out);
            }
            // Rotated or removed: finish the old file, then start the new one at 0.
            self.drain(&mut old, &mut out)?;
            if !old.partial.is_empty() {
                out.lines.push(std::mem::take(&mut old.partial));
            }
            let meta = current?;
            let mut new = open(path, &meta, 0)?;
            self.drain(&mut new, &mut out)?;
            self.files.insert(path.to_path_buf(), new);
            return Ok(out);
        }
        let meta = current?;
        let followed = open(path, &meta, meta.len())?;
        self.files.insert(path.to_path_buf(), followed);
        Ok(out)
    }

    /// Forgets files not in `keep` (closing their handles).
    pub fn retain(&mut self, keep: &[PathBuf]) {
        self.files.retain(|p, _| keep.contains(p));
    }

    fn drain(&self, f: &mut Followed, out: &mut TailRead) -> io::Result<()> {
        let size = f.file.metadata()?.len();
        if size <= f.offset {
            return Ok(());
        }
        let mut skipped = false;
        if size - f.offset > self.max_bytes {
            let start = size - self.max_bytes;
            out.skipped_bytes += start - f.offset;
            f.offset = start;
            f.partial.clear();
            skipped = true;
        }
        f.file.seek(SeekFrom::Start(f.offset))?;
        let mut buf = Vec::new();
        (&mut f.file).take(size - f.offset).read_to_end(&mut buf)?;
        f.offset += buf.len() as u64;
        let mut rest: &[u8] = &buf;
        if skipped {
            // The first line after a skip is a fragment.
            match rest.iter().position(|b| *b == b'\n') {
                Some(i) => rest = &rest[i + 1..],
                None => rest = &[],
            }
        }
        while let Some(i) = rest.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut f.partial);
            line.extend_from_slice(&rest[..i.min(MAX_LINE)]);
            line.truncate(MAX_LINE);
            out.lines.push(line);
            rest = &rest[i + 1..];
        }
        let room = MAX_LINE.saturating_sub(f.partial.len());
        f.partial.extend_from_slice(&rest[..rest.len().min(room)]);
        Ok(())
    }
}

fn open(path: &Path, meta: &std::fs::Metadata, offset: u64) -> io::Result<Followed> {
    let file = File::open(path)?;
    let opened = file.metadata()?;
    // If it was replaced between stat and open, follow what we opened.
    let offset = if opened.ino() == meta.ino() {
        offset
    } else {
        0
    };
    Ok(Followed {
        file,
        dev: opened.dev(),
        ino: opened.ino(),
        offset,
        partial: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn lines(r: &TailRead) -> Vec<String> {
        r.lines
            .iter()
            .map(|l| String::from_utf8_lossy(l).into_owned())
            .collect()
    }

    #[test]
    fn starts_at_end_then_follows_partial_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("error.log");
        append(&p, "old history\n");
        let mut t = Tailer::default();
        assert!(t.read(&p).unwrap().lines.is_empty());
        append(&p, "one\ntw");
        assert_eq!(lines(&t.read(&p).unwrap()), vec!["one"]);
        append(&p, "o\n");
        assert_eq!(lines(&t.read(&p).unwrap()), vec!["two"]);
        assert!(t.read(&p).unwrap().lines.is_empty());
    }

    #[test]
    fn survives_rotation_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("error.log");
        append(&p, "");
        let mut t = Tailer::default();
        t.read(&p).unwrap();
        append(&p, "before rotate\n");
        // logrotate: rename, the proxy writes a last line to the old inode, new file appears
        std::fs::rename(&p, dir.path().join("error.log.1")).unwrap();
        append(&dir.path().join("error.log.1"), "late line\n");
        append(&p, "new file with a longer line\n");
        assert_eq!(
            lines(&t.read(&p).unwrap()),
            vec!["before rotate", "late line", "new file with a longer line"]
        );
        // copytruncate
        std::fs::write(&p, "").unwrap();
        append(&p, "after truncate\n");
        assert_eq!(lines(&t.read(&p).unwrap()), vec!["after truncate"]);
    }

    #[test]
    fn bounds_bytes_per_call_and_counts_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("access.log");
        append(&p, "");
        let mut t = Tailer::new(10);
        t.read(&p).unwrap();
        append(&p, "aaaaaaaaaa\nbbbb\ncccc\n");
        let r = t.read(&p).unwrap();
        assert_eq!(r.skipped_bytes, 11);
        assert_eq!(lines(&r), vec!["cccc"]);
        assert!(t.read(&dir.path().join("missing")).is_err());
    }
}
