//! nginx: units, `nginx -T` as both config dump and config test, the
//! error.log line parser, the `combined` access format, local log times and
//! its `<hr><center>nginx</center>` error pages.
//!
//! Run as the agent's own user, `nginx -T` fails before dumping anything
//! when it cannot create its pid file or open its logs; [`Nginx::read_test`]
//! reads that as a test that could not run, not as an invalid config.

pub mod config;
pub mod log;

use std::ffi::OsString;
use std::path::PathBuf;

pub use config::{COMBINED, DEFAULT_PREFIX, NginxDump, parse_dump, parse_dump_with_prefix};
pub use log::parse_error_line;

use crate::test::{TestReading, is_access_error};
use crate::{
    AccessFormat, ConfigLocation, ConfigSource, Discovered, ErrorLine, Page, PageMark, Proxy,
    ProxyKind,
};

/// The nginx model.
#[derive(Debug, Clone, Copy)]
pub struct Nginx;

impl Proxy for Nginx {
    fn kind(&self) -> ProxyKind {
        ProxyKind::Nginx
    }

    fn units(&self) -> &'static [&'static str] {
        &["nginx.service"]
    }

    /// `connect() failed (111: Connection refused)`: 502.
    fn refused_status(&self) -> u16 {
        502
    }

    fn default_location(&self) -> ConfigLocation {
        ConfigLocation {
            bin: PathBuf::from("nginx"),
            config: None,
            prefix: None,
        }
    }

    fn config_source(&self, at: &ConfigLocation) -> ConfigSource {
        let mut args: Vec<OsString> = vec!["-T".into()];
        if let Some(conf) = &at.config {
            args.extend(["-c".into(), conf.clone().into_os_string()]);
        }
        if let Some(prefix) = &at.prefix {
            args.extend(["-p".into(), prefix.clone().into_os_string()]);
        }
        let fallback = at
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(config::DEFAULT_CONF));
        ConfigSource::Dump {
            args,
            fallback: Some(fallback),
        }
    }

    fn includes(&self, file: &str, text: &str) -> Vec<String> {
        config::includes(file, text)
    }

    fn join_files(&self, files: &[(String, String)]) -> String {
        config::join_dump(files)
    }

    fn parse_config(&self, text: &str, at: &ConfigLocation) -> Discovered {
        let prefix = at.prefix.as_ref().map(|p| p.to_string_lossy().into_owned());
        let dump = parse_dump_with_prefix(text, prefix.as_deref().unwrap_or(DEFAULT_PREFIX));
        Discovered {
            config: dump.config,
            access_formats: dump
                .access_log_formats
                .into_iter()
                .map(|(path, template)| (path, AccessFormat::nginx(&template)))
                .collect(),
        }
    }

    fn read_test(&self, success: bool, stderr: &str) -> TestReading {
        read_test(success, stderr)
    }

    fn parse_error_line(&self, raw: &[u8]) -> Option<ErrorLine> {
        parse_error_line(&crate::line::text(raw))
    }

    fn local_time(&self) -> bool {
        true
    }

    fn default_access_format(&self) -> Option<AccessFormat> {
        Some(AccessFormat::combined())
    }

    fn page(&self, page: &Page<'_>) -> Option<PageMark> {
        page.body
            .contains("<hr><center>nginx")
            .then_some(PageMark::Body)
    }
}

/// Reads `nginx -t`/`-T` stderr. nginx stops at its first `[emerg]`; when
/// every `[emerg]` is about access to a file (pid file, logs, certificates:
/// `(13: Permission denied)`, `(30: Read-only file system)`), the test says
/// nothing about the config.
fn read_test(success: bool, stderr: &str) -> TestReading {
    if success {
        return TestReading::Valid;
    }
    let emerg: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("[emerg]"))
        .map(str::trim)
        .collect();
    match emerg.iter().find(|l| !is_access_error(l)) {
        Some(line) => TestReading::Invalid(line.to_string()),
        None => TestReading::Indeterminate(
            emerg
                .first()
                .map_or("the test failed without an [emerg] line", |l| l)
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BROKEN: &str = include_str!("../fixtures/nginx/broken.stderr");
    const AS_NOBODY: &str = include_str!("../fixtures/nginx/nobody-pid.stderr");

    #[test]
    fn a_real_syntax_error_is_invalid() {
        let r = read_test(false, BROKEN);
        assert!(
            matches!(&r, TestReading::Invalid(l) if l.contains("host not found in upstream")),
            "{r:?}"
        );
    }

    #[test]
    fn a_test_that_could_not_open_the_pid_file_is_indeterminate() {
        let r = read_test(false, AS_NOBODY);
        assert!(
            matches!(&r, TestReading::Indeterminate(l) if l.contains("nginx.pid")),
            "{r:?}"
        );
        assert_eq!(read_test(true, "syntax is ok"), TestReading::Valid);
        assert!(matches!(
            read_test(false, ""),
            TestReading::Indeterminate(_)
        ));
    }

    #[test]
    fn dump_args_follow_the_location() {
        let at = ConfigLocation {
            bin: "nginx".into(),
            config: Some("/x/nginx.conf".into()),
            prefix: Some("/x".into()),
        };
        assert_eq!(
            Nginx.config_source(&at),
            ConfigSource::Dump {
                args: vec![
                    "-T".into(),
                    "-c".into(),
                    "/x/nginx.conf".into(),
                    "-p".into(),
                    "/x".into()
                ],
                fallback: Some("/x/nginx.conf".into()),
            }
        );
    }
}
