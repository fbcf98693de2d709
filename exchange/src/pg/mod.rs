//! The PostgreSQL wire protocol door: psql, BI tools and Postgres drivers over the same
//! grants, masks and audit as the HTTP API.
//!
//! Data flow: a TCP connection (TLS when configured; without it only a loopback address may
//! be served, since the API key travels as the password) → one [`Connection`] per socket:
//! its own handlers, so nothing of one connection reaches another → [`login`]: principal
//! id, API key, purpose and case; audited → [`query`]: each statement classified
//! ([`statements`]), queries planned in the connection's own policy-built lake session and
//! audited before rows leave; everything but reads, SHOW and transaction statements
//! refused → on shutdown the listener stops, each connection finishes the statement it is
//! running and closes.

mod errors;
mod login;
mod query;
mod statements;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProviderList, SchemaProvider};
use datafusion::datasource::TableType;
use datafusion::error::Result as DfResult;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::catalog_info::CatalogInfo;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::context::EmptyContextProvider;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::{
    PgCatalogSchemaProvider, PgCatalogStaticTables,
};
use datafusion_postgres::datafusion_pg_catalog::setup_pg_catalog;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::pgwire;
use gdx_lake::registry::Snapshot;
use gdx_lake::sql::{LakeSession, SessionOptions};
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::{
    ConnectionGuard, ConnectionHandle, ConnectionManager, ErrorHandler, PgWireServerHandlers,
    RandomPidSecretKeyGenerator,
};
use pgwire::messages::startup::SecretKey;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::access::CallerPolicy;
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::store::AccessState;
use crate::{Error, Result};

/// How to serve pgwire.
#[derive(Debug, Clone)]
pub struct PgConfig {
    pub listen: SocketAddr,
    /// A PEM certificate chain and its PKCS#8 key: TLS for every connection that asks.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// What every connection shares.
pub(crate) struct Shared {
    app: AppState,
    parser: PostgresCompatibilityParser,
    /// pg_catalog's fixed tables (types, operators, …), read once.
    static_tables: Arc<PgCatalogStaticTables>,
    pids: RandomPidSecretKeyGenerator,
    connections: Arc<ConnectionManager>,
}

/// Who a connection is, from its login.
#[derive(Debug, Clone)]
pub(crate) struct Login {
    principal: String,
    department: String,
    role: String,
    key_hash: String,
    purpose: String,
    case_id: String,
    end_user: Option<String>,
}

/// The lake session a connection holds while neither the grants nor the tables it shows
/// changed.
struct Cached {
    state: Arc<AccessState>,
    /// Every table of the registry's snapshot it was built from, with its Delta version.
    seen: HashMap<String, Option<u64>>,
    session: Arc<LakeSession>,
}

fn versions(snapshot: &Snapshot) -> HashMap<String, Option<u64>> {
    snapshot
        .tables()
        .iter()
        .map(|t| (t.spec.name.clone(), t.version()))
        .collect()
}

impl Cached {
    /// Whether `snapshot` holds what the session shows: no new table, and the same version
    /// of each table it shows (a table it hides may change: the audit shipper commits
    /// `system.audit` every second, which would otherwise rebuild every session).
    fn shows_the_same(&self, snapshot: &Snapshot) -> bool {
        snapshot
            .tables()
            .iter()
            .all(|t| match self.seen.get(&t.spec.name) {
                None => false,
                Some(v) => *v == t.version() || !self.session.tables().contains(&t.spec.name),
            })
    }
}

/// One connection's state.
#[derive(Default)]
pub(crate) struct ConnState {
    login: OnceLock<Login>,
    session: tokio::sync::Mutex<Option<Cached>>,
    /// For cancel requests: the handle and the registration (dropped with the connection).
    cancel: OnceLock<(Arc<ConnectionHandle>, ConnectionGuard)>,
    /// Held (shared) while a statement runs; shutdown takes it exclusively.
    busy: tokio::sync::RwLock<()>,
    /// Set once shutdown began: no new statement starts.
    closing: Mutex<bool>,
    /// The connection's `pg_catalog` and the session tables it lists.
    pg_catalog: OnceLock<(LiveCatalog, Arc<dyn SchemaProvider>)>,
}

impl ConnState {
    fn login(&self) -> Option<Login> {
        self.login.get().cloned()
    }

