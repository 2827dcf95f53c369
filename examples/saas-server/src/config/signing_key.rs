//! Where the token-signing key comes from: SECRET_KEY, a key generated once
//! and kept in the SQLite data directory, or (DEBUG only) a public
//! development key.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::parse::{ConfigError, Secret};

/// The key used when `DEBUG` is on and no `SECRET_KEY` is set. Public, so
/// tokens signed with it are worthless: development only.
const DEV_SECRET: &str = "saas-insecure-development-key-do-not-use-in-production";

/// The shortest key accepted, in bytes.
const MIN_LEN: usize = 32;

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
    /// DEBUG without SECRET_KEY.
    Development,
}

impl SigningKey {
    /// The source SECRET_KEY, DEBUG and the storage (the SQLite directory,
    /// if SQLite) call for.
    pub(crate) fn choose(
        given: Option<&Secret>,
        debug: bool,
        sqlite_dir: Option<&Path>,
    ) -> Result<SigningKey, ConfigError> {
        if let Some(key) = given.map(|s| s.0.trim()).filter(|s| !s.is_empty()) {
            if key.len() < MIN_LEN {
                return Err(ConfigError("SECRET_KEY must be at least 32 bytes".into()));
            }
            return Ok(SigningKey::Given(Secret(key.to_owned())));
        }
        match sqlite_dir {
            Some(dir) if !debug => {
                let path = dir.join("secret_key");
                let existing = kept(&path)?;
                Ok(SigningKey::Kept { path, existing })
            }
            _ if debug => Ok(SigningKey::Development),
            _ => Err(ConfigError(
                "SECRET_KEY is required with PostgreSQL (at least 32 bytes; e.g. `openssl rand -hex 32`), \
                 or set DEBUG=true for development"
                    .into(),
            )),
        }
    }

    /// The key: creates the key file on first use, and warns on stderr
    /// about the development key.
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
            SigningKey::Development => {
                eprintln!(
                    "\n  WARNING: SECRET_KEY is not set; DEBUG is on, so a fixed, PUBLIC development key\n  \
                     is used. Anyone can forge tokens for this server. Never run it like this in production.\n"
                );
                Ok(Secret(DEV_SECRET.to_owned()))
            }
        }
    }
}

/// The key kept at `path`, if the file can be read.
fn kept(path: &Path) -> Result<Option<Secret>, ConfigError> {
    let Ok(existing) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let existing = existing.trim();
    if existing.len() < MIN_LEN {
        return Err(ConfigError(format!(
            "{} holds fewer than 32 bytes; remove it or set SECRET_KEY",
            path.display()
        )));
    }
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
