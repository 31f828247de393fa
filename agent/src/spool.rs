//! The bounded spool that makes the agent lose nothing while the collector
//! is unreachable or the disk is full.
//!
//! Every report is written here before it is sent and removed once the
//! collector acknowledged it, so an outage (or an agent restart) only delays
//! delivery. Files are named by a counter that survives restarts, which keeps
//! replay in order ([`disk`]). When the spool would grow past its byte bound
//! the oldest reports are dropped and counted; the count travels in the next
//! report (`HostReport.spool_dropped`) so the collector can say what was lost.
//!
//! The disk is never a reason to stop or to lose a report. A report the disk
//! refuses (full, read-only, missing directory) is held in memory behind the
//! ones on disk ([`overflow`], bounded by `spool_memory_max`), sent after
//! them, and written back to disk in order as soon as the disk takes a write
//! again, so a restart after the disk recovered loses nothing. Only a report
//! that does not fit in the memory budget either, or one still held in
//! memory when the agent stops and the disk still refuses it, is lost:
//! counted in `gw502_agent_spool_dropped_total{why}` (`why` says what the
//! disk answered) and logged. `gw502_agent_spool_overflow_reports` and
//! `_bytes` show what memory holds.
//!
//! Each waiting report has an id (its counter); the sender acknowledges by
//! id, so a report the bound dropped while it was being sent is never
//! confused with the one behind it.

mod disk;
mod overflow;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::time::Duration;

use gw502_proto::v1::HostReport;
use prost::Message;
use tokio::time::Instant;

use crate::log_limit::{Failure, LogLimit};
use disk::{Disk, Entry};
use overflow::Overflow;

/// Why a report left the spool without being delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// The spool outgrew its byte bound; the oldest report went.
    Bound,
    /// The file system is full (ENOSPC, EDQUOT) and the memory overflow
    /// could not hold the report.
    DiskFull,
    /// Any other error writing the report, and no room in memory.
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

/// The oldest waiting report and its id, for [`Spool::ack`].
#[derive(Debug, Clone, PartialEq)]
pub struct Spooled {
    /// The report's place in the spool.
    pub id: u64,
    /// The report.
    pub report: HostReport,
}

/// Reports waiting for delivery, oldest first: on disk, then in memory.
#[derive(Debug)]
pub struct Spool {
    disk: Disk,
    max_bytes: u64,
    entries: VecDeque<Entry>,
    bytes: u64,
    overflow: Overflow,
    /// What the disk answered the last write, while it refuses.
    refusal: Option<Dropped>,
    next: u64,
    dropped: u64,
    disk_log: LogLimit,
    drop_log: LogLimit,
}

impl Spool {
    /// Opens (creating if needed) the spool in `dir`, picking up reports left
    /// by a previous run, with `max_bytes` as the bound of everything waiting
    /// and `memory_max` the bytes held in memory while the disk refuses. A
    /// directory that cannot be created or listed is logged and the spool
    /// starts empty; writes retry creating it.
    pub fn open(dir: &Path, max_bytes: u64, memory_max: u64) -> Self {
        let mut spool = Self {
            disk: Disk::new(dir),
            max_bytes,
            entries: VecDeque::new(),
            bytes: 0,
            overflow: Overflow::new(memory_max),
            refusal: None,
            next: 1,
            dropped: 0,
            disk_log: LogLimit::new(WARN_EVERY),
            drop_log: LogLimit::new(WARN_EVERY),
        };
        match spool.disk.list() {
            Ok(entries) => {
                spool.next = entries.last().map_or(1, |e| e.counter + 1);
                spool.bytes = entries.iter().map(|e| e.bytes).sum();
                spool.entries = entries.into();
            }
            Err(error) => {
                tracing::warn!(dir = %dir.display(), %error, "cannot open spool, starting empty");
            }
        }
        spool.gauge();
        spool
    }

    /// Appends a report behind everything waiting, dropping the oldest ones
    /// while the bound is exceeded. The disk takes it unless it refuses or
    /// older reports still wait in memory; then memory holds it. A report
    /// neither can take is dropped, counted and returned as the error.
    pub fn push(&mut self, report: &HostReport) -> Result<(), Dropped> {
        let body = report.encode_to_vec();
        let counter = self.next;
        self.next += 1;
        self.write_back();
        let body = if self.overflow.is_empty() {
            match self.disk.write(counter, &body) {
                Ok(()) => {
                    self.disk_took(counter, body.len() as u64);
                    None
                }
                Err(error) => {
                    self.disk_refused(&error);
                    Some(body)
                }
            }
        } else {
            Some(body)
        };
        if let Some(body) = body
            && let Err(body) = self.overflow.push(counter, body)
        {
            let why = self.refusal.unwrap_or(Dropped::DiskFull);
            self.count_drop(why);
            if let Failure::Log { suppressed } = self.drop_log.failure(Instant::now()) {
                tracing::warn!(
                    dir = %self.disk.dir().display(),
                    why = why.as_str(),
                    bytes = body.len(),
                    overflow_bytes = self.overflow.bytes(),
                    suppressed,
                    "spool disk refuses and its memory overflow is full, dropping a report"
                );
            }
            self.gauge();
            return Err(why);
        }
        while self.bytes() > self.max_bytes && self.len() > 1 {
            self.remove_front();
            self.count_drop(Dropped::Bound);
        }
        self.gauge();
        Ok(())
    }

