//! Query plans of the statements behind the list, statistics and dashboard
//! endpoints, reproduced from the stores' `src/tenant.rs` (the text is
//! copied; keep it in step): `EXPLAIN (ANALYZE, BUFFERS)` on PostgreSQL,
//! `EXPLAIN QUERY PLAN` plus a timing on SQLite.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};

use crate::error::Res;
use crate::fixture::Seeded;
use crate::measure::{median, round3};
use crate::storage::{Backend, Env};

const TASK_COLS: &str = "t.id, t.project_id, t.title, t.description, t.status, t.priority, \
     t.due_date, t.completed_at, t.created_at, t.updated_at, t.started_at, \
     a.id, a.username, a.email, a.first_name, a.last_name, a.role, \
     c.id, c.username, c.email, c.first_name, c.last_name, c.role";

/// The sums of the PostgreSQL tally rows (aliased `c`) the store selects
/// for task counts: `total`, then by status `s0`..`s3` and by priority
/// `p0`..`p3`.
fn pg_tally_sums() -> String {
    let by = |column: &'static str, alias: char| {
        (0..4).map(move |i| {
            format!("coalesce(sum(c.n) FILTER (WHERE c.{column} = {i}), 0)::bigint AS {alias}{i}")
        })
    };
    std::iter::once("coalesce(sum(c.n), 0)::bigint AS total".to_owned())
        .chain(by("status", 's'))
        .chain(by("priority", 'p'))
        .collect::<Vec<_>>()
        .join(", ")
}

