//! Host applications' own storage: the migrations an application built on
//! `saas` registers for every tenant (the tenant scope) and for the
//! platform (the shared scope), run by the backends with their own.
//!
//! An [`App`] is a name and two ordered lists of named [`Migration`]s. A
//! migration holds one [`Step`] per storage dialect: SQL text, or a
//! function given the backend's transaction (made by the backend crate:
//! `saas_store_postgres::step`, `saas_store_sqlite::step`). The backends
//! take an [`Apps`] registry in their configuration and then:
//!
//! - provisioning a tenant applies every tenant-scope migration in the
//!   same all-or-nothing step that creates its storage;
//! - [`Store::migrate`](crate::store::Store::migrate) applies the ones a
//!   tenant lacks across the fleet, with the driver's concurrency, progress
//!   and report ([`crate::migration::migrate_fleet`]); a tenant's pending
//!   host migrations run in one transaction, so a failing one leaves that
//!   tenant as it was and the run goes on with the others;
//! - shared-scope migrations run when the store is opened and on
//!   `migrate`.
//!
//! Each tenant records what it applied in a ledger of its own storage
//! under the application's name and the migration's, so two applications
//! (and ours, which are versioned apart) never collide. Tenant-scope SQL
//! runs with the tenant's storage as the only place unqualified names
//! resolve to (PostgreSQL: `SET LOCAL search_path` to the tenant schema;
//! SQLite: the tenant's file).
//!
//! ```
//! use saas_core::apps::{App, Apps, Migration};
//!
//! let notes = App::new("notes")?
//!     .tenant(Migration::sql(
//!         "0001_notes",
//!         "CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text NOT NULL)",
//!         "CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL)",
//!     ))
//!     .tenant(Migration::sql(
//!         "0002_body",
//!         "ALTER TABLE notes ADD COLUMN body text NOT NULL DEFAULT ''",
//!         "ALTER TABLE notes ADD COLUMN body TEXT NOT NULL DEFAULT ''",
//!     ));
//! let apps = Apps::new().with(notes)?;
//! assert_eq!(apps.iter().count(), 1);
//! # Ok::<(), saas_core::Error>(())
//! ```

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::error::{Error, Result};

/// A storage dialect, to pick a migration's step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL (`saas-store-postgres`).
    Postgres,
    /// SQLite (`saas-store-sqlite`).
    Sqlite,
}

impl Dialect {
    /// Its name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
        }
    }
}

/// A function step, made by a backend crate from a function of its own
/// transaction type. saas-core only carries it; the backend it was made
/// for runs it, and any other backend refuses it when configured.
#[derive(Clone)]
pub struct StepFn(Arc<dyn Any + Send + Sync>);

impl StepFn {
    /// Wraps a backend's function.
    pub fn new<F: Any + Send + Sync>(f: F) -> Self {
        StepFn(Arc::new(f))
    }

    /// The backend's function, if it is of type `F`.
    pub fn downcast_ref<F: Any>(&self) -> Option<&F> {
        self.0.downcast_ref::<F>()
    }
}

impl fmt::Debug for StepFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StepFn(..)")
    }
}

impl PartialEq for StepFn {
    /// The same function (one `Arc`).
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for StepFn {}

/// What a migration does on one dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// SQL text, one or more statements.
    Sql(String),
    /// A function given the backend's transaction.
    Function(StepFn),
}

impl From<&str> for Step {
    fn from(sql: &str) -> Self {
        Step::Sql(sql.to_owned())
    }
}

impl From<String> for Step {
    fn from(sql: String) -> Self {
        Step::Sql(sql)
    }
}

/// A host migration that failed: which one, and why. Backends report it
/// as the tenant's failure ([`Error::Backend`]'s source).
#[derive(Debug, thiserror::Error)]
#[error("migration {migration} of app {app} failed")]
pub struct MigrationFailed {
    /// The application.
    pub app: String,
    /// The migration.
    pub migration: String,
    /// What the step reported.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl MigrationFailed {
    /// The failure of `migration` of `app`, as a core error.
    pub fn error(
        app: &str,
        migration: &str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Error {
        Error::backend(MigrationFailed {
            app: app.to_owned(),
            migration: migration.to_owned(),
            source: source.into(),
        })
    }
}

/// Longest migration name accepted.
pub const MAX_MIGRATION_NAME: usize = 100;

/// One named migration, with a step per dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    name: String,
    postgres: Option<Step>,
    sqlite: Option<Step>,
}

