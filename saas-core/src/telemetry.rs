//! The metrics the workspace records, named once. They go through the
//! [`metrics`] facade: nothing is kept unless the host installs a recorder
//! (saas-http's `/metrics` does, with the Prometheus exporter).
//!
//! Labels carry bounded values only — route templates, status codes, job
//! kinds, outcomes, cache names — never a tenant slug, a tenant id or a
//! user id: a per-tenant breakdown is the console's job, not the metrics'.

/// Requests answered, by `method`, `route` (the route template, or
/// `unmatched`) and `status`. Counter.
pub const HTTP_REQUESTS: &str = "saas_http_requests_total";
/// Time to answer a request, by `method`, `route` and `status`, in seconds. Histogram.
pub const HTTP_DURATION: &str = "saas_http_request_duration_seconds";
/// Requests being served now. Gauge.
pub const HTTP_IN_FLIGHT: &str = "saas_http_requests_in_flight";
/// Logins, by `outcome`: `success`, `refused` (bad credentials, inactive
/// user, unknown tenant) or `error`. Counter.
pub const LOGINS: &str = "saas_logins_total";
/// Requests refused by a throttle, by `throttle`: `login_username`,
/// `login_address` or `registration`. Counter.
pub const THROTTLED: &str = "saas_throttled_total";
/// Tenant registrations, by `outcome`: `created`, `refused` (invalid or
/// taken) or `error`. Counter.
pub const REGISTRATIONS: &str = "saas_registrations_total";
/// Jobs waiting (`queued`, `scheduled`, `retrying`), `running` or `dead`,
/// by `kind` and `state`, as last counted (saas-http counts the queue at
/// every scrape of `/metrics`). Gauge.
pub const JOBS_QUEUED: &str = "saas_jobs";
/// Job attempts finished, by `kind` and `outcome` (`succeeded`, `retried`,
/// `dead`, `lease_lost`, `unrecorded`). Counter.
pub const JOB_RUNS: &str = "saas_job_runs_total";
/// Job attempts that failed (the job returned an error), by `kind`. Counter.
pub const JOB_FAILURES: &str = "saas_job_failures_total";
/// Time a job attempt ran, by `kind`, in seconds. Histogram.
pub const JOB_DURATION: &str = "saas_job_duration_seconds";
/// How late after its period's start the scheduler enqueued a periodic
/// job, by `entry`, in seconds. Histogram.
pub const SCHEDULER_LAG: &str = "saas_scheduler_lag_seconds";
/// Cache lookups, by `cache` (`tenant`, `user`, `handle`) and `result`
/// (`hit` or `miss`). Counter.
pub const CACHE_LOOKUPS: &str = "saas_cache_lookups_total";
/// SQLite tenant handles (open files) opened. Counter.
pub const SQLITE_HANDLES_OPENED: &str = "saas_sqlite_handles_opened_total";
/// SQLite tenant handles evicted from the bounded cache. Counter.
pub const SQLITE_HANDLES_EVICTED: &str = "saas_sqlite_handles_evicted_total";
/// PostgreSQL pool connections, by `database` (a database of the
/// configuration) and `state` (`idle` or `busy`), as last seen. Gauge.
pub const PG_POOL_CONNECTIONS: &str = "saas_pg_pool_connections";
/// Most connections a PostgreSQL pool may open, by `database`. Gauge.
pub const PG_POOL_MAX: &str = "saas_pg_pool_max_connections";

/// Counts a lookup of `cache` that hit or missed.
pub fn cache_lookup(cache: &'static str, hit: bool) {
    metrics::counter!(CACHE_LOOKUPS, "cache" => cache, "result" => if hit { "hit" } else { "miss" })
        .increment(1);
}
