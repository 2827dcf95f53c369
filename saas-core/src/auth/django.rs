//! Password hashes written by Django's hashers, so users imported from a
//! Django deployment keep their passwords.
//!
//! Django stores `<algorithm>$<rest>`. Three hashers are understood:
//! - `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` (Django's default):
//!   PBKDF2-HMAC-SHA256 over the UTF-8 password and salt, 32 bytes,
//!   compared in constant time;
//! - `argon2$<PHC string without its first $>` (argon2-cffi), verified with
//!   the parameters the hash carries;
//! - `bcrypt_sha256$<bcrypt hash>`: bcrypt of the hex SHA-256 of the password.
//!
//! Anything else (unusable `!…` passwords, MD5, unsalted hashes) is not
//! recognised: such a user cannot log in and needs a password reset.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Most PBKDF2 iterations accepted. Django 5.2 uses 1,000,000; a stored
/// hash asking for far more would let one login occupy a core for minutes.
const MAX_PBKDF2_ITERATIONS: u32 = 20_000_000;

/// A Django hasher this module verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DjangoHasher {
    /// `pbkdf2_sha256$…`, Django's default.
    Pbkdf2Sha256,
    /// `argon2$…` (argon2-cffi's PHC string after the prefix).
    Argon2,
    /// `bcrypt_sha256$…`.
    BcryptSha256,
}

impl DjangoHasher {
    /// The hasher that wrote `hash`, if it is one of Django's this module
    /// verifies (judged by its prefix only).
    pub fn of(hash: &str) -> Option<Self> {
        let (algorithm, _) = hash.split_once('$')?;
        match algorithm {
            "pbkdf2_sha256" => Some(DjangoHasher::Pbkdf2Sha256),
            "argon2" => Some(DjangoHasher::Argon2),
            "bcrypt_sha256" => Some(DjangoHasher::BcryptSha256),
            _ => None,
        }
    }
}

/// Whether `password` matches the Django hash `hash`; `None` when `hash` is
/// not a well-formed hash of a hasher this module knows. Slow by design:
/// call it off the async executor.
pub(crate) fn verify(password: &str, hash: &str) -> Option<bool> {
    match DjangoHasher::of(hash)? {
        DjangoHasher::Pbkdf2Sha256 => verify_pbkdf2(password, hash),
        DjangoHasher::Argon2 => verify_argon2(password, hash),
        DjangoHasher::BcryptSha256 => verify_bcrypt_sha256(password, hash),
    }
}

/// Whether `hash` is a well-formed hash of a Django hasher this module
/// verifies (cheap: parses, computes nothing).
pub(crate) fn is_well_formed(hash: &str) -> bool {
    match DjangoHasher::of(hash) {
        Some(DjangoHasher::Pbkdf2Sha256) => parse_pbkdf2(hash).is_some(),
        Some(DjangoHasher::Argon2) => parse_argon2(hash).is_some(),
        Some(DjangoHasher::BcryptSha256) => bcrypt_part(hash).is_some(),
        None => false,
    }
}

