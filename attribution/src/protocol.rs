//! Protocol disagreement read from host state: the proxy config says which
//! protocol it speaks to a target (`proxy_pass` is HTTP, `fastcgi_pass` is
//! FastCGI), and some programs speak one protocol on every socket they serve
//! (a PHP-FPM pool or fcgiwrap speaks only FastCGI). When the two disagree,
//! the reset, close or timeout the proxy and the direct probe report is the
//! disagreement's symptom, not the upstream's own fault: proxies log the
//! symptom (`recv() failed (104: Connection reset by peer)` when nginx sends
//! HTTP to PHP-FPM), never the mismatch.
//!
//! [`mark`] puts `protocol_mismatch` in front of such a trigger's candidates;
//! [`disagreement`] is what the handoff rule cites: the config line and the
//! listener with its program.

use gw502_proto::v1::Listener;

use super::Cx;
use super::evidence::{Evidence, Source};
use super::facts;
use super::finding::Trigger;
use super::host::HostView;
use super::target::{Target, is_tcp, listener_accepts};
use super::verdict::Cause;

/// What a disagreement shows: the config's target line and the listener.
pub(crate) struct Disagreement {
    /// The protocol the proxy config speaks to the target.
    pub config: String,
    /// The protocol the listener's program speaks.
    pub served: &'static str,
    /// The program (unit, else process) listening there.
    pub program: String,
    /// The config line and the listener, as evidence.
    pub evidence: Vec<Evidence>,
}

/// The protocol a listener's program speaks on every socket it serves, known
/// by its name: PHP-FPM (`php-fpm8.2`, `php8.2-fpm.service`) and fcgiwrap
/// speak only FastCGI. `None` for programs that may speak anything.
pub(crate) fn speaks(l: &Listener) -> Option<&'static str> {
    let fastcgi = |name: &str| {
        let name = name.trim_end_matches(".service").to_ascii_lowercase();
        name.starts_with("php-fpm")
            || (name.starts_with("php") && name.ends_with("-fpm"))
            || name.starts_with("fcgiwrap")
    };
    (fastcgi(&l.process) || fastcgi(&l.unit)).then_some("fastcgi")
}

/// The config's protocol for `target` on `h` and the listener serving it,
/// when the listener's program speaks another protocol.
pub(crate) fn disagreement(cx: &Cx<'_>, h: &HostView<'_>, target: &Target) -> Option<Disagreement> {
    let conf = h
        .targets()
        .into_iter()
        .find(|c| Target::from_config(c).is_some_and(|x| x.same(target)))?;
    let th = cx.host_of(h, target)?;
    let l = th.listeners().iter().find(|l| match &target.unix {
        Some(path) => l.family == "unix" && &l.address == path,
        None => {
            is_tcp(l)
                && target.port.is_some_and(|p| l.port == u32::from(p))
                && listener_accepts(l, &target.host)
        }
    })?;
    let served = speaks(l)?;
    let config = conf.protocol.to_ascii_lowercase();
    if config.is_empty() || config == served {
        return None;
    }
    let line = Evidence::new(
        Source::ProxyConfig,
        h.id(),
        h.ev.last_seen_ms,
        format!(
            "{} {} {} (location {})",
            conf.directive, conf.protocol, conf.address, conf.location
        ),
    );
    let program = if l.unit.is_empty() {
        l.process.clone()
    } else {
        l.unit.clone()
    };
    Some(Disagreement {
        config,
        served,
        program,
        evidence: vec![line, facts::listener(&th, l)],
    })
}

/// Puts `protocol_mismatch` first among the candidates of every trigger that
/// reports a broken exchange (reset, close, bad header, timeout) with a
/// target whose listener speaks another protocol than the config says.
pub(crate) fn mark(cx: &Cx<'_>, h: &HostView<'_>, triggers: &mut [Trigger]) {
    for t in triggers.iter_mut() {
        let exchange = !t.candidates.is_empty()
            && t.candidates.iter().all(|c| {
                matches!(
                    c,
                    Cause::PrematureClose
                        | Cause::ConnectionReset
                        | Cause::InvalidHeader
                        | Cause::Timeout
                        | Cause::ProtocolMismatch
                )
            });
        if !exchange || t.candidates.first() == Some(&Cause::ProtocolMismatch) {
            continue;
        }
        if t.target
            .as_ref()
            .is_some_and(|x| disagreement(cx, h, x).is_some())
        {
            t.candidates.retain(|c| *c != Cause::ProtocolMismatch);
            t.candidates.insert(0, Cause::ProtocolMismatch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(process: &str, unit: &str) -> Listener {
        Listener {
            family: "unix".into(),
            address: "/run/php/php8.2-fpm.sock".into(),
            process: process.into(),
            unit: unit.into(),
            ..Listener::default()
        }
    }

    #[test]
    fn php_fpm_and_fcgiwrap_speak_fastcgi_others_are_unknown() {
        assert_eq!(
            speaks(&listener("php-fpm8.2", "php8.2-fpm.service")),
            Some("fastcgi")
        );
        assert_eq!(speaks(&listener("", "php-fpm.service")), Some("fastcgi"));
        assert_eq!(speaks(&listener("fcgiwrap", "")), Some("fastcgi"));
        assert_eq!(speaks(&listener("python3", "app.service")), None);
        assert_eq!(speaks(&listener("php", "shop.service")), None);
    }
}