impl Migration {
    /// A migration without steps yet (add them with [`Self::postgres`]
    /// and [`Self::sqlite`]).
    pub fn new(name: impl Into<String>) -> Self {
        Migration {
            name: name.into(),
            postgres: None,
            sqlite: None,
        }
    }

    /// A migration in SQL text for both dialects.
    pub fn sql(name: impl Into<String>, postgres: &str, sqlite: &str) -> Self {
        Migration::new(name).postgres(postgres).sqlite(sqlite)
    }

    /// Sets the PostgreSQL step.
    pub fn postgres(mut self, step: impl Into<Step>) -> Self {
        self.postgres = Some(step.into());
        self
    }

    /// Sets the SQLite step.
    pub fn sqlite(mut self, step: impl Into<Step>) -> Self {
        self.sqlite = Some(step.into());
        self
    }

    /// Its name, unique in its application's scope.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its step on `dialect`.
    pub fn step(&self, dialect: Dialect) -> Option<&Step> {
        match dialect {
            Dialect::Postgres => self.postgres.as_ref(),
            Dialect::Sqlite => self.sqlite.as_ref(),
        }
    }
}

/// A host application's migrations: its name (`[a-z][a-z0-9_]*`, at most
/// 63 characters, not `saas`), then its tenant-scope and shared-scope
/// migrations, each list applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    name: String,
    tenant: Vec<Migration>,
    shared: Vec<Migration>,
}

impl App {
    /// An application without migrations. Invalid on a malformed or
    /// reserved name.
    pub fn new(name: &str) -> Result<Self> {
        let well_formed = name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_formed {
            return Err(Error::invalid(
                "app",
                "must be 1 to 63 characters: a lowercase letter, then letters, digits or _",
            ));
        }
        if name == "saas" {
            return Err(Error::invalid("app", "`saas` is reserved"));
        }
        Ok(App {
            name: name.to_owned(),
            tenant: Vec::new(),
            shared: Vec::new(),
        })
    }

    /// Adds a migration applied to every tenant's storage.
    pub fn tenant(mut self, migration: Migration) -> Self {
        self.tenant.push(migration);
        self
    }

