//! The bounded on-disk spool that makes the agent lose nothing while the
//! collector is unreachable.
//!
//! Every report is written here before it is sent and removed once the
//! collector acknowledged it, so an outage (or an agent restart) only delays
//! delivery. Files are named by a counter that survives restarts, which keeps
//! replay in order. When the spool would grow past its byte bound the oldest
//! reports are dropped and counted; the count travels in the next report
//! (`HostReport.spool_dropped`) so the collector can say what was lost.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use gw502_proto::v1::HostReport;
use prost::Message;

/// A spool failure, with the path involved.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The spool directory or one of its files could not be used.
    #[error("spool {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug)]
struct Entry {
    counter: u64,
    bytes: u64,
}

/// Reports waiting for delivery, oldest first.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    entries: VecDeque<Entry>,
    bytes: u64,
    next: u64,
    dropped: u64,
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir`, picking up reports left
    /// by a previous run.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, SpoolError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut entries = Vec::new();
        for item in fs::read_dir(dir).map_err(io_err(dir))? {
            let item = item.map_err(io_err(dir))?;
            let name = item.file_name();
            let Some(counter) = name.to_str().and_then(parse_name) else {
                continue;
            };
            let bytes = item.metadata().map_err(io_err(&item.path()))?.len();
            entries.push(Entry { counter, bytes });
        }
        entries.sort_by_key(|e| e.counter);
        let next = entries.last().map_or(1, |e| e.counter + 1);
        let bytes = entries.iter().map(|e| e.bytes).sum();
        Ok(Self {
            dir: dir.to_path_buf(),
            max_bytes,
            entries: entries.into(),
            bytes,
            next,
            dropped: 0,
        })
    }

    /// Appends a report, dropping the oldest ones while the bound is exceeded.
    pub fn push(&mut self, report: &HostReport) -> Result<(), SpoolError> {
        let body = report.encode_to_vec();
        let counter = self.next;
        let path = self.path(counter);
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, &body).map_err(io_err(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_err(&path))?;
        self.next += 1;
        self.bytes += body.len() as u64;
        self.entries.push_back(Entry {
            counter,
            bytes: body.len() as u64,
        });
        while self.bytes > self.max_bytes && self.entries.len() > 1 {
            self.remove_front()?;
            self.dropped += 1;
            metrics::counter!("gw502_agent_spool_dropped_total").increment(1);
        }
        self.gauge();
        Ok(())
    }

    /// The oldest waiting report. A file that no longer decodes is dropped,
    /// counted and skipped.
    pub fn front(&mut self) -> Result<Option<HostReport>, SpoolError> {
        while let Some(entry) = self.entries.front() {
            let path = self.path(entry.counter);
            let body = fs::read(&path).map_err(io_err(&path))?;
            match HostReport::decode(body.as_slice()) {
                Ok(report) => return Ok(Some(report)),
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "dropping undecodable spooled report");
                    self.remove_front()?;
                    self.dropped += 1;
                }
            }
        }
        Ok(None)
    }

    /// Removes the oldest report after the collector acknowledged it.
    pub fn pop_front(&mut self) -> Result<(), SpoolError> {
        self.remove_front()?;
        self.gauge();
        Ok(())
    }

    /// Reports waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes on disk.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Reports dropped past the bound (or unreadable) since the spool was opened.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn remove_front(&mut self) -> Result<(), SpoolError> {
        if let Some(entry) = self.entries.pop_front() {
            let path = self.path(entry.counter);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path)(e)),
            }
            self.bytes -= entry.bytes;
        }
        Ok(())
    }

    fn path(&self, counter: u64) -> PathBuf {
        self.dir.join(format!("{counter:020}.report"))
    }

    fn gauge(&self) {
        metrics::gauge!("gw502_agent_spool_reports").set(self.entries.len() as f64);
        metrics::gauge!("gw502_agent_spool_bytes").set(self.bytes as f64);
    }
}

fn parse_name(name: &str) -> Option<u64> {
    name.strip_suffix(".report")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(seq: u64) -> HostReport {
        HostReport {
            host_id: "web1".into(),
            seq,
            ..Default::default()
        }
    }

    fn drain(spool: &mut Spool) -> Vec<u64> {
        let mut seqs = Vec::new();
        while let Some(r) = spool.front().unwrap() {
            seqs.push(r.seq);
            spool.pop_front().unwrap();
        }
        seqs
    }

    #[test]
    fn replays_in_order_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for seq in 1..=5 {
            spool.push(&report(seq)).unwrap();
        }
        drop(spool);
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(spool.len(), 5);
        spool.push(&report(6)).unwrap();
        assert_eq!(drain(&mut spool), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(spool.bytes(), 0);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn drops_oldest_past_the_bound_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let one = report(1).encode_to_vec().len() as u64;
        let mut spool = Spool::open(dir.path(), one * 3).unwrap();
        for seq in 1..=10 {
            spool.push(&report(seq)).unwrap();
        }
        assert_eq!(spool.dropped(), 7);
        assert_eq!(drain(&mut spool), vec![8, 9, 10]);
    }

    #[test]
    fn corrupt_files_are_dropped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        spool.push(&report(1)).unwrap();
        spool.push(&report(2)).unwrap();
        fs::write(
            dir.path().join(format!("{:020}.report", 1)),
            b"\xff\xff\xff",
        )
        .unwrap();
        assert_eq!(drain(&mut spool), vec![2]);
        assert_eq!(spool.dropped(), 1);
    }
}
