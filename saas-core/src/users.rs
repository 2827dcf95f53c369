//! Users of a tenant, their roles, and the values that identify them.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::text;

/// Id of a user, unique within its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A username: 1 to 150 ASCII letters, digits and `@.+-_`. Uniqueness within
/// a tenant ignores case (see [`Username::key`]); non-ASCII look-alikes such
/// as a Cyrillic `а` are refused outright, so they cannot impersonate.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Longest username accepted.
    pub const MAX_LEN: usize = 150;

    /// Parses and validates a username.
    pub fn parse(value: &str) -> Result<Self> {
        let ok = (1..=Self::MAX_LEN).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"@.+-_".contains(&b));
        if ok {
            Ok(Username(value.to_owned()))
        } else {
            Err(Error::invalid(
                "username",
                "must be 1 to 150 characters: ASCII letters, digits and @.+-_",
            ))
        }
    }

    /// The username as the user typed it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form that must be unique in a tenant.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Username {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Username::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An email address: `local@domain`, ASCII, at most 254 characters, the
/// domain a valid hostname (stored lowercase).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// Parses and validates an email address.
    pub fn parse(value: &str) -> Result<Self> {
        let err = || Error::invalid("email", "must be a valid email address");
        if value.len() > 254 || !value.is_ascii() {
            return Err(err());
        }
        let (local, domain) = value.rsplit_once('@').ok_or_else(err)?;
        let local_ok = (1..=64).contains(&local.len())
            && local
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b))
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if !local_ok {
            return Err(err());
        }
        let domain = crate::tenancy::Hostname::parse(domain).map_err(|_| err())?;
        Ok(Email(format!("{local}@{domain}")))
    }

    /// The address as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Email::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A plain-text password on its way to being hashed. Its `Debug` says nothing.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Shortest password accepted, in characters.
    pub const MIN_CHARS: usize = 8;
    /// Longest password accepted, in characters (argon2 cost is bounded anyway,
    /// but there is no reason to accept megabytes).
    pub const MAX_CHARS: usize = 128;

    /// Validates a new password: 8 to 128 characters, not all digits.
    pub fn parse(value: &str) -> Result<Self> {
        let n = value.chars().count();
        if n < Self::MIN_CHARS {
            return Err(Error::invalid("password", "must be at least 8 characters"));
        }
        if n > Self::MAX_CHARS {
            return Err(Error::invalid("password", "must be at most 128 characters"));
        }
        if value.chars().all(|c| c.is_ascii_digit()) {
            return Err(Error::invalid("password", "may not be entirely numeric"));
        }
        Ok(Password(value.to_owned()))
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A user's role in its tenant, most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages users and everything else.
    Admin,
    /// Registers members and viewers, creates projects, manages their members and tasks.
    Manager,
    /// Works on tasks in their projects.
    Member,
    /// Only reads.
    Viewer,
}

impl Role {
    /// Every role, most powerful first.
    pub const ALL: [Role; 4] = [Role::Admin, Role::Manager, Role::Member, Role::Viewer];

    /// The role as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "admin" => Ok(Role::Admin),
            "manager" => Ok(Role::Manager),
            "member" => Ok(Role::Member),
            "viewer" => Ok(Role::Viewer),
            _ => Err(Error::invalid(
                "role",
                "must be one of: admin, manager, member, viewer",
            )),
        }
    }
}

/// A user of a tenant, as stored (without the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Id within the tenant.
    pub id: UserId,
    /// Login name.
    pub username: Username,
    /// Email address.
    pub email: Email,
    /// Given name (may be empty).
    pub first_name: String,
    /// Family name (may be empty).
    pub last_name: String,
    /// Role in the tenant.
    pub role: Role,
    /// Department (may be empty).
    pub department: String,
    /// Inactive users cannot log in and their tokens stop working.
    pub is_active: bool,
    /// The admin created at registration; no other admin can demote or deactivate it.
    pub is_owner: bool,
    /// Last successful login.
    pub last_login: Option<DateTime<Utc>>,
    /// When the user was created (Django's `date_joined`).
    pub date_joined: DateTime<Utc>,
    /// Bumped whenever existing tokens must stop working (password change,
    /// deactivation); tokens carry the version they were issued at.
    #[serde(skip)]
    pub token_version: i64,
}

impl User {
    /// The nested form used inside projects and tasks.
    pub fn summary(&self) -> UserSummary {
        UserSummary {
            id: self.id,
            username: self.username.clone(),
            email: self.email.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            role: self.role,
        }
    }
}

/// A user as nested in projects (owner, members) and tasks (assignee, creator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    /// Id within the tenant.
    pub id: UserId,
    /// Login name.
    pub username: Username,
    /// Email address.
    pub email: Email,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Role in the tenant.
    pub role: Role,
}

/// Longest first or last name, in characters.
pub const MAX_NAME_CHARS: usize = 150;
/// Longest department, in characters.
pub const MAX_DEPARTMENT_CHARS: usize = 100;

/// A validated first name, last name or department.
pub fn parse_name(field: &str, value: &str, max: usize) -> Result<String> {
    text::optional_line(field, value, max)
}

/// A new user, validated, with the password already hashed; what a backend stores.
#[derive(Debug, Clone)]
pub struct NewUserRecord {
    /// Login name.
    pub username: Username,
    /// Email address.
    pub email: Email,
    /// PHC string of the argon2id hash.
    pub password_hash: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Role.
    pub role: Role,
    /// Department.
    pub department: String,
    /// Whether this is the tenant's owner.
    pub is_owner: bool,
    /// Creation time.
    pub date_joined: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(Username::parse("john.doe+x@y-z_1").is_ok());
        assert_eq!(Username::parse("ADMIN").unwrap().key(), "admin");
        for bad in ["", "a b", "аdmin", "a/b", "a\u{0}", &"a".repeat(151)] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("John@ACME.com").unwrap().as_str(),
            "John@acme.com"
        );
        for bad in [
            "",
            "a",
            "a@",
            "@b.com",
            "a b@c.com",
            "a@b..com",
            ".a@b.com",
            "é@b.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_and_roles() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("12345678901").is_err());
        assert!(Password::parse("securepassword123").is_ok());
        assert_eq!(
            format!("{:?}", Password::parse("securepassword123").unwrap()),
            "Password(***)"
        );
        assert_eq!("manager".parse::<Role>().unwrap(), Role::Manager);
        assert!("owner".parse::<Role>().is_err());
        assert!(Role::Admin < Role::Viewer);
    }
}
