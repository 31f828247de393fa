//! Tests of the spool: order across restarts, the bound, unreadable files,
//! and a disk that refuses. The disk refuses for real on a small tmpfs
//! (when the test may mount one) and through the [`super::disk::WriteFile`]
//! seam, which fails only the write of the bytes and leaves every other
//! file operation real.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gw502_testkit::tmpfs::Tmpfs;

use super::*;

fn report(seq: u64) -> HostReport {
    HostReport {
        host_id: "web1".into(),
        seq,
        ..Default::default()
    }
}

/// A report of about `kib` KiB.
fn big_report(seq: u64, kib: usize) -> HostReport {
    HostReport {
        seq,
        agent_version: "x".repeat(kib * 1024),
        ..report(seq)
    }
}

fn one() -> u64 {
    report(1).encode_to_vec().len() as u64
}

fn drain(spool: &mut Spool) -> Vec<u64> {
    let mut seqs = Vec::new();
    while let Some(s) = spool.front() {
        seqs.push(s.report.seq);
        spool.ack(s.id);
    }
    seqs
}

fn files(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".report"))
            .count()
    })
}

/// A disk that answers ENOSPC to every write while `full` is set.
fn refusing(spool: &mut Spool) -> Arc<AtomicBool> {
    let full = Arc::new(AtomicBool::new(false));
    let flag = full.clone();
    spool.set_writer(Arc::new(move |path, body| {
        if flag.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        fs::write(path, body)
    }));
    full
}

#[test]
fn replays_in_order_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20, 1 << 20);
    for seq in 1..=5 {
        spool.push(&report(seq)).unwrap();
    }
    drop(spool);
    let mut spool = Spool::open(dir.path(), 1 << 20, 1 << 20);
    assert_eq!(spool.len(), 5);
    spool.push(&report(6)).unwrap();
    assert_eq!(drain(&mut spool), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(spool.bytes(), 0);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn drops_oldest_past_the_bound_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), one() * 3, 1 << 20);
    for seq in 1..=10 {
        spool.push(&report(seq)).unwrap();
    }
    assert_eq!(spool.dropped(), 7);
    assert_eq!(drain(&mut spool), vec![8, 9, 10]);
}

#[test]
fn an_ack_of_a_report_the_bound_dropped_removes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), one() * 2, 1 << 20);
    spool.push(&report(1)).unwrap();
    let sending = spool.front().unwrap();
    // While report 1 is being sent, two more push it out of the bound.
    spool.push(&report(2)).unwrap();
    spool.push(&report(3)).unwrap();
    assert_eq!(spool.dropped(), 1);
    spool.ack(sending.id);
    assert_eq!(drain(&mut spool), vec![2, 3]);
}

#[test]
fn corrupt_files_are_dropped_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20, 1 << 20);
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

#[test]
fn a_refusing_disk_keeps_reports_in_memory_in_order_and_writes_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20, 1 << 20);
    let full = refusing(&mut spool);
    spool.push(&report(1)).unwrap();
    spool.push(&report(2)).unwrap();
    full.store(true, Ordering::SeqCst);
    for seq in 3..=5 {
        spool.push(&report(seq)).unwrap();
    }
    assert_eq!((spool.len(), spool.overflow_len()), (5, 3));
    assert_eq!(spool.dropped(), 0);
    assert_eq!(files(dir.path()), 2);
    // The sender takes the disk first: report 1 is delivered meanwhile.
    let first = spool.front().unwrap();
    assert_eq!(first.report.seq, 1);
    spool.ack(first.id);
    // Space is back: the next push writes the held ones back first, in order.
    full.store(false, Ordering::SeqCst);
    spool.push(&report(6)).unwrap();
    assert_eq!(spool.overflow_len(), 0);
    assert_eq!(files(dir.path()), 5);
    // So a restart now loses nothing.
    drop(spool);
    let mut spool = Spool::open(dir.path(), 1 << 20, 1 << 20);
    assert_eq!(drain(&mut spool), vec![2, 3, 4, 5, 6]);
    assert_eq!(spool.dropped(), 0);
}

#[test]
fn past_the_memory_budget_the_new_report_is_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20, one() * 2);
    let full = refusing(&mut spool);
    full.store(true, Ordering::SeqCst);
    spool.push(&report(1)).unwrap();
    spool.push(&report(2)).unwrap();
    assert_eq!(spool.push(&report(3)), Err(Dropped::DiskFull));
    assert_eq!(spool.dropped(), 1);
    // Sending from memory frees budget for the next one.
    let first = spool.front().unwrap();
    spool.ack(first.id);
    spool.push(&report(4)).unwrap();
    assert_eq!(drain(&mut spool), vec![2, 4]);
    assert_eq!(spool.dropped(), 1);
}

