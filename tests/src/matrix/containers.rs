//! The container stack of the matrix ([`Transport::Container`]): the proxy targets
//! `127.0.0.1:8080`, where `docker-proxy` publishes container `shop-web` running the
//! lab's `fault_app.py`. The origin host runs the Docker Engine from Debian's
//! `docker.io` as its `docker.service`, inside the nspawn host.
//!
//! What it takes to run dockerd in an nspawn host (found by trying, systemd 252, cgroup
//! v1): nspawn's system call filter refuses the keyring calls runc makes for every
//! container (`unable to join session keyring: operation not permitted`), so the host
//! lets `add_key keyctl request_key` through; nspawn mounts the cgroup v1 controllers
//! read-only (`mkdir /sys/fs/cgroup/cpuset/docker: read-only file system`), so a oneshot
//! unit re-mounts them writable (bind remount, inside the host's own mount namespace)
//! and the engine puts its cgroups under the host's own `gw502-lab/<host>` tree, removed
//! when it stops; the root is an overlay, so the engine stores images with `vfs`
//! (the image is an empty directory tree). `--iptables=false` keeps nftables untouched:
//! published ports go through `docker-proxy`, the shape this stack is about.
//!
//! The agent runs under the shipped unit plus the opt-in drop-in
//! `deploy/gw502-agent-containers.conf` (`SupplementaryGroups=docker`), the way an
//! operator turns the source on.

use crate::lab::{Host, HostSpec};
use crate::scenario::shapes::{self, MODE_FILE};

use super::Fault;

const FAULT_APP: &str = include_str!("../scenario/fault_app.py");
const CONTAINER_SH: &str = include_str!("../../fixtures/matrix/container.sh");
const DROP_IN: &str = include_str!("../../../deploy/gw502-agent-containers.conf");
const SCRIPT: &str = "/opt/gw502-lab/container.sh";
/// Present in the host, the app fills more memory at start than its limit allows.
const OOM_FLAG: &str = "/etc/gw502-lab/oom";

/// The unit that (re)creates the container at boot.
pub const APP_UNIT: &str = "shop-container.service";

/// The origin host's engine, its app container and the agent's opt-in drop-in.
pub fn host(spec: HostSpec) -> HostSpec {
    spec.allow_syscalls(&["add_key", "keyctl", "request_key"])
        .file(SCRIPT, CONTAINER_SH, 0o755)
        .file("/opt/gw502-lab/fault_app.py", FAULT_APP, 0o755)
        .file(MODE_FILE, "ok\n", 0o644)
        .file(
            "/etc/systemd/system/lab-cgroups.service",
            format!(
                "[Unit]\nDescription=writable cgroup v1 controllers for the container engine\n\
                 DefaultDependencies=no\nBefore=docker.service\n\n[Service]\nType=oneshot\n\
                 RemainAfterExit=yes\nExecStart={SCRIPT} cgroups\n"
            ),
            0o644,
        )
        .file(
            "/etc/systemd/system/docker.service",
            format!(
                "[Unit]\nDescription=Docker Application Container Engine (gw502 lab)\n\
                 Requires=lab-cgroups.service\nAfter=lab-cgroups.service network.target\n\n\
                 [Service]\nType=notify\nExecStart=/usr/sbin/dockerd --host unix:///run/docker.sock \
                 --group docker --iptables=false --ip-masq=false --storage-driver vfs \
                 --data-root /var/lib/docker --cgroup-parent /gw502-lab/%H/docker\n\
                 ExecStopPost={SCRIPT} uncgroup %H\nKillMode=process\nTimeoutStopSec=20\n\n\
                 [Install]\nWantedBy=multi-user.target\n"
            ),
            0o644,
        )
        .file(
            format!("/etc/systemd/system/{APP_UNIT}"),
            format!(
                "[Unit]\nDescription=the shop app container\nRequires=docker.service\n\
                 After=docker.service\n\n[Service]\nType=oneshot\nRemainAfterExit=yes\n\
                 ExecStartPre={SCRIPT} import\nExecStart={SCRIPT} run 0.0.0.0 8080\n\n\
                 [Install]\nWantedBy=multi-user.target\n"
            ),
            0o644,
        )
        .file(
            "/etc/systemd/system/gw502-agent.service.d/containers.conf",
            DROP_IN,
            0o644,
        )
        .enabled("docker")
        .enabled(APP_UNIT)
}

fn docker(app: &Host, args: &[&str]) -> anyhow::Result<()> {
    let mut all = vec!["docker"];
    all.extend_from_slice(args);
    app.exec_ok(&all)
}

fn recreate(app: &Host, bind: &str, port: &str) -> anyhow::Result<()> {
    app.exec_ok(&[SCRIPT, "run", bind, port])
}

/// Inject `fault` into the container stack on `app`; `None` for faults this stack
/// shares with loopback (the caller injects those).
pub fn inject(app: &Host, fault: Fault) -> Option<anyhow::Result<()>> {
    Some(match fault {
        Fault::ServiceDown => docker(app, &["stop", "-t", "1", "shop-web"]),
        // The app fails at start on its own config, again and again (restart policy).
        Fault::CrashLoop => shapes::set_mode(app, "crash")
            .and_then(|()| docker(app, &["restart", "-t", "1", "shop-web"])),
        // Recreated by hand on another host port; the proxy still targets 8080.
        Fault::WrongTarget => recreate(app, "0.0.0.0", "8081"),
        Fault::OomKilled => app
            .write_file(OOM_FLAG.as_ref(), "fill 128 MiB at start\n", 0o644)
            .and_then(|()| docker(app, &["restart", "-t", "1", "shop-web"])),
        // Every answer, the health check's included, is a 503.
        Fault::Unhealthy => shapes::set_mode(app, "status 503"),
        // The app binds 127.0.0.1 inside its own network namespace.
        Fault::BindMismatch => recreate(app, "127.0.0.1", "8080"),
        _ => return None,
    })
}
