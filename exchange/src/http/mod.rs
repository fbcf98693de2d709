//! The exchange's HTTP server.
//!
//! Data flow: a TCP connection → tower layers (request id set and echoed, a tracing span
//! that names the route template and never a path or query value, a timeout, a body limit,
//! panics caught, answers compressed when the client accepts gzip or zstd; any non-JSON
//! error rewritten into the one envelope) → the routes below → handlers run as audited calls ([`call::run`]). Background tasks, all tracked and
//! drained on shutdown: the access-state refresh (principals and grants other replicas
//! changed), the registry refresh (new folds and profiles, the profiles held in memory for
//! lookups by key, the property-certificate register), the audit shipper, and the audit anchor (the chain head on
//! `gdx.audit`, when a sink is configured).

mod audit;
mod call;
mod catalog;
mod doc;
pub mod encode;
pub mod error;
mod gaps;
mod grants;
mod health;
mod limit;
mod profiles;
mod projects;
mod rewards;
mod rows;
mod scenarios;
mod sql;
mod verify;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use gdx_lake::TableRegistry;
use gdx_lake::audit::AuditTable;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::anchor::{Anchor, AnchorSink};
use crate::audit::{AuditLog, ship};
use crate::lookups::ProfileIndexes;
use crate::purposes::Purposes;
use crate::resources::Resources;
use crate::scenarios::certificate::Registers as CertificateRegisters;
use crate::store::Store;
use crate::{Error, Result};
use error::ApiError;
pub use limit::Limiter;
pub(crate) use sql::sql_error;

/// Query limits of one call.
#[derive(Debug, Clone)]
pub struct Limits {
    pub page_default: usize,
    pub page_max: usize,
    pub timeout: Duration,
    pub memory_limit: usize,
    /// Rows one `POST /v1/sql` answers at most.
    pub sql_max_rows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            page_default: 100,
            page_max: 10_000,
            timeout: Duration::from_secs(30),
            memory_limit: 512 << 20,
            sql_max_rows: 100_000,
        }
    }
}

/// How to run the exchange.
#[derive(Debug, Clone)]
pub struct ExchangeConfig {
    pub listen: SocketAddr,
    /// This replica's name: its audit chain's name.
    pub replica: String,
    /// Where this replica's local audit log lives.
    pub audit_dir: PathBuf,
    /// fsync each group of audit records before answering (off only to measure its cost).
    pub audit_fsync: bool,
    /// How often principals and grants other replicas changed are read.
    pub refresh: Duration,
    /// How often new folds and profiles are picked up.
    pub registry_refresh: Duration,
    /// How often audit records are shipped into the lake.
    pub ship_interval: Duration,
    pub limits: Limits,
    /// Calls per second per principal (0: unlimited) and the burst allowed.
    pub rate_per_second: u32,
    pub rate_burst: u32,
    /// Verifications per minute of one certificate, owner or contract, across all callers
    /// (0: unlimited), and the burst allowed.
    pub verify_subject_per_minute: u32,
    pub verify_subject_burst: u32,
    pub purposes: Purposes,
    pub request_timeout: Duration,
    pub body_limit: usize,
    /// Memory the profile tables may take to be served from memory (0: always scan).
    pub lookup_memory: usize,
    /// Where this replica's audit chain head is anchored outside the lake (`gdx.audit`),
    /// and how often.
    pub anchor: Option<Arc<dyn AnchorSink>>,
    pub anchor_interval: Duration,
    /// The PostgreSQL wire protocol door, when served.
    pub pg: Option<crate::pg::PgConfig>,
    /// The elderly allowance's bands and amounts its runs pay.
    pub allowance: crate::scenarios::allowance::AllowancePolicy,
    /// Where a run's outcomes are published (notifications, payment facts); `None`: the
    /// ledger only (`gdx scenario allowance publish` publishes later).
    pub outcomes: Option<Arc<dyn crate::scenarios::allowance::publish::OutcomeSink>>,
    /// The stages of a major project and the days allowed for each (the timeline's flags).
    pub project_stages: crate::scenarios::projects::StagePolicy,
}

impl ExchangeConfig {
    pub fn new(listen: SocketAddr, audit_dir: PathBuf) -> Self {
        Self {
            listen,
            replica: "r1".into(),
            audit_dir,
            audit_fsync: true,
            refresh: Duration::from_secs(1),
            registry_refresh: Duration::from_secs(2),
            ship_interval: Duration::from_secs(1),
            limits: Limits::default(),
            rate_per_second: 100,
            rate_burst: 200,
            verify_subject_per_minute: 10,
            verify_subject_burst: 10,
            purposes: Purposes::builtin(),
            request_timeout: Duration::from_secs(60),
            body_limit: 64 << 10,
            lookup_memory: 1 << 30,
            anchor: None,
            anchor_interval: Duration::from_secs(5),
            pg: None,
            allowance: crate::scenarios::allowance::AllowancePolicy::builtin(),
            outcomes: None,
            project_stages: crate::scenarios::projects::StagePolicy::builtin(),
        }
    }
}

