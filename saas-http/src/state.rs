//! Configuration and shared state of the router.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use saas_core::Saas;
use saas_core::jobs::{Jobs, Periodic};

use crate::error::ErrorFormat;
use crate::throttle::{Rate, Throttle};

/// Which origins may call the API from a browser.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers at all (browsers allow same-origin only).
    #[default]
    None,
    /// Any origin (`*`); credentials are never allowed with it.
    Any,
    /// Exactly these origins, e.g. `https://app.example.com`.
    List(Vec<String>),
}

/// Settings of the HTTP layer. `Default` is suitable for development.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Accept `X-Tenant: <slug>` to pick the tenant instead of the Host header.
    pub x_tenant: bool,
    /// CORS origins.
    pub cors: CorsOrigins,
    /// Largest request body accepted, in bytes (413 above).
    pub body_limit: usize,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Longest a client may take to send its body before it is answered 408.
    pub body_timeout: Duration,
    /// Login attempts allowed per tenant and username per [`Self::login_window`]
    /// (0 disables this throttle).
    pub login_attempts: u32,
    /// The login throttling window.
    pub login_window: Duration,
    /// Login attempts allowed per client address, whatever the username
    /// and tenant (password spraying); `None` disables it. Default 60 a
    /// minute.
    pub login_address_rate: Option<Rate>,
    /// Hosts served, Django-style: `example.com` exactly, `.example.com` or
    /// `*.example.com` for it and its subdomains, `*` for any. Empty: any.
    /// Other hosts get 400.
    pub allowed_hosts: Vec<String>,
    /// Trust `X-Forwarded-Proto` when building absolute `next`/`previous`
    /// URLs (enable behind a proxy that sets it).
    pub trust_forwarded_proto: bool,
    /// Take the client's address, for the throttles, from the last
    /// `X-Forwarded-For` entry (the one the proxy in front appends) rather
    /// than from the peer address. Enable only behind a proxy that appends
    /// it: otherwise any client can claim any address.
    pub trust_forwarded_for: bool,
    /// How error bodies are written: ours, or DRF's for the seed's clients.
    pub error_format: ErrorFormat,
    /// Whether `POST /api/register/` creates tenants for anyone. When
    /// closed it answers 403 `registration_closed`; operators still create
    /// tenants (`POST /api/platform/tenants/`, `saas-server create-tenant`).
    pub registration_open: bool,
    /// The plans `POST /api/register/` may choose (`None`: every plan of
    /// the catalog, as the seed allows). Others are refused on
    /// `subscription_plan`; operators can still put a tenant on any plan.
    pub self_service_plans: Option<Vec<String>>,
    /// Registration attempts per client address, every attempt counted,
    /// valid or not; `None` disables the limit. Default 10 an hour.
    pub registration_rate: Option<Rate>,
    /// The hosts that serve the platform console (`console` feature),
    /// matched as [`Self::allowed_hosts`] are. Empty: every host that is no
    /// active tenant's.
    pub platform_hosts: Vec<String>,
    /// How long a console session may sit idle before it ends.
    pub console_idle: Duration,
    /// The bearer token that opens `GET /metrics` to clients other than
    /// loopback ones; `None`: loopback only.
    pub metrics_token: Option<MetricsToken>,
}

/// The token of [`HttpConfig::metrics_token`]; never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct MetricsToken(String);

impl MetricsToken {
    /// Wraps `token`.
    pub fn new(token: impl Into<String>) -> Self {
        MetricsToken(token.into())
    }

    /// The token itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken(***)")
    }
}

impl HttpConfig {
    /// Default of [`Self::login_address_rate`].
    pub const DEFAULT_LOGIN_ADDRESS_RATE: Rate = Rate::new(60, Duration::from_secs(60));
    /// Default of [`Self::registration_rate`].
    pub const DEFAULT_REGISTRATION_RATE: Rate = Rate::new(10, Duration::from_secs(3600));
    /// Default of [`Self::console_idle`]: 30 minutes.
    pub const DEFAULT_CONSOLE_IDLE: Duration = Duration::from_secs(30 * 60);
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            x_tenant: false,
            cors: CorsOrigins::None,
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(15),
            login_attempts: 10,
            login_window: Duration::from_secs(60),
            login_address_rate: Some(Self::DEFAULT_LOGIN_ADDRESS_RATE),
            allowed_hosts: Vec::new(),
            trust_forwarded_proto: false,
            trust_forwarded_for: false,
            error_format: ErrorFormat::Native,
            registration_open: true,
            self_service_plans: None,
            registration_rate: Some(Self::DEFAULT_REGISTRATION_RATE),
            platform_hosts: Vec::new(),
            console_idle: Self::DEFAULT_CONSOLE_IDLE,
            metrics_token: None,
        }
    }
}

