//! What a host application uses most, in one import:
//! `use saas_core::prelude::*;`.

pub use crate::apps::{App, Apps, Migration};
pub use crate::commands::{
    NewProject, NewTask, NewUser, ProjectPatch, Registration, TaskPatch, UserPatch,
};
pub use crate::error::{Entity, Error, Resource, Result};
pub use crate::events::Event;
pub use crate::patch::Patch;
pub use crate::plans::{Plan, PlanCatalog};
pub use crate::projects::{Priority, ProjectId, ProjectStatus, TaskId, TaskStatus};
pub use crate::service::{Listener, Saas, SaasBuilder};
pub use crate::session::Session;
pub use crate::store::{Page, PageRequest, Store, TenantScope, TenantStore};
pub use crate::tenancy::{Tenant, TenantId};
pub use crate::users::{Role, User, UserId};
