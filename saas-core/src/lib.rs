//! `saas-core`: the domain, services, auth and plans of a multi-tenant SaaS
//! backend, and the storage traits its backends implement.
//!
//! This crate knows no SQL library and no HTTP. Backends
//! (`saas-store-sqlite`, `saas-store-postgres`) implement [`store::Store`];
//! the optional `saas-http` crate serves the REST API on top of
//! [`service::Saas`].

pub mod clock;
pub mod error;
pub mod plans;
pub mod projects;
pub mod store;
pub mod tenancy;
pub mod text;
pub mod users;

pub use error::{Entity, Error, Resource, Result};
