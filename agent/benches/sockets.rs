//! Cost of one sockets scan, cold (empty owner cache: walks `/proc/*/fd`) and
//! warm (owners confirmed with one readlink each), through netlink and the
//! `/proc/net` fallback, next to `ss -tlnp` doing the same job on this host.
//!
//! Run with `cargo bench -p gw502-agent --bench sockets`. The 50,000
//! connection scenario is measured elsewhere; here the point is that a warm
//! scan does not grow with the number of fds on the host, while a cold scan
//! and `ss -p` do.

use std::process::Command;

use criterion::{Criterion, criterion_group, criterion_main};
use gw502_agent::sockets::{OwnerIndex, SocketsSettings, scan};
use gw502_agent::source::Roots;

fn bench(c: &mut Criterion) {
    let roots = Roots::default();
    let _listeners: Vec<_> = (0..20)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener"))
        .collect();
    for (name, force_procfs) in [("netlink", false), ("procfs", true)] {
        let settings = SocketsSettings {
            force_procfs,
            ..SocketsSettings::default()
        };
        c.bench_function(&format!("scan_{name}_cold"), |b| {
            b.iter(|| scan(&roots, &settings, &mut OwnerIndex::default()))
        });
        let mut warm = OwnerIndex::default();
        let _ = scan(&roots, &settings, &mut warm);
        c.bench_function(&format!("scan_{name}_warm"), |b| {
            b.iter(|| scan(&roots, &settings, &mut warm))
        });
    }
    if Command::new("ss").arg("-V").output().is_ok() {
        c.bench_function("ss_tlnp", |b| {
            b.iter(|| Command::new("ss").arg("-tlnp").output())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
