//! The bounded on-disk spool that makes the agent lose nothing while the
//! collector is unreachable.
//!
//! Every report is written here before it is sent and removed once the
//! collector acknowledged it, so an outage (or an agent restart) only delays
//! delivery. Files are named by a counter that survives restarts, which keeps
//! replay in order. When the spool would grow past its byte bound the oldest
//! reports are dropped and counted; the count travels in the next report
//! (`HostReport.spool_dropped`) so the collector can say what was lost.
//!
//! The disk is never a reason to stop: a report that cannot be written (a
//! full disk, a read-only or missing directory) or read back is dropped and
//! counted in `gw502_agent_spool_dropped_total{why}`, with a rate-limited
//! warning, and the agent keeps reporting. A crash loop would lose every
//! report instead of some.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gw502_proto::v1::HostReport;
use prost::Message;
use tokio::time::Instant;

use crate::log_limit::{Failure, LogLimit};

/// Why a report left the spool without being delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The spool outgrew its byte bound; the oldest report went.
    Bound,
    /// The file system is full (ENOSPC, EDQUOT).
    DiskFull,
    /// Any other error writing the report.
    WriteError,
    /// The spooled file could not be read back.
    ReadError,
    /// The spooled file no longer decodes.
    Undecodable,
}

impl Dropped {
    /// The `why` label of `gw502_agent_spool_dropped_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::Bound => "bound",
            Dropped::DiskFull => "disk_full",
            Dropped::WriteError => "write_error",
            Dropped::ReadError => "read_error",
            Dropped::Undecodable => "undecodable",
        }
    }

    fn of_write(error: &io::Error) -> Self {
        match error.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => Dropped::DiskFull,
            _ => Dropped::WriteError,
        }
    }
}

