//! What the HTTP scenarios over a fleet of seeded tenants take (where the
//! data lives, what each tenant holds, how hard to drive the server) and
//! how each of them starts.

use std::sync::Arc;

use clap::Args;
use serde_json::{Map, Value, json};

use crate::Res;
use crate::client::LoadArgs;
use crate::fixture::{FixtureArgs, Seeded};
use crate::report::head;
use crate::storage::{Env, StorageArgs};

/// Storage, fixture and load.
#[derive(Debug, Clone, Args)]
pub struct SeededArgs {
    /// Where the data lives.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// What each tenant holds.
    #[command(flatten)]
    pub fixture: FixtureArgs,
    /// How hard and how long to drive the server.
    #[command(flatten)]
    pub load: LoadArgs,
}

/// Opened storage with its tenants seeded, and the result so far.
pub struct Started {
    /// The storage.
    pub env: Arc<Env>,
    /// The tenants, ready for requests.
    pub seeded: Vec<Seeded>,
    /// Seconds the tenants took to provision or reuse.
    pub fixture_s: f64,
    /// The result's opening fields ([`head`]).
    pub out: Map<String, Value>,
}

impl SeededArgs {
    /// Opens the storage and seeds (or reuses) the tenants of `scenario`.
    pub async fn start(&self, scenario: &str) -> Res<Started> {
        let env = Arc::new(Env::open(&self.storage).await?);
        let out = head(scenario, &env);
        let (seeded, fixture_s) = self.fixture.seed(&env).await?;
        Ok(Started {
            env,
            seeded,
            fixture_s,
            out,
        })
    }

    /// Adds the fixture's and the load's shape to a result.
    pub fn describe(&self, out: &mut Map<String, Value>, tenants: usize) {
        out.insert("tenants".into(), json!(tenants));
        out.insert("tasks_per_tenant".into(), json!(self.fixture.tasks));
        out.insert("connections".into(), json!(self.load.connections));
        out.insert("seconds".into(), json!(self.load.seconds));
    }
}
