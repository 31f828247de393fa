//! Reading a proxy's config test (`nginx -t`/`-T`, `haproxy -c`). A failed
//! test means two different things: the config is invalid (the proxy would
//! not start or reload), or the test could not run as this user, as when
//! the agent runs sandboxed under its own user and nginx cannot create
//! `/run/nginx.pid` or open its logs. Only the first is evidence of
//! `proxy_config_invalid`; the second is reported as a test that did not
//! run, with its reason.

use gw502_proto::v1::ConfigTest;

/// The most bytes of stderr kept in `ConfigTest.output`.
pub const MAX_TEST_OUTPUT: usize = 8 * 1024;

/// What a finished config test says about the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestReading {
    /// The test passed.
    Valid,
    /// The config is invalid; the line that says why.
    Invalid(String),
    /// The test could not judge the config as this user; the reason.
    Indeterminate(String),
}

impl TestReading {
    /// The wire form: `ran` is false for an indeterminate test, so no
    /// reader takes it for an invalid config; `output` is the (bounded)
    /// stderr, after the reason when indeterminate.
    pub fn to_wire(&self, stderr: &str) -> ConfigTest {
        let stderr = stderr.trim_end();
        match self {
            TestReading::Valid => ConfigTest {
                ran: true,
                ok: true,
                output: bounded(stderr),
            },
            TestReading::Invalid(_) => ConfigTest {
                ran: true,
                ok: false,
                output: bounded(stderr),
            },
            TestReading::Indeterminate(reason) => ConfigTest {
                ran: false,
                ok: false,
                output: bounded(&format!(
                    "config test could not run as this user: {reason}\n{stderr}"
                )),
            },
        }
    }
}

/// The reading of a test whose exit status is its verdict.
pub fn read_plain(success: bool, stderr: &str) -> TestReading {
    if success {
        return TestReading::Valid;
    }
    let line = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("config test failed");
    TestReading::Invalid(line.trim().to_string())
}

/// Whether an error message is about access to a file rather than about
/// the config: permission denied, read-only file system, not permitted.
/// nginx and HAProxy print these as `(13: Permission denied)` or with the
/// OpenSSL reason `:Permission denied`.
pub fn is_access_error(message: &str) -> bool {
    const MARKS: [&str; 3] = [
        "Permission denied",
        "Read-only file system",
        "Operation not permitted",
    ];
    MARKS.iter().any(|m| message.contains(m))
}

/// Whether an error message is about where the test ran rather than about
/// the config: an access error ([`is_access_error`]), or a regex the PCRE2
/// JIT could not compile because the process may not map memory writable and
/// executable (`MemoryDenyWriteExecute=yes` in the agent's unit, inherited by
/// the proxy's config test; HAProxy built with JIT compiles every regex).
pub fn is_environment_error(message: &str) -> bool {
    is_access_error(message) || message.contains("jit compilation failed")
}

fn bounded(text: &str) -> String {
    crate::line::cut(text, MAX_TEST_OUTPUT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_forms() {
        let v = TestReading::Valid.to_wire("nginx: syntax is ok\n");
        assert!(v.ran && v.ok && v.output == "nginx: syntax is ok");
        let i = TestReading::Invalid("x".into()).to_wire("x");
        assert!(i.ran && !i.ok);
        let u = TestReading::Indeterminate("pid file".into()).to_wire("e");
        assert!(!u.ran && !u.ok, "{u:?}");
        assert!(
            u.output
                .starts_with("config test could not run as this user: pid file")
        );
        assert!(TestReading::Valid.to_wire(&"é".repeat(10_000)).output.len() <= MAX_TEST_OUTPUT);
    }

    #[test]
    fn plain_reading() {
        assert_eq!(read_plain(true, ""), TestReading::Valid);
        assert_eq!(
            read_plain(false, "\n[ALERT] bad\nmore"),
            TestReading::Invalid("[ALERT] bad".into())
        );
        assert!(is_access_error(
            "open() \"/run/nginx.pid\" failed (13: Permission denied)"
        ));
        assert!(!is_access_error("host not found in upstream \"x\""));
    }
}