    /// Adds a migration applied once, to the shared storage.
    pub fn shared(mut self, migration: Migration) -> Self {
        self.shared.push(migration);
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its tenant-scope migrations, in order.
    pub fn tenant_migrations(&self) -> &[Migration] {
        &self.tenant
    }

    /// Its shared-scope migrations, in order.
    pub fn shared_migrations(&self) -> &[Migration] {
        &self.shared
    }

    fn check(&self) -> Result<()> {
        for (scope, list) in [("tenant", &self.tenant), ("shared", &self.shared)] {
            for (i, m) in list.iter().enumerate() {
                let ok = !m.name.trim().is_empty()
                    && m.name.chars().count() <= MAX_MIGRATION_NAME
                    && !m.name.chars().any(char::is_control);
                if !ok {
                    return Err(Error::invalid(
                        "migration",
                        format!(
                            "app {}: migration names are 1 to {MAX_MIGRATION_NAME} printable characters",
                            self.name
                        ),
                    ));
                }
                if list[..i].iter().any(|o| o.name == m.name) {
                    return Err(Error::invalid(
                        "migration",
                        format!(
                            "app {}: two {scope} migrations are named {}",
                            self.name, m.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The registry of host applications a store runs migrations for, in
/// registration order. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Apps {
    apps: Vec<App>,
}

impl Apps {
    /// No applications.
    pub fn new() -> Self {
        Apps::default()
    }

    /// Adds `app`. Invalid when another application has its name or two of
    /// its migrations of one scope share a name.
    pub fn with(mut self, app: App) -> Result<Self> {
        app.check()?;
        if self.apps.iter().any(|a| a.name == app.name) {
            return Err(Error::invalid(
                "app",
                format!("two applications are named {}", app.name),
            ));
        }
        self.apps.push(app);
        Ok(self)
    }

    /// The applications, in registration order.
    pub fn iter(&self) -> impl Iterator<Item = &App> {
        self.apps.iter()
    }

    /// Whether no application has a tenant-scope migration.
    pub fn no_tenant_migrations(&self) -> bool {
        self.apps.iter().all(|a| a.tenant.is_empty())
    }

    /// Checks that every migration has a step for `dialect`; `is_own`
    /// tells whether a function step was made for that dialect's backend.
    /// Backends call it when configured, so a missing or foreign step
    /// fails at start-up rather than at a tenant's provisioning.
    pub fn check_dialect(&self, dialect: Dialect, is_own: impl Fn(&StepFn) -> bool) -> Result<()> {
        for app in &self.apps {
            for m in app.tenant.iter().chain(&app.shared) {
                match m.step(dialect) {
                    None => {
                        return Err(Error::invalid(
                            "migration",
                            format!(
                                "app {}: migration {} has no {} step",
                                app.name,
                                m.name,
                                dialect.as_str()
                            ),
                        ));
                    }
                    Some(Step::Function(f)) if !is_own(f) => {
                        return Err(Error::invalid(
                            "migration",
                            format!(
                                "app {}: migration {}'s {} step is a function of another backend",
                                app.name,
                                m.name,
                                dialect.as_str()
                            ),
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        Ok(())
    }

    /// The tenant-scope migrations missing from `applied` (the `(app,
    /// name)` pairs a tenant's ledger holds), in the order they run:
    /// applications in registration order, each one's in its order.
    pub fn pending_tenant<'a>(
        &'a self,
        applied: &[(String, String)],
    ) -> Vec<(&'a str, &'a Migration)> {
        Self::pending(self.apps.iter().map(|a| (a, &a.tenant)), applied)
    }

    /// The shared-scope migrations missing from `applied`, in order.
    pub fn pending_shared<'a>(
        &'a self,
        applied: &[(String, String)],
    ) -> Vec<(&'a str, &'a Migration)> {
        Self::pending(self.apps.iter().map(|a| (a, &a.shared)), applied)
    }

    fn pending<'a>(
        lists: impl Iterator<Item = (&'a App, &'a Vec<Migration>)>,
        applied: &[(String, String)],
    ) -> Vec<(&'a str, &'a Migration)> {
        let mut out = Vec::new();
        for (app, list) in lists {
            for m in list {
                if !applied.iter().any(|(a, n)| *a == app.name && *n == m.name) {
                    out.push((app.name.as_str(), m));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(App::new("notes").is_ok());
        for bad in ["", "Notes", "1notes", "no-tes", "saas", &"a".repeat(64)] {
            assert!(App::new(bad).is_err(), "{bad}");
        }
        let twice = App::new("a")
            .expect("app")
            .tenant(Migration::sql("m", "x", "y"))
            .tenant(Migration::sql("m", "x", "y"));
        assert!(Apps::new().with(twice).is_err());
        let blank = App::new("a")
            .expect("app")
            .shared(Migration::sql(" ", "x", "y"));
        assert!(Apps::new().with(blank).is_err());
        let apps = Apps::new().with(App::new("a").expect("app")).expect("one");
        assert!(apps.with(App::new("a").expect("app")).is_err());
    }

    #[test]
    fn dialect_steps_must_be_there_and_their_own() {
        struct Mine;
        struct Theirs;
        let apps = Apps::new()
            .with(
                App::new("a")
                    .expect("app")
                    .tenant(Migration::new("m").postgres(Step::Function(StepFn::new(Mine)))),
            )
            .expect("apps");
        let own = |f: &StepFn| f.downcast_ref::<Mine>().is_some();
        assert!(apps.check_dialect(Dialect::Postgres, own).is_ok());
        assert!(apps.check_dialect(Dialect::Sqlite, own).is_err());
        let theirs = |f: &StepFn| f.downcast_ref::<Theirs>().is_some();
        assert!(apps.check_dialect(Dialect::Postgres, theirs).is_err());
    }

    #[test]
    fn pending_keeps_registration_order_and_skips_applied() {
        let apps = Apps::new()
            .with(
                App::new("b")
                    .expect("app")
                    .tenant(Migration::sql("1", "", ""))
                    .tenant(Migration::sql("2", "", "")),
            )
            .and_then(|a| {
                a.with(
                    App::new("a")
                        .expect("app")
                        .tenant(Migration::sql("1", "", ""))
                        .shared(Migration::sql("s", "", "")),
                )
            })
            .expect("apps");
        let applied = vec![("b".to_owned(), "1".to_owned())];
        let pending: Vec<(&str, &str)> = apps
            .pending_tenant(&applied)
            .into_iter()
            .map(|(a, m)| (a, m.name()))
            .collect();
        assert_eq!(pending, vec![("b", "2"), ("a", "1")]);
        assert_eq!(apps.pending_shared(&[]).len(), 1);
        assert!(!apps.no_tenant_migrations());
    }
}