/// Iterations, salt and the expected 32-byte key of a `pbkdf2_sha256` hash.
fn parse_pbkdf2(hash: &str) -> Option<(u32, &str, Vec<u8>)> {
    let mut parts = hash.split('$');
    let (Some("pbkdf2_sha256"), Some(iterations), Some(salt), Some(key), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let iterations: u32 = iterations.parse().ok()?;
    if !(1..=MAX_PBKDF2_ITERATIONS).contains(&iterations) || salt.is_empty() {
        return None;
    }
    let key = base64::engine::general_purpose::STANDARD
        .decode(key)
        .ok()
        .filter(|k| k.len() == 32)?;
    Some((iterations, salt, key))
}

fn verify_pbkdf2(password: &str, hash: &str) -> Option<bool> {
    let (iterations, salt, expected) = parse_pbkdf2(hash)?;
    let mut derived = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(
        password.as_bytes(),
        salt.as_bytes(),
        iterations,
        &mut derived,
    );
    Some(bool::from(derived.as_slice().ct_eq(&expected)))
}

/// The PHC string of an `argon2$…` hash (`argon2` followed by a PHC
/// string), if it names an argon2 variant and carries a hash.
pub(super) fn parse_argon2(hash: &str) -> Option<argon2::PasswordHash> {
    parse_phc_argon2(hash.strip_prefix("argon2")?)
}

/// A PHC string naming an argon2 variant and carrying a hash.
pub(super) fn parse_phc_argon2(phc: &str) -> Option<argon2::PasswordHash> {
    let parsed = argon2::PasswordHash::new(phc).ok()?;
    argon2::Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
    parsed.hash.as_ref()?;
    Some(parsed)
}

fn verify_argon2(password: &str, hash: &str) -> Option<bool> {
    use argon2::PasswordVerifier;
    let phc = parse_argon2(hash)?;
    // The hash names its variant, version and costs; the verifier takes
    // them from it rather than from its own defaults.
    Some(
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &phc)
            .is_ok(),
    )
}

fn bcrypt_part(hash: &str) -> Option<&str> {
    hash.strip_prefix("bcrypt_sha256$")
        .filter(|b| b.starts_with("$2") && b.len() == 60)
}

