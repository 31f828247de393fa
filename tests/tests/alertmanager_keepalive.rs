//! Alertmanager keep-alive with two collectors on one store: only the holder of a
//! site's lease re-sends the alerts of the site's open incidents (docs/RELIABILITY.md,
//! "How collectors share work"). Two real collectors (`server::run` on loopback, mTLS)
//! share one SQLite file, and one PostgreSQL schema when `GW502_TEST_DATABASE_URL` is
//! set; simulated agents report a 502 fault; both collectors post to one loopback
//! Alertmanager stand-in, each under its own URL prefix (`/a`, `/b`), so every post is
//! counted per alert and per collector. The test checks, in order:
//!
//! - a collector started while an incident is open does not keep it alive while the
//!   other holds the site (the holder does, for that incident and one opened later);
//! - an incident resolved by the holder is not re-sent as firing by anyone afterwards;
//! - when the holder stops, the other takes the lease and keeps the still open
//!   incident alive, including one it never saw open.
//!
//! Each wait ends on a count of posts (the holder's re-sends are the clock), never on
//! a sleep.

#[allow(dead_code)]
#[path = "reliability/load.rs"]
mod load;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gw502_collector::config::Config;
use gw502_collector::store::Store;
use gw502_pki::Role;
use gw502_tests::fleet::{Fleet, Running, database};
use sqlx::{Connection, Row};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use load::{Load, Phase};

const WAIT: Duration = Duration::from_secs(45);

/// One alert in one post to the stand-in.
#[derive(Debug, Clone)]
struct Post {
    /// `a` or `b`: which collector posted (its URL prefix).
    via: String,
    incident: u64,
    /// The alert carried `endsAt`: a resolve.
    resolved: bool,
}

/// A loopback stand-in for Alertmanager's `POST /api/v2/alerts`: answers 200 and keeps
/// every alert it was sent, in arrival order.
struct AlertSink {
    addr: SocketAddr,
    posts: Arc<Mutex<Vec<Post>>>,
    task: JoinHandle<()>,
}

impl AlertSink {
    async fn start() -> anyhow::Result<AlertSink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let posts = Arc::new(Mutex::new(Vec::new()));
        let kept = posts.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, kept).await;
                });
            }
        });
        Ok(AlertSink { addr, posts, task })
    }

    fn posts(&self) -> Vec<Post> {
        self.posts.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Posts from index `from` on that match `f`.
    fn count(&self, from: usize, f: impl Fn(&Post) -> bool) -> usize {
        self.posts().iter().skip(from).filter(|p| f(p)).count()
    }

    /// Waits until `f` matches at least `n` posts from index `from` on.
    async fn wait(&self, what: &str, from: usize, n: usize, f: impl Fn(&Post) -> bool) {
        let deadline = Instant::now() + WAIT;
        while self.count(from, &f) < n {
            assert!(
                Instant::now() < deadline,
                "timed out: {what}; posts: {:?}",
                self.posts()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for AlertSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut stream: TcpStream, posts: Arc<Mutex<Vec<Post>>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let length: usize = head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let path = head.split(' ').nth(1).unwrap_or_default();
        let via = path.trim_start_matches('/').split('/').next().unwrap_or("");
        let body: serde_json::Value =
            serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or_default();
        buf.drain(..head_end + length);
        if let Ok(mut kept) = posts.lock() {
            for alert in body.as_array().into_iter().flatten() {
                kept.push(Post {
                    via: via.to_owned(),
                    incident: alert["labels"]["incident_id"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(0),
                    resolved: alert.get("endsAt").is_some(),
                });
            }
        }
        stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await?;
    }
}

/// Collector `id` on `db`, posting its alerts under `/<id>` of `sink`, re-sending every
/// 300 ms, with a 3 s lease (long enough that a loaded machine does not lose one).
fn config(fleet: &Fleet, db: &str, id: &str, sink: SocketAddr) -> anyhow::Result<Config> {
    let (cert, key) = fleet.issue(Role::Collector, "collector")?;
    let text = format!(
        "listen = \"127.0.0.1:0\"\ndatabase = \"{db}\"\nid = \"{id}\"\nlease_ttl = \"3s\"\n\
         probe_interval = \"1s\"\nshutdown_grace = \"3s\"\n\
         [tls]\nca = \"{ca}\"\ncert = \"{cert}\"\nkey = \"{key}\"\n\
         [evaluation]\ninterval = \"300ms\"\nresolve_after = 2\n\
         [routing]\nmax_attempts = 40\nbackoff = \"200ms\"\nmax_backoff = \"1s\"\n\
         [[routing.rules]]\nreceiver = \"am\"\nmatch = {{ site = \"sim*\" }}\n\
         [routing.receivers.am]\nkind = \"alertmanager\"\nurl = \"http://{sink}/{id}\"\n\
         resend_interval = \"300ms\"\ntimeout = \"2s\"\n",
        ca = fleet.pki().join("ca.crt").display(),
        cert = cert.display(),
        key = key.display(),
    );
    let path = fleet.path().join(format!("{id}.toml"));
    std::fs::write(&path, text)?;
    Config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))
}

/// The holder of the lease of simulated host `i`'s site, if any.
async fn holder(db: &str, i: usize) -> anyhow::Result<Option<String>> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(db).await?;
    let row = sqlx::query("SELECT holder FROM leases WHERE name = $1")
        .bind(format!("site/{}", load::host_site(i).1))
        .fetch_optional(&mut conn)
        .await?;
    Ok(row.map(|r| r.try_get("holder")).transpose()?)
}

