//! Notes: what one is, what writing one takes, and the tenant-scoped
//! storage of them. Every function takes a [`TenantScope`] (a
//! [`Session`](saas_core::Session), or a job's tenant handle) and reaches
//! that tenant's `notes` table only, through the backend's
//! `with_tenant_tx`; the SQL of each dialect is in its own file.

mod postgres;
mod sqlite;

use chrono::{DateTime, Utc};
use saas_core::apps::Dialect;
use saas_core::store::{Page, PageRequest, TenantScope};
use saas_core::users::UserId;
use saas_core::{Error, Result};
use serde::Serialize;

/// Longest title, in characters.
pub const MAX_TITLE: usize = 200;
/// Longest body, in characters.
pub const MAX_BODY: usize = 10_000;

/// One note, as stored and as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    /// Its id in the tenant.
    pub id: i64,
    /// Its title.
    pub title: String,
    /// Its text.
    pub body: String,
    /// Who wrote it; `null` for the welcome note the application writes.
    pub created_by: Option<i64>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Words in the body, once the `count_words` job has counted them.
    pub words: Option<i64>,
}

/// A note to write, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNote {
    title: String,
    body: String,
    created_by: Option<UserId>,
}

impl NewNote {
    /// A note by `author` (`None`: by the application). Invalid, under
    /// the field's name, when the title is blank or longer than
    /// [`MAX_TITLE`], or the body longer than [`MAX_BODY`], or either
    /// holds a control character other than a line break or a tab.
    pub fn new(title: &str, body: &str, author: Option<UserId>) -> Result<NewNote> {
        let title = title.trim();
        if title.is_empty() {
            return Err(Error::invalid("title", "may not be blank"));
        }
        if title.chars().count() > MAX_TITLE {
            return Err(Error::invalid(
                "title",
                format!("at most {MAX_TITLE} characters"),
            ));
        }
        if body.chars().count() > MAX_BODY {
            return Err(Error::invalid(
                "body",
                format!("at most {MAX_BODY} characters"),
            ));
        }
        for (field, text) in [("title", title), ("body", body)] {
            if text
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
            {
                return Err(Error::invalid(field, "may not hold control characters"));
            }
        }
        Ok(NewNote {
            title: title.to_owned(),
            body: body.to_owned(),
            created_by: author,
        })
    }
}

/// The storage the notes know how to query.
enum Sql {
    Postgres,
    Sqlite,
}

/// Which of them holds `scope`'s tenant.
fn dialect<S: TenantScope + ?Sized>(scope: &S) -> Result<Sql> {
    match scope.tenant_store().dialect() {
        Some(Dialect::Postgres) => Ok(Sql::Postgres),
        Some(Dialect::Sqlite) => Ok(Sql::Sqlite),
        _ => Err(Error::backend("notes are stored on PostgreSQL or SQLite")),
    }
}

/// Writes `note` at `now`; returns it as stored.
pub async fn create<S: TenantScope + ?Sized>(
    scope: &S,
    note: NewNote,
    now: DateTime<Utc>,
) -> Result<Note> {
    match dialect(scope)? {
        Sql::Postgres => postgres::create(scope, note, now).await,
        Sql::Sqlite => sqlite::create(scope, note, now).await,
    }
}

/// One page of the tenant's notes, oldest first, with the total.
pub async fn list<S: TenantScope + ?Sized>(scope: &S, page: PageRequest) -> Result<Page<Note>> {
    match dialect(scope)? {
        Sql::Postgres => postgres::list(scope, page).await,
        Sql::Sqlite => sqlite::list(scope, page).await,
    }
}

/// Counts the words of note `id` and stores the count; `None` when the
/// note is gone.
pub async fn count_words<S: TenantScope + ?Sized>(scope: &S, id: i64) -> Result<Option<i64>> {
    match dialect(scope)? {
        Sql::Postgres => postgres::count_words(scope, id).await,
        Sql::Sqlite => sqlite::count_words(scope, id).await,
    }
}

/// Writes the application's welcome note unless the tenant has one
/// already (so running it again changes nothing); whether it wrote it.
pub async fn welcome<S: TenantScope + ?Sized>(scope: &S, now: DateTime<Utc>) -> Result<bool> {
    let note = NewNote::new(WELCOME_TITLE, WELCOME_BODY, None)?;
    match dialect(scope)? {
        Sql::Postgres => postgres::welcome(scope, note, now).await,
        Sql::Sqlite => sqlite::welcome(scope, note, now).await,
    }
}

/// The welcome note's title.
pub const WELCOME_TITLE: &str = "Welcome to notes";
const WELCOME_BODY: &str = "Notes you write here are seen by your organization only.";

/// Words in `text`, as the job counts them.
fn words(text: &str) -> i64 {
    i64::try_from(text.split_whitespace().count()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_checked() {
        let ok = NewNote::new("  Plan  ", "a\nb\tc", Some(UserId(1))).expect("valid");
        assert_eq!(ok.title, "Plan");
        for (title, body, field) in [
            ("", "", "title"),
            ("   ", "x", "title"),
            (&"t".repeat(MAX_TITLE + 1) as &str, "", "title"),
            ("t", &"b".repeat(MAX_BODY + 1) as &str, "body"),
            ("a\u{0}b", "", "title"),
            ("t", "\u{7}", "body"),
        ] {
            match NewNote::new(title, body, None) {
                Err(Error::Invalid { fields }) => assert!(fields.contains_key(field), "{fields:?}"),
                other => panic!("{title:?}/{body:?}: {other:?}"),
            }
        }
        assert_eq!(words("  one two\nthree "), 3);
    }
}
