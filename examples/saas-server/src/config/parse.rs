//! How one setting is read: trimmed, blank as unset, yes/no words as
//! booleans, secrets kept out of `Debug`; and the error of a setting no
//! command can run with.

use std::fmt;

/// A configuration no command can run with; the message names the setting.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ConfigError(pub(crate) String);

/// A value that must not be shown: `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A secret setting, as given.
pub(super) fn secret(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret(value.to_owned()))
}

/// A yes/no setting: `1`, `true`, `yes`, `on` or `0`, `false`, `no`, `off`
/// in any case; empty is `EMPTY` (the setting's default).
pub(super) fn boolean<const EMPTY: bool>(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "" => Ok(EMPTY),
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("{other:?} is not a boolean (true/false)")),
    }
}

/// The trimmed value, or `None` when unset or blank.
pub(super) fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// A comma-separated list, trimmed, without empty items.
pub(super) fn list(value: Option<&str>) -> Vec<String> {
    given(value)
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}