/// Everything a handler can reach: one pointer, cloned per request (axum clones the state
/// for every extractor and handler; a struct of a dozen `Arc`s cost a dozen atomic
/// increments and decrements per clone, 4 % of a verification's CPU).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What the exchange's handlers and tasks share.
pub struct Shared {
    pub registry: Arc<TableRegistry>,
    pub store: Arc<Store>,
    pub resources: Arc<Resources>,
    pub audit: Arc<AuditLog>,
    audit_table: Arc<Mutex<AuditTable>>,
    pub purposes: Arc<Purposes>,
    pub limiter: Arc<Limiter>,
    /// Verifications per subject asked about.
    pub subject_limiter: Arc<Limiter>,
    pub limits: Limits,
    /// Profiles held in memory for lookups by key.
    pub lookups: Arc<ProfileIndexes>,
    /// The active property certificates, for verification.
    pub certificates: Arc<CertificateRegisters>,
    /// The elderly allowance's bands and amounts.
    pub allowance: Arc<crate::scenarios::allowance::AllowancePolicy>,
    /// Where the allowance's outcomes are published, when configured.
    pub outcomes: Option<Arc<dyn crate::scenarios::allowance::publish::OutcomeSink>>,
    /// The stages of a major project and their limits.
    pub project_stages: Arc<crate::scenarios::projects::StagePolicy>,
    metrics: Option<Arc<dyn Fn() -> String + Send + Sync>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

impl AppState {
    /// Ships this replica's unshipped audit records into the lake now.
    pub async fn ship_audit(&self) -> std::result::Result<usize, ApiError> {
        let mut t = self.audit_table.lock().await;
        ship::ship_once(&mut t, &self.audit)
            .await
            .map_err(|e| ApiError::internal(format!("shipping the audit: {e}")))
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = format!("r-{}", crate::secret::random_hex(8));
        axum::http::HeaderValue::from_str(&id)
            .ok()
            .map(RequestId::new)
    }
}

/// The documented routes (each registered together with its OpenAPI description).
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(doc::ApiDoc::openapi())
        .routes(routes!(health::health))
        .routes(routes!(health::ready))
        .routes(routes!(health::metrics))
        .routes(routes!(catalog::purposes))
        .routes(routes!(catalog::list))
        .routes(routes!(catalog::show))
        .routes(routes!(rows::rows))
        .routes(routes!(profiles::citizen))
        .routes(routes!(profiles::enterprise))
        .routes(routes!(sql::sql))
        .routes(routes!(verify::property_certificate))
        .routes(routes!(scenarios::allowance_run, scenarios::allowance_runs))
        .routes(routes!(gaps::entitlements))
        .routes(routes!(projects::timeline))
        .routes(routes!(rewards::policies, rewards::issue))
        .routes(routes!(rewards::decide))
        .routes(routes!(rewards::firms))
        .routes(routes!(rewards::apply))
        .routes(routes!(rewards::approve))
        .routes(routes!(rewards::disburse))
        .routes(routes!(rewards::bank_results))
        .routes(routes!(grants::list, grants::request))
        .routes(routes!(grants::show))
        .routes(routes!(grants::decision))
        .routes(routes!(audit::search))
        .routes(routes!(audit::subject))
}

/// The exchange's OpenAPI 3 document (served at `/openapi.json`, committed as
/// `exchange/openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().split_for_parts().1
}

/// The routes, with their layers.
pub fn router(state: AppState, cfg: &ExchangeConfig) -> Router {
    let x_request_id = axum::http::HeaderName::from_static("x-request-id");
    let (routes, document) = api().split_for_parts();
    let document = Arc::new(document);
    routes
        .route(
            "/openapi.json",
            get(move || {
                let d = document.clone();
                async move { axum::Json(d.as_ref().clone()) }
            }),
        )
        .fallback(health::not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn(health::envelope))
        // gzip or zstd when the client accepts it; Parquet is compressed already.
        .layer(
            CompressionLayer::new().compress_when(DefaultPredicate::new().and(
                NotForContentType::const_new(encode::Format::Parquet.content_type()),
            )),
        )
        .layer(DefaultBodyLimit::max(cfg.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            cfg.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(health::panicked))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<axum::body::Body>| {
                // The route template only: paths and queries carry IDs and filter values.
                let route = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or("<no route>", |m| m.as_str());
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("http", method = %req.method(), route, request_id = id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, RandomRequestId))
}

#[cfg(test)]
mod tests {
    /// The committed `exchange/openapi.json` is the document the code generates
    /// (`GDX_WRITE_OPENAPI=1 cargo test -p gdx-exchange openapi` rewrites it).
    #[test]
    fn the_committed_openapi_document_matches_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
        let generated = serde_json::to_string_pretty(&super::openapi()).unwrap() + "\n";
        if std::env::var_os("GDX_WRITE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "exchange/openapi.json is out of date: run GDX_WRITE_OPENAPI=1 cargo test -p gdx-exchange openapi"
        );
        for route in [
            "/v1/datasets/{id}/rows",
            "/v1/grants",
            "/v1/audit",
            "/v1/profiles/citizens/{id}",
        ] {
            assert!(super::openapi().paths.paths.contains_key(route), "{route}");
        }
    }
}