/// The throttles of one router.
#[derive(Debug)]
pub struct Throttles {
    /// Logins per tenant (or unknown host) and username.
    pub login: Throttle,
    /// Logins per client address.
    pub login_address: Throttle,
    /// Registrations per client address.
    pub registration: Throttle,
}

impl Throttles {
    fn new(config: &HttpConfig) -> Self {
        let per_user = (config.login_attempts > 0)
            .then(|| Rate::new(config.login_attempts, config.login_window));
        Throttles {
            login: Throttle::new(per_user).named("login_username"),
            login_address: Throttle::new(config.login_address_rate).named("login_address"),
            registration: Throttle::new(config.registration_rate).named("registration"),
        }
    }
}

/// What every handler shares: the service, the configuration and, when
/// background jobs are configured, the jobs runtime. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    saas: Saas,
    config: Arc<HttpConfig>,
    throttles: Arc<Throttles>,
    jobs: Option<Jobs>,
    schedule: Arc<Vec<Periodic>>,
    #[cfg(feature = "console")]
    console: Arc<crate::sessions::Sessions>,
    outages: Arc<crate::outage::Outages>,
    metrics: Option<PrometheusHandle>,
}

impl AppState {
    /// State serving `saas` with `config`.
    pub fn new(saas: Saas, config: HttpConfig) -> Self {
        AppState {
            saas,
            throttles: Arc::new(Throttles::new(&config)),
            #[cfg(feature = "console")]
            console: Arc::new(crate::sessions::Sessions::new(config.console_idle)),
            config: Arc::new(config),
            jobs: None,
            schedule: Arc::new(Vec::new()),
            outages: Arc::default(),
            metrics: None,
        }
    }

    /// Storage outages as this router has seen them, for the outage
    /// layer (which takes them alone, not the state).
    pub(crate) fn outages(&self) -> Arc<crate::outage::Outages> {
        Arc::clone(&self.outages)
    }

    /// Serves `GET /metrics` from `handle` (see
    /// [`crate::metrics::install_recorder`]); without it the endpoint
    /// answers 404. Requests are counted either way, by whatever recorder
    /// the process has.
    pub fn with_metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// The metrics handle, when served.
    pub fn metrics(&self) -> Option<&PrometheusHandle> {
        self.metrics.as_ref()
    }

    /// Serves the jobs endpoints (`POST /api/projects/{id}/report/`,
    /// `GET /api/jobs/{id}/`) with `jobs`. Without it they answer 503
    /// `jobs_unavailable`. Give it a [`Jobs`] built over the same [`Saas`]:
    /// the endpoints enqueue on its queue, and something (a
    /// [`saas_core::jobs::Worker`], in this process or another) must run them.
    pub fn with_jobs(mut self, jobs: Jobs) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// The periodic schedule the host's scheduler runs, for the console's
    /// jobs page to show with each entry's next run.
    pub fn with_schedule(mut self, schedule: Vec<Periodic>) -> Self {
        self.schedule = Arc::new(schedule);
        self
    }

    /// The periodic schedule given to [`Self::with_schedule`].
    pub fn schedule(&self) -> &[Periodic] {
        &self.schedule
    }

    /// The jobs runtime, when configured.
    pub fn jobs(&self) -> Option<&Jobs> {
        self.jobs.as_ref()
    }

    /// The service.
    pub fn saas(&self) -> &Saas {
        &self.saas
    }

    /// The configuration.
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// The throttles.
    pub fn throttles(&self) -> &Throttles {
        &self.throttles
    }

    /// The console's sessions.
    #[cfg(feature = "console")]
    pub(crate) fn console(&self) -> &crate::sessions::Sessions {
        &self.console
    }
}
