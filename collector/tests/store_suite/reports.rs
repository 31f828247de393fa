//! Suite tests of reports, hosts, sites and observations.

use std::collections::BTreeMap;

use gw502_collector::store::{NewReport, ObservationRow, SiteRow};

use super::TestDb;

pub(crate) fn report(
    host: &str,
    instance: &str,
    seq: u64,
    generated: i64,
    full: bool,
) -> NewReport {
    NewReport {
        host_id: host.into(),
        agent_instance: instance.into(),
        seq,
        agent_version: format!("0.{seq}"),
        generated_at_ms: generated,
        received_at_ms: generated + 5,
        replayed: false,
        full_snapshot: full,
        interval_ms: 10_000,
        spool_dropped: seq,
        addresses: vec![format!("10.77.0.{seq}")],
        body: format!("body-{instance}-{seq}").into_bytes(),
        cross_probes: Vec::new(),
    }
}

pub(crate) async fn report_insert_is_idempotent(db: &TestDb) {
    let store = db.store().await;
    let r = report("web1", "i1", 1, 1_000, true);
    assert!(!store.insert_report(&r).await.unwrap().duplicate);
    assert!(store.insert_report(&r).await.unwrap().duplicate);
    // Another store on the same database sees the same key.
    assert!(db.store().await.insert_report(&r).await.unwrap().duplicate);
    let stored = store.reports_since("web1", 0).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].report, r);
    assert_eq!(
        store.get_host("web1").await.unwrap().unwrap().report_count,
        1
    );
    // The same seq from a new agent instance is a new report.
    assert!(
        !store
            .insert_report(&report("web1", "i2", 1, 2_000, false))
            .await
            .unwrap()
            .duplicate
    );
    assert_eq!(
        store.get_host("web1").await.unwrap().unwrap().report_count,
        2
    );
}

pub(crate) async fn host_row_follows_newest_report(db: &TestDb) {
    let store = db.store().await;
    store
        .insert_report(&report("web1", "i1", 2, 2_000, false))
        .await
        .unwrap();
    // Replayed older report: widens first_seen, does not overwrite newer fields.
    let mut old = report("web1", "i1", 1, 1_000, true);
    old.received_at_ms = 50_000;
    old.replayed = true;
    store.insert_report(&old).await.unwrap();
    store
        .insert_report(&report("web2", "j1", 7, 500, true))
        .await
        .unwrap();
    let host = store.get_host("web1").await.unwrap().unwrap();
    assert_eq!(host.first_seen_ms, 2_005);
    assert_eq!(host.last_seen_ms, 50_000);
    assert_eq!(host.last_generated_at_ms, 2_000);
    assert_eq!(host.agent_version, "0.2");
    assert_eq!(host.addresses, vec!["10.77.0.2".to_owned()]);
    assert_eq!(host.spool_dropped, 2);
    assert_eq!(host.interval_ms, 10_000);
    assert_eq!(host.report_count, 2);
    let hosts = store.list_hosts().await.unwrap();
    assert_eq!(
        hosts.iter().map(|h| h.host_id.as_str()).collect::<Vec<_>>(),
        ["web1", "web2"]
    );
    assert!(store.get_host("nope").await.unwrap().is_none());
}

pub(crate) async fn report_batch_matches_one_by_one(db: &TestDb) {
    let store = db.store().await;
    store
        .insert_report(&report("web1", "i1", 1, 1_000, true))
        .await
        .unwrap();
    // One batch: a stored key, a key twice, two hosts, and an older report after a newer one.
    let mut older = report("web1", "i1", 2, 500, false);
    older.received_at_ms = 90_000;
    let batch = [
        report("web1", "i1", 1, 1_000, true),
        report("web1", "i1", 3, 3_000, false),
        report("web2", "j1", 1, 700, true),
        report("web1", "i1", 3, 3_000, false),
        older,
    ];
    let duplicates: Vec<bool> = store
        .insert_reports(&batch)
        .await
        .unwrap()
        .iter()
        .map(|o| o.duplicate)
        .collect();
    assert_eq!(duplicates, [true, false, false, true, false]);
    let web1 = store.get_host("web1").await.unwrap().unwrap();
    assert_eq!(web1.report_count, 3);
    assert_eq!((web1.first_seen_ms, web1.last_seen_ms), (1_005, 90_000));
    assert_eq!(web1.last_generated_at_ms, 3_000);
    assert_eq!(web1.agent_version, "0.3");
    assert_eq!(
        store.get_host("web2").await.unwrap().unwrap().report_count,
        1
    );
    let seqs: Vec<u64> = store
        .reports_since("web1", 0)
        .await
        .unwrap()
        .iter()
        .map(|r| r.report.seq)
        .collect();
    assert_eq!(seqs, [2, 1, 3]);
    // A value out of range fails the whole batch before anything is written.
    let mut bad = report("web3", "k1", 1, 1_000, true);
    bad.seq = u64::MAX;
    let good = report("web3", "k1", 2, 1_000, true);
    assert!(store.insert_reports(&[good, bad]).await.is_err());
    assert!(store.get_host("web3").await.unwrap().is_none());
}

