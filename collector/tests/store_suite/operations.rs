//! Suite tests of leases, the delivery log and retention.

use gw502_collector::store::{NewDelivery, ObservationRow};

use super::incidents::upsert;
use super::reports::report;
use super::{DAY_MS, TestDb};

pub(crate) async fn leases_exclude_other_holders(db: &TestDb) {
    let (a, b) = (db.store().await, db.store().await);
    assert!(a.try_lease("prune", "c1", 10_000, 1_000).await.unwrap());
    assert!(!b.try_lease("prune", "c2", 10_000, 2_000).await.unwrap());
    assert!(a.try_lease("prune", "c1", 10_000, 5_000).await.unwrap()); // renewed until 15_000
    assert!(!b.try_lease("prune", "c2", 10_000, 14_999).await.unwrap());
    assert!(b.try_lease("other", "c2", 10_000, 14_999).await.unwrap());
    assert!(b.try_lease("prune", "c2", 10_000, 15_000).await.unwrap());
    assert!(!a.try_lease("prune", "c1", 10_000, 16_000).await.unwrap());
}

pub(crate) async fn deliveries_log(db: &TestDb) {
    let store = db.store().await;
    let (incident, _) = store
        .open_or_update_incident(&upsert("shop", "wrong_port", "a", 1_000))
        .await
        .unwrap();
    let (other, _) = store
        .open_or_update_incident(&upsert("shop", "timeout", "a", 1_000))
        .await
        .unwrap();
    let new = |incident_id, event: &str| NewDelivery {
        incident_id,
        receiver: "ops".into(),
        event: event.into(),
        at_ms: 1_100,
    };
    let first = store
        .insert_delivery(&new(incident.id, "firing"))
        .await
        .unwrap();
    let second = store
        .insert_delivery(&new(other.id, "firing"))
        .await
        .unwrap();
    store
        .update_delivery(first, "failed", 3, 1_200, "connect refused", 0)
        .await
        .unwrap();
    store
        .update_delivery(second, "delivered", 1, 1_300, "", 200)
        .await
        .unwrap();
    let mine = store.list_deliveries(Some(incident.id), 10).await.unwrap();
    assert_eq!(mine.len(), 1);
    let d = &mine[0];
    assert_eq!(
        (
            d.id,
            d.state.as_str(),
            d.attempts,
            d.created_at_ms,
            d.updated_at_ms
        ),
        (first, "failed", 3, 1_100, 1_200)
    );
    assert_eq!(
        (d.error.as_str(), d.http_status, d.event.as_str()),
        ("connect refused", 0, "firing")
    );
    let all: Vec<i64> = store
        .list_deliveries(None, 10)
        .await
        .unwrap()
        .iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(all, [second, first]);
    assert_eq!(store.list_deliveries(None, 1).await.unwrap().len(), 1);
}

pub(crate) async fn prune_keeps_open_incidents_and_last_full_report(db: &TestDb) {
    let store = db.store().await;
    let cutoff = 100 * DAY_MS;
    store
        .insert_report(&report("web1", "i1", 1, DAY_MS, true))
        .await
        .unwrap();
    store
        .insert_report(&report("web1", "i1", 2, 2 * DAY_MS, true))
        .await
        .unwrap();
    store
        .insert_report(&report("web1", "i1", 3, 3 * DAY_MS, false))
        .await
        .unwrap();
    store
        .insert_report(&report("web1", "i1", 4, 200 * DAY_MS, false))
        .await
        .unwrap();
    store
        .insert_report(&report("web2", "j1", 1, 300 * DAY_MS, true))
        .await
        .unwrap();
    let obs = |at_ms| ObservationRow {
        vantage: "collector/c1".into(),
        target: "public".into(),
        status: 502,
        outcome: "ok".into(),
        at_ms,
        body: vec![1],
    };
    store
        .insert_observation("shop", &obs(DAY_MS))
        .await
        .unwrap();
    store
        .insert_observation("shop", &obs(200 * DAY_MS))
        .await
        .unwrap();
    let (old_open, _) = store
        .open_or_update_incident(&upsert("shop", "wrong_port", "a", DAY_MS))
        .await
        .unwrap();
    let (old_resolved, _) = store
        .open_or_update_incident(&upsert("shop", "timeout", "a", DAY_MS))
        .await
        .unwrap();
    store
        .insert_delivery(&NewDelivery {
            incident_id: old_resolved.id,
            receiver: "ops".into(),
            event: "firing".into(),
            at_ms: DAY_MS,
        })
        .await
        .unwrap();
    store
        .resolve_incident(old_resolved.id, 2 * DAY_MS)
        .await
        .unwrap();
    let (new_resolved, _) = store
        .open_or_update_incident(&upsert("shop", "crash_loop", "a", DAY_MS))
        .await
        .unwrap();
    store
        .resolve_incident(new_resolved.id, 150 * DAY_MS)
        .await
        .unwrap();

    let stats = store.prune(cutoff).await.unwrap();
    assert_eq!(
        (stats.reports, stats.observations, stats.incidents),
        (2, 1, 1)
    );
    let kept = store.reports_since("web1", 0).await.unwrap();
    let seqs: Vec<u64> = kept.iter().map(|r| r.report.seq).collect();
    assert_eq!(seqs, [2, 4]);
    // Seq 2, the newest full snapshot, survives: the host's state starts there.
    assert_eq!(
        store.state_reports("web1", i64::MAX).await.unwrap()[0],
        kept[0].report.body
    );
    assert_eq!(store.observations_since("shop", 0).await.unwrap().len(), 1);
    assert!(store.get_incident(old_open.id).await.unwrap().is_some());
    assert!(store.get_incident(new_resolved.id).await.unwrap().is_some());
    assert!(store.get_incident(old_resolved.id).await.unwrap().is_none());
    assert!(
        store
            .incident_history(old_resolved.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_deliveries(Some(old_resolved.id), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.prune(cutoff).await.unwrap(), Default::default());
}

pub(crate) async fn served_units_keep_the_latest_sighting_and_are_pruned(db: &TestDb) {
    use gw502_collector::store::ServedRow;
    let store = db.store().await;
    let row = |unit: &str, seen_ms: i64| ServedRow {
        host_id: "app1".into(),
        unit: unit.into(),
        target: "10.0.0.13:8080".into(),
        proxy_host: "web1".into(),
        seen_ms,
    };
    store
        .record_served(&[row("app.service", 2_000), row("old.service", 1_000)])
        .await
        .unwrap();
    // An older sighting does not move the newest one back.
    store
        .record_served(&[row("app.service", 1_500)])
        .await
        .unwrap();
    assert_eq!(
        store.served_on("app1").await.unwrap(),
        [row("old.service", 1_000), row("app.service", 2_000)]
    );
    assert!(store.served_on("web1").await.unwrap().is_empty());
    store.prune(1_500).await.unwrap();
    assert_eq!(
        store.served_on("app1").await.unwrap(),
        [row("app.service", 2_000)]
    );
}
