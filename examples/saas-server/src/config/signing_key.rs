//! Where the token-signing key comes from: SECRET_KEY, or a key generated
//! once and kept in the SQLite data directory. Either must look like a
//! secret: at least 32 bytes of random-looking text, and none of the keys
//! published in this repository (examples, placeholders, test keys), which
//! anyone could use to forge tokens. DEBUG changes nothing here.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::parse::{ConfigError, Secret};

/// The shortest key accepted, in bytes.
const MIN_LEN: usize = 32;

/// How to make a good key, for every refusal.
const GENERATE: &str = "generate one with `openssl rand -hex 32`";

/// Keys that appear in this repository's files: the `.env.example`
/// placeholder, documentation snippets, test and benchmark keys, and the
/// development key DEBUG once used. Published, so anyone can sign tokens
/// with them.
const PUBLISHED: &[&str] = &[
    "change-me-to-64-hex-characters-from-openssl-rand-hex-32",
    "change me: at least thirty-two bytes of secret",
    "a secret of at least thirty-two bytes!",
    "saas-insecure-development-key-do-not-use-in-production",
    "e2e test secret of at least thirty-two bytes",
    "server jobs test secret, at least 32 bytes long",
    "worker crash test secret, at least 32 bytes long",
    "conformance-suite token-signing secret, 56 bytes long!!",
    "saas testing secret, not for production use!",
    "saas-bench secret, thirty-two bytes or more",
    "saas-bench secret: thirty-two bytes or more",
    "embed example secret: thirty-two bytes or more",
];

/// Words of placeholders and examples: a key holding one was typed from
/// documentation, not generated.
const PLACEHOLDER_WORDS: &[&str] = &[
    "change-me",
    "changeme",
    "change me",
    "change_me",
    "replace",
    "placeholder",
    "example",
    "insecure",
    "do-not-use",
    "your-secret",
    "your_secret",
    "secret-key",
    "secret_key",
];

/// Why `key` (named `name` in messages) cannot sign tokens, if it cannot.
pub(crate) fn check(name: &str, key: &str) -> Result<(), ConfigError> {
    let lower = key.to_ascii_lowercase();
    if PUBLISHED.contains(&key) || PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w)) {
        return Err(ConfigError(format!(
            "{name} is a published example key, so anyone could forge tokens; {GENERATE}"
        )));
    }
    if key.len() < MIN_LEN {
        return Err(ConfigError(format!(
            "{name} must be at least 32 bytes; {GENERATE}"
        )));
    }
    if !looks_random(key) {
        return Err(ConfigError(format!(
            "{name} does not look random (too few distinct characters, or a repeated pattern); {GENERATE}"
        )));
    }
    Ok(())
}

/// Whether `key` looks like random data: some variety of characters, an
/// estimated entropy (from its own character frequencies) of at least 100
/// bits, and no short pattern repeated. A heuristic: it stops `aaaa…`,
/// `0123…0123…` and short words padded out, not a determined typist;
/// [`PUBLISHED`] and [`PLACEHOLDER_WORDS`] catch what is copied from here.
fn looks_random(key: &str) -> bool {
    let bytes = key.as_bytes();
    let distinct: BTreeSet<u8> = bytes.iter().copied().collect();
    if distinct.len() < 10 {
        return false;
    }
    let len = bytes.len() as f64;
    let bits: f64 = distinct
        .iter()
        .map(|b| {
            let p = bytes.iter().filter(|x| *x == b).count() as f64 / len;
            -p * p.log2()
        })
        .sum::<f64>()
        * len;
    let repeated = (1..=bytes.len() / 2)
        .any(|period| bytes.iter().skip(period).zip(bytes).all(|(a, b)| a == b));
    bits >= 100.0 && !repeated
}

/// The signing key's source, chosen (and an existing key file checked) at
/// start; [`SigningKey::key`] reads or creates the key.
#[derive(Debug, Clone)]
pub(crate) enum SigningKey {
    /// SECRET_KEY.
    Given(Secret),
    /// SQLite without SECRET_KEY: a random key kept in `path` (mode 0600),
    /// created on first start, so `saas-server` runs out of the box and
    /// tokens survive restarts. PostgreSQL deployments set SECRET_KEY
    /// instead, since several processes must share it.
    Kept {
        /// `<DATA_DIR>/secret_key`.
        path: PathBuf,
        /// The key already there, if any.
        existing: Option<Secret>,
    },
}

