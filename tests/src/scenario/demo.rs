//! The demo fleet of `deploy/demo.sh`: three lab hosts, one of them broken, so a newcomer
//! sees a real attribution within a minute.
//!
//! `web1` (nginx in front of an app) and `php1` (nginx in front of PHP-FPM) are healthy;
//! `web2` starts healthy, then a config change points its nginx at port 8081 while its
//! app keeps listening on 8080, the classic `handoff / wrong_port` after a deploy. (Had
//! `web2` been broken before its agent ever saw the app serve, nothing would tie the app
//! to the target, and the honest verdict would be `insufficient_evidence`.) Each host runs the agent; the collector probes one site per
//! host. [`hold`] keeps the fleet up, printing the `gw502ctl` command line, until Enter or
//! Ctrl-C, then the fleet is torn down as usual.

use std::io::BufRead;
use std::time::Duration;

use crate::lab::fixtures;

use super::shapes::{reload_site, web_host};
use super::{LabFleet, LabSite};

/// The sites of the demo fleet, one per host.
pub fn sites() -> Vec<LabSite> {
    vec![
        LabSite::new("web1", "http://10.77.0.11/", &["web1"]),
        LabSite::new("web2", "http://10.77.0.12/", &["web2"]),
        LabSite::new("php1", "http://10.77.0.13/index.php", &["php1"]),
    ]
}

/// Boot the demo fleet: collector, three healthy hosts with agents, then break `web2`.
pub fn start() -> anyhow::Result<LabFleet> {
    let mut fleet = LabFleet::start(&sites())?;
    fleet.boot(vec![
        web_host("web1", 1),
        web_host("web2", 2),
        fixtures::php_host("php1", 3, 4),
    ])?;
    fleet.wait_reports("web2", 2, Duration::from_secs(30))?;
    reload_site(
        fleet.host("web2")?,
        &fixtures::nginx_proxy(80, "127.0.0.1:8081"),
    )?;
    Ok(fleet)
}

/// Print how to query the fleet, then wait for Enter or Ctrl-C.
pub fn hold(fleet: &LabFleet) {
    println!(
        "\nthe demo fleet is up: web1 and php1 are healthy, web2 is broken.\n\
         ask the collector yourself:\n\n  {} incidents\n  {} hosts\n\n\
         press Enter or Ctrl-C to tear the fleet down",
        fleet.ctl_command_line(false),
        fleet.ctl_command_line(false)
    );
    fleet.runtime().block_on(async {
        // Enter ends the hold; a closed stdin (not a terminal) leaves only Ctrl-C.
        let enter = async {
            let read = tokio::task::spawn_blocking(|| {
                std::io::stdin().lock().read_line(&mut String::new())
            });
            if !matches!(read.await, Ok(Ok(n)) if n > 0) {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = enter => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    });
}
