//! Passwords and tokens.
//!
//! Passwords are hashed with argon2id at the OWASP parameters (19 MiB,
//! 2 passes, 1 lane), on the blocking pool and never on the async executor,
//! with at most one hash per core at a time so a login flood cannot exhaust
//! memory; the 19 MiB working memory is kept and reused (one set a permit),
//! never allocated per hash on whichever thread runs it. A login for an unknown user verifies against a dummy hash, so it
//! costs the same as a wrong password. Hashes imported from Django
//! (`pbkdf2_sha256$…`, `argon2$…`, `bcrypt_sha256$…`, see [`DjangoHasher`])
//! verify too; [`Passwords::needs_rehash`] tells the login to replace them
//! with argon2id once the password is known.
//!
//! Tokens are HS256 JWTs bound to one tenant. Every failure to verify a
//! token — bad signature, expired, wrong kind, another tenant, revoked —
//! is the same [`Error::Unauthenticated`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use chrono::{DateTime, Utc};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{OnceCell, Semaphore};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::tenancy::TenantId;
use crate::users::{Role, UserId};

mod django;
pub use django::DjangoHasher;

/// The argon2id parameters in use (OWASP's recommendation).
pub fn argon2_params() -> Params {
    Params::DEFAULT
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params())
}

/// argon2's working memory (19 MiB a hash at [`argon2_params`]), kept and
/// reused. Allocating it afresh for every hash, on whichever blocking-pool
/// thread runs it, left each thread's allocator holding its own 19 MiB, so
/// a server's resident memory grew with the threads that ever hashed. Hashes
/// are bounded by the permits, so this holds at most one block set a permit.
#[derive(Debug, Default)]
struct Arena(Mutex<Vec<Vec<Block>>>);

impl Arena {
    /// Runs `f` with `len` blocks: a kept set when `len` is the size this
    /// arena keeps (the parameters in use), else a set of its own (an
    /// imported hash at other costs; rare, and replaced at the next login).
    fn with<T>(&self, len: usize, f: impl FnOnce(&mut [Block]) -> T) -> T {
        if len != argon2_params().block_count() {
            return f(&mut vec![Block::new(); len]);
        }
        let kept = self.0.lock().map(|mut sets| sets.pop()).unwrap_or(None);
        let mut blocks = kept.unwrap_or_else(|| vec![Block::new(); len]);
        let out = f(&mut blocks);
        if let Ok(mut sets) = self.0.lock() {
            sets.push(blocks);
        }
        out
    }
}

