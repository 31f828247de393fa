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
}

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

    /// A `t` timestamp in microseconds since the epoch, as milliseconds.
    pub fn micros_as_ms(&self, key: &str) -> i64 {
        let micros = self
            .value(key)
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0);
        i64::try_from(micros / 1000).unwrap_or(i64::MAX)
    }
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
