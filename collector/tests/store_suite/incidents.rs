//! Suite tests of incidents: dedup, concurrency, resolution, counters,
//! filters and the change feed.

use gw502_collector::store::{Change, IncidentFilter, IncidentUpsert, StoreError};

use super::{DAY_MS, TestDb};

pub(crate) fn upsert(site: &str, cause: &str, summary: &str, at_ms: i64) -> IncidentUpsert {
    IncidentUpsert {
        site: site.into(),
        host: "web1".into(),
        layer: "handoff".into(),
        cause: cause.into(),
        status: 502,
        emitted_by: "proxy".into(),
        owner: "platform".into(),
        confidence: 0.9,
        summary: summary.into(),
        next_check: "ss -ltnp".into(),
        verdict: format!("verdict:{summary}").into_bytes(),
        at_ms,
    }
}

pub(crate) async fn incidents_dedup_by_key(db: &TestDb) {
    let store = db.store().await;
    let (first, change) = store
        .open_or_update_incident(&upsert("shop", "wrong_port", "a", 1_000))
        .await
        .unwrap();
    assert_eq!(
        (change, first.state.as_str(), first.opened_at_ms),
        (Change::Opened, "open", 1_000)
    );
    let (same, change) = store
        .open_or_update_incident(&upsert("shop", "wrong_port", "a", 2_000))
        .await
        .unwrap();
    assert_eq!(
        (change, same.id, same.last_seen_at_ms, same.updated_at_ms),
        (Change::Unchanged, first.id, 2_000, 1_000)
    );
    let (updated, change) = store
        .open_or_update_incident(&upsert("shop", "wrong_port", "b", 3_000))
        .await
        .unwrap();
    assert_eq!(
        (change, updated.id, updated.summary.as_str()),
        (Change::Updated, first.id, "b")
    );
    assert_eq!(updated.verdict, b"verdict:b");
    // Same summary again: no new history row.
    store
        .open_or_update_incident(&upsert("shop", "wrong_port", "b", 4_000))
        .await
        .unwrap();
    let history = store.incident_history(first.id).await.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|h| (h.state.as_str(), h.summary.as_str(), h.at_ms))
            .collect::<Vec<_>>(),
        [("open", "a", 1_000), ("open", "b", 3_000)]
    );
    let (other, change) = store
        .open_or_update_incident(&upsert("shop", "bind_mismatch", "a", 5_000))
        .await
        .unwrap();
    assert_eq!(change, Change::Opened);
    assert_ne!(other.id, first.id);
    let mut no_host = upsert("shop", "wrong_port", "a", 5_000);
    no_host.host = String::new();
    assert_eq!(
        store.open_or_update_incident(&no_host).await.unwrap().1,
        Change::Opened
    );
    assert_eq!(store.open_incidents(Some("shop")).await.unwrap().len(), 3);
    assert!(store.open_incidents(Some("blog")).await.unwrap().is_empty());
}

pub(crate) async fn concurrent_upserts_open_one_incident(db: &TestDb) {
    let stores = [db.store().await, db.store().await];
    let mut tasks = Vec::new();
    for n in 0..16 {
        let store = stores[n % 2].clone();
        tasks.push(tokio::spawn(async move {
            store
                .open_or_update_incident(&upsert("shop", "wrong_port", "a", 1_000 + n as i64))
                .await
                .unwrap()
        }));
    }
    let mut changes = Vec::new();
    for task in tasks {
        changes.push(task.await.unwrap());
    }
    assert_eq!(
        changes.iter().filter(|(_, c)| *c == Change::Opened).count(),
        1,
        "{changes:?}"
    );
    assert!(changes.iter().all(|(row, _)| row.id == changes[0].0.id));
    let open = stores[1].open_incidents(Some("shop")).await.unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].last_seen_at_ms, 1_015);
    assert_eq!(
        stores[0].incident_history(open[0].id).await.unwrap().len(),
        1
    );
    assert_eq!(stores[0].incident_changes_since(0).await.unwrap().len(), 1);
}

