//! `saas-core`: the domain, services, auth and plans of a multi-tenant SaaS
//! backend, and the storage traits its backends implement.
//!
//! This crate knows no SQL library and no HTTP. Backends
//! (`saas-store-sqlite`, `saas-store-postgres`) implement [`store::Store`];
//! host applications hold a [`Saas`] and act through [`Session`]s; the
//! optional `saas-http` crate serves the REST API on top of them.
//!
//! Map of the crate:
//! - [`tenancy`], [`users`], [`projects`], [`plans`]: validated domain types.
//! - [`commands`]: what callers ask for (a registration, new users, projects
//!   and tasks, patches), unvalidated; [`patch::Patch`] says keep, clear or set.
//! - [`tenant_query`]: the operator's search over the catalog.
//! - [`store`]: the storage traits ([`store::Store`], [`store::TenantStore`]).
//! - [`query`]: a task query as conditions and ordering keys, for backends
//!   to render; [`migration`]: the fleet-migration driver backends share.
//! - [`service`]: [`Saas`] — registration, tenant resolution, login, tokens.
//! - [`session`]: [`Session`] — one user acting in one tenant.
//! - [`operator`]: platform superusers. [`audit`]: the audit log's entries.
//! - [`permissions`]: the role matrix. [`auth`]: passwords and JWTs.
//! - [`dates`]: the years every backend stores (1 to 9999).
//! - [`prelude`]: what a host application uses most, in one import.
//! - [`events`]: lifecycle events listeners receive.
//! - [`apps`]: a host application's own migrations, which backends run
//!   with theirs.
//! - [`updates`]: partial updates, the columns a change writes.
//! - [`import`]: importing a Django deployment of the seed ([`Saas::import`]).

pub mod apps;
pub mod audit;
pub mod auth;
mod cache;
pub mod clock;
pub mod commands;
mod context;
pub mod dates;
pub mod error;
pub mod events;
pub mod import;
pub mod jobs;
pub mod migration;
pub mod operator;
pub mod patch;
pub mod permissions;
pub mod plans;
pub mod prelude;
pub mod projects;
pub mod query;
pub mod service;
pub mod session;
pub mod store;
pub mod telemetry;
pub mod tenancy;
pub mod tenant_query;
pub mod text;
pub mod updates;
pub mod users;

pub use error::{Entity, Error, Resource, Result};
pub use service::{Saas, SaasBuilder};
pub use session::Session;