#[test]
fn what_only_memory_holds_at_stop_is_counted_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20, 1 << 20);
    let full = refusing(&mut spool);
    spool.push(&report(1)).unwrap();
    full.store(true, Ordering::SeqCst);
    spool.push(&report(2)).unwrap();
    spool.push(&report(3)).unwrap();
    assert_eq!(spool.close(), 2);
    assert_eq!(spool.dropped(), 2);
    assert_eq!(spool.len(), 1);
    drop(spool);
    let mut spool = Spool::open(dir.path(), 1 << 20, 1 << 20);
    assert_eq!(drain(&mut spool), vec![1]);
}

#[test]
fn a_report_sent_from_memory_is_acknowledged_after_it_moved_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20, 1 << 20);
    let full = refusing(&mut spool);
    full.store(true, Ordering::SeqCst);
    spool.push(&report(1)).unwrap();
    let sending = spool.front().unwrap();
    // While it is sent the disk recovers and the next push moves it there.
    full.store(false, Ordering::SeqCst);
    spool.push(&report(2)).unwrap();
    assert_eq!((spool.overflow_len(), files(dir.path())), (0, 2));
    spool.ack(sending.id);
    assert_eq!(files(dir.path()), 1);
    assert_eq!(drain(&mut spool), vec![2]);
}

#[test]
fn a_write_error_holds_the_report_and_the_next_write_puts_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), 1 << 20, 1 << 20);
    // The temporary file's path is taken by a directory: the write fails
    // as it would on a read-only or broken file system.
    let blocker = dir.path().join(format!("{:020}.tmp", 1));
    fs::create_dir(&blocker).unwrap();
    spool.push(&report(1)).unwrap();
    assert_eq!((spool.overflow_len(), spool.dropped()), (1, 0));
    fs::remove_dir(&blocker).unwrap();
    spool.push(&report(2)).unwrap();
    assert_eq!((spool.overflow_len(), files(dir.path())), (0, 2));
    assert_eq!(drain(&mut spool), vec![1, 2]);
}

#[test]
fn an_unusable_directory_never_stops_the_spool() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"").unwrap();
    let mut spool = Spool::open(&file, 1 << 20, 0);
    assert_eq!(spool.push(&report(1)), Err(Dropped::WriteError));
    assert_eq!(spool.front(), None);
    // A spool directory removed under a running agent is made again.
    let gone = dir.path().join("spool");
    let mut spool = Spool::open(&gone, 1 << 20, 0);
    fs::remove_dir(&gone).unwrap();
    spool.push(&report(3)).unwrap();
    assert_eq!(drain(&mut spool), vec![3]);
}

#[test]
fn a_full_disk_loses_nothing_and_the_spool_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let fs_dir = dir.path().join("small");
    let _tmpfs = match Tmpfs::mount(&fs_dir, 64) {
        Ok(tmpfs) => tmpfs,
        Err(reason) => {
            eprintln!("skipped: cannot mount a tmpfs ({reason})");
            return;
        }
    };
    let spool_dir = fs_dir.join("spool");
    let mut spool = Spool::open(&spool_dir, 1 << 20, 1 << 20);
    let mut seq = 0;
    while spool.overflow_len() == 0 {
        seq += 1;
        assert!(seq < 100, "64 KiB never filled up");
        spool.push(&big_report(seq, 8)).unwrap();
    }
    assert_eq!(spool.refusal, Some(Dropped::DiskFull));
    let on_disk = files(&spool_dir);
    assert_eq!(on_disk as u64, seq - 1);
    // Still full: more reports wait in memory, nothing is dropped.
    for _ in 0..3 {
        seq += 1;
        spool.push(&big_report(seq, 8)).unwrap();
    }
    assert_eq!((spool.overflow_len(), spool.dropped()), (4, 0));
    let leftovers: Vec<_> = fs::read_dir(&spool_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "partial files left: {leftovers:?}");
    // Delivering two frees their space: the next push writes held reports
    // back to disk as far as they fit.
    for _ in 0..2 {
        let sent = spool.front().unwrap();
        spool.ack(sent.id);
    }
    seq += 1;
    spool.push(&big_report(seq, 8)).unwrap();
    assert!(spool.overflow_len() < 5, "nothing went back to disk");
    assert_eq!(files(&spool_dir), on_disk - 2 + 5 - spool.overflow_len());
    assert_eq!(drain(&mut spool), (3..=seq).collect::<Vec<_>>());
    assert_eq!(spool.dropped(), 0);
}