    /// The oldest waiting report. A file that cannot be read or no longer
    /// decodes is dropped, counted and skipped.
    pub fn front(&mut self) -> Option<Spooled> {
        loop {
            let (id, body) = if let Some(entry) = self.entries.front() {
                match self.disk.read(entry.counter) {
                    Ok(body) => (entry.counter, body),
                    Err(error) => {
                        if let Failure::Log { suppressed } = self.disk_log.failure(Instant::now()) {
                            tracing::warn!(path = %self.disk.path(entry.counter).display(), %error, suppressed, "cannot read spooled report, dropping it");
                        }
                        self.remove_front();
                        self.count_drop(Dropped::ReadError);
                        continue;
                    }
                }
            } else {
                let held = self.overflow.front()?;
                (held.counter, held.body.clone())
            };
            match HostReport::decode(body.as_slice()) {
                Ok(report) => return Some(Spooled { id, report }),
                Err(error) => {
                    tracing::warn!(id, %error, "dropping undecodable spooled report");
                    self.remove_front();
                    self.count_drop(Dropped::Undecodable);
                }
            }
        }
    }

    /// Removes report `id` after the collector acknowledged it (or refused
    /// it for good). An id no longer waiting (the bound dropped it meanwhile)
    /// removes nothing.
    pub fn ack(&mut self, id: u64) {
        let waiting = self.entries.front().map(|e| e.counter) == Some(id)
            || (self.entries.is_empty() && self.overflow.front().map(|h| h.counter) == Some(id));
        if waiting {
            self.remove_front();
        }
        self.gauge();
    }

    /// Writes what memory holds back to disk; what the disk still refuses is
    /// lost, counted and logged. Returns the number lost. Called when the
    /// agent stops (and when the spool is dropped).
    pub fn close(&mut self) -> u64 {
        self.write_back();
        let lost = self.overflow.len() as u64;
        if lost > 0 {
            let why = self.refusal.unwrap_or(Dropped::DiskFull);
            while self.overflow.pop_front().is_some() {
                self.count_drop(why);
            }
            tracing::warn!(
                dir = %self.disk.dir().display(),
                why = why.as_str(),
                lost,
                "spool disk still refuses at stop, reports held in memory are lost"
            );
        }
        self.gauge();
        lost
    }

    /// Reports waiting, on disk and in memory.
    pub fn len(&self) -> usize {
        self.entries.len() + self.overflow.len()
    }

    /// True when nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes waiting, on disk and in memory.
    pub fn bytes(&self) -> u64 {
        self.bytes + self.overflow.bytes()
    }

    /// Reports held in memory because the disk refused them.
    pub fn overflow_len(&self) -> usize {
        self.overflow.len()
    }

    /// Reports dropped (past the bound, beyond the memory budget, lost at
    /// stop, unreadable) since the spool was opened.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Moves held reports to disk, oldest first, while the disk takes them.
    fn write_back(&mut self) {
        let mut moved = 0u64;
        while let Some(held) = self.overflow.front() {
            match self.disk.write(held.counter, &held.body) {
                Ok(()) => {
                    let (counter, bytes) = (held.counter, held.body.len() as u64);
                    self.overflow.pop_front();
                    self.disk_took(counter, bytes);
                    moved += 1;
                }
                Err(error) => {
                    self.disk_refused(&error);
                    break;
                }
            }
        }
        if moved > 0 {
            tracing::info!(
                dir = %self.disk.dir().display(),
                moved,
                still_in_memory = self.overflow.len(),
                "spool memory overflow written back to disk"
            );
        }
    }

    fn disk_took(&mut self, counter: u64, bytes: u64) {
        self.entries.push_back(Entry { counter, bytes });
        self.bytes += bytes;
        self.refusal = None;
        if self.disk_log.success() {
            tracing::info!(dir = %self.disk.dir().display(), "spool writable again");
        }
    }

    fn disk_refused(&mut self, error: &io::Error) {
        let why = Dropped::of_write(error);
        self.refusal = Some(why);
        if let Failure::Log { suppressed } = self.disk_log.failure(Instant::now()) {
            tracing::warn!(
                dir = %self.disk.dir().display(),
                why = why.as_str(),
                %error,
                in_memory = self.overflow.len(),
                suppressed,
                "spool disk refuses reports, holding them in memory"
            );
        }
    }

    /// Forgets the oldest report (on disk, else in memory) and deletes its
    /// file. A file that cannot be deleted is logged and left behind: after
    /// a restart it is replayed, which the collector deduplicates by
    /// instance and sequence.
    fn remove_front(&mut self) {
        let Some(entry) = self.entries.pop_front() else {
            self.overflow.pop_front();
            return;
        };
        self.bytes -= entry.bytes;
        if let Err(error) = self.disk.remove(entry.counter)
            && let Failure::Log { suppressed } = self.disk_log.failure(Instant::now())
        {
            tracing::warn!(path = %self.disk.path(entry.counter).display(), %error, suppressed, "cannot remove spooled report");
        }
    }

    fn count_drop(&mut self, why: Dropped) {
        self.dropped += 1;
        metrics::counter!("gw502_agent_spool_dropped_total", "why" => why.as_str()).increment(1);
    }

    fn gauge(&self) {
        metrics::gauge!("gw502_agent_spool_reports").set(self.len() as f64);
        metrics::gauge!("gw502_agent_spool_bytes").set(self.bytes() as f64);
        metrics::gauge!("gw502_agent_spool_overflow_reports").set(self.overflow.len() as f64);
        metrics::gauge!("gw502_agent_spool_overflow_bytes").set(self.overflow.bytes() as f64);
    }

    /// Replaces how spool files are written (the seam tests inject disk
    /// errors through).
    #[cfg(test)]
    fn set_writer(&mut self, write: disk::WriteFile) {
        self.disk.set_writer(write);
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.overflow.is_empty() {
            self.close();
        }
    }
}
