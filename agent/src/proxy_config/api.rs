//! Completes a proxy's config from its own API on loopback, for the proxies
//! that have one: Traefik's `/api/http/routers` and `/api/http/services`
//! (every provider's routers, not only the file provider's, and each
//! server's `serverStatus`) and Envoy's admin `/config_dump` and
//! `/clusters?format=json` (dynamic listeners and clusters, each host's
//! health flags). Asked only for a proxy whose config was found, at the
//! address the agent config gives; an API that does not answer leaves the
//! config as the files gave it. The answers are read by the pure readers of
//! `gw502-proxy` (`traefik::api`, `envoy::config`, `envoy::admin`).

use std::net::SocketAddr;
use std::time::Duration;

use gw502_proto::v1::ProxyConfig;
use gw502_proxy::{ProxyKind, envoy, traefik};

use super::http_get::{ApiError, get};

/// Asks the API of `kind` at `addr` and merges its answer into `config`.
pub async fn complete(
    kind: ProxyKind,
    addr: SocketAddr,
    config: &mut ProxyConfig,
    timeout: Duration,
) -> Result<(), ApiError> {
    match kind {
        ProxyKind::Traefik => {
            let [routers, services] = traefik::api::PATHS;
            let routers = get(addr, routers, timeout).await?;
            let services = get(addr, services, timeout).await?;
            let (servers, targets) = traefik::api::parse(&routers, &services).ok_or_else(|| {
                unreadable(addr, "/api/http/*", "not the routers and services arrays")
            })?;
            // The API knows every provider's routers: it replaces the file
            // provider's view.
            config.targets = targets;
            for s in servers {
                if !config.servers.iter().any(|c| c.names == s.names) {
                    config.servers.push(s);
                }
            }
        }
        ProxyKind::Envoy => {
            let dump = get(addr, envoy::admin::CONFIG_DUMP, timeout).await?;
            let found = envoy::config::parse_config_dump(&dump)
                .ok_or_else(|| unreadable(addr, envoy::admin::CONFIG_DUMP, "not a config dump"))?;
            config.targets = found.config.targets;
            config.servers = found.config.servers;
            for log in found.config.error_logs {
                if !config.error_logs.contains(&log) {
                    config.error_logs.push(log);
                }
            }
            let clusters = get(addr, envoy::admin::CLUSTERS_JSON, timeout).await?;
            let hosts = envoy::admin::parse_clusters_json(&clusters).ok_or_else(|| {
                unreadable(addr, envoy::admin::CLUSTERS_JSON, "not a clusters answer")
            })?;
            envoy::admin::apply(&mut config.targets, &hosts);
        }
        _ => {}
    }
    Ok(())
}

fn unreadable(addr: SocketAddr, path: &str, reason: &str) -> ApiError {
    ApiError::Answer {
        addr,
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests;
