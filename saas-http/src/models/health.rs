//! What the health endpoints answer.

use serde::Serialize;
use utoipa::ToSchema;

/// `GET /api/health/`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HealthOut {
    /// `healthy` or `unhealthy`.
    pub status: String,
    /// `ok` or `unavailable`.
    pub database: String,
}

/// `GET /healthz`: the process is alive (nothing else is looked at).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AliveOut {
    /// Always `alive`.
    #[schema(example = "alive")]
    pub status: String,
}

/// `GET /readyz`: whether this process can serve, and why not.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReadyOut {
    /// `ready` when every check passed, else `unready`.
    pub status: String,
    /// The store answers: `ok` or `unavailable`.
    pub store: String,
    /// The job queue answers: `ok`, `unavailable`, or `absent` when this
    /// server runs no job queue.
    pub queue: String,
    /// Storage schemas: `current`, `pending` (run `saas-server migrate`)
    /// or `unknown` (the store did not answer).
    pub migrations: String,
    /// How many parts of the storage wait for a migration.
    pub pending_migrations: u64,
}