/// The raw argon2 output of `password` under `argon2`'s parameters, into
/// `out`, in `arena`'s memory.
fn argon2_into(
    arena: &Arena,
    argon2: &Argon2<'_>,
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> std::result::Result<(), argon2::Error> {
    arena.with(params.block_count(), |blocks| {
        argon2.hash_password_into_with_memory(password, salt, out, blocks)
    })
}

/// A fresh argon2id PHC string of `password` at [`argon2_params`].
fn hash_argon2id(arena: &Arena, password: &[u8]) -> std::result::Result<String, HashError> {
    let fail = |e: &dyn std::fmt::Display| HashError(e.to_string());
    let salt = argon2::password_hash::try_generate_salt().map_err(|e| fail(&e))?;
    let params = argon2_params();
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    argon2_into(arena, &hasher(), &params, password, &salt, &mut out).map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| fail(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| fail(&e))?),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// Whether `password` matches the argon2 PHC string `phc` (any variant,
/// version and costs it names). A malformed string never matches.
fn verify_argon2_phc(arena: &Arena, password: &[u8], phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        Params::try_from(&hash),
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    if argon2_into(arena, &argon2, &params, password, salt, &mut out).is_err() {
        return false;
    }
    // Output's equality is constant-time.
    Output::new(&out).is_ok_and(|computed| &computed == expected)
}

/// Hashes and verifies passwords off the async executor.
#[derive(Debug, Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    dummy: Arc<OnceCell<String>>,
    arena: Arc<Arena>,
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

impl Passwords {
    /// A hasher allowing one concurrent hash per available core.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Passwords {
            permits: Arc::new(Semaphore::new(cores)),
            dummy: Arc::new(OnceCell::new()),
            arena: Arc::default(),
        }
    }

    /// A hasher allowing `n` concurrent hashes.
    #[cfg(test)]
    fn with_permits(n: usize) -> Self {
        Passwords {
            permits: Arc::new(Semaphore::new(n)),
            dummy: Arc::new(OnceCell::new()),
            arena: Arc::default(),
        }
    }

    /// Runs `f` on the blocking pool under a permit. The permit moves into
    /// the closure: a caller that goes away (a client disconnecting drops
    /// the request's future) cannot stop a hash already running, so the
    /// permit must stay taken until the hash itself ends, or a flood of
    /// abandoned logins would run more hashes than there are cores.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(Error::backend)?;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(Error::backend)
    }

    /// Hashes a password into a PHC string.
    pub async fn hash(&self, password: &str) -> Result<String> {
        let password = password.to_owned();
        let arena = self.arena.clone();
        self.blocking(move || hash_argon2id(&arena, password.as_bytes()).map_err(Error::backend))
            .await?
    }

    /// Whether `password` matches `hash`: our argon2id PHC strings, or one
    /// of the Django hashes [`DjangoHasher`] names. A malformed or unknown
    /// hash never matches.
    pub async fn verify(&self, password: &str, hash: &str) -> Result<bool> {
        let password = password.to_owned();
        let hash = hash.to_owned();
        let arena = self.arena.clone();
        self.blocking(move || match django::verify(&password, &hash) {
            Some(matches) => matches,
            None => verify_argon2_phc(&arena, password.as_bytes(), &hash),
        })
        .await
    }

    /// Whether a hash that just verified should be replaced by a fresh one:
    /// anything but argon2id at the parameters in use (a Django hash, or
    /// argon2 at other costs).
    pub fn needs_rehash(hash: &str) -> bool {
        let p = argon2_params();
        let current = format!(
            "$argon2id$v=19$m={},t={},p={}$",
            p.m_cost(),
            p.t_cost(),
            p.p_cost()
        );
        !hash.starts_with(&current)
    }

    /// Whether some password could verify against `hash` (a well-formed
    /// hash of a kind [`Passwords::verify`] knows). Cheap: nothing is
    /// hashed. A user whose stored hash is not verifiable needs a reset.
    pub fn is_verifiable(hash: &str) -> bool {
        if DjangoHasher::of(hash).is_some() {
            return django::is_well_formed(hash);
        }
        django::parse_phc_argon2(hash).is_some()
    }

    /// Spends the time of one verification without a user to verify, so an
    /// unknown username costs what a wrong password does.
    pub async fn verify_dummy(&self, password: &str) -> Result<()> {
        let dummy = self
            .dummy
            .get_or_try_init(|| self.hash("dummy password for timing equalization"))
            .await?
            .clone();
        self.verify(password, &dummy).await.map(|_| ())
    }
}

/// A password-hashing failure (only ever a bug or resource exhaustion).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

/// Which kind of token a JWT is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Short-lived, sent with every request.
    Access,
    /// Longer-lived, exchanged once for a new pair.
    Refresh,
    /// A platform superuser's access token (no tenant).
    Platform,
}

/// The claims of every token `saas` issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Subject: the user id (or superuser id), as text per RFC 7519.
    pub sub: String,
    /// The user id, as simplejwt names it.
    pub user_id: i64,
    /// The tenant the token is valid at (`None` for platform tokens).
    pub tid: Option<TenantId>,
    /// The user's role when the token was issued.
    pub role: Option<Role>,
    /// The user's token version when issued; a newer version revokes it.
    pub ver: i64,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Unique token id.
    pub jti: Uuid,
    /// Access, refresh or platform.
    pub token_type: TokenKind,
    /// Refresh-token family (every rotation from one login shares it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<Uuid>,
}

/// An access and a refresh token, as `POST /api/token/` returns them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenPair {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
}

