//! What the HTTP scenarios take (where the data lives, how hard to drive
//! the server, what each tenant holds) and how each of them starts.

use std::sync::Arc;

use clap::Args;
use serde_json::{Map, Value, json};

use crate::client::LoadArgs;
use crate::error::Res;
use crate::fixture::{FixtureArgs, Seeded};
use crate::report::head;
use crate::storage::{Env, StorageArgs};

/// Where the data lives and how hard to drive the server: what every
/// HTTP scenario takes.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Where the data lives.
    #[command(flatten)]
    pub storage: StorageArgs,
    /// How hard and how long to drive the server.
    #[command(flatten)]
    pub load: LoadArgs,
}

impl ServerArgs {
    /// Opens the storage of `scenario`; returns it and the result's
    /// opening fields ([`head`]).
    pub async fn open(&self, scenario: &str) -> Res<(Arc<Env>, Map<String, Value>)> {
        let env = Arc::new(Env::open(&self.storage).await?);
        let out = head(scenario, &env);
        Ok((env, out))
    }
}

/// [`ServerArgs`], and what each tenant of a fleet holds.
#[derive(Debug, Clone, Args)]
pub struct SeededArgs {
    /// Storage and load.
    #[command(flatten)]
    pub server: ServerArgs,
    /// What each tenant holds.
    #[command(flatten)]
    pub fixture: FixtureArgs,
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
        let (env, out) = self.server.open(scenario).await?;
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
        out.insert("connections".into(), json!(self.server.load.connections));
        out.insert("seconds".into(), json!(self.server.load.seconds));
    }
}