/// How often the rewards' ledger is published to `gdx.notifications`, when Kafka is
/// configured.
const OUTCOMES_INTERVAL: Duration = Duration::from_secs(2);

/// A running exchange.
#[derive(Debug)]
pub struct Exchange {
    addr: SocketAddr,
    token: CancellationToken,
    tracker: TaskTracker,
    state: AppState,
    anchor: Option<Anchoring>,
    pg_addr: Option<SocketAddr>,
}

/// Publishing this replica's chain head whenever it moved.
#[derive(Debug, Clone)]
struct Anchoring {
    sink: Arc<dyn AnchorSink>,
    replica: String,
    /// The sequence number last anchored.
    published: Arc<std::sync::atomic::AtomicI64>,
}

impl Anchoring {
    async fn publish(&self, audit: &AuditLog) -> std::result::Result<(), String> {
        use std::sync::atomic::Ordering;
        let head = audit.head();
        if head.seq <= self.published.load(Ordering::SeqCst) {
            return Ok(());
        }
        let anchor = Anchor {
            replica: self.replica.clone(),
            seq: head.seq,
            hash: head.hash,
            at: chrono::Utc::now(),
        };
        let sink = self.sink.clone();
        tokio::task::spawn_blocking(move || sink.publish(&anchor))
            .await
            .map_err(|e| format!("anchoring the audit head: {e}"))??;
        self.published.fetch_max(head.seq, Ordering::SeqCst);
        Ok(())
    }
}

