//! Tests of the proxy-config source against the real nginx and haproxy
//! binaries of this host, with configs written to temp dirs.

use super::*;
use crate::source::Roots;

fn scope(etc: &Path) -> Scope {
    Scope {
        roots: Roots {
            etc: etc.to_path_buf(),
            ..Roots::default()
        },
        ..Scope::default()
    }
}

/// Settings that see only the given nginx config (no host haproxy/apache/caddy).
fn nginx_only(dir: &Path) -> ProxyConfigSettings {
    ProxyConfigSettings {
        nginx_bin: PathBuf::from("/usr/sbin/nginx"),
        nginx_conf: Some(dir.join("nginx.conf")),
        nginx_prefix: Some(dir.to_path_buf()),
        ..ProxyConfigSettings::default()
    }
}

fn write_nginx(dir: &Path, upstream: &str) {
    let conf = format!(
        "error_log {d}/error.log;\npid {d}/nginx.pid;\nevents {{}}\n\
         http {{ access_log {d}/access.log; server {{ listen 127.0.0.1:1; server_name t.test;\n\
         location / {{ proxy_pass http://{upstream}; }} }} }}\n",
        d = dir.display()
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
}

#[tokio::test]
async fn real_nginx_config_is_parsed_tested_and_change_tracked() {
    let dir = tempfile::tempdir().unwrap();
    write_nginx(dir.path(), "127.0.0.1:3000");
    let etc = tempfile::tempdir().unwrap();
    let mut src = ProxyConfigSource::new(nginx_only(dir.path()));
    let first = src.collect(&scope(etc.path())).await.unwrap();
    assert_eq!(first.proxies.len(), 1, "{first:?}");
    let p = &first.proxies[0];
    assert_eq!(
        (p.kind.as_str(), p.unit.as_str()),
        ("nginx", "nginx.service")
    );
    let test = p.test.as_ref().unwrap();
    assert!(test.ran && test.ok, "{test:?}");
    assert!(test.output.contains("syntax is ok"));
    assert_eq!(p.targets[0].port, 3000);
    assert_eq!(p.targets[0].server_names, vec!["t.test"]);
    assert_eq!(p.config_hash.len(), 64);
    assert_eq!(p.changed_at_ms, 0);
    let formats = src.access_formats();
    let key = format!("{}/access.log", dir.path().display());
    assert!(formats.read().unwrap().contains_key(&key));

    let again = src.collect(&scope(etc.path())).await.unwrap();
    assert_eq!(again.proxies[0].changed_at_ms, 0);
    write_nginx(dir.path(), "127.0.0.1:3001");
    let changed = src.collect(&scope(etc.path())).await.unwrap();
    let at = changed.proxies[0].changed_at_ms;
    assert!(at > 0);
    assert_ne!(changed.proxies[0].config_hash, p.config_hash);
    let kept = src.collect(&scope(etc.path())).await.unwrap();
    assert_eq!(kept.proxies[0].changed_at_ms, at);
}

#[tokio::test]
async fn broken_nginx_config_is_listed_with_failed_test() {
    let dir = tempfile::tempdir().unwrap();
    write_nginx(dir.path(), "no-such-host.invalid:8080");
    let etc = tempfile::tempdir().unwrap();
    let mut src = ProxyConfigSource::new(nginx_only(dir.path()));
    let section = src.collect(&scope(etc.path())).await.unwrap();
    let test = section.proxies[0].test.clone().unwrap();
    assert!(test.ran && !test.ok);
    assert!(test.output.contains("[emerg]"), "{}", test.output);
    assert!(test.output.contains("host not found in upstream"));
}

#[tokio::test]
async fn nothing_installed_gives_an_empty_section() {
    let etc = tempfile::tempdir().unwrap();
    let mut src = ProxyConfigSource::new(ProxyConfigSettings {
        nginx_bin: PathBuf::from("/nonexistent/nginx"),
        ..ProxyConfigSettings::default()
    });
    let section = src.collect(&scope(etc.path())).await.unwrap();
    assert!(section.proxies.is_empty(), "{section:?}");
}

#[tokio::test]
async fn haproxy_cfg_under_roots_is_parsed_and_checked() {
    let etc = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(etc.path().join("haproxy")).unwrap();
    let cfg = include_str!("../../fixtures/haproxy/haproxy.cfg");
    std::fs::write(etc.path().join("haproxy/haproxy.cfg"), cfg).unwrap();
    let mut src = ProxyConfigSource::new(ProxyConfigSettings {
        nginx_bin: PathBuf::from("/nonexistent/nginx"),
        ..ProxyConfigSettings::default()
    });
    let section = src.collect(&scope(etc.path())).await.unwrap();
    let p = &section.proxies[0];
    assert_eq!(
        (p.kind.as_str(), p.unit.as_str()),
        ("haproxy", "haproxy.service")
    );
    let test = p.test.as_ref().unwrap();
    assert!(test.ran && test.ok, "{test:?}");
    assert_eq!(p.targets.len(), 4);
}

#[tokio::test]
async fn slow_command_times_out() {
    let err = run_bounded(
        Path::new("/bin/sleep"),
        &["5".into()],
        Duration::from_millis(100),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("timed out"), "{err}");
}