pub(crate) async fn reports_since_orders_by_generated_then_seq(db: &TestDb) {
    let store = db.store().await;
    for (seq, generated) in [(3, 3_000), (1, 1_000), (5, 2_000), (4, 2_000), (2, 500)] {
        store
            .insert_report(&report("web1", "i1", seq, generated, false))
            .await
            .unwrap();
    }
    let seqs: Vec<u64> = store
        .reports_since("web1", 1_000)
        .await
        .unwrap()
        .iter()
        .map(|r| r.report.seq)
        .collect();
    assert_eq!(seqs, [1, 4, 5, 3]);
    assert!(store.reports_since("web2", 0).await.unwrap().is_empty());
}

pub(crate) async fn state_reports_start_at_the_newest_full_snapshot(db: &TestDb) {
    let store = db.store().await;
    assert!(store.state_reports("web1", 0).await.unwrap().is_empty());
    for (seq, generated, full) in [
        (1, 1_000, true),
        (2, 2_000, false),
        (3, 3_000, true),
        (5, 4_000, false),
        (4, 4_000, false),
    ] {
        store
            .insert_report(&report("web1", "i1", seq, generated, full))
            .await
            .unwrap();
    }
    store
        .insert_report(&report("web2", "j1", 1, 9_000, true))
        .await
        .unwrap();
    let bodies = |window_start| {
        let store = store.clone();
        async move {
            store
                .state_reports("web1", window_start)
                .await
                .unwrap()
                .into_iter()
                .map(|b| String::from_utf8(b).unwrap())
                .collect::<Vec<_>>()
        }
    };
    // The window starts after the newest full snapshot: from the snapshot on.
    assert_eq!(bodies(3_500).await, ["body-i1-3", "body-i1-4", "body-i1-5"]);
    // The window starts before it: the whole window.
    assert_eq!(
        bodies(1_500).await,
        ["body-i1-2", "body-i1-3", "body-i1-4", "body-i1-5"]
    );
    // A host without a full snapshot: the window.
    store
        .insert_report(&report("web3", "k1", 1, 5_000, false))
        .await
        .unwrap();
    assert_eq!(store.state_reports("web3", 4_000).await.unwrap().len(), 1);
    assert!(store.state_reports("web3", 6_000).await.unwrap().is_empty());
}

pub(crate) async fn site_hosts_are_added_atomically(db: &TestDb) {
    let store = db.store().await;
    let configured = SiteRow {
        name: "shop".into(),
        url: "https://shop.example/".into(),
        origin: "config".into(),
        hosts: vec!["web9".into()],
        labels: BTreeMap::from([("team".to_owned(), "payments".to_owned())]),
    };
    store.upsert_site(&configured).await.unwrap();
    // Two collectors add hosts to the same sites at once: no addition is lost.
    let other = db.store().await;
    let pairs = |hosts: std::ops::Range<u32>| -> Vec<(String, String)> {
        hosts
            .flat_map(|i| ["shop", "blog"].map(|site| (site.to_owned(), format!("web{i}"))))
            .collect()
    };
    let (first, second) = (pairs(0..4), pairs(4..8));
    let (a, b) = tokio::join!(store.add_site_hosts(&first), other.add_site_hosts(&second),);
    a.unwrap();
    b.unwrap();
    store.add_site_hosts(&pairs(0..2)).await.unwrap();
    let sites = store.list_sites().await.unwrap();
    let web = |range: std::ops::Range<u32>| range.map(|i| format!("web{i}")).collect::<Vec<_>>();
    assert_eq!(sites[0].name, "blog");
    assert_eq!(sites[0].origin, "discovered");
    assert_eq!(sites[0].hosts, web(0..8));
    // A configured site keeps its URL, origin and labels.
    assert_eq!(sites[1].url, configured.url);
    assert_eq!(sites[1].origin, "config");
    assert_eq!(sites[1].labels, configured.labels);
    let mut shop = web(0..8);
    shop.push("web9".into());
    assert_eq!(sites[1].hosts, shop);
}

