//! A host application's migrations for the backends' tests of
//! `saas_core::apps`: a notes table in two migrations, and migrations
//! that fail where a tenant holds duplicate titles.

use saas_core::apps::{App, Apps, Migration};

/// The name the test application registers under.
pub const APP: &str = "notes";

/// The notes table, then its `body` column.
pub fn notes_migrations() -> Vec<Migration> {
    vec![
        Migration::sql(
            "0001_notes",
            "CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text NOT NULL)",
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, title TEXT NOT NULL)",
        ),
        Migration::sql(
            "0002_body",
            "ALTER TABLE notes ADD COLUMN body text NOT NULL DEFAULT ''",
            "ALTER TABLE notes ADD COLUMN body TEXT NOT NULL DEFAULT ''",
        ),
    ]
}

/// A column that applies everywhere, then a unique index on titles,
/// which fails on a tenant holding two notes of one title.
pub fn unique_title_migrations() -> Vec<Migration> {
    vec![
        Migration::sql(
            "0003_pinned",
            "ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false",
            "ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0",
        ),
        Migration::sql(
            "0004_unique_title",
            "CREATE UNIQUE INDEX notes_title ON notes (title)",
            "CREATE UNIQUE INDEX notes_title ON notes (title)",
        ),
    ]
}

/// The registry of one application with `migrations` in the tenant scope.
pub fn registry(migrations: Vec<Migration>) -> Apps {
    let app = migrations
        .into_iter()
        .fold(App::new(APP).expect("a valid name"), App::tenant);
    Apps::new().with(app).expect("a valid registry")
}
