//! Tests of the `nginx -T` parser on real dumps captured from nginx 1.22
//! (proxy/fixtures/nginx/README.md says how each was made).

use super::*;

const SITE: &str = include_str!("../../../fixtures/nginx/site.dump");
const DEBIAN: &str = include_str!("../../../fixtures/nginx/debian-default.dump");

fn find<'a>(dump: &'a NginxDump, location: &str) -> Vec<&'a UpstreamTarget> {
    dump.config
        .targets
        .iter()
        .filter(|t| t.location == location)
        .collect()
}

#[test]
fn site_dump_expands_includes_and_groups() {
    let dump = parse_dump(SITE);
    assert_eq!(dump.files.len(), 5);
    assert_eq!(dump.config.servers.len(), 2, "{:?}", dump.config.servers);
    let pool = find(&dump, "/");
    assert_eq!(pool.len(), 3);
    assert!(
        pool.iter()
            .all(|t| t.group == "app_pool" && t.protocol == "http")
    );
    assert_eq!((pool[0].host.as_str(), pool[0].port), ("127.0.0.1", 3001));
    assert_eq!(pool[1].unix_path, "/run/app/app.sock");
    assert_eq!((pool[2].host.as_str(), pool[2].port), ("localhost", 80));
    assert_eq!(
        pool[0].server_names,
        vec!["shop.example.test", "www.shop.example.test"]
    );
}

#[test]
fn site_dump_targets_every_pass_kind() {
    let dump = parse_dump(SITE);
    let api = find(&dump, "/api/")[0];
    assert_eq!((api.address.as_str(), api.port), ("127.0.0.1:3000", 3000));
    let php = find(&dump, "~ \\.php$")[0];
    assert_eq!(php.protocol, "fastcgi");
    assert_eq!(php.unix_path, "/run/php/php8.2-fpm.sock");
    assert!(php.host.is_empty());
    // `set $backend "dyn.internal.test:8080"; proxy_pass http://$backend;`: the name
    // the variable holds, looked up per request.
    let dyn_ = find(&dump, "/dyn/")[0];
    assert!(dyn_.runtime_resolve);
    assert_eq!(dyn_.address, "dyn.internal.test:8080");
    assert_eq!((dyn_.host.as_str(), dyn_.port), ("dyn.internal.test", 8080));
    let v6 = find(&dump, "= /odd path")[0];
    assert_eq!(
        (v6.protocol.as_str(), v6.host.as_str(), v6.port),
        ("https", "::1", 8443)
    );
    let uwsgi = find(&dump, "/py")[0];
    assert_eq!((uwsgi.protocol.as_str(), uwsgi.port), ("uwsgi", 3031));
    let scgi = find(&dump, "/scgi")[0];
    assert_eq!(
        (scgi.protocol.as_str(), scgi.host.as_str()),
        ("scgi", "localhost")
    );
    let grpc = find(&dump, "/grpc")[0];
    assert_eq!((grpc.protocol.as_str(), grpc.port), ("grpcs", 50051));
    let sock = find(&dump, "/sock")[0];
    assert_eq!(sock.unix_path, "/run/legacy/http.sock");
    let fpm = find(&dump, "/fpm")[0];
    assert_eq!((fpm.protocol.as_str(), fpm.port), ("fastcgi", 9000));
    assert_eq!(fpm.server_names, vec!["legacy.example.test"]);
}

#[test]
fn site_dump_logs_formats_and_settings() {
    let dump = parse_dump(SITE);
    let logs = "/tmp/gw502-nginx-fixtures/logs";
    assert_eq!(dump.config.error_logs, vec![format!("{logs}/error.log")]);
    assert_eq!(dump.config.access_logs, vec![format!("{logs}/access.log")]);
    let shop = &dump.config.servers[1];
    assert_eq!(shop.listens, vec!["127.0.0.1:18081", "[::1]:18081"]);
    assert_eq!(shop.access_logs, vec![format!("{logs}/shop.access.log")]);
    assert_eq!(shop.error_logs, vec![format!("{logs}/shop.error.log")]);
    let template = &dump.access_log_formats[&format!("{logs}/shop.access.log")];
    assert!(
        template.contains("upstream_status=\"$upstream_status\""),
        "{template}"
    );
    assert!(template.contains("host=$host"));
    assert_eq!(dump.resolvers, vec!["127.0.0.1 valid=30s"]);
    assert_eq!(dump.proxy_buffer_size.as_deref(), Some("8k"));
    assert_eq!(dump.fastcgi_buffer_size.as_deref(), Some("4k"));
}

