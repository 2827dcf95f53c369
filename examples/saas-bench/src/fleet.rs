//! Fleets of empty tenants in a PostgreSQL benchmark database, for the
//! store-level scenarios (`provision`, `migrate-noop`, `routing`).

use std::time::Instant;

use clap::{Args, ValueEnum};
use saas_core::store::{PageRequest, Store};
use saas_core::tenancy::Tenant;
use saas_core::users::Role;
use saas_store_postgres::{PgConfig, PgStore};

use crate::error::Res;
use crate::fixture::{new_tenant, user_record};
use crate::measure::{ms, round3};
use crate::storage::PASSWORD;

/// The backends the store-level scenarios measure.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FleetBackend {
    /// One schema per tenant.
    Postgres,
}

/// The PostgreSQL database of the store-level and queue scenarios.
#[derive(Debug, Clone, Args)]
pub struct BenchDatabase {
    /// Benchmark database (created when missing; never the test database).
    #[arg(
        long,
        env = "SAAS_BENCH_DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/saas_bench"
    )]
    pub database_url: String,
}

/// The backend and database of a store-level scenario.
#[derive(Debug, Clone, Args)]
pub struct FleetStorage {
    /// Storage backend.
    #[arg(long, value_enum, default_value = "postgres")]
    pub backend: FleetBackend,
    /// The database.
    #[command(flatten)]
    pub database: BenchDatabase,
    /// Units of work a pooled connection serves before it is replaced
    /// (`PgConfig::recycle_after`; 0: never; default: the library's).
    #[arg(long)]
    pub recycle_after: Option<u64>,
}

impl FleetStorage {
    /// Connects to the benchmark database, creating it when missing; with
    /// `fresh`, empty (dropped and created again).
    pub async fn connect(&self, fresh: bool) -> Res<PgStore> {
        let FleetBackend::Postgres = self.backend;
        let url = &self.database.database_url;
        crate::database::prepare(url, fresh).await?;
        let mut config = PgConfig::new(url.clone());
        if let Some(n) = self.recycle_after {
            config = config.with_recycle_after(n);
        }
        Ok(PgStore::connect(config).await?)
    }
}

/// A fleet of tenants in the benchmark database.
#[derive(Debug, Clone, Args)]
pub struct FleetArgs {
    /// Where the fleet lives.
    #[command(flatten)]
    pub storage: FleetStorage,
    /// Tenants in the fleet.
    #[arg(long, default_value_t = 1000)]
    pub tenants: usize,
}

/// A precomputed password hash and the milliseconds it took: argon2 is
/// the service's cost, measured once here and reported on its own, never
/// inside provisioning times.
pub async fn password_hash() -> Res<(String, f64)> {
    let start = Instant::now();
    let hash = saas_core::auth::Passwords::new().hash(PASSWORD).await?;
    Ok((hash, round3(ms(start.elapsed()))))
}

/// Every tenant in the catalog, oldest first.
pub async fn all_tenants(store: &PgStore) -> Res<Vec<Tenant>> {
    let mut out = Vec::new();
    let mut page = 1;
    loop {
        let got = store
            .list_tenants(PageRequest::new(Some(page), Some(PageRequest::MAX_SIZE))?)
            .await?;
        let n = got.items.len();
        out.extend(got.items);
        if n < PageRequest::MAX_SIZE as usize {
            return Ok(out);
        }
        page += 1;
    }
}

/// Creates tenants (each with its admin) until `n` exist; returns them all.
pub async fn ensure_tenants(store: &PgStore, n: usize) -> Res<Vec<Tenant>> {
    let mut tenants = all_tenants(store).await?;
    if tenants.len() < n {
        let (hash, _) = password_hash().await?;
        let admin = user_record(&hash, "admin", Role::Admin, true)?;
        eprintln!("creating {} tenants", n - tenants.len());
        while tenants.len() < n {
            let slug = format!("bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
            let (tenant, _) = store.create_tenant(&new_tenant(&slug)?, &admin).await?;
            tenants.push(tenant);
        }
    }
    Ok(tenants)
}