impl SigningKey {
    /// The source SECRET_KEY and the storage (the SQLite directory, if
    /// SQLite) call for.
    pub(crate) fn choose(
        given: Option<&Secret>,
        sqlite_dir: Option<&Path>,
    ) -> Result<SigningKey, ConfigError> {
        if let Some(key) = given.map(|s| s.0.trim()).filter(|s| !s.is_empty()) {
            check("SECRET_KEY", key)?;
            return Ok(SigningKey::Given(Secret(key.to_owned())));
        }
        match sqlite_dir {
            Some(dir) => {
                let path = dir.join("secret_key");
                let existing = kept(&path)?;
                Ok(SigningKey::Kept { path, existing })
            }
            None => Err(ConfigError(format!(
                "SECRET_KEY is required with PostgreSQL (every process must share it); {GENERATE}"
            ))),
        }
    }

    /// The key: creates the key file on first use.
    pub(crate) fn key(&self) -> Result<Secret, ConfigError> {
        match self {
            SigningKey::Given(key)
            | SigningKey::Kept {
                existing: Some(key),
                ..
            } => Ok(key.clone()),
            SigningKey::Kept {
                path,
                existing: None,
            } => generate(path),
        }
    }
}

/// The key kept at `path`, if the file can be read.
fn kept(path: &Path) -> Result<Option<Secret>, ConfigError> {
    let Ok(existing) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let existing = existing.trim();
    check(&path.display().to_string(), existing)
        .map_err(|e| ConfigError(format!("{}; or remove the file, or set SECRET_KEY", e.0)))?;
    Ok(Some(Secret(existing.to_owned())))
}

/// Creates the key file (never over an existing one).
fn generate(path: &Path) -> Result<Secret, ConfigError> {
    use std::os::unix::fs::OpenOptionsExt;
    let cannot = |what: &str, e: std::io::Error| {
        ConfigError(format!("cannot {what} {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ConfigError(format!("cannot create {}: {e}", dir.display())))?;
    }
    // Two v4 UUIDs: 244 bits from the operating system's CSPRNG.
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| cannot("create", e))?;
    file.write_all(key.as_bytes())
        .map_err(|e| cannot("write", e))?;
    eprintln!(
        "SECRET_KEY is not set: generated a signing key in {}",
        path.display()
    );
    Ok(Secret(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_short_and_patterned_keys_are_refused() {
        for key in PUBLISHED {
            let e = check("SECRET_KEY", key).unwrap_err();
            assert!(e.0.contains("openssl rand -hex 32"), "{key}: {e}");
        }
        for key in [
            "short",
            "0123456789abcdef",
            &"a".repeat(64),
            &"0123456789abcdef".repeat(4),
            &"ab".repeat(40),
            "my-app-secret-key-please-change-it-later-0000",
            "CHANGEME0123456789abcdefghijklmnopqrstuvwxyz",
        ] {
            assert!(check("SECRET_KEY", key).is_err(), "{key} accepted");
        }
    }

    #[test]
    fn generated_keys_are_accepted() {
        for key in [
            // openssl rand -hex 32, openssl rand -base64 32, two UUIDs.
            "3f9c2e7b1a0d48c6e5f7a9b2c4d6e8f01a3c5e7092b4d6f8a0c2e4f6b8d0a2c4",
            "q3Z8vN1xK5mW0pR7tY2uI9oE4aS6dF3gH8jL1kZ0cX5=",
            "0b1e5a8f3c2d4e6f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f",
        ] {
            check("SECRET_KEY", key).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        let generated = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        check("SECRET_KEY", &generated).unwrap();
    }

    #[test]
    fn debug_does_not_weaken_the_key() {
        let e = SigningKey::choose(None, None).unwrap_err();
        assert!(e.0.contains("required with PostgreSQL"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let chosen = SigningKey::choose(None, Some(dir.path())).unwrap();
        assert!(matches!(chosen, SigningKey::Kept { existing: None, .. }));
        let key = chosen.key().unwrap();
        check("kept key", &key.0).unwrap();
        std::fs::write(dir.path().join("secret_key"), PUBLISHED[0]).unwrap();
        assert!(SigningKey::choose(None, Some(dir.path())).is_err());
    }
}
