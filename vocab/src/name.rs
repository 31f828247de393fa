//! The one rule for fleet names: host ids in reports and the names in
//! certificates. Names become file names and label values, so they are
//! short, printable and free of path separators.

/// Longest fleet name, a DNS name's limit.
pub const MAX_NAME_LEN: usize = 253;

/// Checks a host id or certificate name; the error says what is wrong.
pub fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("empty")
    } else if name.len() > MAX_NAME_LEN {
        Err("longer than 253 characters")
    } else if name == "." || name == ".." {
        Err("not a usable file name")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Err("only A-Z, a-z, 0-9, '.', '_' and '-' are allowed")
    } else {
        Ok(())
    }
}

/// Whether a site's `name` is a DNS host name, to be sent as `Host` and SNI and
/// matched against virtual servers when the site's URL is an address (as
/// `curl --resolve` does): two or more labels of letters, digits, `-` and `_`, the
/// last not all digits (that is an address). A single label (`site3`, `billing`) or
/// free text (`Shop EU`) names the site for people, not for the proxy.
pub fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= MAX_NAME_LEN
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        })
        && labels
            .last()
            .is_some_and(|l| !l.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_have_two_labels_and_are_no_address() {
        for name in [
            "shop.example",
            "Shop.Example.",
            "api-2.eu.example.com",
            "_dmarc.example",
        ] {
            assert!(is_host_name(name), "{name}");
        }
        for name in [
            "site3",
            "billing",
            "Shop EU",
            "10.0.0.5",
            "shop..example",
            "",
            "shop.example/x",
        ] {
            assert!(!is_host_name(name), "{name}");
        }
    }

    #[test]
    fn names_are_short_printable_and_not_paths() {
        assert!(check_name("web-1.example_a").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "é", &"a".repeat(254)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"a".repeat(253)).is_ok());
    }
}
