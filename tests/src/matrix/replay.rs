//! The replay corpus: for each matrix cell, the evidence the engine saw (a
//! [`SiteEvidence`]: the site, the edge probes and every serving host's folded report) at
//! the moment the cell was judged, with the verdict the cell expects and whether the lab
//! run passed. Fixtures are JSON with the protobuf messages base64-encoded, one file per
//! cell under `tests/fixtures/replay/`; `tests/tests/replay.rs` replays them all through
//! `gw502_attribution::attribute()` without a lab.
//!
//! [`Recorder`] reads the evidence exactly as the collector does
//! (`incidents::site_evidence` over the collector's own store), through a second,
//! read-only view of the collector's database.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use gw502_collector::attribution::{self, HostEvidence, SiteEvidence, SiteRef, Verdict};
use gw502_collector::config::Config;
use gw502_collector::hub::Hub;
use gw502_collector::sites::{HostIndex, site_views};
use gw502_proto::v1::{EdgeObservation, HostReport};
use gw502_vocab::clock::now_ms;
use prost::Message;
use serde_json::{Value, json};

/// A cell's expected verdict as `layer / cause / status / emitted_by`, from the
/// matrix's model (`None` for a healthy control).
pub fn expectation(cell: &super::Cell) -> Option<[String; 4]> {
    cell.expected().map(|e| {
        [
            e.layer.to_owned(),
            e.cause.to_owned(),
            e.status.to_string(),
            e.emitted_by.to_owned(),
        ]
    })
}

/// One recorded cell.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The cell id.
    pub cell: String,
    /// `layer / cause / status / emitted_by`, or `None` for a healthy control: the
    /// model's when the cell was recorded (a replay judges by the model of now, see
    /// [`expectation`]).
    pub expected: Option<[String; 4]>,
    /// Whether the lab judged the cell a pass.
    pub passed: bool,
    /// What the engine saw.
    pub evidence: SiteEvidence,
}

impl Recorded {
    /// The fixture's JSON.
    pub fn to_json(&self) -> Value {
        let e = &self.evidence;
        json!({
            "cell": self.cell,
            "expected": self.expected.as_ref().map(|[l, c, s, b]| json!({
                "layer": l, "cause": c, "status": s.parse::<u64>().unwrap_or(0), "emitted_by": b,
            })),
            "passed": self.passed,
            "site": {"name": e.site.name, "url": e.site.url, "origin_hosts": e.site.origin_hosts},
            "now_ms": e.now_ms,
            "edge": e.edge.iter().map(|o| B64.encode(o.encode_to_vec())).collect::<Vec<_>>(),
            "hosts": e.hosts.iter().map(|h| json!({
                "host_id": h.host_id,
                "last_seen_ms": h.last_seen_ms,
                "interval_ms": h.interval_ms,
                "state": B64.encode(h.state.encode_to_vec()),
            })).collect::<Vec<_>>(),
        })
    }