/// Signing keys and lifetimes of tokens.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Lifetime of access tokens.
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_ttl: Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("access_ttl", &self.access_ttl)
            .field("refresh_ttl", &self.refresh_ttl)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Shortest secret accepted, in bytes.
    pub const MIN_SECRET_LEN: usize = 32;

    /// Keys from a secret of at least 32 bytes; access tokens live 5 minutes
    /// and refresh tokens a day, as in simplejwt.
    pub fn new(secret: &[u8]) -> Result<Self> {
        if secret.len() < Self::MIN_SECRET_LEN {
            return Err(Error::invalid("secret_key", "must be at least 32 bytes"));
        }
        let encoding = EncodingKey::from_secret(secret).map_err(Error::backend)?;
        let decoding = DecodingKey::from_secret(secret).map_err(Error::backend)?;
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Ok(TokenKeys {
            encoding,
            decoding,
            validation,
            access_ttl: Duration::from_secs(5 * 60),
            refresh_ttl: Duration::from_secs(24 * 60 * 60),
        })
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String> {
        jsonwebtoken::encode(&Header::default(), claims, &self.encoding).map_err(Error::backend)
    }

    /// Verifies signature and expiry and returns the claims of a token of `kind`.
    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Claims> {
        // Anything longer is not one of ours; refuse before any work.
        if token.len() > 4096 {
            return Err(Error::Unauthenticated);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|_| Error::Unauthenticated)?;
        if data.claims.token_type != kind {
            return Err(Error::Unauthenticated);
        }
        Ok(data.claims)
    }

    /// Claims for a new token of `kind` issued now.
    #[allow(clippy::too_many_arguments)]
    pub fn claims(
        &self,
        kind: TokenKind,
        user_id: UserId,
        tenant: Option<TenantId>,
        role: Option<Role>,
        version: i64,
        family: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> Claims {
        let ttl = match kind {
            TokenKind::Refresh => self.refresh_ttl,
            TokenKind::Access | TokenKind::Platform => self.access_ttl,
        };
        let iat = now.timestamp();
        Claims {
            sub: user_id.0.to_string(),
            user_id: user_id.0,
            tid: tenant,
            role,
            ver: version,
            exp: iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            iat,
            jti: Uuid::new_v4(),
            token_type: kind,
            fam: family,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let p = Passwords::new();
        let h = p.hash("correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(p.verify("correct horse", &h).await.unwrap());
        assert!(!p.verify("wrong horse", &h).await.unwrap());
        assert!(!p.verify("x", "not a hash").await.unwrap());
        p.verify_dummy("anything").await.unwrap();
        assert!(!Passwords::needs_rehash(&h));
        assert!(Passwords::is_verifiable(&h));
    }

    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let p = Passwords::new();
        // Ours verifies with the crate's own verifier…
        let ours = p.hash("correct horse").await.unwrap();
        assert!(
            hasher()
                .verify_password(b"correct horse", ours.as_str())
                .is_ok()
        );
        assert!(
            hasher()
                .verify_password(b"wrong horse", ours.as_str())
                .is_err()
        );
        // …and the crate's verify with ours, at the costs and variant they
        // name (argon2i at small costs here), not only ours.
        let params = Params::new(64, 1, 2, Some(24)).unwrap();
        let other = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(b"s3cret")
            .unwrap()
            .to_string();
        assert!(other.starts_with("$argon2i$v=19$m=64,t=1,p=2$"), "{other}");
        assert!(p.verify("s3cret", &other).await.unwrap());
        assert!(!p.verify("s3cret!", &other).await.unwrap());
        let crate_made = hasher().hash_password(b"pw").unwrap().to_string();
        assert!(p.verify("pw", &crate_made).await.unwrap());
        // Damaged strings never match (and never panic).
        for bad in [
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=0,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "$argon2id$v=99$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            "$argon2x$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
            &ours[..ours.len() - 4],
        ] {
            assert!(!p.verify("pw", bad).await.unwrap(), "{bad}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn working_memory_is_kept_one_set_a_permit() {
        let p = Passwords::with_permits(2);
        let h = p.hash("pw").await.unwrap();
        let runs: Vec<_> = (0..8)
            .map(|_| {
                let p = p.clone();
                let h = h.clone();
                tokio::spawn(async move { p.verify("pw", &h).await.unwrap() })
            })
            .collect();
        for r in runs {
            assert!(r.await.unwrap());
        }
        let kept = p.arena.0.lock().unwrap();
        assert!(
            (1..=2).contains(&kept.len()),
            "sets kept: {} (2 permits)",
            kept.len()
        );
        assert!(
            kept.iter()
                .all(|b| b.len() == argon2_params().block_count())
        );
    }

    #[tokio::test]
    async fn django_hashes_verify_and_ask_for_a_rehash() {
        let p = Passwords::new();
        let django = "pbkdf2_sha256$1000$seasalt$DrdiWD40lyBuydnjvZiDrdQMx1S1mOA9O0QYex0R6ww=";
        assert!(p.verify("correct horse battery", django).await.unwrap());
        assert!(!p.verify("wrong horse battery", django).await.unwrap());
        assert!(Passwords::needs_rehash(django));
        assert!(Passwords::is_verifiable(django));
        // argon2id at other costs is verified, then brought to ours.
        let cheap = "$argon2id$v=19$m=64,t=1,p=1$c29tZXNhbHQ$KCEqzXnqyLY2ugFW5Ca2gw";
        assert!(Passwords::needs_rehash(cheap));
        for unusable in [
            "!Xy9unusablepasswordfromdjango",
            "md5$salt$abc",
            "",
            "sha1$$x",
        ] {
            assert!(!Passwords::is_verifiable(unusable), "{unusable}");
            assert!(!p.verify("x", unusable).await.unwrap());
        }
    }

    #[tokio::test]
    async fn an_abandoned_hash_keeps_its_permit_until_it_ends() {
        let p = Passwords::with_permits(1);
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let caller = {
            let p = p.clone();
            tokio::spawn(async move {
                p.blocking(move || {
                    let _ = started_tx.send(());
                    let _ = release_rx.recv();
                })
                .await
            })
        };
        tokio::task::spawn_blocking(move || started_rx.recv())
            .await
            .unwrap()
            .unwrap();
        // The client goes away; the work on the blocking pool does not.
        caller.abort();
        let _ = caller.await;
        assert_eq!(p.permits.available_permits(), 0, "permit released early");
        release_tx.send(()).unwrap();
        let released = tokio::time::timeout(Duration::from_secs(5), async {
            while p.permits.available_permits() == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(released.is_ok(), "permit not returned after the work ended");
    }

    #[test]
    fn tokens_round_trip_and_refuse_tampering() {
        let keys = TokenKeys::new(&[7u8; 32]).unwrap();
        let tid = TenantId::new();
        let c = keys.claims(
            TokenKind::Access,
            UserId(3),
            Some(tid),
            Some(Role::Member),
            0,
            None,
            Utc::now(),
        );
        let t = keys.sign(&c).unwrap();
        assert_eq!(keys.verify(&t, TokenKind::Access).unwrap(), c);
        assert!(matches!(
            keys.verify(&t, TokenKind::Refresh),
            Err(Error::Unauthenticated)
        ));
        let other = TokenKeys::new(&[8u8; 32]).unwrap();
        assert!(matches!(
            other.verify(&t, TokenKind::Access),
            Err(Error::Unauthenticated)
        ));
        let expired = keys.claims(
            TokenKind::Access,
            UserId(3),
            Some(tid),
            None,
            0,
            None,
            Utc::now() - chrono::Duration::hours(1),
        );
        let t = keys.sign(&expired).unwrap();
        assert!(matches!(
            keys.verify(&t, TokenKind::Access),
            Err(Error::Unauthenticated)
        ));
        assert!(matches!(
            keys.verify("garbage", TokenKind::Access),
            Err(Error::Unauthenticated)
        ));
        assert!(TokenKeys::new(b"short").is_err());
    }
}
