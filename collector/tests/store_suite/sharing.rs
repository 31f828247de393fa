//! Suite tests of what collectors sharing one database rely on: site leases
//! (compare-and-set, takeover, release) and the delivery log as an outbox
//! (rows written with the change, claimed once, redelivered after a claim
//! expires, kept in order per incident and receiver).

use std::collections::BTreeSet;

use gw502_collector::store::{AttemptOutcome, LeaseClaim, Outgoing, Store};

use super::TestDb;
use super::incidents::upsert;

/// A lease that expires as soon as it is taken: the database's clock moves
/// on before the next claim reads it.
const EXPIRED: i64 = 0;
const LONG: i64 = 600_000;

pub(crate) async fn site_leases_are_compare_and_set(db: &TestDb) {
    let (a, b) = (db.store().await, db.store().await);
    assert_eq!(
        a.claim_lease("site/shop", "c1", LONG).await.unwrap(),
        LeaseClaim::Acquired
    );
    assert_eq!(
        b.claim_lease("site/shop", "c2", LONG).await.unwrap(),
        LeaseClaim::HeldBy {
            holder: "c1".into()
        }
    );
    assert_eq!(
        a.claim_lease("site/shop", "c1", EXPIRED).await.unwrap(),
        LeaseClaim::Renewed
    );
    // c1 stopped renewing (its last renewal ran out at once): c2 takes over.
    assert_eq!(
        b.claim_lease("site/shop", "c2", LONG).await.unwrap(),
        LeaseClaim::TakenOver { from: "c1".into() }
    );
    assert!(!a.claim_lease("site/shop", "c1", LONG).await.unwrap().held());
    assert_eq!(
        a.lease_holders("site/").await.unwrap(),
        vec![("site/shop".to_string(), "c2".to_string())]
    );
    // A clean shutdown gives the lease back: the other takes it at once.
    assert_eq!(b.release_leases("c2", "site/").await.unwrap(), 1);
    assert!(a.lease_holders("site/").await.unwrap().is_empty());
    assert_eq!(
        a.claim_lease("site/shop", "c1", LONG).await.unwrap(),
        LeaseClaim::Acquired
    );
    // Releasing names only the prefix asked for.
    a.claim_lease("retention-like", "c1", LONG).await.unwrap();
    assert_eq!(a.release_leases("c1", "site/").await.unwrap(), 1);
    assert!(
        !b.claim_lease("retention-like", "c2", LONG)
            .await
            .unwrap()
            .held()
    );
}

pub(crate) async fn racing_claims_give_one_holder(db: &TestDb) {
    let stores: Vec<Store> = futures::future::join_all((0..4).map(|_| db.store())).await;
    for round in 0..5 {
        let name = format!("site/race-{round}");
        let claims = futures::future::join_all(
            stores
                .iter()
                .enumerate()
                .map(|(i, s)| s.claim_lease(&name, HOLDERS[i], LONG)),
        )
        .await;
        let winners: Vec<_> = claims
            .into_iter()
            .map(Result::unwrap)
            .filter(LeaseClaim::held)
            .collect();
        assert_eq!(winners, vec![LeaseClaim::Acquired], "round {round}");
    }
}

const HOLDERS: [&str; 4] = ["c1", "c2", "c3", "c4"];

fn routes(names: &[&str]) -> Vec<Outgoing> {
    names
        .iter()
        .map(|n| Outgoing {
            receiver: n.to_string(),
            owner_override: None,
        })
        .collect()
}

fn delivered(attempts: u32) -> AttemptOutcome {
    AttemptOutcome {
        state: "delivered",
        attempts,
        at_ms: 2_000,
        error: String::new(),
        http_status: 200,
        retry_in_ms: 0,
    }
}