    /// Parse a fixture.
    pub fn from_json(v: &Value) -> anyhow::Result<Recorded> {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|s| s.as_str().unwrap_or_default().to_owned())
                .collect()
        };
        let edge = strings(&v["edge"])
            .iter()
            .map(|b| Ok(EdgeObservation::decode(B64.decode(b)?.as_slice())?))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let hosts = v["hosts"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                Ok(HostEvidence {
                    host_id: text(&h["host_id"]),
                    last_seen_ms: h["last_seen_ms"].as_i64().unwrap_or(0),
                    interval_ms: h["interval_ms"].as_u64().unwrap_or(0) as u32,
                    state: HostReport::decode(B64.decode(text(&h["state"]))?.as_slice())?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let expected = v["expected"].as_object().map(|e| {
            [
                text(&e["layer"]),
                text(&e["cause"]),
                e["status"].as_u64().unwrap_or(0).to_string(),
                text(&e["emitted_by"]),
            ]
        });
        Ok(Recorded {
            cell: text(&v["cell"]),
            expected,
            passed: v["passed"].as_bool().unwrap_or(false),
            evidence: SiteEvidence {
                site: SiteRef {
                    name: text(&v["site"]["name"]),
                    url: text(&v["site"]["url"]),
                    origin_hosts: strings(&v["site"]["origin_hosts"]),
                },
                now_ms: v["now_ms"].as_i64().unwrap_or(0),
                edge,
                hosts,
            },
        })
    }

    /// Write the fixture as `<dir>/<cell>.json`.
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}.json", self.cell));
        let text = serde_json::to_string_pretty(&self.to_json())?;
        std::fs::write(&path, text + "\n").with_context(|| format!("write {}", path.display()))
    }

    /// Replay: whether the engine's verdicts on this evidence match the expectation
    /// (layer and cause exact, and for `strict` also status and emitted_by; a control
    /// must produce no verdict).
    pub fn judge(&self, verdicts: &[Verdict], strict: bool) -> bool {
        let Some([layer, cause, status, by]) = &self.expected else {
            return verdicts.is_empty();
        };
        let words = |v: &Verdict| {
            let p = gw502_proto::v1::Verdict::from(v);
            (p.layer, p.cause, p.status.to_string(), p.emitted_by)
        };
        verdicts.len() == 1
            && verdicts.iter().map(words).all(|(l, c, s, b)| {
                l == *layer && c == *cause && (!strict || (s == *status && b == *by))
            })
    }

    /// Whether the layer alone matches (controls: no verdict).
    pub fn judge_layer(&self, verdicts: &[Verdict]) -> bool {
        let Some([layer, ..]) = &self.expected else {
            return verdicts.is_empty();
        };
        verdicts
            .iter()
            .any(|v| gw502_proto::v1::Verdict::from(v).layer == *layer)
    }

    /// The engine's verdicts now.
    pub fn replay(&self) -> Vec<Verdict> {
        attribution::attribute(&self.evidence)
    }
}

/// Reads a site's evidence the way the collector does, from the collector's database.
pub struct Recorder {
    hub: Arc<Hub>,
}

impl Recorder {
    /// A recorder over the collector configured by the file at `config`.
    pub async fn open(config: &Path) -> anyhow::Result<Recorder> {
        use gw502_collector::auth::Mode;
        use gw502_collector::deliveries::StoreDeliveryLog;
        use gw502_collector::edge::EdgeProber;
        use gw502_collector::routing::Dispatcher;
        use gw502_collector::store::Store;
        let config = Config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let store = Store::connect(&config.database).await?;
        let (_, closing) = tokio::sync::watch::channel(false);
        let dispatcher = Dispatcher::spawn(
            Arc::new(config.router.clone()),
            Arc::new(StoreDeliveryLog::new(store.clone())),
            std::future::ready(()),
            &gw502_supervise::Supervisor::new(
                "gw502_lab_recorder_loop_restarts_total",
                gw502_supervise::Policy::default(),
            ),
        );
        let hub = Hub {
            prober: EdgeProber::new(config.edge.clone(), "lab-recorder"),
            store,
            // Serves no RPC: the mode is never consulted.
            mode: Mode::Plaintext,
            events: tokio::sync::broadcast::channel(4).0,
            wake: tokio::sync::Notify::new(),
            dirty: Default::default(),
            live: gw502_collector::hub::Live::new(&config, dispatcher),
            leases: Default::default(),
            outbox: tokio::sync::Notify::new(),
            reload_hooks: Default::default(),
            closing,
            nudges: tokio::sync::broadcast::channel(4).0,
            failing: Default::default(),
            config,
        };
        Ok(Recorder { hub: Arc::new(hub) })
    }

    /// The evidence of `site` now.
    pub async fn evidence(&self, site: &str) -> anyhow::Result<SiteEvidence> {
        let views = site_views(&self.hub).await?;
        let view = views
            .into_iter()
            .find(|v| v.name == site)
            .with_context(|| format!("no site {site}"))?;
        let hosts = self.hub.store.list_hosts().await?;
        let index = HostIndex::new(&hosts);
        Ok(gw502_collector::incidents::site_evidence(
            &self.hub,
            &view,
            &index,
            now_ms(),
            Vec::new(),
        )
        .await?)
    }
}
