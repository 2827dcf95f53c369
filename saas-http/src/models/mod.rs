//! What goes over the wire, one file per resource: the request bodies
//! (`*In`), read from JSON and turned into `saas-core`'s commands, and the
//! objects the API answers with (`*Out`), built from `saas-core`'s types.
//!
//! Both carry the seed's field names. Every id, date and time in a body is
//! read by the `fields` module, the one place that decides what such a
//! value may look like; a body whose fields the core knows by other names
//! declares them there too (`RequestBody`), so that errors name the fields
//! the client sent. The bodies' `ToSchema` is what the OpenAPI document
//! shows. A body keeps the serde name of the command it is read into
//! (`#[serde(expecting = "struct NewTask")]`): serde quotes it in errors such as
//! "expected struct NewTask", which clients have seen since before the
//! bodies had types of their own.
//!
//! Objects are written the way the seed's DRF serializers write them: ids
//! as integers, foreign keys as ids (`project`, `assigned_to_id`) with nested
//! summaries where the seed shows them (`owner`, `members`, `assigned_to`,
//! `created_by`).

mod auth;
pub(crate) mod fields;
mod health;
mod platform;
mod projects;
mod public;
pub(crate) mod rules;
mod stats;
mod tasks;
mod users;

pub use auth::{LoginIn, PlatformTokenOut, RefreshIn, TokenPairOut};
pub use health::{AliveOut, HealthOut, ReadyOut};
pub use platform::{DomainIn, DomainOut, PlanIn, TenantOut};
pub use projects::{MemberIn, NewProjectIn, ProjectOut, ProjectPatchIn};
pub use public::{RegistrationIn, RegistrationOut};
pub use stats::{DashboardOut, ProjectStatisticsOut, UsageOut};
pub use tasks::{NewTaskIn, TaskOut, TaskPatchIn};
pub use users::{ChangePasswordIn, NewUserIn, UserOut, UserPatchIn, UserSummaryOut};