pub(crate) async fn deliveries_are_written_with_the_change(db: &TestDb) {
    let store = db.store().await;
    let to_both = routes(&["hook", "am"]);
    let (incident, _) = store
        .open_or_update_routed(&upsert("shop", "wrong_port", "a", 1_000), &|_| {
            to_both.clone()
        })
        .await
        .unwrap();
    // The same verdict again changes nothing and writes no delivery.
    store
        .open_or_update_routed(&upsert("shop", "wrong_port", "a", 1_500), &|_| {
            to_both.clone()
        })
        .await
        .unwrap();
    let rows = store.list_deliveries(Some(incident.id), 10).await.unwrap();
    let mut got: Vec<_> = rows
        .iter()
        .map(|d| (d.receiver.as_str(), d.event.as_str(), d.state.as_str()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [("am", "firing", "pending"), ("hook", "firing", "pending")]
    );
    assert_eq!(store.pending_deliveries().await.unwrap(), 2);
    let claimed = store
        .claim_deliveries("hook", "c1", LONG, 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let incident_sent =
        <gw502_proto::v1::Incident as prost::Message>::decode(claimed[0].incident.as_slice())
            .unwrap();
    assert_eq!(incident_sent.id, incident.id as u64);
    assert_eq!(incident_sent.state, "open");
    // A resolve writes its own rows, which wait behind the firing.
    store
        .resolve_routed(incident.id, 3_000, &|_| routes(&["hook"]))
        .await
        .unwrap();
    assert!(
        store
            .claim_deliveries("hook", "c2", LONG, 10)
            .await
            .unwrap()
            .is_empty(),
        "the resolve waits for the firing"
    );
    assert!(
        store
            .finish_delivery(claimed[0].id, "c1", &delivered(1))
            .await
            .unwrap()
    );
    let next = store
        .claim_deliveries("hook", "c2", LONG, 10)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].event, "resolved");
    assert!(!next[0].superseded);
}

pub(crate) async fn a_dead_senders_claim_expires_with_the_same_key(db: &TestDb) {
    let (a, b) = (db.store().await, db.store().await);
    let (incident, _) = a
        .open_or_update_routed(&upsert("shop", "timeout", "a", 1_000), &|_| {
            routes(&["hook"])
        })
        .await
        .unwrap();
    // Collector c1 claims and "dies": its claim runs out at once.
    let first = a.claim_deliveries("hook", "c1", EXPIRED, 10).await.unwrap();
    assert_eq!(first.len(), 1);
    let again = b.claim_deliveries("hook", "c2", LONG, 10).await.unwrap();
    assert_eq!(again.len(), 1, "taken over after the claim expired");
    assert_eq!(again[0].id, first[0].id, "same row, same idempotency key");
    assert_eq!(
        gw502_collector::deliveries::idempotency_key(again[0].id),
        gw502_collector::deliveries::idempotency_key(first[0].id)
    );
    // A live claim is not taken by anyone else.
    assert!(
        a.claim_deliveries("hook", "c1", LONG, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The late outcome of the dead sender is refused; the live one counts.
    assert!(
        !a.finish_delivery(first[0].id, "c1", &delivered(1))
            .await
            .unwrap()
    );
    assert!(
        b.finish_delivery(again[0].id, "c2", &delivered(1))
            .await
            .unwrap()
    );
    let rows = a.list_deliveries(Some(incident.id), 10).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].state, "delivered");
    assert!(
        a.claim_deliveries("hook", "c1", EXPIRED, 10)
            .await
            .unwrap()
            .is_empty(),
        "delivered rows are never claimed again"
    );
}

pub(crate) async fn a_retry_waits_for_its_backoff(db: &TestDb) {
    let store = db.store().await;
    store
        .open_or_update_routed(&upsert("shop", "timeout", "a", 1_000), &|_| {
            routes(&["hook"])
        })
        .await
        .unwrap();
    let claimed = store
        .claim_deliveries("hook", "c1", LONG, 10)
        .await
        .unwrap();
    let retry = AttemptOutcome {
        state: "pending",
        attempts: 1,
        at_ms: 1_100,
        error: "receiver answered 500".into(),
        http_status: 500,
        retry_in_ms: LONG,
    };
    assert!(
        store
            .finish_delivery(claimed[0].id, "c1", &retry)
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_deliveries("hook", "c2", LONG, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due before its backoff"
    );
    let rows = store.list_deliveries(None, 10).await.unwrap();
    assert_eq!((rows[0].attempts, rows[0].http_status), (1, 500));
}

pub(crate) async fn concurrent_senders_claim_each_row_once(db: &TestDb) {
    let stores: Vec<Store> = futures::future::join_all((0..4).map(|_| db.store())).await;
    let sites: Vec<String> = (0..20).map(|i| format!("site{i}")).collect();
    for site in &sites {
        stores[0]
            .open_or_update_routed(&upsert(site, "timeout", "a", 1_000), &|_| routes(&["hook"]))
            .await
            .unwrap();
    }
    let claims = futures::future::join_all(
        stores
            .iter()
            .enumerate()
            .map(|(i, s)| s.claim_deliveries("hook", HOLDERS[i], LONG, 8)),
    )
    .await;
    let mut ids = BTreeSet::new();
    let mut total = 0;
    for claim in claims {
        for d in claim.unwrap() {
            total += 1;
            ids.insert(d.id);
        }
    }
    assert_eq!(total, ids.len(), "no row claimed twice");
    assert!(total <= 20);
}
