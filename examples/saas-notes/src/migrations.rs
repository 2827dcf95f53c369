//! The notes application's tables: two tenant-scope migrations, each in
//! both dialects. They run with ours: at every tenant's provisioning, and
//! across the fleet by `saas-notes migrate` (recorded under the
//! application's name, so they never collide with ours).

use saas_core::apps::{App, Apps, Migration};

/// The application's name in every tenant's migration ledger.
pub const APP: &str = "notes";

/// The registry to give the store: the notes application's migrations.
pub fn apps() -> Apps {
    let notes = App::new(APP)
        .expect("a well-formed application name")
        .tenant(Migration::sql(
            "0001_notes",
            "CREATE TABLE notes (
                id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                title text NOT NULL,
                body text NOT NULL,
                created_by bigint,
                created_at timestamptz NOT NULL
            )",
            "CREATE TABLE notes (
                id INTEGER PRIMARY KEY,
                title TEXT NOT NULL,
                body TEXT NOT NULL,
                created_by INTEGER,
                created_at TEXT NOT NULL
            )",
        ))
        // Filled in by the `count_words` job after a note is written.
        .tenant(Migration::sql(
            "0002_word_count",
            "ALTER TABLE notes ADD COLUMN words bigint",
            "ALTER TABLE notes ADD COLUMN words INTEGER",
        ));
    Apps::new().with(notes).expect("migration names are unique")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_migrations_in_both_dialects() {
        let apps = apps();
        let pending = apps.pending_tenant(&[]);
        let names: Vec<&str> = pending.iter().map(|(_, m)| m.name()).collect();
        assert_eq!(names, ["0001_notes", "0002_word_count"]);
        for dialect in [
            saas_core::apps::Dialect::Postgres,
            saas_core::apps::Dialect::Sqlite,
        ] {
            assert!(apps.check_dialect(dialect, |_| false).is_ok());
        }
    }
}
