//! The D-Bus side of the systemd source: typed proxies for the manager and
//! for `org.freedesktop.DBus.Properties` on unit objects, typed reads out of a
//! `GetAll` answer, and the mapping of bus errors to operator words.

use std::collections::HashMap;

use zbus::zvariant::{OwnedObjectPath, OwnedValue, Value};

use crate::source::Unavailable;

/// `org.freedesktop.systemd1.Manager`, the calls this source needs.
#[zbus::proxy(
    interface = "org.freedesktop.systemd1.Manager",
    default_service = "org.freedesktop.systemd1",
    default_path = "/org/freedesktop/systemd1"
)]
pub trait Manager {
    /// Loads a unit (from disk if needed) and returns its object path.
    fn load_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    /// Returns the object path of an already loaded unit.
    fn get_unit(&self, name: &str) -> zbus::Result<OwnedObjectPath>;

    /// Loaded units in one of `states` (`failed`, ...).
    fn list_units_filtered(&self, states: &[&str]) -> zbus::Result<Vec<ListedUnit>>;

    /// The named units, loaded or not (systemd 230 and later).
    fn list_units_by_names(&self, names: &[&str]) -> zbus::Result<Vec<ListedUnit>>;

    /// Unit files in one of `states` whose name matches one of `patterns`:
    /// `(path, state)`.
    fn list_unit_files_by_patterns(
        &self,
        states: &[&str],
        patterns: &[&str],
    ) -> zbus::Result<Vec<(String, String)>>;
}

/// One row of `ListUnits*`: name, description, load state, active state,
/// sub state, followed unit, object path, job id, job type, job path.
pub type ListedUnit = (
    String,
    String,
    String,
    String,
    String,
    String,
    OwnedObjectPath,
    u32,
    String,
    OwnedObjectPath,
);

/// `org.freedesktop.DBus.Properties` on a systemd unit object.
#[zbus::proxy(
    interface = "org.freedesktop.DBus.Properties",
    default_service = "org.freedesktop.systemd1"
)]
pub trait Properties {
    /// Every property of one interface.
    fn get_all(&self, interface: &str) -> zbus::Result<HashMap<String, OwnedValue>>;
}

/// A `GetAll` answer with lenient typed getters: a missing or mistyped
/// property reads as empty/zero instead of failing the whole unit.
#[derive(Debug, Default)]
pub struct Props(pub HashMap<String, OwnedValue>);

impl Props {
    fn value(&self, key: &str) -> Option<&Value<'static>> {
        self.0.get(key).map(|v| &**v)
    }

    /// A string property.
    pub fn string(&self, key: &str) -> String {
        match self.value(key) {
            Some(Value::Str(s)) => s.to_string(),
            _ => String::new(),
        }
    }

    /// A `u` property.
    pub fn u32(&self, key: &str) -> u32 {
        self.value(key)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    }

    /// An `i` property.
    pub fn i32(&self, key: &str) -> i32 {
        self.value(key)
            .and_then(|v| i32::try_from(v).ok())
            .unwrap_or(0)
    }

    /// The argv of the first command of an `a(sasbttttuii)` exec property
    /// (`ExecStart`), secret-looking option values redacted, at most
    /// [`MAX_ARGS`] arguments of at most [`MAX_ARG_CHARS`] characters.
    pub fn exec_argv(&self, key: &str) -> Vec<String> {
        let Some(Value::Array(commands)) = self.value(key) else {
            return Vec::new();
        };
        let Some(Value::Structure(first)) = commands.iter().next() else {
            return Vec::new();
        };
        let Some(Value::Array(argv)) = first.fields().get(1) else {
            return Vec::new();
        };
        let args: Vec<String> = argv
            .iter()
            .take(MAX_ARGS)
            .filter_map(|a| match a {
                Value::Str(s) => Some(s.chars().take(MAX_ARG_CHARS).collect()),
                _ => None,
            })
            .collect();
        redact(args)
    }

    /// A `t` timestamp in microseconds since the epoch, as milliseconds.
    pub fn micros_as_ms(&self, key: &str) -> i64 {
        let micros = self
            .value(key)
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0);
        i64::try_from(micros / 1000).unwrap_or(i64::MAX)
    }
}

/// Arguments of an exec command kept.
pub const MAX_ARGS: usize = 32;
/// Characters of one argument kept.
pub const MAX_ARG_CHARS: usize = 256;

/// Words in an option name that mark its value as a secret.
const SECRET_WORDS: &[&str] = &["pass", "secret", "token", "key", "auth", "credential"];

fn secret_option(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.starts_with('-') && SECRET_WORDS.iter().any(|w| name.contains(w))
}

/// Replaces the values of secret-looking options (`--password=x`,
/// `--token x`, `DB_PASSWORD=x` through `env`) with `***`: an argv travels
/// to the collector and into incidents.
pub fn redact(mut args: Vec<String>) -> Vec<String> {
    let mut hide_next = false;
    for arg in &mut args {
        if std::mem::take(&mut hide_next) {
            *arg = "***".to_string();
            continue;
        }
        match arg.split_once('=') {
            Some((name, _))
                if secret_option(name)
                    || (!name.starts_with('-') && secret_option(&format!("-{name}"))) =>
            {
                *arg = format!("{name}=***");
            }
            Some(_) => {}
            None => hide_next = secret_option(arg),
        }
    }
    args
}