    /// Resolves when the client cancels the running statement.
    async fn cancellable(&self) {
        match self.cancel.get() {
            Some((handle, _)) => {
                let _ = handle.start_query().await.await;
            }
            None => std::future::pending().await,
        }
    }
}

/// The caller of a statement, as of now.
pub(crate) struct Current {
    principal: String,
    policy: CallerPolicy,
    session: Arc<LakeSession>,
}

/// The handlers of one connection.
#[derive(Clone)]
pub(crate) struct Connection {
    shared: Arc<Shared>,
    conn: Arc<ConnState>,
}

impl Connection {
    fn logged_in(&self, login: Login, pid: i32, secret: SecretKey) {
        let _ = self.conn.login.set(login);
        let _ = self
            .conn
            .cancel
            .set(self.shared.connections.register(pid, secret));
    }

    /// The connection's caller now: its key must still be active, its policy is the one
    /// the current grants give, its session shows what that policy shows.
    async fn current(&self) -> Result<Current, ApiError> {
        if *self.conn.closing.lock().unwrap_or_else(|e| e.into_inner()) {
            return Err(ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the server is shutting down",
            ));
        }
        let Some(login) = self.conn.login.get() else {
            return Err(ApiError::unauthorized("not logged in"));
        };
        let app = &self.shared.app;
        let state = app.store.current();
        let now = chrono::Utc::now();
        let principal = match state.principals.by_key_hash(&login.key_hash, now) {
            Some(p) if p.id.as_str() == login.principal => p.clone(),
            _ => {
                return Err(ApiError::unauthorized(
                    state.principals.refusal(&login.key_hash, now),
                ));
            }
        };
        let policy = CallerPolicy::of(&state, &principal, now);
        let snapshot = app.registry.snapshot();
        let mut cached = self.conn.session.lock().await;
        let fresh = cached.as_ref().is_some_and(|c| {
            Arc::ptr_eq(&c.state, &state)
                && state.next_expiry.is_none_or(|e| now < e)
                && c.shows_the_same(&snapshot)
        });
        if !fresh {
            let options = SessionOptions {
                as_of: None,
                memory_limit: app.limits.memory_limit,
                max_rows: app.limits.sql_max_rows,
                timeout: Some(app.limits.timeout),
            };
            let session =
                LakeSession::open(&app.registry, policy.clone().into_arc(), &options).await?;
            self.with_pg_catalog(&session)?;
            *cached = Some(Cached {
                state: state.clone(),
                seen: versions(&snapshot),
                session: Arc::new(session),
            });
        }
        let session = cached
            .as_ref()
            .map(|c| c.session.clone())
            .ok_or_else(|| ApiError::internal("no session"))?;
        Ok(Current {
            principal: principal.id.to_string(),
            policy,
            session,
        })
    }
}

impl Connection {
    /// Gives `session` the connection's `pg_catalog`: the functions and types Postgres
    /// clients use, and one catalog provider for the connection's whole life (its OIDs stay
    /// the same while the session under it is rebuilt, as psql's `\d` needs) listing the
    /// tables of the session it is in now.
    fn with_pg_catalog(&self, session: &LakeSession) -> Result<(), ApiError> {
        let ctx = session.context();
        setup_pg_catalog(ctx, "gdx", EmptyContextProvider)
            .map_err(|e| ApiError::internal(format!("setting up pg_catalog: {e}")))?;
        let (live, provider) = match self.conn.pg_catalog.get() {
            Some(p) => p,
            None => {
                let live = LiveCatalog(Arc::new(std::sync::RwLock::new(
                    ctx.state().catalog_list().clone(),
                )));
                let provider = PgCatalogSchemaProvider::try_new(
                    live.clone(),
                    self.shared.static_tables.clone(),
                    EmptyContextProvider,
                )
                .map_err(|e| ApiError::internal(format!("pg_catalog: {e}")))?;
                let _ = self.conn.pg_catalog.set((live, Arc::new(provider)));
                self.conn
                    .pg_catalog
                    .get()
                    .ok_or_else(|| ApiError::internal("pg_catalog"))?
            }
        };
        *live.0.write().unwrap_or_else(|e| e.into_inner()) = ctx.state().catalog_list().clone();
        ctx.catalog("gdx")
            .ok_or_else(|| ApiError::internal("no gdx catalog"))?
            .register_schema("pg_catalog", provider.clone())
            .map_err(|e| ApiError::internal(format!("pg_catalog: {e}")))?;
        Ok(())
    }
}

/// The catalogs of a connection's current session, names in order.
#[derive(Clone, Debug)]
struct LiveCatalog(Arc<std::sync::RwLock<Arc<dyn CatalogProviderList>>>);

impl LiveCatalog {
    fn now(&self) -> Arc<dyn CatalogProviderList> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[async_trait::async_trait]
impl CatalogInfo for LiveCatalog {
    async fn catalog_names(&self) -> DfResult<Vec<String>> {
        let mut names = CatalogInfo::catalog_names(&self.now()).await?;
        names.sort();
        Ok(names)
    }

