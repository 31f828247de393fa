//! Which hosts serve a site: those configured as its origins, those whose
//! proxy config (virtual server or upstream target server names, with nginx
//! wildcard forms) or access log names it, and, when nothing matches and only
//! one host reports at all, that host as an explicit assumption.

use super::evidence::SiteEvidence;
use super::host::{HostView, Serves};
use super::target::{SiteAddr, name_matches};

/// The hosts serving the site, with how each was matched.
pub(crate) fn serving<'a>(ev: &'a SiteEvidence, site: &'a SiteAddr) -> Vec<HostView<'a>> {
    let view = |h, serves| HostView {
        ev: h,
        site,
        serves,
    };
    let mut out: Vec<HostView<'a>> = ev
        .hosts
        .iter()
        .filter(|h| ev.site.origin_hosts.iter().any(|o| o == &h.host_id))
        .map(|h| view(h, Serves::Configured))
        .collect();
    for h in &ev.hosts {
        if !out.iter().any(|v| v.ev.host_id == h.host_id)
            && names_site(&view(h, Serves::Discovered))
        {
            out.push(view(h, Serves::Discovered));
        }
    }
    if out.is_empty() && ev.site.origin_hosts.is_empty() && ev.hosts.len() == 1 {
        out.push(view(&ev.hosts[0], Serves::OnlyHost));
    }
    out
}

/// Whether the host's proxy config or access log names the site.
fn names_site(view: &HostView<'_>) -> bool {
    let h = &view.site.host;
    let config = view.proxies().iter().any(|p| {
        p.servers
            .iter()
            .any(|s| s.names.iter().any(|n| name_matches(n, h)))
            || p.targets
                .iter()
                .any(|t| t.server_names.iter().any(|n| name_matches(n, h)))
    });
    config
        || view
            .ev
            .state
            .access_log
            .as_ref()
            .is_some_and(|a| a.counts.iter().any(|c| name_matches(&c.vhost, h)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_server_name_forms() {
        assert!(name_matches("shop.example", "shop.example"));
        assert!(name_matches("*.example", "shop.example"));
        assert!(!name_matches("*.example", "example"));
        assert!(name_matches(".example", "example"));
        assert!(name_matches("shop.*", "shop.example"));
        assert!(!name_matches("blog.example", "shop.example"));
        assert!(!name_matches("_", "shop.example"));
    }
}
