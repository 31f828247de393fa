//! The hosts of the cause tests: `gw502-testkit`'s [`Host`] builder (the same
//! one the attribution table uses) at the wall clock, so the collector's
//! evidence window always holds the report's times. The functions here only
//! fix the clock; every section and time offset comes from the kit.

use gw502_testkit::Clock;
pub use gw502_testkit::{Host, ngx_line};

/// A host with every section present and empty, serving `site`.
pub fn host(id: &str, site: &str) -> Host {
    gw502_testkit::host(id, site, Clock::live())
}

/// nginx serving `site`, proxying to `upstream` (`http://127.0.0.1:3000`,
/// `fastcgi://unix:/run/php/php8.2-fpm.sock`).
pub fn nginx(id: &str, site: &str, upstream: &str) -> Host {
    gw502_testkit::nginx(id, site, upstream, Clock::live())
}

/// The usual web host: nginx to app.service on 127.0.0.1:3000.
pub fn web(id: &str, site: &str) -> Host {
    gw502_testkit::web(id, site, Clock::live())
}

/// nginx to php8.2-fpm on its default socket.
pub fn php(id: &str, site: &str) -> Host {
    gw502_testkit::php(id, site, Clock::live())
}