#[test]
fn debian_default_dump_has_logs_and_no_targets() {
    let dump = parse_dump(DEBIAN);
    assert_eq!(dump.config.error_logs, vec!["/var/log/nginx/error.log"]);
    assert_eq!(dump.config.access_logs, vec!["/var/log/nginx/access.log"]);
    assert_eq!(
        dump.access_log_formats["/var/log/nginx/access.log"],
        COMBINED
    );
    assert_eq!(dump.config.servers.len(), 1);
    assert_eq!(dump.config.servers[0].names, vec!["_"]);
    assert!(dump.config.targets.is_empty());
}

#[test]
fn defaults_relative_paths_and_stream() {
    let dump = parse_dump_with_prefix(
        "# configuration file /e/nginx.conf:\n\
         http { access_log logs/a.log; server { location / { proxy_pass http://b; } } }\n\
         stream { upstream db { server 10.0.0.1:5432; } server { listen 5432; proxy_pass db; } }\n",
        "/p/",
    );
    assert_eq!(dump.config.error_logs, vec![DEFAULT_ERROR_LOG]);
    assert_eq!(dump.config.access_logs, vec!["/p/logs/a.log"]);
    assert_eq!(dump.config.targets[0].port, 80);
    assert_eq!(dump.config.targets[1].protocol, "tcp");
    assert_eq!(dump.config.targets[1].group, "db");
}

#[test]
fn self_including_dump_is_bounded() {
    let text = "# configuration file /e/nginx.conf:\ninclude /e/*.conf; a b;\n";
    let dump = parse_dump(text);
    assert_eq!(dump.config.kind, "nginx");
}

/// When `nginx -T` cannot run as the agent's user, the agent reads the files
/// itself, following `includes`, and joins them with `join_dump`: the result
/// must parse to what the real dump of the same files parses to.
#[test]
fn files_read_by_hand_parse_like_the_real_dump() {
    let dir = "/tmp/gw502-nginx-fixtures/site";
    let on_disk: [(&str, &str); 5] = [
        (
            "nginx.conf",
            include_str!("../../../fixtures/nginx/conf/site/nginx.conf"),
        ),
        (
            "mime.types",
            include_str!("../../../fixtures/nginx/conf/site/mime.types"),
        ),
        (
            "conf.d/legacy.conf",
            include_str!("../../../fixtures/nginx/conf/site/conf.d/legacy.conf"),
        ),
        (
            "conf.d/upstreams.conf",
            include_str!("../../../fixtures/nginx/conf/site/conf.d/upstreams.conf"),
        ),
        (
            "fastcgi_params",
            include_str!("../../../fixtures/nginx/conf/site/fastcgi_params"),
        ),
    ];
    let main = format!("{dir}/nginx.conf");
    let patterns = includes(&main, on_disk[0].1);
    assert_eq!(
        patterns,
        vec![
            format!("{dir}/mime.types"),
            format!("{dir}/conf.d/*.conf"),
            format!("{dir}/fastcgi_params"),
        ]
    );
    let mut files = vec![(main, on_disk[0].1.to_string())];
    for pattern in &patterns {
        for (name, text) in &on_disk[1..] {
            let path = format!("{dir}/{name}");
            if crate::glob_match(pattern, &path) {
                files.push((path, text.to_string()));
            }
        }
    }
    let by_hand = parse_dump(&join_dump(&files));
    let real = parse_dump(SITE);
    assert_eq!(by_hand.config, real.config);
    assert_eq!(by_hand.access_log_formats, real.access_log_formats);
}

#[test]
fn proxy_ssl_verify_is_inherited_and_overridden() {
    let dump = parse_dump(
        "# configuration file /etc/nginx/nginx.conf:\n\
         http {\n  proxy_ssl_verify on;\n\
         \x20 server {\n    server_name a;\n    location / { proxy_pass https://10.0.0.1; }\n\
         \x20   location /off { proxy_ssl_verify off; proxy_pass https://10.0.0.2; }\n\
         \x20   location /plain { proxy_pass http://10.0.0.3; }\n  }\n\
         \x20 server {\n    server_name b;\n    proxy_ssl_verify off;\n\
         \x20   location / { proxy_pass https://10.0.0.4; }\n  }\n}\n",
    );
    let verify: Vec<(&str, bool)> = dump
        .config
        .targets
        .iter()
        .map(|t| (t.host.as_str(), t.tls_verify))
        .collect();
    assert_eq!(
        verify,
        [
            ("10.0.0.1", true),
            ("10.0.0.2", false),
            ("10.0.0.3", false),
            ("10.0.0.4", false)
        ]
    );
}

