//! `saas-notes`: a host application built on `saas`, the way one would be
//! written outside this workspace. It adds tenant-scoped notes to the whole
//! API, on either backend:
//!
//! - its table, by two migrations in each dialect ([`migrations`]), run
//!   with ours at every tenant's provisioning and by `saas-notes migrate`;
//! - its queries, through the backends' `with_tenant_tx`, given the
//!   request's [`Session`](saas_core::Session) or a job's tenant handle, so
//!   no tenant ever reads another's notes ([`notes`]);
//! - `GET` and `POST /api/notes/` ([`routes`]) on the same server as the
//!   seed's API, with our extractors, pagination, role matrix and errors;
//! - a job counting each note's words, and a durable event handler writing
//!   a welcome note into every new tenant ([`jobs`]).
//!
//! The program is `saas-server`'s ([`saas_server::Host`]): `serve`,
//! `worker`, `migrate` and the rest, configured the same way (`--bind`,
//! `DATA_DIR`, `DATABASE_URL`, `SECRET_KEY`, …).
//!
//! ```sh
//! cargo run -p saas-notes                   # serve on SQLite under ./data
//! DATABASE_URL=postgres://… SECRET_KEY=… cargo run -p saas-notes -- serve --bind 0.0.0.0:8000
//! ```

pub mod jobs;
pub mod migrations;
pub mod notes;
pub mod routes;

use std::sync::Arc;

use saas_core::jobs::events::EventJobListener;
use saas_server::Host;

/// The program: `saas-server`'s, with the notes' migrations, job kinds,
/// routes, and every lifecycle event queued for [`jobs::Welcome`].
pub fn host() -> Host {
    Host::new("saas-notes")
        .apps(migrations::apps())
        .jobs(jobs::kinds)
        .routes(routes::routes)
        .listener(|queue, clock| Arc::new(EventJobListener::new(queue, clock)))
}

/// README.md's Rust snippets, compiled and run as this crate's doctests
/// (`cargo test -p saas-notes --doc`), so the README cannot drift from the
/// crates' API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
