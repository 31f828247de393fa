//! Two collectors starting at the same moment on one fresh SQLite file: both
//! open it, and the schema is applied once (sqlx takes no migration lock on
//! SQLite; the store takes a file lock beside the database).

use gw502_collector::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_stores_opening_one_fresh_sqlite_file_at_once_all_succeed() {
    for round in 0..40 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("collector.db").display());
        let opened = futures::future::join_all((0..4).map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Store::connect(&url).await })
        }))
        .await;
        for store in opened {
            if let Err(e) = store.expect("the task ran") {
                panic!("round {round}: {e}");
            }
        }
    }
}