/// The type-specific interface holding `Result` (and, for services, the
/// restart counter and main process), chosen by the unit name's suffix.
pub fn type_interface(name: &str) -> Option<&'static str> {
    let suffix = name.rsplit_once('.')?.1;
    Some(match suffix {
        "service" => "org.freedesktop.systemd1.Service",
        "socket" => "org.freedesktop.systemd1.Socket",
        "mount" => "org.freedesktop.systemd1.Mount",
        "timer" => "org.freedesktop.systemd1.Timer",
        "swap" => "org.freedesktop.systemd1.Swap",
        "path" => "org.freedesktop.systemd1.Path",
        "automount" => "org.freedesktop.systemd1.Automount",
        _ => return None,
    })
}

/// The D-Bus error name of a method error.
pub fn error_name(error: &zbus::Error) -> Option<&str> {
    match error {
        zbus::Error::MethodError(name, _, _) => Some(name.as_str()),
        _ => None,
    }
}

/// Errors that mean "no such unit" rather than "systemd is unreachable".
pub fn is_unit_error(error: &zbus::Error) -> bool {
    matches!(
        error_name(error),
        Some(
            "org.freedesktop.systemd1.NoSuchUnit"
                | "org.freedesktop.systemd1.LoadFailed"
                | "org.freedesktop.DBus.Error.InvalidArgs"
        )
    )
}

/// Maps a bus error that stops the whole collect to a reason.
pub fn unavailable(error: &zbus::Error) -> Unavailable {
    match error_name(error) {
        Some(
            "org.freedesktop.DBus.Error.ServiceUnknown"
            | "org.freedesktop.DBus.Error.NameHasNoOwner",
        ) => Unavailable::because("no systemd: org.freedesktop.systemd1 is not on the system bus"),
        _ => Unavailable::because(format!("systemd over d-bus: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn props_read_typed_values_and_default_on_mismatch() {
        let mut map = HashMap::new();
        map.insert(
            "Description".to_string(),
            OwnedValue::from(zbus::zvariant::Str::from("App")),
        );
        map.insert("NRestarts".to_string(), OwnedValue::from(3u32));
        map.insert("ExecMainStatus".to_string(), OwnedValue::from(-1i32));
        map.insert(
            "StateChangeTimestamp".to_string(),
            OwnedValue::from(1_700_000_000_123_456u64),
        );
        map.insert("MainPID".to_string(), OwnedValue::from(7i32));
        let props = Props(map);
        assert_eq!(props.string("Description"), "App");
        assert_eq!(props.u32("NRestarts"), 3);
        assert_eq!(props.i32("ExecMainStatus"), -1);
        assert_eq!(
            props.micros_as_ms("StateChangeTimestamp"),
            1_700_000_000_123
        );
        assert_eq!(props.u32("MainPID"), 0, "wrong type reads as zero");
        assert_eq!(props.string("Missing"), "");
    }

    /// `ExecStart` of `gw502-crash.service` as recorded in
    /// `fixtures/systemd/gw502-crash.service-getall.json`, rebuilt as the
    /// zvariant value zbus hands over.
    fn recorded_exec_start() -> HashMap<String, OwnedValue> {
        let json: serde_json::Value = serde_json::from_str(include_str!(
            "../../fixtures/systemd/gw502-crash.service-getall.json"
        ))
        .unwrap();
        let exec = &json["data"][0]["ExecStart"];
        assert_eq!(exec["type"], "a(sasbttttuii)");
        let cmd = &exec["data"][0];
        let argv: Vec<String> = cmd[1]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let n = |i: usize| cmd[i].as_u64().unwrap();
        let row = (
            cmd[0].as_str().unwrap().to_string(),
            argv,
            cmd[2].as_bool().unwrap(),
            n(3),
            n(4),
            n(5),
            n(6),
            u32::try_from(n(7)).unwrap(),
            i32::try_from(n(8)).unwrap(),
            i32::try_from(n(9)).unwrap(),
        );
        let value = Value::from(vec![row]);
        assert_eq!(value.value_signature().to_string(), "a(sasbttttuii)");
        let mut map = HashMap::new();
        map.insert("ExecStart".to_string(), value.try_to_owned().unwrap());
        map
    }

    #[test]
    fn exec_argv_reads_the_recorded_exec_start() {
        let props = Props(recorded_exec_start());
        assert_eq!(
            props.exec_argv("ExecStart"),
            [
                "/bin/sh",
                "-c",
                "echo \"<3>crash: cannot connect to database at 127.0.0.1:5432\"; exit 3"
            ]
        );
        assert!(props.exec_argv("ExecStop").is_empty());
    }

    #[test]
    fn secrets_in_argv_are_redacted() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            redact(argv(&[
                "/usr/bin/env",
                "DB_PASSWORD=hunter2",
                "PORT=3000",
                "/srv/app/bin/app",
                "--api-token",
                "abc",
                "--bind=127.0.0.1:3000",
                "--secret-key=xyz",
            ])),
            argv(&[
                "/usr/bin/env",
                "DB_PASSWORD=***",
                "PORT=3000",
                "/srv/app/bin/app",
                "--api-token",
                "***",
                "--bind=127.0.0.1:3000",
                "--secret-key=***",
            ])
        );
    }

    #[test]
    fn type_interface_follows_the_suffix() {
        assert_eq!(
            type_interface("nginx.service"),
            Some("org.freedesktop.systemd1.Service")
        );
        assert_eq!(
            type_interface("php.socket"),
            Some("org.freedesktop.systemd1.Socket")
        );
        assert_eq!(type_interface("session-1.scope"), None);
        assert_eq!(type_interface("nodot"), None);
    }
}
