//! The notes' SQL on SQLite, run through
//! [`saas_store_sqlite::with_tenant_tx`]: a transaction on the tenant's
//! own file, on the blocking pool.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use saas_core::store::{Page, PageRequest, TenantScope};
use saas_core::{Error, Result};
use saas_store_sqlite::with_tenant_tx;

use super::{NewNote, Note, words};

fn note(r: &rusqlite::Row<'_>) -> rusqlite::Result<Note> {
    Ok(Note {
        id: r.get(0)?,
        title: r.get(1)?,
        body: r.get(2)?,
        created_by: r.get(3)?,
        created_at: r.get(4)?,
        words: r.get(5)?,
    })
}

pub(super) async fn create<S: TenantScope + ?Sized>(
    scope: &S,
    n: NewNote,
    now: DateTime<Utc>,
) -> Result<Note> {
    with_tenant_tx(scope, move |tx| {
        tx.query_row(
            "INSERT INTO notes (title, body, created_by, created_at) VALUES (?1, ?2, ?3, ?4)
             RETURNING id, title, body, created_by, created_at, words",
            params![n.title, n.body, n.created_by.map(|u| u.0), now],
            note,
        )
        .map_err(Error::backend)
    })
    .await
}

pub(super) async fn list<S: TenantScope + ?Sized>(
    scope: &S,
    page: PageRequest,
) -> Result<Page<Note>> {
    let (limit, offset) = page.limit_offset();
    with_tenant_tx(scope, move |tx| {
        let count: i64 = tx
            .query_row("SELECT count(*) FROM notes", [], |r| r.get(0))
            .map_err(Error::backend)?;
        let mut stmt = tx
            .prepare(
                "SELECT id, title, body, created_by, created_at, words
                 FROM notes ORDER BY id LIMIT ?1 OFFSET ?2",
            )
            .map_err(Error::backend)?;
        let items = stmt
            .query_map(params![limit, offset], note)
            .and_then(Iterator::collect::<rusqlite::Result<Vec<Note>>>)
            .map_err(Error::backend)?;
        Ok(Page {
            count: u64::try_from(count).unwrap_or(0),
            items,
        })
    })
    .await
}

pub(super) async fn count_words<S: TenantScope + ?Sized>(
    scope: &S,
    id: i64,
) -> Result<Option<i64>> {
    with_tenant_tx(scope, move |tx| {
        let body: Option<String> = tx
            .query_row("SELECT body FROM notes WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(Error::backend)?;
        let Some(body) = body else {
            return Ok(None);
        };
        let n = words(&body);
        tx.execute("UPDATE notes SET words = ?1 WHERE id = ?2", [n, id])
            .map_err(Error::backend)?;
        Ok(Some(n))
    })
    .await
}

pub(super) async fn welcome<S: TenantScope + ?Sized>(
    scope: &S,
    n: NewNote,
    now: DateTime<Utc>,
) -> Result<bool> {
    with_tenant_tx(scope, move |tx| {
        let written = tx
            .execute(
                "INSERT INTO notes (title, body, created_by, created_at)
                 SELECT ?1, ?2, NULL, ?3
                 WHERE NOT EXISTS (SELECT 1 FROM notes WHERE created_by IS NULL AND title = ?1)",
                params![n.title, n.body, now],
            )
            .map_err(Error::backend)?;
        Ok(written == 1)
    })
    .await
}
