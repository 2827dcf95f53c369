//! Users: the user objects, and the bodies that register and change them.

use chrono::{DateTime, Utc};
use saas_core::commands::{NewUser, UserPatch};
use saas_core::users::{Role, User, UserSummary};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rules;

/// A user as `GET /api/users/` and `GET /api/users/me/` show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserOut {
    /// Id within the tenant.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Email address.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// `admin`, `manager`, `member` or `viewer`.
    pub role: String,
    /// Department.
    pub department: String,
    /// Inactive users cannot log in.
    pub is_active: bool,
    /// The tenant's owner (its first admin).
    pub is_owner: bool,
    /// Last successful login.
    pub last_login: Option<DateTime<Utc>>,
    /// When the user was created.
    pub date_joined: DateTime<Utc>,
}

impl From<&User> for UserOut {
    fn from(u: &User) -> Self {
        UserOut {
            id: u.id.0,
            username: u.username.as_str().to_owned(),
            email: u.email.as_str().to_owned(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            role: u.role.as_str().to_owned(),
            department: u.department.clone(),
            is_active: u.is_active,
            is_owner: u.is_owner,
            last_login: u.last_login,
            date_joined: u.date_joined,
        }
    }
}

impl From<User> for UserOut {
    fn from(u: User) -> Self {
        UserOut::from(&u)
    }
}

/// A user nested in a project or task.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserSummaryOut {
    /// Id within the tenant.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Email address.
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Role.
    pub role: String,
}

impl From<&UserSummary> for UserSummaryOut {
    fn from(u: &UserSummary) -> Self {
        UserSummaryOut {
            id: u.id.0,
            username: u.username.as_str().to_owned(),
            email: u.email.as_str().to_owned(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            role: u.role.as_str().to_owned(),
        }
    }
}

/// `POST /api/users/register/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(expecting = "struct NewUser")]
pub struct NewUserIn {
    /// ASCII letters, digits and `@.+-_`; unique in the tenant ignoring case.
    #[schema(schema_with = rules::username)]
    pub username: String,
    /// Email address.
    #[schema(schema_with = rules::email)]
    pub email: String,
    /// Password (8 to 128 characters, not all digits, not the username).
    #[schema(schema_with = rules::password)]
    pub password: String,
    /// Given name.
    #[serde(default)]
    #[schema(schema_with = rules::person_name)]
    pub first_name: String,
    /// Family name.
    #[serde(default)]
    #[schema(schema_with = rules::person_name)]
    pub last_name: String,
    /// `admin`, `manager`, `member` (default) or `viewer`.
    #[serde(default)]
    #[schema(schema_with = rules::role)]
    pub role: Option<Role>,
    /// Department.
    #[serde(default)]
    #[schema(schema_with = rules::department)]
    pub department: String,
}

impl From<NewUserIn> for NewUser {
    fn from(b: NewUserIn) -> Self {
        NewUser {
            username: b.username,
            email: b.email,
            password: b.password,
            first_name: b.first_name,
            last_name: b.last_name,
            role: b.role,
            department: b.department,
        }
    }
}

/// `PATCH /api/users/{id}/`: absent (or null) fields stay as they are.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(expecting = "struct UserPatch")]
pub struct UserPatchIn {
    /// New email.
    #[schema(schema_with = rules::email_patch)]
    pub email: Option<String>,
    /// New given name.
    #[schema(schema_with = rules::person_name_patch)]
    pub first_name: Option<String>,
    /// New family name.
    #[schema(schema_with = rules::person_name_patch)]
    pub last_name: Option<String>,
    /// New role (admins only).
    #[schema(schema_with = rules::role)]
    pub role: Option<Role>,
    /// New department.
    #[schema(schema_with = rules::department_patch)]
    pub department: Option<String>,
    /// Activate or deactivate (admins only).
    pub is_active: Option<bool>,
}

impl From<UserPatchIn> for UserPatch {
    fn from(b: UserPatchIn) -> Self {
        UserPatch {
            email: b.email,
            first_name: b.first_name,
            last_name: b.last_name,
            role: b.role,
            department: b.department,
            is_active: b.is_active,
        }
    }
}

/// `POST /api/users/change_password/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ChangePasswordIn {
    /// The current password.
    pub old_password: String,
    /// The new password (8 to 128 characters, not all digits).
    #[schema(schema_with = rules::password)]
    pub new_password: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn roles_are_read_by_name() {
        let unknown_role = json!({
            "username": "x1", "email": "x1@example.com",
            "password": "securepassword123", "role": "owner"
        });
        assert!(serde_json::from_value::<NewUserIn>(unknown_role).is_err());
        let known_role = json!({
            "username": "x1", "email": "x1@example.com",
            "password": "securepassword123", "role": "viewer"
        });
        let parsed: NewUser = serde_json::from_value::<NewUserIn>(known_role)
            .unwrap()
            .into();
        assert_eq!(parsed.role, Some(Role::Viewer));
    }
}
