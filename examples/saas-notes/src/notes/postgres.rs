//! The notes' SQL on PostgreSQL, run through
//! [`saas_store_postgres::with_tenant_tx`]: unqualified names are the
//! tenant's schema's. Statements are unnamed (`persistent(false)`), so
//! they are safe behind a transaction-mode pooler.

use chrono::{DateTime, Utc};
use saas_core::store::{Page, PageRequest, TenantScope};
use saas_core::{Error, Result};
use saas_store_postgres::with_tenant_tx;

use super::{NewNote, Note, words};

/// A note's columns: id, title, body, created_by, created_at, words.
type Row = (i64, String, String, Option<i64>, DateTime<Utc>, Option<i64>);

fn note((id, title, body, created_by, created_at, words): Row) -> Note {
    Note {
        id,
        title,
        body,
        created_by,
        created_at,
        words,
    }
}

pub(super) async fn create<S: TenantScope + ?Sized>(
    scope: &S,
    n: NewNote,
    now: DateTime<Utc>,
) -> Result<Note> {
    with_tenant_tx(scope, move |tx| {
        Box::pin(async move {
            let row: Row = sqlx::query_as(
                "INSERT INTO notes (title, body, created_by, created_at) VALUES ($1, $2, $3, $4)
                 RETURNING id, title, body, created_by, created_at, words",
            )
            .bind(n.title)
            .bind(n.body)
            .bind(n.created_by.map(|u| u.0))
            .bind(now)
            .persistent(false)
            .fetch_one(&mut *tx)
            .await
            .map_err(Error::backend)?;
            Ok(note(row))
        })
    })
    .await
}

pub(super) async fn list<S: TenantScope + ?Sized>(
    scope: &S,
    page: PageRequest,
) -> Result<Page<Note>> {
    let (limit, offset) = page.limit_offset();
    with_tenant_tx(scope, move |tx| {
        Box::pin(async move {
            let count: i64 = sqlx::query_scalar("SELECT count(*) FROM notes")
                .persistent(false)
                .fetch_one(&mut *tx)
                .await
                .map_err(Error::backend)?;
            let rows: Vec<Row> = sqlx::query_as(
                "SELECT id, title, body, created_by, created_at, words
                 FROM notes ORDER BY id LIMIT $1 OFFSET $2",
            )
            .bind(limit)
            .bind(offset)
            .persistent(false)
            .fetch_all(&mut *tx)
            .await
            .map_err(Error::backend)?;
            Ok(Page {
                count: u64::try_from(count).unwrap_or(0),
                items: rows.into_iter().map(note).collect(),
            })
        })
    })
    .await
}

pub(super) async fn count_words<S: TenantScope + ?Sized>(
    scope: &S,
    id: i64,
) -> Result<Option<i64>> {
    with_tenant_tx(scope, move |tx| {
        Box::pin(async move {
            let body: Option<String> =
                sqlx::query_scalar("SELECT body FROM notes WHERE id = $1 FOR UPDATE")
                    .bind(id)
                    .persistent(false)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(Error::backend)?;
            let Some(body) = body else {
                return Ok(None);
            };
            let n = words(&body);
            sqlx::query("UPDATE notes SET words = $1 WHERE id = $2")
                .bind(n)
                .bind(id)
                .persistent(false)
                .execute(&mut *tx)
                .await
                .map_err(Error::backend)?;
            Ok(Some(n))
        })
    })
    .await
}

pub(super) async fn welcome<S: TenantScope + ?Sized>(
    scope: &S,
    n: NewNote,
    now: DateTime<Utc>,
) -> Result<bool> {
    with_tenant_tx(scope, move |tx| {
        Box::pin(async move {
            let written = sqlx::query(
                "INSERT INTO notes (title, body, created_by, created_at)
                 SELECT $1, $2, NULL, $3
                 WHERE NOT EXISTS (SELECT 1 FROM notes WHERE created_by IS NULL AND title = $1)",
            )
            .bind(n.title)
            .bind(n.body)
            .bind(now)
            .persistent(false)
            .execute(&mut *tx)
            .await
            .map_err(Error::backend)?;
            Ok(written.rows_affected() == 1)
        })
    })
    .await
}
