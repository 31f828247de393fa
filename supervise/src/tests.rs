//! The supervisor under a paused clock, with a recorder that keeps the
//! restart counter of the test's thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};

use super::*;

/// Counters by name and labels, e.g. `restarts{loop=eval}`.
#[derive(Default)]
struct Counts(Mutex<HashMap<String, Arc<AtomicU64>>>);

impl Counts {
    fn get(&self, key: &str) -> u64 {
        let counters = self.0.lock().expect("counts lock");
        counters.get(key).map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

impl Recorder for Counts {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let mut counters = self.0.lock().expect("counts lock");
        Counter::from_arc(counters.entry(name).or_default().clone())
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

fn policy() -> Policy {
    Policy {
        first_backoff: Duration::from_secs(1),
        max_backoff: Duration::from_secs(8),
        budget: 3,
        window: Duration::from_secs(60),
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_loop_is_restarted_with_backoff_and_counted() {
    let counts = Counts::default();
    let _local = metrics::set_default_local_recorder(&counts);
    let supervisor = Supervisor::new("restarts", policy());
    let runs = AtomicUsize::new(0);
    let started = Instant::now();
    let ended = supervisor
        .clone()
        .run("eval", || {
            let run = runs.fetch_add(1, Ordering::SeqCst);
            async move {
                match run {
                    0 => panic!("evaluation bug"),
                    1 => Err("store gone"),
                    _ => Ok(()),
                }
            }
        })
        .await;
    assert_eq!(ended, Ended::Finished);
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(counts.get("restarts{loop=eval}"), 2);
    // 1 s after the first failure, 2 s after the second.
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert!(supervisor.gave_up().now_or_never().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_loop_that_panics_forever_is_given_up_and_reported() {
    let counts = Counts::default();
    let _local = metrics::set_default_local_recorder(&counts);
    let supervisor = Supervisor::new("restarts", policy());
    let gave_up = supervisor.gave_up();
    let ended = supervisor
        .clone()
        .run("probes", || async {
            panic!("always") as Result<(), String>
        })
        .await;
    assert_eq!(ended, Ended::GaveUp);
    assert_eq!(counts.get("restarts{loop=probes}"), 3);
    assert_eq!(gave_up.await, "probes");
}

#[tokio::test(start_paused = true)]
async fn failures_spread_wider_than_the_window_never_give_up() {
    let supervisor = Supervisor::new("restarts", policy());
    let runs = AtomicUsize::new(0);
    let ended = supervisor
        .run("retention", || {
            let run = runs.fetch_add(1, Ordering::SeqCst);
            async move {
                if run == 10 {
                    return Ok(());
                }
                // Healthy for a while, then an error: one failure per window.
                tokio::time::sleep(Duration::from_secs(61)).await;
                Err(format!("run {run} failed"))
            }
        })
        .await;
    assert_eq!(ended, Ended::Finished);
    assert_eq!(runs.load(Ordering::SeqCst), 11);
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let supervisor = Supervisor::new("restarts", policy());
    let secs: Vec<u64> = (0..6).map(|n| supervisor.backoff(n).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 8, 8]);
}