/// (name, SQL) of each statement, with `{s}` for the table prefix and
/// literal parameters: `{p}` project, `{u}` acting user, `{now}` now.
fn statements(backend: Backend) -> Vec<(&'static str, String)> {
    let involved = match backend {
        Backend::Postgres => {
            "t.project_id IN (SELECT id FROM {s}projects WHERE owner_id = {m} \
             UNION SELECT project_id FROM {s}project_members WHERE user_id = {m})"
        }
        Backend::Sqlite => {
            "t.project_id IN (SELECT p.id FROM projects p WHERE p.owner_id = {m} \
             UNION SELECT mm.project_id FROM memberships mm WHERE mm.user_id = {m})"
        }
    };
    let joins = match backend {
        Backend::Postgres => {
            " JOIN {s}users c ON c.id = t.created_by LEFT JOIN {s}users a ON a.id = t.assigned_to"
        }
        Backend::Sqlite => {
            " LEFT JOIN users a ON a.id = t.assigned_to JOIN users c ON c.id = t.created_by"
        }
    };
    let all = match backend {
        Backend::Postgres => "true",
        Backend::Sqlite => "1 = 1",
    };
    // Task counts of a query the tally serves: by status and priority from
    // the tally rows matching `tally`, overdue from the open tasks matching
    // `filter`.
    let sums = pg_tally_sums();
    let counts = |tally: &str, filter: &str| match backend {
        Backend::Postgres => format!(
            "SELECT {sums}, \
             (SELECT count(*) FROM {{s}}tasks t WHERE true{filter} \
             AND t.status <> 3 AND t.due_date < {{now}}) AS overdue \
             FROM {{s}}task_tally c WHERE true{tally}"
        ),
        Backend::Sqlite => format!(
            "SELECT c.status, c.priority, sum(c.n) FROM task_tally c WHERE 1 = 1{tally} \
             GROUP BY c.status, c.priority; \
             SELECT count(*) FROM tasks t INDEXED BY tasks_open_by_due WHERE 1 = 1{filter} \
             AND (t.status <> 3 AND t.due_date < {{now}})"
        ),
    };
    let tally_count = |tally: &str| match backend {
        Backend::Postgres => {
            format!("SELECT coalesce(sum(c.n), 0)::bigint FROM {{s}}task_tally c WHERE true{tally}")
        }
        Backend::Sqlite => {
            format!("SELECT coalesce(sum(c.n), 0) FROM task_tally c WHERE 1 = 1{tally}")
        }
    };
    let tally_involved = match backend {
        Backend::Postgres => {
            " AND c.project_id IN (SELECT id FROM {s}projects WHERE owner_id = {m} \
             UNION SELECT project_id FROM {s}project_members WHERE user_id = {m})"
        }
        Backend::Sqlite => {
            " AND c.project_id IN (SELECT p.id FROM projects p WHERE p.owner_id = {m} \
             UNION SELECT mm.project_id FROM memberships mm WHERE mm.user_id = {m})"
        }
    };
    let project_counts = match backend {
        Backend::Postgres => {
            "SELECT status, count(*) AS n FROM {s}projects GROUP BY status".to_owned()
        }
        Backend::Sqlite => {
            "SELECT p.status, count(*) FROM projects p WHERE 1 = 1 GROUP BY p.status".to_owned()
        }
    };
    let user = match backend {
        Backend::Postgres => "SELECT id, username, email, first_name, last_name, role, department, \
             is_active, is_owner, last_login, date_joined, token_version FROM {s}users WHERE id = {u}"
            .to_owned(),
        Backend::Sqlite => "SELECT u.id, u.username, u.email, u.first_name, u.last_name, u.role, \
             u.department, u.is_active, u.is_owner, u.last_login, u.date_joined, u.token_version \
             FROM users u WHERE u.id = {u}"
            .to_owned(),
    };
    vec![
        ("auth: user by id (every request)", user),
        ("list (admin): count", tally_count("")),
        (
            "list (admin): first page, newest first",
            format!(
                "SELECT {TASK_COLS} FROM {{s}}tasks t{joins} WHERE {all} \
                 ORDER BY t.created_at DESC, t.id ASC LIMIT 20 OFFSET 0"
            ),
        ),
        ("list (member): count", tally_count(tally_involved)),
        (
            "list (member): first page",
            format!(
                "SELECT {TASK_COLS} FROM {{s}}tasks t{joins} WHERE {all} AND {involved} \
                 ORDER BY t.created_at DESC, t.id ASC LIMIT 20 OFFSET 0"
            ),
        ),
        (
            "statistics: task counts of the project",
            counts(" AND c.project_id = {p}", " AND t.project_id = {p}"),
        ),
        ("dashboard (admin): project counts", project_counts),
        ("dashboard (admin): task counts, all", counts("", "")),
        (
            "dashboard (admin): task counts, assigned to me",
            counts(" AND c.assignee = {u}", " AND t.assigned_to = {u}"),
        ),
        (
            "dashboard (member): task counts, visible",
            counts(tally_involved, &format!(" AND {involved}")),
        ),
        (
            "dashboard (admin): five most recently changed",
            format!(
                "SELECT {TASK_COLS} FROM {{s}}tasks t{joins} WHERE {all} \
                 ORDER BY t.updated_at DESC, t.id ASC LIMIT 5 OFFSET 0"
            ),
        ),
        (
            "dashboard (member): five most recently changed",
            format!(
                "SELECT {TASK_COLS} FROM {{s}}tasks t{joins} WHERE {all} AND {involved} \
                 ORDER BY t.updated_at DESC, t.id ASC LIMIT 5 OFFSET 0"
            ),
        ),
        (
            "dashboard (admin): count users",
            "SELECT count(*) FROM {s}users".to_owned(),
        ),
    ]
}

fn fill(sql: &str, prefix: &str, s: &Seeded, now: &str) -> String {
    sql.replace("{s}", prefix)
        .replace("{p}", &s.project.0.to_string())
        .replace("{u}", &s.admin.0.to_string())
        .replace("{m}", &s.member.0.to_string())
        .replace("{now}", now)
}

/// How often SQLite re-prepares the list statement in 10 runs when LIMIT
/// is a bound parameter (as the store binds it) and when it is a literal:
/// SQLite looks at a bound LIMIT's value while planning, so binding it
/// again expires the statement and every run parses and plans anew.
fn reprepares(conn: &rusqlite::Connection) -> Res<Value> {
    let base = format!(
        "SELECT {TASK_COLS} FROM tasks t LEFT JOIN users a ON a.id = t.assigned_to \
         JOIN users c ON c.id = t.created_by WHERE 1 = 1 ORDER BY t.created_at DESC, t.id ASC"
    );
    let mut counts = serde_json::Map::new();
    for (name, sql, params) in [
        (
            "bound_limit",
            format!("{base} LIMIT ? OFFSET ?"),
            vec![20i64, 0],
        ),
        (
            "literal_limit",
            format!("{base} LIMIT 20 OFFSET ?"),
            vec![0i64],
        ),
    ] {
        let mut stmt = conn.prepare(&sql)?;
        for _ in 0..10 {
            let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
            while rows.next()?.is_some() {}
        }
        counts.insert(
            name.into(),
            json!(stmt.get_status(rusqlite::StatementStatus::RePrepare)),
        );
    }
    Ok(Value::Object(counts))
}