pub(crate) async fn resolved_key_opens_a_new_incident(db: &TestDb) {
    let store = db.store().await;
    let (first, _) = store
        .open_or_update_incident(&upsert("shop", "wrong_port", "a", 1_000))
        .await
        .unwrap();
    let resolved = store
        .resolve_incident(first.id, 2_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (resolved.state.as_str(), resolved.resolved_at_ms),
        ("resolved", Some(2_000))
    );
    assert!(
        store
            .resolve_incident(first.id, 3_000)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .resolve_incident(999_999, 3_000)
            .await
            .unwrap()
            .is_none()
    );
    let (second, change) = store
        .open_or_update_incident(&upsert("shop", "wrong_port", "a", 4_000))
        .await
        .unwrap();
    assert_eq!(change, Change::Opened);
    assert_ne!(second.id, first.id);
    let states: Vec<String> = store
        .incident_history(first.id)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.state)
        .collect();
    assert_eq!(states, ["open", "resolved"]);
    assert_eq!(
        store.get_incident(first.id).await.unwrap().unwrap().state,
        "resolved"
    );
}

pub(crate) async fn good_and_bad_counters(db: &TestDb) {
    let store = db.store().await;
    let (incident, _) = store
        .open_or_update_incident(&upsert("shop", "wrong_port", "a", 1_000))
        .await
        .unwrap();
    for want in 1..=3 {
        assert_eq!(
            store
                .record_good_observation(incident.id, 1_000 + want)
                .await
                .unwrap(),
            want as u32
        );
    }
    store
        .record_bad_observation(incident.id, 2_000)
        .await
        .unwrap();
    assert_eq!(
        store
            .record_good_observation(incident.id, 3_000)
            .await
            .unwrap(),
        1
    );
    let row = store.get_incident(incident.id).await.unwrap().unwrap();
    assert_eq!(
        (
            row.good_observations,
            row.bad_observations,
            row.last_seen_at_ms
        ),
        (1, 1, 3_000)
    );
    assert!(matches!(
        store.record_good_observation(424_242, 1).await,
        Err(StoreError::NoSuchIncident { id: 424_242 })
    ));
    assert!(matches!(
        store.record_bad_observation(424_242, 1).await,
        Err(StoreError::NoSuchIncident { .. })
    ));
}

pub(crate) async fn incident_filters(db: &TestDb) {
    let store = db.store().await;
    let mut ids = Vec::new();
    for (n, (site, layer, owner)) in [
        ("shop", "handoff", "platform"),
        ("shop", "upstream", "app"),
        ("blog", "handoff", "platform"),
        ("blog", "edge", "cdn"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut u = upsert(site, &format!("cause{n}"), "s", (n as i64 + 1) * DAY_MS);
        u.layer = layer.into();
        u.owner = owner.into();
        ids.push(store.open_or_update_incident(&u).await.unwrap().0.id);
    }
    store.resolve_incident(ids[0], 10 * DAY_MS).await.unwrap();
    let list = |f: IncidentFilter| {
        let store = store.clone();
        async move {
            store
                .list_incidents(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.id)
                .collect::<Vec<_>>()
        }
    };
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        list(IncidentFilter::default()).await,
        [ids[3], ids[2], ids[1]]
    );
    assert_eq!(
        list(IncidentFilter {
            all: true,
            ..Default::default()
        })
        .await,
        [ids[0], ids[3], ids[2], ids[1]]
    );
    assert_eq!(
        list(IncidentFilter {
            site: some("shop"),
            ..Default::default()
        })
        .await,
        [ids[1]]
    );
    assert_eq!(
        list(IncidentFilter {
            all: true,
            site: some("shop"),
            ..Default::default()
        })
        .await,
        [ids[0], ids[1]]
    );
    assert_eq!(
        list(IncidentFilter {
            layer: some("handoff"),
            ..Default::default()
        })
        .await,
        [ids[2]]
    );
    assert_eq!(
        list(IncidentFilter {
            owner: some("cdn"),
            ..Default::default()
        })
        .await,
        [ids[3]]
    );
    let since = IncidentFilter {
        all: true,
        since_ms: Some(3 * DAY_MS),
        ..Default::default()
    };
    assert_eq!(list(since.clone()).await, [ids[0], ids[3], ids[2]]);
    assert_eq!(
        list(IncidentFilter { limit: 2, ..since }).await,
        [ids[0], ids[3]]
    );
    let both = IncidentFilter {
        site: some("blog"),
        layer: some("edge"),
        owner: some("cdn"),
        since_ms: Some(0),
        ..Default::default()
    };
    assert_eq!(list(both).await, [ids[3]]);
}