fn verify_bcrypt_sha256(password: &str, hash: &str) -> Option<bool> {
    let bcrypt_hash = bcrypt_part(hash)?;
    // Django hashes the password with SHA-256 first (bcrypt reads only 72
    // bytes) and hands bcrypt the hex digest.
    let digest = hex(&Sha256::digest(password.as_bytes()));
    bcrypt::verify(digest, bcrypt_hash).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with Python's hashlib.pbkdf2_hmac, which Django's hasher calls.
    const PBKDF2_1000: &str =
        "pbkdf2_sha256$1000$seasalt$DrdiWD40lyBuydnjvZiDrdQMx1S1mOA9O0QYex0R6ww=";
    const PBKDF2_NON_ASCII: &str =
        "pbkdf2_sha256$2$abcXYZ123$WlYAHDN+L+EIYTFsfUtSmq9VJgziCHFTIyrC2OCrC1k=";

    #[test]
    fn pbkdf2_sha256_as_django_writes_it() {
        assert_eq!(verify("correct horse battery", PBKDF2_1000), Some(true));
        assert_eq!(verify("correct horse batterY", PBKDF2_1000), Some(false));
        assert_eq!(verify("lètmein", PBKDF2_NON_ASCII), Some(true));
        assert_eq!(verify("letmein", PBKDF2_NON_ASCII), Some(false));
        assert!(is_well_formed(PBKDF2_1000));
    }

    // Written by Django 5.2.19's own hashers (`make_password(password,
    // hasher=…)`, argon2-cffi 25.1 and bcrypt 5.0 with Django's default
    // costs), not by this crate.
    const LONG: &str = "pässwörd with ümlauts and a length past bcrypt's seventy-two byte limit, which Django pre-hashes";
    const DJANGO_HASHES: [(&str, &str); 5] = [
        (
            "pässwörd 1",
            "pbkdf2_sha256$1000000$hDK7CRHe7icnk25Ftxw6Gb$le0p/9SuuakF6OEA3lbQenczWXSP4aZh1UeZuivw9TM=",
        ),
        (
            "correct horse battery staple",
            "argon2$argon2id$v=19$m=102400,t=2,p=8$cGd0U0NJWVg1S1BtTlNoUjJwT3cyTQ$NtngygzujPuIT7V00O1T/DTBZe7jb5qnxgnWOpTjN0w",
        ),
        (
            LONG,
            "argon2$argon2id$v=19$m=102400,t=2,p=8$dlFad1RiSlZUZU84QmR6MHpVNnJnbw$+ddhRwZUb1WCtYM7snKzKzIwHqBBbJOVl8gNiS2vqJQ",
        ),
        (
            "correct horse battery staple",
            "bcrypt_sha256$$2b$12$3MtcmklmrLvAQ5ENL4pRzOVs3l3fKge/Nvk23Ha.rDQVUK87WewdO",
        ),
        (
            LONG,
            "bcrypt_sha256$$2b$12$xQ4frXyoNCm.fxhGwdyPOuCvHU9uxqi7qTspMeWdj6xzp6lFOyMtW",
        ),
    ];

    #[test]
    fn hashes_written_by_django_itself() {
        for (password, hash) in DJANGO_HASHES {
            assert!(is_well_formed(hash), "{hash}");
            assert_eq!(verify(password, hash), Some(true), "{hash}");
            // One character changed (the last), or the password cut to
            // bcrypt's 72 bytes, is refused.
            let mut wrong = password.to_owned();
            wrong.pop();
            wrong.push('!');
            assert_eq!(verify(&wrong, hash), Some(false), "{hash}");
            if password.len() > 72 {
                let cut = &password.as_bytes()[..72];
                let cut = String::from_utf8_lossy(cut);
                assert_eq!(verify(&cut, hash), Some(false), "{hash}");
            }
        }
    }

    #[test]
    fn malformed_pbkdf2_hashes_are_not_recognised() {
        for bad in [
            "pbkdf2_sha256$1000$seasalt",
            "pbkdf2_sha256$x$seasalt$DrdiWD40lyBuydnjvZiDrdQMx1S1mOA9O0QYex0R6ww=",
            "pbkdf2_sha256$0$seasalt$DrdiWD40lyBuydnjvZiDrdQMx1S1mOA9O0QYex0R6ww=",
            "pbkdf2_sha256$999999999$seasalt$DrdiWD40lyBuydnjvZiDrdQMx1S1mOA9O0QYex0R6ww=",
            "pbkdf2_sha256$1000$$DrdiWD40lyBuydnjvZiDrdQMx1S1mOA9O0QYex0R6ww=",
            "pbkdf2_sha256$1000$seasalt$c2hvcnQ=",
            "pbkdf2_sha256$1000$seasalt$!!!",
            "pbkdf2_sha256$1000$seasalt$DrdiWD40lyBuydnjvZiDrdQMx1S1mOA9O0QYex0R6ww=$x",
        ] {
            assert_eq!(verify("correct horse battery", bad), None, "{bad}");
            assert!(!is_well_formed(bad), "{bad}");
        }
        for foreign in ["!unusable", "md5$salt$abc", "", "sha1$a$b"] {
            assert_eq!(DjangoHasher::of(foreign), None);
            assert_eq!(verify("x", foreign), None);
        }
    }

    #[test]
    fn argon2_with_the_costs_the_hash_names() {
        use argon2::password_hash::PasswordHasher;
        // argon2-cffi's defaults as Django uses them are large; smaller
        // costs prove the verifier reads them from the hash.
        let params = argon2::Params::new(64, 1, 2, Some(16)).unwrap();
        let phc = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password(b"s3cret pass")
            .unwrap()
            .to_string();
        let django = format!("argon2{phc}");
        assert!(django.starts_with("argon2$argon2id$v=19$m=64,t=1,p=2$"));
        assert!(is_well_formed(&django));
        assert_eq!(verify("s3cret pass", &django), Some(true));
        assert_eq!(verify("s3cret pasS", &django), Some(false));
        assert_eq!(verify("x", "argon2$nonsense"), None);
    }

    #[test]
    fn bcrypt_sha256_over_the_hex_digest() {
        let password =
            "a password longer than bcrypt's seventy-two bytes, which Django pre-hashes away";
        let inner = bcrypt::hash(hex(&Sha256::digest(password.as_bytes())), 4).unwrap();
        let django = format!("bcrypt_sha256${inner}");
        assert!(is_well_formed(&django));
        assert_eq!(verify(password, &django), Some(true));
        assert_eq!(verify("another password", &django), Some(false));
        assert_eq!(verify(password, "bcrypt_sha256$$2b$04$short"), None);
    }
}