/// The open incident of simulated host `i`'s site, waiting for it to open.
async fn opened(store: &Store, i: usize) -> anyhow::Result<u64> {
    let site = load::host_site(i).1;
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(row) = store.open_incidents(Some(&site)).await?.first() {
            return Ok(row.id as u64);
        }
        anyhow::ensure!(Instant::now() < deadline, "no incident opened on {site}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn only_the_lease_holder_keeps_alerts_alive(postgres: bool) -> anyhow::Result<()> {
    let fleet = Arc::new(Fleet::new()?);
    let test = if postgres {
        "keepalive_pg"
    } else {
        "keepalive"
    };
    let Some(db) = database(fleet.path(), test, postgres).await? else {
        return Ok(());
    };
    // Migrated before either collector starts (two migrating one SQLite file race).
    let store = Store::connect(&db).await?;
    let sink = AlertSink::start().await?;
    let a = Running::start(config(&fleet, &db, "a", sink.addr)?, "127.0.0.1:0".parse()?).await?;
    let b_addr = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    // Host 0 reports to a, host 1 tries b first and falls back to a while b is away.
    let load = Load::start(
        fleet.clone(),
        vec![a.addr, b_addr],
        2,
        Duration::from_millis(150),
    );
    load.set(0, Phase::Down);
    let first = opened(&store, 0).await?;
    sink.wait("the first incident is delivered", 0, 1, |p| {
        p.incident == first
    })
    .await;

    // b starts while the first incident is open and a holds both sites.
    let deadline = Instant::now() + WAIT;
    while holder(&db, 0).await?.as_deref() != Some("a")
        || holder(&db, 1).await?.as_deref() != Some("a")
    {
        anyhow::ensure!(Instant::now() < deadline, "a never held both sites");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b = Running::start(config(&fleet, &db, "b", sink.addr)?, b_addr).await?;
    let b_started = sink.posts().len();
    load.set(1, Phase::Down);
    let second = opened(&store, 1).await?;
    for id in [first, second] {
        sink.wait("a keeps both alive", b_started, 4, |p| {
            p.via == "a" && p.incident == id && !p.resolved
        })
        .await;
    }
    // b may send the second incident's firing once: its row in the delivery log is
    // claimed by whichever sender comes first. Nothing else.
    let b_first = sink.count(b_started, |p| p.via == "b" && p.incident == first);
    let b_second = sink.count(b_started, |p| p.via == "b" && p.incident == second);
    let b_posts = b_first + b_second;
    let a_first = sink.count(b_started, |p| p.via == "a" && p.incident == first);
    assert!(
        b_first == 0 && b_second <= 1,
        "b does not hold the site and must not re-send its alerts: {:?}",
        sink.posts()
    );

    // The holder resolves the first incident: nobody re-sends it as firing afterwards.
    load.set(0, Phase::Up);
    sink.wait("the resolve is posted", 0, 1, |p| {
        p.incident == first && p.resolved
    })
    .await;
    let resolved_at = sink.posts().len();
    // A resend in flight may cross the resolve; two more rounds of the second
    // incident later, the first must be quiet.
    sink.wait("two more rounds", resolved_at, 2, |p| {
        p.incident == second && !p.resolved
    })
    .await;
    let quiet_from = sink.posts().len();
    sink.wait("three more rounds", quiet_from, 3, |p| {
        p.incident == second && !p.resolved
    })
    .await;
    let stale = sink.count(quiet_from, |p| p.incident == first && !p.resolved);
    assert_eq!(
        stale,
        0,
        "a resolved alert re-sent as firing: {:?}",
        sink.posts()
    );

    // a stops cleanly and hands its leases over: b keeps the second incident alive,
    // one it only ever saw in the store.
    a.stop().await?;
    let a_stopped = sink.posts().len();
    sink.wait("b keeps the second alive", a_stopped, 3, |p| {
        p.via == "b" && p.incident == second && !p.resolved
    })
    .await;
    let b_took = sink.count(a_stopped, |p| p.via == "b" && p.incident == second);
    let stale_b = sink.count(a_stopped, |p| p.incident == first && !p.resolved);
    assert_eq!(
        stale_b,
        0,
        "b re-sent the resolved alert: {:?}",
        sink.posts()
    );
    load.stop().await?;
    b.stop().await?;
    println!(
        "figures: keepalive store={} posts_by_b_while_a_held={b_posts} \
         a_posts_of_first_while_both_ran={a_first} firing_after_resolve={stale} \
         b_posts_of_second_after_takeover={b_took} total_posts={}",
        if postgres { "postgres" } else { "sqlite" },
        sink.posts().len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_keeps_alerts_alive_sqlite() -> anyhow::Result<()> {
    only_the_lease_holder_keeps_alerts_alive(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_keeps_alerts_alive_postgres() -> anyhow::Result<()> {
    only_the_lease_holder_keeps_alerts_alive(true).await
}
