//! Routing rules: which receivers an incident goes to. Rules are checked in
//! order against the incident's verdict, site, host and the site's labels;
//! the first match wins unless it says `continue`, and the default receiver
//! takes what no rule matched. Pure: no I/O.

use std::collections::BTreeMap;
use std::sync::Arc;

use gw502_proto::v1::Incident;

use super::receiver::Receiver;
use super::retry::RetryPolicy;

/// Where one incident goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The receiver's name in `[routing.receivers]`.
    pub receiver: String,
    /// The owner the matching rule sets instead of the verdict's.
    pub owner_override: Option<String>,
}

/// A match value: exact, or a glob where `*` stands for any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob(pub(crate) String);

impl Glob {
    /// Whether `text` matches. Linear in practice; at worst
    /// pattern length times text length.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let pat = self.0.as_bytes();
        let txt = text.as_bytes();
        let (mut p, mut t) = (0, 0);
        // Where the last `*` was, and the text position it currently covers up to.
        let mut star: Option<(usize, usize)> = None;
        while t < txt.len() {
            if p < pat.len() && pat[p] == b'*' {
                star = Some((p, t));
                p += 1;
            } else if p < pat.len() && pat[p] == txt[t] {
                p += 1;
                t += 1;
            } else if let Some((sp, st)) = star {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        pat[p..].iter().all(|&c| c == b'*')
    }
}

/// The conditions of one rule; absent ones match anything.
#[derive(Debug, Clone, Default)]
pub(crate) struct Matcher {
    pub(crate) owner: Option<Glob>,
    pub(crate) layer: Option<Glob>,
    pub(crate) cause: Option<Glob>,
    pub(crate) emitted_by: Option<Glob>,
    pub(crate) site: Option<Glob>,
    pub(crate) host: Option<Glob>,
    /// Every label must be present on the site with a matching value.
    pub(crate) labels: Vec<(String, Glob)>,
}

impl Matcher {
    fn matches(&self, incident: &Incident, labels: &BTreeMap<String, String>) -> bool {
        let verdict = incident.verdict.as_ref();
        let field = |glob: &Option<Glob>, value: Option<&str>| {
            glob.as_ref()
                .is_none_or(|g| g.matches(value.unwrap_or_default()))
        };
        field(&self.owner, verdict.map(|v| v.owner.as_str()))
            && field(&self.layer, verdict.map(|v| v.layer.as_str()))
            && field(&self.cause, verdict.map(|v| v.cause.as_str()))
            && field(&self.emitted_by, verdict.map(|v| v.emitted_by.as_str()))
            && field(&self.site, Some(&incident.site))
            && field(&self.host, Some(&incident.host))
            && self
                .labels
                .iter()
                .all(|(k, g)| labels.get(k).is_some_and(|v| g.matches(v)))
    }
}

/// One validated rule.
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) matcher: Matcher,
    pub(crate) receiver: String,
    pub(crate) owner: Option<String>,
    pub(crate) continue_matching: bool,
}

/// Delivery limits shared by every receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Deliveries waiting per receiver before new ones are dropped.
    pub(crate) queue_capacity: usize,
    /// Deliveries in flight per receiver.
    pub(crate) max_concurrent: usize,
}

/// Validated routing: the rules, the receivers they name and the delivery
/// policy. Built by [`super::RoutingSettings::validate`].
#[derive(Debug, Clone)]
pub struct Router {
    pub(crate) rules: Vec<Rule>,
    pub(crate) receivers: BTreeMap<String, Arc<Receiver>>,
    pub(crate) default_receiver: Option<String>,
    pub(crate) retry: RetryPolicy,
    pub(crate) limits: Limits,
    pub(crate) client: reqwest::Client,
}

impl Router {
    /// The receivers an incident goes to, each once, in rule order. Empty
    /// when no rule matches and there is no default receiver.
    pub fn route(&self, incident: &Incident, site_labels: &BTreeMap<String, String>) -> Vec<Route> {
        let mut routes: Vec<Route> = Vec::new();
        let mut matched = false;
        for rule in &self.rules {
            if !rule.matcher.matches(incident, site_labels) {
                continue;
            }
            matched = true;
            if !routes.iter().any(|r| r.receiver == rule.receiver) {
                routes.push(Route {
                    receiver: rule.receiver.clone(),
                    owner_override: rule.owner.clone(),
                });
            }
            if !rule.continue_matching {
                break;
            }
        }
        if !matched && let Some(default) = &self.default_receiver {
            routes.push(Route {
                receiver: default.clone(),
                owner_override: None,
            });
        }
        routes
    }

    /// The receiver of that name.
    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.get(name).map(|r| r.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let table = [
            ("app", "app", true),
            ("app", "apps", false),
            ("*", "", true),
            ("*", "anything", true),
            ("shop.*", "shop.example", true),
            ("shop.*", "www.shop.example", false),
            ("*.example", "www.shop.example", true),
            ("*shop*", "www.shop.example", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("a*b", "abab", true),
            ("", "", true),
            ("", "x", false),
            ("**", "x", true),
        ];
        for (pat, text, want) in table {
            assert_eq!(Glob(pat.into()).matches(text), want, "{pat:?} vs {text:?}");
        }
    }
}