pub(crate) async fn change_feed_spans_stores(db: &TestDb) {
    let (a, b) = (db.store().await, db.store().await);
    assert_eq!(b.incident_change_cursor().await.unwrap(), 0);
    let (incident, _) = a
        .open_or_update_incident(&upsert("shop", "wrong_port", "a", 1_000))
        .await
        .unwrap();
    b.open_or_update_incident(&upsert("shop", "wrong_port", "a", 1_500))
        .await
        .unwrap(); // unchanged: no entry
    b.open_or_update_incident(&upsert("shop", "wrong_port", "b", 2_000))
        .await
        .unwrap();
    a.resolve_incident(incident.id, 3_000).await.unwrap();
    let feed = b.incident_changes_since(0).await.unwrap();
    let kinds: Vec<&str> = feed.iter().map(|(_, _, k)| k.as_str()).collect();
    assert_eq!(kinds, ["opened", "updated", "resolved"]);
    assert!(feed.windows(2).all(|w| w[0].0 < w[1].0));
    assert!(
        feed.iter()
            .all(|(_, row, _)| row.id == incident.id && row.state == "resolved")
    );
    let cursor = feed[2].0;
    assert_eq!(a.incident_change_cursor().await.unwrap(), cursor);
    assert!(a.incident_changes_since(cursor).await.unwrap().is_empty());
    a.open_or_update_incident(&upsert("blog", "timeout", "a", 4_000))
        .await
        .unwrap();
    let next = b.incident_changes_since(cursor).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(
        (next[0].1.site.as_str(), next[0].2.as_str()),
        ("blog", "opened")
    );
}

/// Two causes on one host are two incidents with their own counters: the
/// stale one resolves (with its own change) while the other stays open.
pub(crate) async fn causes_of_one_host_resolve_apart(db: &TestDb) {
    let store = db.store().await;
    let cursor = store.incident_change_cursor().await.unwrap();
    let mut boot = upsert("shop", "proxy_down", "nginx is inactive", 1_000);
    boot.layer = "proxy".into();
    let (boot, _) = store.open_or_update_incident(&boot).await.unwrap();
    let mut app = upsert("shop", "service_down", "app.service is inactive", 2_000);
    app.layer = "upstream".into();
    let (app, change) = store.open_or_update_incident(&app).await.unwrap();
    assert_eq!(change, Change::Opened);
    assert_ne!(app.id, boot.id);
    for at in [3_000, 4_000] {
        store.record_bad_observation(app.id, at).await.unwrap();
        store.record_good_observation(boot.id, at).await.unwrap();
    }
    let boot_row = store.get_incident(boot.id).await.unwrap().unwrap();
    let app_row = store.get_incident(app.id).await.unwrap().unwrap();
    assert_eq!(
        (boot_row.good_observations, app_row.good_observations),
        (2, 0)
    );
    assert_eq!(app_row.bad_observations, 2);
    let resolved = store
        .resolve_incident(boot.id, 5_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (resolved.state.as_str(), resolved.resolved_at_ms),
        ("resolved", Some(5_000))
    );
    let open = store.open_incidents(Some("shop")).await.unwrap();
    assert_eq!(
        open.iter()
            .map(|i| (i.id, i.cause.as_str()))
            .collect::<Vec<_>>(),
        [(app.id, "service_down")]
    );
    let feed: Vec<(i64, String)> = store
        .incident_changes_since(cursor)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, row, kind)| (row.id, kind))
        .collect();
    assert_eq!(
        feed,
        [
            (boot.id, "opened".to_string()),
            (app.id, "opened".to_string()),
            (boot.id, "resolved".to_string()),
        ]
    );
}
