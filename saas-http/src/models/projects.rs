//! Projects: the project object, and the bodies that create and change
//! projects and their members.

use chrono::{DateTime, NaiveDate, Utc};
use saas_core::Entity;
use saas_core::commands::{NewProject, ProjectPatch};
use saas_core::patch::Patch;
use saas_core::projects::{Project, ProjectStatus};
use saas_core::users::UserId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::fields::{self, RequestBody};
use super::rules;
use super::users::UserSummaryOut;

/// A project with its owner and members.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProjectOut {
    /// Id within the tenant.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// `planning`, `active`, `on_hold`, `completed` or `archived`.
    pub status: String,
    /// Planned start (`YYYY-MM-DD`).
    pub start_date: Option<NaiveDate>,
    /// Planned end.
    pub end_date: Option<NaiveDate>,
    /// The user who created it.
    pub owner: UserSummaryOut,
    /// Members, by id.
    pub members: Vec<UserSummaryOut>,
    /// Number of members.
    pub member_count: usize,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Project> for ProjectOut {
    fn from(p: Project) -> Self {
        ProjectOut {
            id: p.id.0,
            name: p.name,
            description: p.description,
            status: p.status.as_str().to_owned(),
            start_date: p.start_date,
            end_date: p.end_date,
            owner: UserSummaryOut::from(&p.owner),
            member_count: p.members.len(),
            members: p.members.iter().map(UserSummaryOut::from).collect(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// `POST /api/projects/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(expecting = "struct NewProject")]
pub struct NewProjectIn {
    /// 1 to 200 characters.
    #[schema(schema_with = rules::title)]
    pub name: String,
    /// Description.
    #[serde(default)]
    #[schema(schema_with = rules::description)]
    pub description: String,
    /// `planning` (default), `active`, `on_hold`, `completed`, `archived`.
    #[serde(default)]
    #[schema(schema_with = rules::project_status)]
    pub status: Option<ProjectStatus>,
    /// Planned start (`YYYY-MM-DD`).
    #[serde(default, deserialize_with = "fields::optional")]
    #[schema(schema_with = rules::date)]
    pub start_date: Option<NaiveDate>,
    /// Planned end, not before the start.
    #[serde(default, deserialize_with = "fields::optional")]
    #[schema(schema_with = rules::date)]
    pub end_date: Option<NaiveDate>,
}

impl From<NewProjectIn> for NewProject {
    fn from(b: NewProjectIn) -> Self {
        NewProject {
            name: b.name,
            description: b.description,
            status: b.status,
            start_date: b.start_date,
            end_date: b.end_date,
        }
    }
}

/// `PATCH /api/projects/{id}/`: absent fields stay as they are; `null`
/// clears a date (and leaves any other field as it is).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(expecting = "struct ProjectPatch")]
pub struct ProjectPatchIn {
    /// New name.
    #[schema(schema_with = rules::title_patch)]
    pub name: Option<String>,
    /// New description.
    #[schema(schema_with = rules::description_patch)]
    pub description: Option<String>,
    /// New status.
    #[schema(schema_with = rules::project_status)]
    pub status: Option<ProjectStatus>,
    /// New planned start, or `null` for none.
    #[serde(default, deserialize_with = "fields::patch")]
    #[schema(schema_with = rules::date)]
    pub start_date: Patch<NaiveDate>,
    /// New planned end, or `null` for none.
    #[serde(default, deserialize_with = "fields::patch")]
    #[schema(schema_with = rules::date)]
    pub end_date: Patch<NaiveDate>,
}

impl From<ProjectPatchIn> for ProjectPatch {
    fn from(b: ProjectPatchIn) -> Self {
        ProjectPatch {
            name: b.name,
            description: b.description,
            status: b.status,
            start_date: b.start_date,
            end_date: b.end_date,
        }
    }
}

/// `POST /api/projects/{id}/add_member/` and `remove_member/`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MemberIn {
    /// The user's id.
    #[serde(deserialize_with = "fields::required")]
    #[schema(value_type = i64)]
    pub user_id: UserId,
}

impl RequestBody for MemberIn {
    const REFERENCES: &'static [(Entity, &'static str)] = &[(Entity::User, "user_id")];
}

#[cfg(test)]
mod tests {
    use saas_core::Error;
    use serde_json::json;

    use super::*;

    #[test]
    fn new_project_bodies() {
        for bad in [
            json!({"name": "x", "status": "paused"}),
            json!({"name": "x", "status": "ACTIVE"}),
            json!({"name": "x", "start_date": "2030-02-30"}),
            json!({"status": "active"}),
        ] {
            assert!(
                serde_json::from_value::<NewProjectIn>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        let ok: NewProject =
            serde_json::from_value::<NewProjectIn>(json!({"name": "x", "status": "on_hold"}))
                .unwrap()
                .into();
        assert_eq!(ok.status, Some(ProjectStatus::OnHold));
    }

    #[test]
    fn project_patch_bodies_keep_clear_or_set_dates() {
        assert!(serde_json::from_value::<ProjectPatchIn>(json!({"status": "nope"})).is_err());
        let patch: ProjectPatch = serde_json::from_value::<ProjectPatchIn>(
            json!({"start_date": null, "end_date": "2030-01-31", "name": null}),
        )
        .unwrap()
        .into();
        assert_eq!(patch.start_date, Patch::Clear);
        assert_eq!(
            patch.end_date,
            Patch::Set(NaiveDate::from_ymd_opt(2030, 1, 31).unwrap())
        );
        assert_eq!(patch.name, None, "null leaves a name as it is");
        let patch: ProjectPatch = serde_json::from_value::<ProjectPatchIn>(json!({}))
            .unwrap()
            .into();
        assert_eq!(
            (patch.start_date, patch.end_date),
            (Patch::Keep, Patch::Keep)
        );
    }

    #[test]
    fn an_unknown_member_is_the_bodys_mistake() {
        let e = MemberIn::error(Error::not_found(Entity::User));
        assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(e.fields()["user_id"], "no such user");
        let e = MemberIn::error(Error::not_found(Entity::Project));
        assert_eq!(e.status(), axum::http::StatusCode::NOT_FOUND);
    }
}