#[test]
fn proxy_ssl_trusted_certificate_and_name_are_inherited_per_directive() {
    let dump = parse_dump(
        "# configuration file /etc/nginx/nginx.conf:\n\
         http {\n  proxy_ssl_verify on;\n  proxy_ssl_trusted_certificate /etc/nginx/ca.pem;\n\
         \x20 server {\n    server_name a;\n    proxy_ssl_name app.internal;\n\
         \x20   location / { proxy_pass https://10.0.0.1; }\n\
         \x20   location /b { proxy_ssl_trusted_certificate /etc/nginx/b-ca.pem; proxy_pass https://10.0.0.2; }\n\
         \x20   location /v { proxy_ssl_name $host; proxy_pass https://10.0.0.3; }\n\
         \x20   location /g { grpc_ssl_verify on; grpc_ssl_trusted_certificate /etc/nginx/g-ca.pem; grpc_pass grpcs://10.0.0.4:50051; }\n\
         \x20   location /h { grpc_pass grpcs://10.0.0.6:50051; }\n\
         \x20   location /plain { proxy_pass http://10.0.0.5; }\n  }\n}\n",
    );
    let tls: Vec<(&str, bool, &str, &str)> = dump
        .config
        .targets
        .iter()
        .map(|t| {
            (
                t.host.as_str(),
                t.tls_verify,
                t.tls_ca_file.as_str(),
                t.tls_server_name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        tls,
        [
            ("10.0.0.1", true, "/etc/nginx/ca.pem", "app.internal"),
            ("10.0.0.2", true, "/etc/nginx/b-ca.pem", "app.internal"),
            ("10.0.0.3", true, "/etc/nginx/ca.pem", ""),
            // grpc_pass follows the grpc_ssl_* family only.
            ("10.0.0.4", true, "/etc/nginx/g-ca.pem", ""),
            ("10.0.0.6", false, "", ""),
            ("10.0.0.5", false, "", "")
        ]
    );
}

#[test]
fn a_constant_script_filename_is_the_probes_script() {
    let dump = parse_dump(
        "# configuration file /etc/nginx/nginx.conf:\n\
         http {\n    server {\n        listen 80;\n        server_name shop.example;\n\
         \x20       location / {\n            include fastcgi_params;\n\
         \x20           fastcgi_param SCRIPT_FILENAME /var/www/shop/index.php;\n\
         \x20           fastcgi_pass unix:/run/php/php8.2-fpm.sock;\n        }\n\
         \x20       location ~ \\.php$ {\n\
         \x20           fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;\n\
         \x20           fastcgi_pass 127.0.0.1:9000;\n        }\n    }\n}\n",
    );
    let scripts: Vec<&str> = dump
        .config
        .targets
        .iter()
        .map(|t| t.fastcgi_script.as_str())
        .collect();
    assert_eq!(scripts, ["/var/www/shop/index.php", ""]);
}

#[test]
fn a_variable_set_to_a_literal_name_is_that_name_per_block() {
    let dump = parse_dump(
        "# configuration file /etc/nginx/nginx.conf:\n\
         http {\n  server {\n    server_name a;\n    resolver 127.0.0.1 valid=2s;\n\
         \x20   set $app_host app-backend.lab;\n\
         \x20   location / { proxy_pass http://$app_host:8080; }\n\
         \x20   location /b { proxy_pass http://${app_host}:9000; set $app_host other.lab; }\n\
         \x20   location /c { set $app_host $http_x_backend; proxy_pass http://$app_host:8080; }\n\
         \x20   location /d { proxy_pass http://$unset_var; }\n  }\n}\n",
    );
    let got: Vec<(&str, &str, u32, bool)> = dump
        .config
        .targets
        .iter()
        .map(|t| {
            (
                t.location.as_str(),
                t.host.as_str(),
                t.port,
                t.runtime_resolve,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("/", "app-backend.lab", 8080, true),
            // `set` takes effect before the pass wherever it stands in its block.
            ("/b", "other.lab", 9000, true),
            // A value known only per request stays unknown.
            ("/c", "", 0, true),
            ("/d", "", 0, true),
        ]
    );
}