/// `EXPLAIN QUERY PLAN` of one SQLite statement, indented by depth.
fn sqlite_plan(conn: &rusqlite::Connection, sql: &str) -> Res<String> {
    let mut plan = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
    let rows = plan
        .query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut depth: std::collections::HashMap<i64, usize> = Default::default();
    let mut text = String::new();
    for (id, parent, detail) in rows {
        let d = depth.get(&parent).map_or(0, |d| d + 1);
        depth.insert(id, d);
        text.push_str(&format!("{}{detail}\n", "  ".repeat(d)));
    }
    Ok(text)
}

/// The plans (printed to stderr) and median timings of each statement.
pub async fn plans(env: &Env, s: &Seeded) -> Res<Value> {
    let mut out = serde_json::Map::new();
    match env.backend {
        Backend::Postgres => {
            let pg = env.pg.as_ref().ok_or("no PostgreSQL store")?;
            let prefix = format!(
                "\"{}\".",
                saas_store_postgres::tenant_schema_name(&s.tenant)
            );
            let now = format!("'{}'::timestamptz", Utc::now().to_rfc3339());
            for (name, template) in statements(Backend::Postgres) {
                let sql = fill(&template, &prefix, s, &now);
                // Warm the cache first: plans of a steady server, not of a cold start.
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
                    .execute(pg.catalog_pool())
                    .await?;
                let lines: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "EXPLAIN (ANALYZE, BUFFERS) {sql}"
                )))
                .fetch_all(pg.catalog_pool())
                .await?;
                eprintln!("--- {name}\n{sql}\n{}\n", lines.join("\n"));
                let exec = lines
                    .iter()
                    .find_map(|l| l.strip_prefix("Execution Time: "))
                    .and_then(|x| x.trim_end_matches(" ms").parse::<f64>().ok());
                out.insert(name.to_owned(), json!({ "execution_ms": exec }));
            }
        }
        Backend::Sqlite => {
            let path = env.tenant_file(&s.tenant)?;
            let now = Utc::now().timestamp_micros().to_string();
            let s = s.clone();
            let result =
                tokio::task::spawn_blocking(move || -> Res<serde_json::Map<String, Value>> {
                    let conn = rusqlite::Connection::open(path)?;
                    conn.busy_timeout(Duration::from_secs(5))?;
                    let mut out = serde_json::Map::new();
                    for (name, template) in statements(Backend::Sqlite) {
                        let sql = fill(&template, "", &s, &now);
                        // Some entries are two statements run one after the
                        // other (as the store does): plans of each, time of both.
                        let parts: Vec<&str> = sql.split("; ").collect();
                        let mut text = String::new();
                        for part in &parts {
                            text.push_str(&sqlite_plan(&conn, part)?);
                        }
                        let mut times = Vec::new();
                        for _ in 0..7 {
                            let t0 = Instant::now();
                            for part in &parts {
                                let mut stmt = conn.prepare_cached(part)?;
                                let cols = stmt.column_count();
                                let mut rows = stmt.query([])?;
                                while let Some(r) = rows.next()? {
                                    for c in 0..cols {
                                        let _ = r.get_ref(c)?;
                                    }
                                }
                            }
                            times.push(t0.elapsed().as_secs_f64() * 1000.0);
                        }
                        let t = round3(median(&times));
                        eprintln!("--- {name}\n{sql}\n{text}(median of 7 runs: {t} ms)\n");
                        out.insert(name.to_owned(), json!({ "execution_ms": t }));
                    }
                    out.insert("reprepares_per_10_runs".into(), reprepares(&conn)?);
                    Ok(out)
                })
                .await??;
            out = result;
        }
    }
    Ok(Value::Object(out))
}
