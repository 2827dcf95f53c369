//! What a host application adds to this program: its job kinds, its
//! tables' migrations, its routes and its event listeners. A host's binary
//! is then `saas-server` with those added — every command, setting and
//! default the same (`examples/saas-notes` is one).

use std::fmt;
use std::sync::Arc;

use axum::Router;
use saas_core::apps::Apps;
use saas_core::clock::Clock;
use saas_core::jobs::JobQueue;
use saas_core::service::Listener;
use saas_http::AppState;

use crate::wire::{JobKinds, builtin_jobs};

/// Builds a host's routes over the API's state; they are served with
/// ours through [`saas_http::router_with`].
type RoutesFn = Arc<dyn Fn(AppState) -> Router + Send + Sync>;

/// Builds a host's listener over the program's job queue and clock.
type ListenerFn = Arc<dyn Fn(Arc<dyn JobQueue>, Arc<dyn Clock>) -> Arc<dyn Listener> + Send + Sync>;

/// A host application, as this program runs it ([`crate::main_with`]).
///
/// ```no_run
/// use std::process::ExitCode;
/// use saas_core::jobs::JobsBuilder;
/// use saas_server::Host;
///
/// fn my_jobs(builder: JobsBuilder) -> JobsBuilder {
///     saas_server::builtin_jobs(builder) // .register(MyJob)
/// }
///
/// fn main() -> ExitCode {
///     let host = Host::new("my-app")
///         .jobs(my_jobs)
///         .routes(|_api| axum::Router::new());
///     saas_server::main_with(std::env::args_os(), host)
/// }
/// ```
#[derive(Clone)]
pub struct Host {
    pub(crate) name: &'static str,
    pub(crate) jobs: JobKinds,
    pub(crate) apps: Apps,
    pub(crate) routes: Option<RoutesFn>,
    pub(crate) listeners: Vec<ListenerFn>,
}

impl Host {
    /// The program `name` (its help and its greeting say it): the built-in
    /// jobs, no tables, routes or listeners of its own.
    pub fn new(name: &'static str) -> Host {
        Host {
            name,
            jobs: builtin_jobs,
            apps: Apps::new(),
            routes: None,
            listeners: Vec::new(),
        }
    }

    /// The job kinds its workers run (replacing [`builtin_jobs`]: call it
    /// from `kinds` to keep them).
    pub fn jobs(mut self, kinds: JobKinds) -> Host {
        self.jobs = kinds;
        self
    }

    /// Its applications' migrations, given to the store on either backend:
    /// run at every tenant's provisioning and by `migrate`.
    pub fn apps(mut self, apps: Apps) -> Host {
        self.apps = apps;
        self
    }

    /// Its routes, served by `serve` next to the whole API, behind the
    /// same middleware and error shape ([`saas_http::router_with`]).
    pub fn routes(mut self, routes: impl Fn(AppState) -> Router + Send + Sync + 'static) -> Host {
        self.routes = Some(Arc::new(routes));
        self
    }

    /// Adds a lifecycle listener, made from the program's job queue and
    /// clock (for [`saas_core::jobs::events::EventJobListener`]).
    pub fn listener(
        mut self,
        listener: impl Fn(Arc<dyn JobQueue>, Arc<dyn Clock>) -> Arc<dyn Listener>
        + Send
        + Sync
        + 'static,
    ) -> Host {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// The router `serve` serves: the API with the host's routes.
    pub(crate) fn router(&self, state: AppState) -> Router {
        let host = match &self.routes {
            Some(routes) => routes(state.clone()),
            None => Router::new(),
        };
        saas_http::router_with(state, host)
    }
}

impl Default for Host {
    /// `saas-server` itself.
    fn default() -> Host {
        Host::new("saas-server")
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.name)
            .field("apps", &self.apps)
            .field("routes", &self.routes.is_some())
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}