impl Exchange {
    /// Opens the exchange's state over `registry`'s lake, binds `cfg.listen`, and starts
    /// serving and the background tasks.
    pub async fn start(
        cfg: ExchangeConfig,
        registry: Arc<TableRegistry>,
        metrics: Option<Arc<dyn Fn() -> String + Send + Sync>>,
    ) -> Result<Self> {
        let resources = Arc::new(Resources::from_catalog(registry.catalog()));
        let lake = registry.lake().clone();
        let store = Store::open(&lake, resources.clone()).await?;
        let mut audit_table = AuditTable::open(lake.exchange("audit"), &cfg.replica).await?;
        let shipped = audit_table.shipped().await?;
        let audit = Arc::new(AuditLog::open(
            &cfg.audit_dir,
            &cfg.replica,
            cfg.audit_fsync,
            shipped,
        )?);
        let state = AppState(Arc::new(Shared {
            registry: registry.clone(),
            store,
            resources,
            audit,
            audit_table: Arc::new(Mutex::new(audit_table)),
            purposes: Arc::new(cfg.purposes.clone()),
            limiter: Arc::new(Limiter::new(cfg.rate_per_second, cfg.rate_burst)),
            subject_limiter: Arc::new(Limiter::per_minute(
                cfg.verify_subject_per_minute,
                cfg.verify_subject_burst,
            )),
            limits: cfg.limits.clone(),
            lookups: Arc::new(ProfileIndexes::new(cfg.lookup_memory)),
            certificates: Arc::new(
                CertificateRegisters::open(&registry)
                    .await
                    .map_err(|e| Error::Internal(format!("property-certificate register: {e}")))?,
            ),
            allowance: Arc::new(cfg.allowance.clone()),
            project_stages: Arc::new(cfg.project_stages.clone()),
            outcomes: cfg.outcomes.clone(),
            metrics,
        }));
        let (listener, addr) = bind(cfg.listen).await?;
        let token = CancellationToken::new();
        let tracker = TaskTracker::new();
        let app = router(state.clone(), &cfg);
        let stop = token.clone();
        tracker.spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "the exchange's HTTP server stopped");
            }
            tracing::info!(
                task = "http",
                "stopped accepting; in-flight requests finished"
            );
        });
        spawn_every(&tracker, &token, "access-refresh", cfg.refresh, {
            let store = state.store.clone();
            move || {
                let store = store.clone();
                async move {
                    store.refresh().await.map(|_| ()).map_err(|e| match e {
                        Error::Lake(l) => l.log_safe(),
                        e => e.to_string(),
                    })
                }
            }
        });
        spawn_every(
            &tracker,
            &token,
            "registry-refresh",
            cfg.registry_refresh,
            {
                let state = state.clone();
                move || {
                    let state = state.clone();
                    async move {
                        state.registry.refresh().await.map_err(|e| e.log_safe())?;
                        state.limiter.forget_idle();
                        state.subject_limiter.forget_idle();
                        // One register failing to build does not hold up the other.
                        let profiles = state.lookups.refresh(&state.registry).await;
                        let certificates = state.certificates.refresh(&state.registry).await;
                        profiles.and(certificates)
                    }
                }
            },
        );
        let anchor = cfg.anchor.clone().map(|sink| Anchoring {
            sink,
            replica: cfg.replica.clone(),
            published: Arc::new(std::sync::atomic::AtomicI64::new(0)),
        });
        if let Some(a) = &anchor {
            spawn_every(&tracker, &token, "audit-anchor", cfg.anchor_interval, {
                let a = a.clone();
                let audit = state.audit.clone();
                move || {
                    let a = a.clone();
                    let audit = audit.clone();
                    async move { a.publish(&audit).await }
                }
            });
        }
        spawn_every(&tracker, &token, "audit-ship", cfg.ship_interval, {
            let state = state.clone();
            move || {
                let state = state.clone();
                async move { state.ship_audit().await.map(|_| ()).map_err(|e| e.reason) }
            }
        });
        if let Some(sink) = state.outcomes.clone() {
            spawn_every(&tracker, &token, "rewards-outcomes", OUTCOMES_INTERVAL, {
                let lake = registry.lake().clone();
                move || {
                    let (lake, sink) = (lake.clone(), sink.clone());
                    async move {
                        crate::scenarios::rewards::notify::publish(&lake, sink)
                            .await
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                    }
                }
            });
        }
        let pg_addr = match &cfg.pg {
            Some(pg) => Some(crate::pg::start(pg, state.clone(), &tracker, &token).await?),
            None => None,
        };
        tracing::info!(%addr, replica = %cfg.replica, "exchange listening");
        Ok(Self {
            addr,
            token,
            tracker,
            state,
            anchor,
            pg_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where pgwire is served, when it is.
    pub fn pg_addr(&self) -> Option<SocketAddr> {
        self.pg_addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// A token that stops the exchange when cancelled (e.g. on SIGTERM).
    pub fn cancellation(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Waits until the exchange is told to stop.
    pub async fn stopped(&self) {
        self.token.cancelled().await
    }

    /// Stops accepting, lets in-flight requests finish (up to `deadline`), stops the
    /// background tasks, ships the last audit records and closes the audit log.
    pub async fn shutdown(self, deadline: Duration) {
        self.token.cancel();
        self.tracker.close();
        if tokio::time::timeout(deadline, self.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                pending = self.tracker.len(),
                "shutdown deadline passed with tasks still running"
            );
        }
        self.state.audit.close().await;
        if let Some(sink) = self.state.outcomes.clone() {
            match crate::scenarios::rewards::notify::publish(self.state.registry.lake(), sink).await
            {
                Ok(r) => tracing::info!(
                    notifications = r.notifications,
                    "the rewards' last outcomes published"
                ),
                Err(e) => {
                    tracing::warn!(reason = %e, "the rewards' last outcomes stay in the ledger until the next publish")
                }
            }
        }
        if let Some(a) = &self.anchor {
            match a.publish(&self.state.audit).await {
                Ok(()) => tracing::info!("audit head anchored on gdx.audit"),
                Err(e) => tracing::warn!(reason = %e, "the last audit head was not anchored"),
            }
        }
        match self.state.ship_audit().await {
            Ok(n) => tracing::info!(records = n, "last audit records shipped into the lake"),
            Err(e) => {
                tracing::warn!(reason = %e.reason, "the last audit records stay in the local log until the next start")
            }
        }
    }
}

/// A TCP listener on `at`, and the address it got (port 0: any free port).
pub(crate) async fn bind(at: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(at)
        .await
        .map_err(|e| Error::Internal(format!("binding {at}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("listener address: {e}")))?;
    Ok((listener, addr))
}

/// Runs `tick` every `every` until `token` is cancelled, as a tracked, named task.
fn spawn_every<F, Fut>(
    tracker: &TaskTracker,
    token: &CancellationToken,
    name: &'static str,
    every: Duration,
    tick: F,
) where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = std::result::Result<(), String>> + Send,
{
    let token = token.clone();
    tracker.spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = token.cancelled() => break,
                _ = interval.tick() => {
                    if let Err(e) = tick().await {
                        tracing::warn!(task = name, error = %e, "background task failed; retrying next tick");
                    }
                }
            }
        }
        tracing::info!(task = name, "stopped");
    });
}
