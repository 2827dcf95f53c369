//! Deleting a tenant in two steps: [`mark_deleted`] (refused at once, the
//! file kept, [`restore`] undoes it) and [`purge`] (the catalog row first,
//! then the file), with [`orphans`] removing files a purge interrupted
//! after its catalog commit left behind.
//!
//! Each runs on the catalog's writer, inside its `BEGIN IMMEDIATE`, so no
//! registration can place a file between a purge's commit and its removal
//! of the file, nor while [`orphans`] decides which files nobody owns.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};
use saas_core::tenancy::{Slug, Tenant, TenantId};
use saas_core::{Entity, Error};

use super::{load_tenant, remove_db_files, tenant_file};
use crate::error::{Failure, R, SqliteError, io_error, not_found};
use crate::tenant::immediate;

/// Marks `id` deleted at `at` (micros); a deleted tenant keeps its first time.
pub(super) fn mark_deleted(conn: &mut Connection, id: TenantId, at: i64) -> R<Tenant> {
    let tx = immediate(conn)?;
    tx.prepare_cached("UPDATE tenants SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL")?
        .execute(params![id.to_string(), at])?;
    let row = load_tenant(&tx, id)?.ok_or_else(|| not_found(Entity::Tenant))?;
    tx.commit()?;
    Ok(row)
}

/// Takes the deletion mark off `id`.
pub(super) fn restore(conn: &mut Connection, id: TenantId) -> R<Tenant> {
    let tx = immediate(conn)?;
    let row = load_tenant(&tx, id)?.ok_or_else(|| not_found(Entity::Tenant))?;
    if row.deleted_at.is_none() {
        return Err(Failure::Core(Error::State(
            "only a deleted tenant can be restored",
        )));
    }
    tx.prepare_cached("UPDATE tenants SET deleted_at = NULL WHERE id = ?1")?
        .execute([id.to_string()])?;
    let row = load_tenant(&tx, id)?.ok_or_else(|| not_found(Entity::Tenant))?;
    tx.commit()?;
    Ok(row)
}

/// Purges `id` (when `before` is given, only if deleted before it, in
/// micros): the catalog rows are deleted and committed, then the file is
/// removed. Whether a tenant was purged.
pub(super) fn purge(
    conn: &mut Connection,
    dir: &Path,
    id: TenantId,
    before: Option<i64>,
) -> R<bool> {
    let tx = immediate(conn)?;
    let found: Option<(String, Option<i64>)> = tx
        .prepare_cached("SELECT slug, deleted_at FROM tenants WHERE id = ?1")?
        .query_row([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((slug, deleted_at)) = found else {
        return Ok(false);
    };
    if let Some(cut) = before
        && deleted_at.is_none_or(|at| at >= cut)
    {
        return Ok(false);
    }
    let slug = Slug::parse(&slug).map_err(|_| SqliteError::Corrupt {
        column: "slug".to_owned(),
    })?;
    tx.prepare_cached("DELETE FROM domains WHERE tenant_id = ?1")?
        .execute([id.to_string()])?;
    tx.prepare_cached("DELETE FROM tenants WHERE id = ?1")?
        .execute([id.to_string()])?;
    // The catalog forgets the tenant before its file goes: a crash from
    // here on leaves a file nobody points to (`orphans` removes it), never a
    // tenant whose data is gone.
    tx.commit()?;
    if let Err(e) = remove_db_files(&tenant_file(dir, &slug)) {
        tracing::error!(tenant = %id, slug = %slug, error = ?e,
            "tenant purged from the catalog; its file stays until the next purge of orphans");
    }
    Ok(true)
}

/// Removes every `<slug>.sqlite` (and its companions) under `dir` whose
/// slug the catalog does not know. How many it removed.
pub(super) fn orphans(conn: &mut Connection, dir: &Path) -> R<u64> {
    // Holding the write lock (and reading the slugs under it): a
    // registration renames its file into place only under this lock.
    let tx = immediate(conn)?;
    let known = tx
        .prepare_cached("SELECT slug FROM tenants")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<HashSet<_>>>()?;
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name();
        let Some(slug) = name.to_str().and_then(|n| n.strip_suffix(".sqlite")) else {
            continue;
        };
        let Ok(slug) = Slug::parse(slug) else {
            continue;
        };
        if known.contains(slug.as_str()) {
            continue;
        }
        tracing::warn!(slug = %slug, "removing a tenant file no catalog row points to");
        remove_db_files(&tenant_file(dir, &slug))?;
        removed += 1;
    }
    drop(tx);
    Ok(removed)
}