pub(crate) async fn sites_and_observations_round_trip(db: &TestDb) {
    let store = db.store().await;
    let mut site = SiteRow {
        name: "shop".into(),
        url: "https://shop.example/".into(),
        origin: "config".into(),
        hosts: vec!["web1".into(), "web2".into()],
        labels: BTreeMap::from([("team".to_owned(), "payments".to_owned())]),
    };
    store.upsert_site(&site).await.unwrap();
    site.origin = "discovered".into();
    site.hosts.pop();
    store.upsert_site(&site).await.unwrap();
    assert_eq!(store.list_sites().await.unwrap(), vec![site]);

    let obs = gw502_proto::v1::EdgeObservation {
        site: "shop".into(),
        vantage: "collector/c1".into(),
        target: "public".into(),
        at_ms: 2_000,
        outcome: "ok".into(),
        status: 502,
        ..Default::default()
    };
    let row = ObservationRow::from_observation(&obs);
    store.insert_observation("shop", &row).await.unwrap();
    let mut older = row.clone();
    older.at_ms = 1_000;
    older.target = "origin/web1".into();
    store.insert_observation("shop", &older).await.unwrap();
    store.insert_observation("blog", &row).await.unwrap();
    assert_eq!(
        store.observations_since("shop", 0).await.unwrap(),
        vec![older, row.clone()]
    );
    assert_eq!(
        store.observations_since("shop", 1_500).await.unwrap(),
        vec![row.clone()]
    );
    let decoded: gw502_proto::v1::EdgeObservation = prost::Message::decode(&row.body[..]).unwrap();
    assert_eq!(decoded, obs);
}

fn cross_probe(site: &str, at_ms: i64) -> (String, ObservationRow) {
    let obs = gw502_proto::v1::EdgeObservation {
        site: site.into(),
        vantage: "agent/web1".into(),
        target: "public".into(),
        at_ms,
        outcome: "refused".into(),
        ..Default::default()
    };
    (site.to_owned(), ObservationRow::from_observation(&obs))
}

/// Makes every insert of an observation of the site `boom` fail inside the
/// transaction, as a constraint or a lost connection would.
async fn refuse_site_boom(db: &TestDb) {
    match &db.admin {
        None => {
            let url = format!("sqlite://{}", db.url);
            let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
            sqlx::query(
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON observations \
                 WHEN NEW.site = 'boom' BEGIN SELECT RAISE(ABORT, 'refused'); END",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        Some((admin, schema)) => {
            sqlx::query(&format!(
                "CREATE FUNCTION {schema}.refuse_boom() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN IF NEW.site = 'boom' THEN RAISE EXCEPTION 'refused'; END IF; \
                 RETURN NEW; END $$"
            ))
            .execute(admin)
            .await
            .unwrap();
            sqlx::query(&format!(
                "CREATE TRIGGER refuse_boom BEFORE INSERT ON {schema}.observations \
                 FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_boom()"
            ))
            .execute(admin)
            .await
            .unwrap();
        }
    }
}

pub(crate) async fn cross_probes_land_with_their_report(db: &TestDb) {
    let store = db.store().await;
    let mut r = report("web1", "i1", 1, 1_000, true);
    r.cross_probes = vec![cross_probe("shop", 1_000), cross_probe("blog", 1_001)];
    assert!(!store.insert_report(&r).await.unwrap().duplicate);
    assert_eq!(
        store.observations_since("shop", 0).await.unwrap(),
        vec![r.cross_probes[0].1.clone()]
    );
    assert_eq!(store.observations_since("blog", 0).await.unwrap().len(), 1);
    // A duplicate report stores its cross probes no second time.
    assert!(store.insert_report(&r).await.unwrap().duplicate);
    assert_eq!(store.observations_since("shop", 0).await.unwrap().len(), 1);

    // One cross probe that cannot be stored fails its whole batch: neither
    // the reports nor any of their cross probes land.
    refuse_site_boom(db).await;
    let mut fine = report("web1", "i1", 2, 2_000, false);
    fine.cross_probes = vec![cross_probe("shop", 2_000)];
    let mut failing = report("web2", "j1", 1, 2_000, true);
    failing.cross_probes = vec![cross_probe("blog", 2_000), cross_probe("boom", 2_000)];
    assert!(
        store
            .insert_reports(&[fine.clone(), failing])
            .await
            .is_err()
    );
    assert_eq!(store.reports_since("web1", 0).await.unwrap().len(), 1);
    assert!(store.get_host("web2").await.unwrap().is_none());
    assert_eq!(store.observations_since("shop", 0).await.unwrap().len(), 1);
    assert_eq!(store.observations_since("blog", 0).await.unwrap().len(), 1);
    // The same report without the refused probe is stored with its probes.
    assert!(!store.insert_report(&fine).await.unwrap().duplicate);
    assert_eq!(store.observations_since("shop", 0).await.unwrap().len(), 2);
}