/// How often a repeating disk failure is logged.
const WARN_EVERY: Duration = Duration::from_secs(300);

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
    disk: LogLimit,
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir`, picking up reports left
    /// by a previous run. A directory that cannot be created or listed is
    /// logged and the spool starts empty; writes retry creating it.
    pub fn open(dir: &Path, max_bytes: u64) -> Self {
        let mut spool = Self {
            dir: dir.to_path_buf(),
            max_bytes,
            entries: VecDeque::new(),
            bytes: 0,
            next: 1,
            dropped: 0,
            disk: LogLimit::new(WARN_EVERY),
        };
        match list(dir) {
            Ok(entries) => {
                spool.next = entries.last().map_or(1, |e| e.counter + 1);
                spool.bytes = entries.iter().map(|e| e.bytes).sum();
                spool.entries = entries.into();
            }
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "cannot open spool, starting empty");
            }
        }
        spool
    }

    /// Appends a report, dropping the oldest ones while the bound is
    /// exceeded. A report that cannot be written is dropped, counted and
    /// returned as the error; the spool stays usable.
    pub fn push(&mut self, report: &HostReport) -> Result<(), Dropped> {
        let body = report.encode_to_vec();
        let counter = self.next;
        if let Err(error) = self.write(counter, &body) {
            let why = Dropped::of_write(&error);
            self.count_drop(why);
            self.warn(why, &error);
            return Err(why);
        }
        if self.disk.success() {
            tracing::info!(dir = %self.dir.display(), "spool writable again");
        }
        self.next += 1;
        self.bytes += body.len() as u64;
        self.entries.push_back(Entry {
            counter,
            bytes: body.len() as u64,
        });
        while self.bytes > self.max_bytes && self.entries.len() > 1 {
            self.remove_front();
            self.count_drop(Dropped::Bound);
        }
        self.gauge();
        Ok(())
    }

    /// The oldest waiting report. A file that cannot be read or no longer
    /// decodes is dropped, counted and skipped.
    pub fn front(&mut self) -> Option<HostReport> {
        while let Some(entry) = self.entries.front() {
            let path = self.path(entry.counter);
            let why = match fs::read(&path) {
                Ok(body) => match HostReport::decode(body.as_slice()) {
                    Ok(report) => return Some(report),
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "dropping undecodable spooled report");
                        Dropped::Undecodable
                    }
                },
                Err(error) => {
                    self.warn(Dropped::ReadError, &error);
                    Dropped::ReadError
                }
            };
            self.remove_front();
            self.count_drop(why);
        }
        None
    }

    /// Removes the oldest report after the collector acknowledged it.
    pub fn pop_front(&mut self) {
        self.remove_front();
        self.gauge();
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

    /// Reports dropped (past the bound, unwritable or unreadable) since the
    /// spool was opened.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn write(&self, counter: u64, body: &[u8]) -> io::Result<()> {
        let path = self.path(counter);
        let tmp = path.with_extension("tmp");
        let written = fs::write(&tmp, body).or_else(|error| {
            if error.kind() != io::ErrorKind::NotFound {
                return Err(error);
            }
            // The directory went away (or never was): make it again.
            fs::create_dir_all(&self.dir)?;
            fs::write(&tmp, body)
        });
        let renamed = written.and_then(|()| fs::rename(&tmp, &path));
        if renamed.is_err() {
            // A partial file would only take the space a later write needs.
            let _ = fs::remove_file(&tmp);
        }
        renamed
    }

    /// Forgets the oldest entry and deletes its file. A file that cannot be
    /// deleted is logged and left behind: after a restart it is replayed,
    /// which the collector deduplicates by instance and sequence.
    fn remove_front(&mut self) {
        if let Some(entry) = self.entries.pop_front() {
            let path = self.path(entry.counter);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    if let Failure::Log { suppressed } = self.disk.failure(Instant::now()) {
                        tracing::warn!(path = %path.display(), %error, suppressed, "cannot remove spooled report");
                    }
                }
            }
            self.bytes -= entry.bytes;
        }
    }

    fn count_drop(&mut self, why: Dropped) {
        self.dropped += 1;
        metrics::counter!("gw502_agent_spool_dropped_total", "why" => why.as_str()).increment(1);
    }

    fn warn(&mut self, why: Dropped, error: &io::Error) {
        if let Failure::Log { suppressed } = self.disk.failure(Instant::now()) {
            tracing::warn!(
                dir = %self.dir.display(),
                why = why.as_str(),
                %error,
                suppressed,
                "spool cannot keep a report, dropping it"
            );
        }
    }

    fn path(&self, counter: u64) -> PathBuf {
        self.dir.join(format!("{counter:020}.report"))
    }

    fn gauge(&self) {
        metrics::gauge!("gw502_agent_spool_reports").set(self.entries.len() as f64);
        metrics::gauge!("gw502_agent_spool_bytes").set(self.bytes as f64);
    }
}

/// The spooled reports in `dir`, oldest first, creating `dir` if missing.
fn list(dir: &Path) -> io::Result<Vec<Entry>> {
    fs::create_dir_all(dir)?;
    let mut entries = Vec::new();
    for item in fs::read_dir(dir)? {
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
        while let Some(r) = spool.front() {
            seqs.push(r.seq);
            spool.pop_front();
        }
        seqs
    }

    #[test]
    fn replays_in_order_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20);
        for seq in 1..=5 {
            spool.push(&report(seq)).unwrap();
        }
        drop(spool);
        let mut spool = Spool::open(dir.path(), 1 << 20);
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
        let mut spool = Spool::open(dir.path(), one * 3);
        for seq in 1..=10 {
            spool.push(&report(seq)).unwrap();
        }
        assert_eq!(spool.dropped(), 7);
        assert_eq!(drain(&mut spool), vec![8, 9, 10]);
    }

    #[test]
    fn corrupt_files_are_dropped_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20);
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

    /// A report of about `kib` KiB.
    fn big_report(seq: u64, kib: usize) -> HostReport {
        HostReport {
            seq,
            agent_version: "x".repeat(kib * 1024),
            ..report(seq)
        }
    }

    /// A tmpfs of `kib` KiB mounted for one test, unmounted on drop.
    struct Tmpfs(PathBuf);

    impl Tmpfs {
        fn mount(at: &Path, kib: usize) -> Result<Tmpfs, String> {
            fs::create_dir_all(at).map_err(|e| e.to_string())?;
            let out = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
                .arg(at)
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
            }
            Ok(Tmpfs(at.to_path_buf()))
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }

    #[test]
    fn a_full_disk_drops_and_counts_and_the_spool_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let fs_dir = dir.path().join("small");
        let _tmpfs = match Tmpfs::mount(&fs_dir, 64) {
            Ok(tmpfs) => tmpfs,
            Err(reason) => {
                eprintln!("skipped: cannot mount a tmpfs ({reason})");
                return;
            }
        };
        let mut spool = Spool::open(&fs_dir.join("spool"), 1 << 20);
        let mut stored = Vec::new();
        let mut seq = 0;
        let first_drop = loop {
            seq += 1;
            assert!(seq < 100, "64 KiB never filled up");
            match spool.push(&big_report(seq, 8)) {
                Ok(()) => stored.push(seq),
                Err(why) => break why,
            }
        };
        assert_eq!(first_drop, Dropped::DiskFull);
        assert_eq!(spool.dropped(), 1);
        assert_eq!(spool.len(), stored.len());
        // Still full: every further report is dropped, nothing panics.
        assert_eq!(spool.push(&big_report(seq + 1, 8)), Err(Dropped::DiskFull));
        assert_eq!(spool.dropped(), 2);
        let leftovers: Vec<_> = fs::read_dir(fs_dir.join("spool"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
        // Delivering two frees their space: the next report fits again.
        for _ in 0..2 {
            assert!(spool.front().is_some());
            spool.pop_front();
        }
        spool.push(&big_report(seq + 2, 8)).unwrap();
        let mut expected: Vec<u64> = stored[2..].to_vec();
        expected.push(seq + 2);
        assert_eq!(drain(&mut spool), expected);
    }

    #[test]
    fn a_write_error_drops_the_report_and_the_next_write_works() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20);
        // The temporary file's path is taken by a directory: the write fails
        // as it would on a read-only or broken file system.
        let blocker = dir.path().join(format!("{:020}.tmp", 1));
        fs::create_dir(&blocker).unwrap();
        assert_eq!(spool.push(&report(1)), Err(Dropped::WriteError));
        assert_eq!(spool.dropped(), 1);
        assert!(spool.is_empty());
        fs::remove_dir(&blocker).unwrap();
        spool.push(&report(2)).unwrap();
        assert_eq!(drain(&mut spool), vec![2]);
    }

    #[test]
    fn an_unusable_directory_never_stops_the_spool() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        fs::write(&file, b"").unwrap();
        let mut spool = Spool::open(&file, 1 << 20);
        assert_eq!(spool.push(&report(1)), Err(Dropped::WriteError));
        assert_eq!(spool.front(), None);
        // A spool directory removed under a running agent is made again.
        let gone = dir.path().join("spool");
        let mut spool = Spool::open(&gone, 1 << 20);
        fs::remove_dir(&gone).unwrap();
        spool.push(&report(3)).unwrap();
        assert_eq!(drain(&mut spool), vec![3]);
    }
}
