//! FastCGI probes against a real PHP-FPM pool on a unix socket.

use crate::testing::php_fpm;
use crate::{Endpoint, Outcome, ProbeRequest, Protocol, probe};

#[tokio::test]
async fn live_pool_answers_with_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("index.php");
    std::fs::write(
        &script,
        "<?php http_response_code(203); header('X-Probe: yes'); echo 'hi';",
    )
    .unwrap();
    let _fpm = php_fpm(dir.path());
    let sock = dir.path().join("fpm.sock");

    let mut missing = ProbeRequest::new(Endpoint::Unix(sock.clone()), Protocol::FastCgi);
    missing.path = "/nope.php".into();
    missing.script_filename = Some(dir.path().join("nope.php").display().to_string());
    let result = probe(&missing).await;
    assert_eq!(
        (result.outcome, result.status),
        (Outcome::Ok, 404),
        "{result:?}"
    );
    assert!(
        result.detail.contains("Primary script unknown"),
        "{result:?}"
    );

    let mut real = ProbeRequest::new(Endpoint::Unix(sock), Protocol::FastCgi);
    real.path = "/index.php".into();
    real.script_filename = Some(script.display().to_string());
    let result = probe(&real).await;
    assert_eq!(
        (result.outcome, result.status),
        (Outcome::Ok, 203),
        "{result:?}"
    );
    assert!(
        result
            .headers
            .iter()
            .any(|(n, v)| n == "X-Probe" && v == "yes"),
        "{result:?}"
    );
    assert!(result.header_bytes > 0);
}