    async fn schema_names(&self, catalog: &str) -> DfResult<Option<Vec<String>>> {
        let mut names = CatalogInfo::schema_names(&self.now(), catalog).await?;
        if let Some(n) = names.as_mut() {
            n.sort();
        }
        Ok(names)
    }

    async fn table_names(&self, catalog: &str, schema: &str) -> DfResult<Option<Vec<String>>> {
        let mut names = CatalogInfo::table_names(&self.now(), catalog, schema).await?;
        if let Some(n) = names.as_mut() {
            n.sort();
        }
        Ok(names)
    }

    async fn table_schema(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> DfResult<Option<SchemaRef>> {
        CatalogInfo::table_schema(&self.now(), catalog, schema, table).await
    }

    async fn table_type(
        &self,
        catalog: &str,
        schema: &str,
        table: &str,
    ) -> DfResult<Option<TableType>> {
        CatalogInfo::table_type(&self.now(), catalog, schema, table).await
    }
}

/// Logs the kind of an error sent to a client (never its message: it may echo a query).
struct LogErrors;

impl ErrorHandler for LogErrors {
    fn on_error<C>(&self, _client: &C, error: &mut pgwire::error::PgWireError)
    where
        C: pgwire::api::ClientInfo,
    {
        if let pgwire::error::PgWireError::UserError(info) = error {
            tracing::debug!(code = %info.code, "pgwire error answered");
        } else {
            tracing::debug!("pgwire protocol error");
        }
    }
}

impl PgWireServerHandlers for Connection {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::new(self.clone())
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::new(self.clone())
    }

    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::new(self.clone())
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(LogErrors)
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(DefaultCancelHandler::new(self.shared.connections.clone()))
    }
}

/// Loads the TLS certificate and key.
fn tls_acceptor(cert: &PathBuf, key: &PathBuf) -> Result<pgwire::tokio::TlsAcceptor> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let fail =
        |what: &str, e: &dyn std::fmt::Display| Error::Internal(format!("pgwire TLS: {what}: {e}"));
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| fail(&format!("reading {}", cert.display()), &e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| fail(&format!("reading {}", cert.display()), &e))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| fail(&format!("reading {}", key.display()), &e))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| fail("protocol versions", &e))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| fail("certificate and key", &e))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Binds the pgwire listener and serves it as tracked tasks until `token` is cancelled.
pub(crate) async fn start(
    cfg: &PgConfig,
    app: AppState,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> Result<SocketAddr> {
    let tls = match &cfg.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None if !cfg.listen.ip().is_loopback() => {
            return Err(Error::Forbidden(format!(
                "pgwire on {} needs TLS (--pg-tls-cert and --pg-tls-key): the API key is the \
                 password and would cross the network in clear; without TLS only a loopback \
                 address is served",
                cfg.listen
            )));
        }
        None => None,
    };
    let (listener, addr) = crate::http::bind(cfg.listen).await?;
    let shared = Arc::new(Shared {
        app,
        parser: PostgresCompatibilityParser::new(),
        static_tables: Arc::new(
            PgCatalogStaticTables::try_new()
                .map_err(|e| Error::Internal(format!("pg_catalog tables: {e}")))?,
        ),
        pids: RandomPidSecretKeyGenerator::default(),
        connections: Arc::new(ConnectionManager::new()),
    });
    let connections = tracker.clone();
    let token = token.clone();
    tracker.spawn(async move {
        loop {
            let (socket, _) = tokio::select! {
                () = token.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "pgwire accept failed");
                        continue;
                    }
                },
            };
            let connection = Connection {
                shared: shared.clone(),
                conn: Arc::new(ConnState::default()),
            };
            let tls = tls.clone();
            let stop = token.clone();
            connections.spawn(async move {
                let conn = connection.conn.clone();
                tokio::select! {
                    served = pgwire::tokio::process_socket(socket, tls, connection) => {
                        if let Err(e) = served {
                            tracing::debug!(error = %e, "pgwire connection ended with an error");
                        }
                    }
                    () = async {
                        stop.cancelled().await;
                        *conn.closing.lock().unwrap_or_else(|e| e.into_inner()) = true;
                        // The statement running now finishes (and is audited) first.
                        let _idle = conn.busy.write().await;
                    } => tracing::debug!("pgwire connection closed at shutdown"),
                }
            });
        }
        tracing::info!(task = "pgwire", "stopped accepting");
    });
    tracing::info!(%addr, tls = cfg.tls.is_some(), "pgwire listening");
    Ok(addr)
}
