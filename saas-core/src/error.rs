//! The one error type of `saas-core`.
//!
//! Every variant is something a caller can match on and act upon; only
//! [`Error::Backend`] carries a foreign error, and it keeps it as a source so
//! the chain can be logged. Front ends (the HTTP crate, a CLI) map variants to
//! their own vocabulary; nothing here knows about status codes.

use std::collections::BTreeMap;
use std::fmt;

/// Result type of every fallible `saas` operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A thing the caller asked for or named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entity {
    /// A tenant (organization).
    Tenant,
    /// A domain name routed to a tenant.
    Domain,
    /// A user of a tenant.
    User,
    /// A project of a tenant.
    Project,
    /// A task of a project.
    Task,
    /// A background job.
    Job,
    /// A subscription plan.
    Plan,
    /// A platform superuser.
    Superuser,
}

impl Entity {
    /// Lower-case name used in messages and error codes.
    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Tenant => "tenant",
            Entity::Domain => "domain",
            Entity::User => "user",
            Entity::Project => "project",
            Entity::Task => "task",
            Entity::Job => "job",
            Entity::Plan => "plan",
            Entity::Superuser => "superuser",
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resource whose amount a plan limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Resource {
    /// Users of a tenant (the admin counts).
    Users,
    /// Projects of a tenant.
    Projects,
    /// Tasks of one project.
    TasksPerProject,
    /// Generating project reports (a yes/no feature).
    Reports,
    /// A host application's own quota, named in the plans' `limits`
    /// ([`crate::plans::Plan::check`]).
    Custom(&'static str),
}

impl Resource {
    /// Lower-case name used in messages and error codes.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Users => "users",
            Resource::Projects => "projects",
            Resource::TasksPerProject => "tasks_per_project",
            Resource::Reports => "reports",
            Resource::Custom(name) => name,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Field name to message, for input that failed validation.
pub type FieldErrors = BTreeMap<String, String>;

/// Everything that can go wrong in `saas`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input failed validation; nothing was changed.
    #[error("invalid input: {}", display_fields(.fields))]
    Invalid {
        /// Field name to a human-readable message.
        fields: FieldErrors,
    },
    /// The thing does not exist, or is not visible to the caller (other
    /// tenants' objects, unknown and suspended tenants all look like this).
    #[error("{entity} not found")]
    NotFound {
        /// What was looked for.
        entity: Entity,
    },
    /// A unique value is already taken.
    #[error("{entity} with this {field} already exists")]
    Conflict {
        /// What could not be created.
        entity: Entity,
        /// The unique field that collided.
        field: &'static str,
    },
    /// The caller's role does not allow the operation.
    #[error("forbidden: {reason}")]
    Forbidden {
        /// Why, in words a client can show.
        reason: &'static str,
    },
    /// The tenant's plan does not allow more of `resource`.
    #[error("plan limit reached: at most {limit} {resource} on plan {plan}")]
    PlanLimitExceeded {
        /// The limited resource.
        resource: Resource,
        /// The plan's limit (0 for a feature the plan lacks).
        limit: u64,
        /// The plan's code.
        plan: String,
    },
    /// The tenant already has `limit` jobs waiting or running; try again
    /// when some have finished. Nothing was queued.
    #[error("too many pending jobs: at most {limit} per tenant")]
    TooManyJobs {
        /// The cap.
        limit: u64,
    },
    /// Missing, wrong or expired credentials or token. Deliberately carries no
    /// detail: a wrong password, an unknown user, a token for another tenant
    /// and a revoked token must be indistinguishable from outside.
    #[error("invalid credentials")]
    Unauthenticated,
    /// The operation conflicts with the current state (for example, demoting
    /// the tenant's owner, or completing a job whose lease was taken over).
    #[error("{0}")]
    State(&'static str),
    /// The storage cannot be reached now (the database is down, refuses
    /// connections or does not answer in time). Nothing was changed; the
    /// same call may succeed in a moment. The source is kept for the log.
    #[error("storage unavailable")]
    Unavailable {
        /// What the backend reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The storage has no room left (disk full): writes fail, nothing was
    /// changed, reads still work. The source is kept for the log.
    #[error("storage full")]
    StorageFull {
        /// What the backend reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The storage backend failed. The source is kept for the log; callers
    /// should not show it to clients.
    #[error("storage backend failed")]
    Backend {
        /// What the backend reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// An error and its sources, joined by `": "`: one line for a log or a
/// report that keeps the whole chain.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn display_fields(fields: &FieldErrors) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(field.into(), message.into());
        Error::Invalid { fields }
    }

    /// Wraps a backend error, keeping it as the source. Accepts any error,
    /// `anyhow::Error` and `Box<dyn Error>` included.
    pub fn backend(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Error::Backend {
            source: source.into(),
        }
    }

    /// The storage is unreachable, because of `source`.
    pub fn unavailable(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Unavailable {
            source: Box::new(source),
        }
    }

    /// The storage is full, as `source` says.
    pub fn storage_full(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::StorageFull {
            source: Box::new(source),
        }
    }

    /// Not found.
    pub fn not_found(entity: Entity) -> Self {
        Error::NotFound { entity }
    }

    /// A stable machine-readable code for this error, e.g. `not_found`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } => "invalid",
            Error::NotFound { .. } => "not_found",
            Error::Conflict { .. } => "conflict",
            Error::Forbidden { .. } => "forbidden",
            Error::PlanLimitExceeded { .. } => "plan_limit_exceeded",
            Error::TooManyJobs { .. } => "too_many_jobs",
            Error::Unauthenticated => "unauthenticated",
            Error::State(_) => "invalid_state",
            Error::Unavailable { .. } => "storage_unavailable",
            Error::StorageFull { .. } => "storage_full",
            Error::Backend { .. } => "internal",
        }
    }
}

/// Collects field errors so a caller hears about every bad field at once.
#[derive(Debug, Default)]
pub struct Validator {
    fields: FieldErrors,
}

impl Validator {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value of `result`, or records its field errors under `field`
    /// and returns `None`.
    pub fn check<T>(&mut self, field: &str, result: Result<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(Error::Invalid { fields }) => {
                for (k, v) in fields {
                    // Parsers report under their own generic name; the caller's
                    // field name is the one a client sent.
                    let _ = k;
                    self.fields.entry(field.to_owned()).or_insert(v);
                }
                None
            }
            Err(other) => {
                self.fields
                    .entry(field.to_owned())
                    .or_insert_with(|| other.to_string());
                None
            }
        }
    }

    /// Records an error for `field`.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.fields
            .entry(field.to_owned())
            .or_insert_with(|| message.into());
    }

    /// True when nothing failed so far.
    pub fn is_ok(&self) -> bool {
        self.fields.is_empty()
    }

    /// `Ok(())` if nothing failed, else [`Error::Invalid`] with every field.
    pub fn finish(self) -> Result<()> {
        if self.fields.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid {
                fields: self.fields,
            })
        }
    }
}
