//! Tests of the proxy-config source against the real nginx and haproxy
//! binaries of this host, with configs written to temp dirs.

use gw502_proxy::haproxy::Haproxy;

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

/// Settings that look for no proxy at all (nothing of the host's).
pub(crate) fn none_installed() -> ProxyConfigSettings {
    let mut settings = ProxyConfigSettings::default();
    for proxy in gw502_proxy::all() {
        settings.locations.insert(
            proxy.kind(),
            ConfigLocation {
                bin: PathBuf::from("/nonexistent/bin"),
                config: Some(PathBuf::from("/nonexistent/config")),
                prefix: None,
            },
        );
    }
    settings
}

/// Settings that see only the given nginx config (no host haproxy/apache/caddy).
pub(crate) fn nginx_only(dir: &Path) -> ProxyConfigSettings {
    let mut settings = none_installed();
    settings.locations.insert(
        ProxyKind::Nginx,
        ConfigLocation {
            bin: PathBuf::from("/usr/sbin/nginx"),
            config: Some(dir.join("nginx.conf")),
            prefix: Some(dir.to_path_buf()),
        },
    );
    settings
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
    let mut src = ProxyConfigSource::new(none_installed());
    let section = src.collect(&scope(etc.path())).await.unwrap();
    assert!(section.proxies.is_empty(), "{section:?}");
}

#[tokio::test]
async fn haproxy_cfg_under_roots_is_parsed_and_checked() {
    let etc = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(etc.path().join("haproxy")).unwrap();
    let cfg = include_str!("../../../proxy/fixtures/haproxy/haproxy.cfg");
    std::fs::write(etc.path().join("haproxy/haproxy.cfg"), cfg).unwrap();
    let mut settings = none_installed();
    settings
        .locations
        .insert(ProxyKind::Haproxy, Haproxy.default_location());
    let mut src = ProxyConfigSource::new(settings);
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

/// `haproxy -c` runs when the config changes and at the refresh, not every report: a
/// wrapper around the real haproxy counts its runs.
#[tokio::test]
async fn the_config_test_runs_again_only_for_a_changed_config() {
    let etc = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(etc.path().join("haproxy")).unwrap();
    let cfg = include_str!("../../../proxy/fixtures/haproxy/haproxy.cfg");
    let path = etc.path().join("haproxy/haproxy.cfg");
    std::fs::write(&path, cfg).unwrap();
    let runs = etc.path().join("runs");
    let wrapper = etc.path().join("haproxy.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh
echo run >> {}
exec /usr/sbin/haproxy \"$@\"\n",
            runs.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut settings = none_installed();
    let mut at = Haproxy.default_location();
    at.bin = wrapper;
    settings.locations.insert(ProxyKind::Haproxy, at);
    let mut src = ProxyConfigSource::new(settings);
    let count = || {
        std::fs::read_to_string(&runs)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let tested = |section: &ProxyConfigSection| {
        let test = section.proxies[0].test.clone().unwrap();
        (test.ran, test.ok)
    };
    let first = src.collect(&scope(etc.path())).await.unwrap();
    let second = src.collect(&scope(etc.path())).await.unwrap();
    assert_eq!(count(), 1, "an unchanged config is not tested again");
    assert_eq!(tested(&first), (true, true));
    assert_eq!(tested(&second), tested(&first), "the last result stands");
    std::fs::write(
        &path,
        format!("{cfg}\nbackend broken\n    server s1 127.0.0.1:1 nosuch\n"),
    )
    .unwrap();
    let third = src.collect(&scope(etc.path())).await.unwrap();
    assert_eq!(count(), 2, "a changed config is tested at once");
    assert_eq!(tested(&third), (true, false));
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

/// The shipped unit runs the agent as its own user: `nginx -T` then fails on
/// the root-owned pid file and dumps nothing. The test must say it could not
/// run (not that the config is invalid), and the config is read directly.
#[tokio::test]
async fn nginx_test_as_an_unprivileged_user_is_indeterminate_not_invalid() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to drop to nobody");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::create_dir(d.join("conf.d")).unwrap();
    let conf = format!(
        "error_log stderr;\npid {d}/nginx.pid;\nevents {{}}\n\
         http {{ access_log off; include {d}/conf.d/*.conf; }}\n",
        d = d.display()
    );
    std::fs::write(d.join("nginx.conf"), conf).unwrap();
    std::fs::write(
        d.join("conf.d/site.conf"),
        "server { listen 127.0.0.1:1; server_name t.test;\n\
         location / { proxy_pass http://127.0.0.1:3000; } }\n",
    )
    .unwrap();
    // Root-owned, not writable by nobody: as /run/nginx.pid is to the agent.
    std::fs::write(d.join("nginx.pid"), "").unwrap();
    let wrapper = d.join("nginx-as-nobody");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\nexec setpriv --reuid=nobody --regid=nogroup --clear-groups /usr/sbin/nginx \"$@\"\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &wrapper,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut settings = nginx_only(d);
    if let Some(at) = settings.locations.get_mut(&ProxyKind::Nginx) {
        at.bin = wrapper;
    }
    let etc = tempfile::tempdir().unwrap();
    let mut src = ProxyConfigSource::new(settings);
    let section = src.collect(&scope(etc.path())).await.unwrap();
    let p = &section.proxies[0];
    let test = p.test.as_ref().unwrap();
    assert!(!test.ran && !test.ok, "{test:?}");
    assert!(
        test.output
            .starts_with("config test could not run as this user: "),
        "{}",
        test.output
    );
    assert!(test.output.contains("nginx.pid"), "{}", test.output);
    assert_eq!(p.targets.len(), 1, "{p:?}");
    assert_eq!(
        (p.targets[0].port, p.targets[0].server_names.clone()),
        (3000, vec!["t.test".to_string()])
    );
}
