//! Suite tests of tenant scopes in store queries: incident lists and the
//! delivery log restricted to a set of sites, on both backends.

use gw502_collector::store::{IncidentFilter, NewDelivery};

use super::TestDb;
use super::incidents::upsert;

pub(crate) async fn site_scopes_restrict_incidents_and_deliveries(db: &TestDb) {
    let store = db.store().await;
    let mut ids = Vec::new();
    for (n, site) in ["shop.acme", "blog.acme", "shop.globex", "shop.globex"]
        .into_iter()
        .enumerate()
    {
        let u = upsert(site, &format!("cause{n}"), "s", 1_000 + n as i64);
        ids.push(store.open_or_update_incident(&u).await.unwrap().0.id);
    }
    let sites = |names: &[&str]| Some(names.iter().map(|s| s.to_string()).collect());
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
    assert_eq!(
        list(IncidentFilter {
            sites: sites(&["shop.acme", "blog.acme"]),
            ..Default::default()
        })
        .await,
        [ids[1], ids[0]]
    );
    assert_eq!(
        list(IncidentFilter {
            sites: sites(&["shop.globex"]),
            limit: 1,
            ..Default::default()
        })
        .await,
        [ids[3]],
        "the limit counts only rows in scope"
    );
    assert_eq!(
        list(IncidentFilter {
            site: Some("shop.globex".into()),
            sites: sites(&["shop.acme"]),
            ..Default::default()
        })
        .await,
        Vec::<i64>::new(),
        "a site filter cannot leave the scope"
    );
    assert_eq!(
        list(IncidentFilter {
            sites: sites(&[]),
            ..Default::default()
        })
        .await,
        Vec::<i64>::new(),
        "an empty scope matches nothing"
    );
    assert_eq!(list(IncidentFilter::default()).await.len(), 4);

    let mut deliveries = Vec::new();
    for &id in &ids {
        let d = NewDelivery {
            incident_id: id,
            receiver: "ops".into(),
            event: "firing".into(),
            at_ms: 2_000,
        };
        deliveries.push(store.insert_delivery(&d).await.unwrap());
    }
    let of = |incident: Option<i64>, scope: Option<Vec<String>>, limit: u32| {
        let store = store.clone();
        async move {
            store
                .list_deliveries_of_sites(incident, scope.as_deref(), limit)
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        }
    };
    let acme = sites(&["shop.acme", "blog.acme"]);
    assert_eq!(
        of(None, acme.clone(), 10).await,
        [deliveries[1], deliveries[0]]
    );
    assert_eq!(of(None, acme.clone(), 1).await, [deliveries[1]]);
    assert_eq!(of(Some(ids[0]), acme.clone(), 10).await, [deliveries[0]]);
    assert_eq!(
        of(Some(ids[2]), acme, 10).await,
        Vec::<i64>::new(),
        "another tenant's incident reads as one without deliveries"
    );
    assert_eq!(of(None, sites(&[]), 10).await, Vec::<i64>::new());
    assert_eq!(of(None, None, 10).await.len(), 4);
    assert_eq!(of(Some(ids[2]), None, 10).await, [deliveries[2]]);
}
