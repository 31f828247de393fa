//! Evidence items for host facts the rules cite again and again (a unit's
//! state, a listener, the sockets section as a whole), worded the way an
//! operator would read `systemctl status` and `ss -tlnp`.

use gw502_proto::v1::{Listener, UnitState};

use super::evidence::{Evidence, Source};
use super::host::HostView;
use super::target::describe_listener;

/// `app.service failed/failed result=exit-code restarts=3`.
pub(crate) fn unit(h: &HostView<'_>, u: &UnitState) -> Evidence {
    let mut detail = format!("{} {}/{}", u.name, u.active_state, u.sub_state);
    if !u.result.is_empty() && u.result != "success" {
        detail.push_str(&format!(" result={}", u.result));
    }
    if u.n_restarts > 0 {
        detail.push_str(&format!(" restarts={}", u.n_restarts));
    }
    match crash_signal(u) {
        Some(Crash::Signal(sig)) => detail.push_str(&format!(" signal={sig}")),
        Some(Crash::Relayed(sig)) => {
            detail.push_str(&format!(" exit_status={} (128+{sig})", u.exec_main_status))
        }
        None if u.exec_main_status != 0 => {
            detail.push_str(&format!(" exit_status={}", u.exec_main_status));
        }
        None => {}
    }
    let at = if u.state_change_ms > 0 {
        u.state_change_ms
    } else {
        h.ev.last_seen_ms
    };
    Evidence::new(Source::Systemd, h.id(), at, detail)
}

/// How a signal ended a unit's main process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Crash {
    /// Killed or dumped by it (`CLD_KILLED`, `CLD_DUMPED`): `ExecMainStatus` is the signal.
    Signal(&'static str),
    /// Exited with 128+N: a supervisor (HAProxy's master, a shell wrapper, a
    /// container runtime) passing on a child the signal ended.
    Relayed(&'static str),
}

impl Crash {
    /// The signal's name.
    pub(crate) fn signal(self) -> &'static str {
        match self {
            Crash::Signal(sig) | Crash::Relayed(sig) => sig,
        }
    }
}

/// The signal that ended the unit's main process, read from `ExecMainCode` and
/// `ExecMainStatus` (Linux numbering; the agent reports from Linux hosts). Only the
/// signals a process dies of unasked: a stop's SIGTERM or an `ExecStop` kill is not a crash.
pub(crate) fn crash_signal(u: &UnitState) -> Option<Crash> {
    const CLD_EXITED: i32 = 1;
    const CLD_KILLED: i32 = 2;
    const CLD_DUMPED: i32 = 3;
    let name = |n: i32| match n {
        4 => Some("SIGILL"),
        6 => Some("SIGABRT"),
        7 => Some("SIGBUS"),
        8 => Some("SIGFPE"),
        9 => Some("SIGKILL"),
        11 => Some("SIGSEGV"),
        _ => None,
    };
    match u.exec_main_code {
        CLD_KILLED | CLD_DUMPED => name(u.exec_main_status).map(Crash::Signal),
        CLD_EXITED if u.exec_main_status > 128 => {
            name(u.exec_main_status - 128).map(Crash::Relayed)
        }
        _ => None,
    }
}

/// `app.service listens on 127.0.0.1:3000 (tcp4)`.
pub(crate) fn listener(h: &HostView<'_>, l: &Listener) -> Evidence {
    let mut detail = describe_listener(l);
    if l.backlog > 0 && l.queued > 0 {
        detail.push_str(&format!(" queue {}/{}", l.queued, l.backlog));
    }
    if l.overflows > 0 {
        detail.push_str(&format!(" overflows {}", l.overflows));
    }
    Evidence::new(Source::Sockets, h.id(), h.ev.last_seen_ms, detail)
}

/// `nothing listens on 127.0.0.1:3000`.
pub(crate) fn nothing_on(h: &HostView<'_>, what: &str) -> Evidence {
    Evidence::new(
        Source::Sockets,
        h.id(),
        h.ev.last_seen_ms,
        format!("nothing listens on {what}"),
    )
}

/// Whether an active-ish state counts as running.
pub(crate) fn is_running(u: &UnitState) -> bool {
    matches!(u.active_state.as_str(), "active" | "reloading")
}

/// Whether the unit is down (inactive, failed, or between restarts).
pub(crate) fn is_down(u: &UnitState) -> bool {
    matches!(
        u.active_state.as_str(),
        "inactive" | "failed" | "deactivating"
    ) || (u.active_state == "activating" && u.sub_state == "auto-restart")
}
