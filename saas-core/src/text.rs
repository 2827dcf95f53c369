//! Bounded free text: names, titles, descriptions.
//!
//! Lengths are counted in characters, as Django's `max_length` does, and
//! control characters are refused because they have no business in a title
//! and make logs and terminals lie.

use crate::error::{Error, Result};

fn has_control(value: &str, allow_newlines: bool) -> bool {
    value
        .chars()
        .any(|c| c.is_control() && !(allow_newlines && matches!(c, '\n' | '\r' | '\t')))
}

/// A one-line value that must not be blank; surrounding whitespace is trimmed.
pub fn required_line(field: &str, value: &str, max_chars: usize) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid(field, "may not be blank"));
    }
    optional_line(field, trimmed, max_chars)
}

/// A one-line value that may be empty; surrounding whitespace is trimmed.
pub fn optional_line(field: &str, value: &str, max_chars: usize) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.chars().count() > max_chars {
        return Err(Error::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if has_control(trimmed, false) {
        return Err(Error::invalid(field, "may not contain control characters"));
    }
    Ok(trimmed.to_owned())
}

/// Multi-line text that may be empty (descriptions).
pub fn block(field: &str, value: &str, max_chars: usize) -> Result<String> {
    if value.chars().count() > max_chars {
        return Err(Error::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if has_control(value, true) {
        return Err(Error::invalid(field, "may not contain control characters"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_blocks() {
        assert_eq!(required_line("f", "  a b ", 10).unwrap(), "a b");
        assert!(required_line("f", "", 10).is_err());
        assert!(required_line("f", "ééééé", 4).is_err());
        assert!(required_line("f", "ééééé", 5).is_ok());
        assert!(optional_line("f", "a\nb", 10).is_err());
        assert_eq!(optional_line("f", "", 10).unwrap(), "");
        assert!(block("f", "a\nb\tc", 10).is_ok());
        assert!(block("f", "a\u{7}", 10).is_err());
    }
}
