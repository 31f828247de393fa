//! gw502-supervise: background loops that are restarted when they fail, the
//! way a supervisor tree restarts a child.
//!
//! A loop is made by a factory, so a restart starts from fresh state. When a
//! run panics or returns an error, the supervisor logs it
//! (`tracing::error!` with the loop name), counts it in the restart counter
//! given to [`Supervisor::new`] (labelled `loop`), waits a backoff and calls
//! the factory again. A run that returns `Ok(())` has finished and is not
//! restarted. When a loop needs more than [`Policy::budget`] restarts within
//! [`Policy::window`], the supervisor gives up on it and records its name:
//! the daemon watches [`Supervisor::gave_up`] and exits non-zero, so systemd
//! (`Restart=on-failure`) restarts the whole process. A collector that kept
//! answering RPCs while its evaluation loop was dead would look healthy and
//! be wrong, which is worse than one that restarts.
//!
//! # Layout
//!
//! - [`Supervisor`]: the restart counter, the policy and the give-up signal,
//!   shared by every loop of one daemon; [`Supervisor::run`] supervises one
//!   loop in place, [`Supervisor::spawn`] on its own task.
//! - [`Policy`]: backoff and restart budget.

#![warn(missing_docs)]

use std::collections::VecDeque;
use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How a supervisor restarts a failing loop and when it gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The wait before the first restart; it doubles with each restart
    /// still inside the window.
    pub first_backoff: Duration,
    /// The longest wait between restarts.
    pub max_backoff: Duration,
    /// The most restarts allowed within `window`; one more gives up.
    pub budget: usize,
    /// The window restarts are counted in.
    pub window: Duration,
}

impl Default for Policy {
    /// One second doubling up to a minute; five restarts within ten minutes.
    fn default() -> Self {
        Policy {
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            budget: 5,
            window: Duration::from_secs(600),
        }
    }
}

/// How a supervised loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// A run returned `Ok(())`.
    Finished,
    /// The loop used up its restart budget.
    GaveUp,
}

/// Supervises the loops of one daemon. Cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    metric: &'static str,
    policy: Policy,
    gave_up: watch::Sender<Option<&'static str>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("metric", &self.metric)
            .field("policy", &self.policy)
            .field("gave_up", &*self.gave_up.borrow())
            .finish()
    }
}

impl Supervisor {
    /// A supervisor counting restarts in the counter `metric`.
    pub fn new(metric: &'static str, policy: Policy) -> Self {
        Supervisor {
            metric,
            policy,
            gave_up: watch::channel(None).0,
        }
    }

    /// Resolves with the name of the first loop the supervisor gave up on.
    pub fn gave_up(&self) -> impl Future<Output = &'static str> + Send + 'static {
        let mut rx = self.gave_up.subscribe();
        async move {
            loop {
                if let Some(name) = *rx.borrow_and_update() {
                    return name;
                }
                if rx.changed().await.is_err() {
                    // Every sender is gone: nothing can give up any more.
                    return std::future::pending().await;
                }
            }
        }
    }

    /// Supervises the loop `name` on its own task.
    pub fn spawn<F, Fut, E>(&self, name: &'static str, factory: F) -> JoinHandle<Ended>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Display + Send + 'static,
    {
        tokio::spawn(self.clone().run(name, factory))
    }

    /// Runs the loop made by `factory`, restarting it after a panic or an
    /// error, until a run finishes or the restart budget is used up.
    pub async fn run<F, Fut, E>(self, name: &'static str, mut factory: F) -> Ended
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let mut restarts: VecDeque<Instant> = VecDeque::new();
        loop {
            let reason = match AssertUnwindSafe(factory()).catch_unwind().await {
                Ok(Ok(())) => return Ended::Finished,
                Ok(Err(error)) => error.to_string(),
                Err(panic) => panic_message(panic.as_ref()),
            };
            let now = Instant::now();
            while restarts
                .front()
                .is_some_and(|at| now.duration_since(*at) >= self.policy.window)
            {
                restarts.pop_front();
            }
            if restarts.len() >= self.policy.budget {
                tracing::error!(
                    r#loop = name,
                    error = %reason,
                    restarts = restarts.len(),
                    window_s = self.policy.window.as_secs(),
                    "loop keeps failing, giving up"
                );
                self.gave_up.send_if_modified(|first| {
                    let unset = first.is_none();
                    if unset {
                        *first = Some(name);
                    }
                    unset
                });
                return Ended::GaveUp;
            }
            let backoff = self.backoff(restarts.len());
            restarts.push_back(now);
            metrics::counter!(self.metric, "loop" => name).increment(1);
            tracing::error!(
                r#loop = name,
                error = %reason,
                backoff_ms = backoff.as_millis() as u64,
                "loop failed, restarting"
            );
            tokio::time::sleep(backoff).await;
        }
    }

    fn backoff(&self, recent: usize) -> Duration {
        let factor = 1u32 << recent.min(16);
        self.policy
            .first_backoff
            .saturating_mul(factor)
            .min(self.policy.max_backoff)
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text payload".to_string());
    format!("panicked: {text}")
}

#[cfg(test)]
mod tests;
