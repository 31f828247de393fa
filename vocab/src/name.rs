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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_printable_and_not_paths() {
        assert!(check_name("web-1.example_a").is_ok());
        for bad in ["", ".", "..", "a/b", "a b", "é", &"a".repeat(254)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"a".repeat(253)).is_ok());
    }
}
