//! `gdx exchange`, `gdx principal`, `gdx grant`, `gdx audit`: the exchange and the
//! management of its state.
//!
//! Data flow: the lake (`--lake`) holds the principals and grants journals and the shipped
//! audit → `gdx exchange` serves the API over it (this module chooses the implementations:
//! the lake's registry, the exchange's store and audit log, the Prometheus recorder) →
//! `gdx principal` and `gdx grant` change the journals directly, under the same rules as the
//! API (a grant decision names the acting principal with `--as`) → `gdx audit verify`
//! re-checks every chain.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use gdx_exchange::audit::anchor::check_anchor;
use gdx_exchange::audit::ship::from_batches;
use gdx_exchange::audit::verify::{check_chain, check_log, compare_with_lake, parse_log};
use gdx_exchange::grants::GrantRequest;
use gdx_exchange::http::{Exchange, ExchangeConfig, Limits};
use gdx_exchange::model::{
    DEPARTMENTS_WITHOUT_DATA, Department, GrantId, PrincipalId, ProcessingLevel, Role,
};
use gdx_exchange::ops::{self, Decision};
use gdx_exchange::principals::{Principal, PrincipalChange};
use gdx_exchange::purposes::Purposes;
use gdx_exchange::resources::Resources;
use gdx_exchange::store::Store;
use gdx_lake::sql::{LakeSession, SessionOptions};
use gdx_lake::{AllowAll, LakeLocation, TableRegistry};

use super::ingest::runtime;
use crate::cli::{
    AuditCommand, ExchangeArgs, ExchangeOptions, GrantCommand, LakeArgs, PrincipalCommand,
};

/// The local audit directory: `--audit-dir`, or `audit/` beside a local lake.
pub(crate) fn audit_dir(given: &Option<PathBuf>, lake: &LakeLocation) -> PathBuf {
    given.clone().unwrap_or_else(|| {
        match lake
            .local_path()
            .as_deref()
            .and_then(std::path::Path::parent)
        {
            Some(parent) => parent.join("audit"),
            None => PathBuf::from("gdx-data/audit"),
        }
    })
}

/// The exchange's configuration from the command line.
pub(crate) fn exchange_config(
    o: &ExchangeOptions,
    lake: &LakeLocation,
    memory_mb: usize,
) -> anyhow::Result<ExchangeConfig> {
    let mut cfg = ExchangeConfig::new(o.listen, audit_dir(&o.audit_dir, lake));
    cfg.replica = o.replica.clone();
    anyhow::ensure!(
        PrincipalId::new(o.replica.clone()).is_ok(),
        "--replica: 2 to 64 of a-z, 0-9, '.', '_', '-'"
    );
    cfg.audit_fsync = !o.audit_no_fsync;
    cfg.rate_per_second = o.rate_limit;
    cfg.rate_burst = o.rate_burst.max(1);
    cfg.refresh = Duration::from_millis(o.refresh_ms.max(50));
    cfg.registry_refresh = Duration::from_millis(o.table_refresh_ms.max(50));
    cfg.verify_subject_per_minute = o.verify_subject_rate;
    cfg.verify_subject_burst = o.verify_subject_rate.max(1);
    cfg.body_limit = o.body_limit_kb.max(1) << 10;
    cfg.lookup_memory = o.lookup_memory_mb << 20;
    cfg.limits = Limits {
        timeout: Duration::from_secs(o.query_timeout_secs.max(1)),
        memory_limit: memory_mb << 20,
        sql_max_rows: o.sql_max_rows.max(1),
        ..Limits::default()
    };
    cfg.pg = o.pg.map(|listen| gdx_exchange::pg::PgConfig {
        listen,
        tls: o.pg_tls_cert.clone().zip(o.pg_tls_key.clone()),
    });
    if let Some(p) = &o.purposes {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        cfg.purposes =
            Purposes::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    }
    Ok(cfg)
}

/// The Prometheus text of this process's metrics, when a recorder could be installed.
pub(crate) fn metrics_renderer() -> Option<Arc<dyn Fn() -> String + Send + Sync>> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok()?;
    Some(Arc::new(move || handle.render()))
}

/// Prints where the exchange listens: `exchange: http://ADDR`, then `pgwire: ADDR` when it
/// serves the PostgreSQL wire protocol too.
pub(crate) fn print_addresses(ex: &Exchange) {
    use std::io::Write;
    println!("exchange: http://{}", ex.local_addr());
    if let Some(pg) = ex.pg_addr() {
        println!("pgwire: {pg}");
    }
    let _ = std::io::stdout().flush();
}

/// Waits for Ctrl-C, SIGTERM, or the exchange stopping by itself.
pub(crate) async fn until_signal(ex: &Exchange) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
        () = ex.stopped() => {}
    }
}

pub(crate) fn serve(args: ExchangeArgs) -> anyhow::Result<ExitCode> {
    let catalog = super::load_catalog(&args.lake.source)?;
    let lake = super::open_lake(&args.lake.lake)?;
    let mut cfg = exchange_config(&args.exchange, &lake, args.lake.memory_mb)?;
    if let Some(b) = &args.brokers {
        cfg.anchor = Some(Arc::new(super::anchor::KafkaAnchor::new(b)?));
        cfg.outcomes = Some(Arc::new(super::outcomes::KafkaOutcomes::new(b)?));
    }
    let rt = runtime()?;
    rt.block_on(async {
        let registry = TableRegistry::open(&lake, &catalog).await?;
        let ex = Exchange::start(cfg, registry, metrics_renderer()).await?;
        print_addresses(&ex);
        until_signal(&ex).await;
        eprintln!("stopping: no new connections; finishing in-flight calls");
        ex.shutdown(Duration::from_secs(30)).await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn open_store(
    args: &LakeArgs,
) -> anyhow::Result<(Arc<Store>, Arc<Resources>, gdx_catalog::Catalog)> {
    let catalog = super::load_catalog(&args.source)?;
    let lake = super::open_lake(&args.lake)?;
    let resources = Arc::new(Resources::from_catalog(&catalog));
    let store = Store::open(&lake, resources.clone()).await?;
    Ok((store, resources, catalog))
}

pub(crate) fn principal(c: PrincipalCommand) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        match c {
            PrincipalCommand::Add {
                id,
                department,
                role,
                description,
                lake,
            } => {
                let (store, resources, _) = open_store(&lake).await?;
                let id = PrincipalId::new(id)?;
                let department = Department::new(department)?;
                let known = resources.departments();
                if !DEPARTMENTS_WITHOUT_DATA.contains(&department.as_str())
                    && !known.iter().any(|d| d == department.as_str())
                {
                    bail!(
                        "--department: not a department of the catalog ({}) nor one without data ({})",
                        known.join(", "),
                        DEPARTMENTS_WITHOUT_DATA.join(", ")
                    );
                }
                let Some(role) = Role::parse(&role) else {
                    bail!("--role: one of {}", Role::ALL.map(Role::as_str).join(", "));
                };
                let key = store
                    .add_principal(
                        "operator",
                        id.clone(),
                        department.clone(),
                        role,
                        &description,
                    )
                    .await?;
                eprintln!(
                    "principal {id} added ({role} of {department}); its API key is shown once:"
                );
                println!("{key}");
            }
            PrincipalCommand::List { lake } => {
                let (store, _, _) = open_store(&lake).await?;
                let state = store.current();
                println!(
                    "{:<28} {:<8} {:<18} {:<8} {:<17} key since",
                    "id", "dept", "role", "status", "added"
                );
                for p in state.principals.iter() {
                    println!(
                        "{:<28} {:<8} {:<18} {:<8} {:<17} {}",
                        p.id.as_str(),
                        p.department.as_str(),
                        p.role.as_str(),
                        if p.revoked { "revoked" } else { "active" },
                        p.added_at.format("%Y-%m-%d %H:%M"),
                        p.key_rotated_at
                            .unwrap_or(p.added_at)
                            .format("%Y-%m-%d %H:%M")
                    );
                }
            }
            PrincipalCommand::RotateKey {
                id,
                grace_minutes,
                lake,
            } => {
                let (store, _, _) = open_store(&lake).await?;
                let id = PrincipalId::new(id)?;
                let grace = chrono::Duration::minutes(i64::from(grace_minutes));
                let key = store.rotate_key("operator", id.clone(), grace).await?;
                if grace_minutes == 0 {
                    eprintln!("principal {id}: new API key (the previous one stopped working); shown once:");
                } else {
                    eprintln!(
                        "principal {id}: new API key (the previous one works for {grace_minutes} more minutes); shown once:"
                    );
                }
                println!("{key}");
            }
            PrincipalCommand::Revoke { id, lake } => {
                let (store, _, _) = open_store(&lake).await?;
                let id = PrincipalId::new(id)?;
                store
                    .change_principal("operator", PrincipalChange::Revoked { id: id.clone() })
                    .await?;
                println!("principal {id} revoked");
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn acting(store: &Store, id: &str) -> anyhow::Result<Principal> {
    let id = PrincipalId::new(id.to_owned())?;
    let state = store.current();
    match state.principals.get(&id) {
        Some(p) if !p.revoked => Ok(p.clone()),
        Some(_) => bail!("--as: principal {id} is revoked"),
        None => bail!("--as: no principal {id}"),
    }
}

fn print_grant(store: &Store, id: &GrantId) -> anyhow::Result<()> {
    let state = store.current();
    let g = state
        .grants
        .get(id)
        .context("the grant is not in the state")?;
    let mut v = serde_json::to_value(g)?;
    v["status"] = serde_json::to_value(g.status_at(chrono::Utc::now()))?;
    println!("{v}");
    Ok(())
}

pub(crate) fn grant(c: GrantCommand) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    rt.block_on(async {
        match c {
            GrantCommand::Request {
                principal,
                resource,
                level,
                fields,
                rows,
                purpose,
                legal_basis,
                expires_at,
                lake,
            } => {
                let (store, _, _) = open_store(&lake).await?;
                let who = acting(&store, &principal)?;
                let Some(level) = ProcessingLevel::parse(&level) else {
                    bail!("--level: one of raw, masked, aggregate, verify");
                };
                let mut scope: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for r in rows {
                    let Some((f, values)) = r.split_once('=') else {
                        bail!("--rows: field=value1|value2");
                    };
                    scope
                        .entry(f.to_owned())
                        .or_default()
                        .extend(values.split('|').map(str::to_owned));
                }
                let request = GrantRequest {
                    consumer: who.id.clone(),
                    resource,
                    level,
                    fields: (!fields.is_empty()).then_some(fields),
                    rows: scope,
                    purpose,
                    legal_basis,
                    expires_at,
                };
                let change =
                    ops::request_grant(&store, &Purposes::builtin(), &who, request).await?;
                print_grant(&store, change.grant())?;
            }
            GrantCommand::Approve {
                id,
                principal,
                lake,
            } => decide(&lake, &id, &principal, Decision::Approve, "").await?,
            GrantCommand::Deny {
                id,
                principal,
                reason,
                lake,
            } => decide(&lake, &id, &principal, Decision::Deny, &reason).await?,
            GrantCommand::Revoke {
                id,
                principal,
                reason,
                lake,
            } => decide(&lake, &id, &principal, Decision::Revoke, &reason).await?,
            GrantCommand::List { status, lake } => {
                let (store, _, _) = open_store(&lake).await?;
                let now = chrono::Utc::now();
                for g in store.current().grants.iter() {
                    let s = serde_json::to_value(g.status_at(now))?;
                    if status.as_ref().is_some_and(|want| s.as_str() != Some(want)) {
                        continue;
                    }
                    let mut v = serde_json::to_value(g)?;
                    v["status"] = s;
                    println!("{v}");
                }
            }
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn decide(
    lake: &LakeArgs,
    id: &str,
    principal: &str,
    d: Decision,
    reason: &str,
) -> anyhow::Result<()> {
    let (store, _, _) = open_store(lake).await?;
    let who = acting(&store, principal)?;
    let id = GrantId::new(id.to_owned())?;
    ops::decide_grant(&store, &who, &id, d, reason).await?;
    print_grant(&store, &id)
}

pub(crate) fn audit(c: AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::Verify {
        audit_dir: dir,
        brokers,
        lake,
    } = c;
    let anchors = match &brokers {
        Some(b) => Some(super::anchor::read_anchors(b)?),
        None => None,
    };
    let catalog = super::load_catalog(&lake.source)?;
    let location = super::open_lake(&lake.lake)?;
    let dir = audit_dir(&dir, &location);
    let rt = runtime()?;
    let lake_records = rt.block_on(async {
        let registry =
            TableRegistry::open_some(&location, &catalog, |s| s.name == "system.audit").await?;
        let session = LakeSession::open(
            &registry,
            Arc::new(AllowAll),
            &SessionOptions {
                max_rows: usize::MAX - 1,
                ..SessionOptions::default()
            },
        )
        .await?;
        let out = session
            .query("select * from system.audit order by replica, seq")
            .await?;
        from_batches(&out.batches).map_err(|e| anyhow::anyhow!(e))
    })?;
    let mut by_replica: BTreeMap<String, Vec<gdx_exchange::audit::AuditRecord>> = BTreeMap::new();
    for r in lake_records {
        by_replica.entry(r.replica.clone()).or_default().push(r);
    }
    let mut broken = 0;
    for (replica, records) in &by_replica {
        match check_chain(records.iter().map(|r| (0, Some(r)))) {
            Ok(head) => println!(
                "lake  {replica}: {} records, chain intact, head {}",
                head.seq,
                &head.hash[..16]
            ),
            Err(b) => {
                broken += 1;
                println!("lake  {replica}: BROKEN at {b}");
            }
        }
    }
    let mut logs: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect(),
        Err(_) => vec![],
    };
    logs.sort();
    let mut local: BTreeMap<String, Vec<gdx_exchange::audit::AuditRecord>> = BTreeMap::new();
    for path in &logs {
        let replica = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_owned();
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let parsed = parse_log(&text);
        let shipped = by_replica.get(&replica).map_or(&[][..], Vec::as_slice);
        let checked = check_log(&parsed);
        match checked
            .clone()
            .and_then(|head| compare_with_lake(&parsed, shipped).map(|()| head))
        {
            Ok(head) => println!(
                "local {replica}: {} records, chain intact, {} of them in the lake, matching",
                head.seq,
                shipped.len()
            ),
            Err(b) => {
                broken += 1;
                println!("local {replica} ({}): BROKEN at {b}", path.display());
            }
        }
        // A chain intact in itself is also held against its anchor.
        if checked.is_ok() {
            local.insert(
                replica.clone(),
                parsed.into_iter().filter_map(|(_, r)| r).collect(),
            );
        }
    }
    let no_records = Vec::new();
    for (replica, anchors) in anchors.iter().flatten() {
        // The local log must reach the newest anchor. The lake's copy may trail it by what
        // is not shipped yet, so without the local log here it must reach the newest anchor
        // published more than a minute ago.
        let settled = chrono::Utc::now() - chrono::Duration::seconds(60);
        let (chain, which, anchor) = match local.get(replica) {
            Some(records) => (records, "local", anchors.iter().max_by_key(|a| a.seq)),
            None => (
                by_replica.get(replica).unwrap_or(&no_records),
                "lake ",
                anchors
                    .iter()
                    .filter(|a| a.at < settled)
                    .max_by_key(|a| a.seq),
            ),
        };
        let Some(anchor) = anchor else { continue };
        match check_anchor(chain, anchor) {
            Ok(()) => println!(
                "{which} {replica}: reaches the head anchored on gdx.audit (record {})",
                anchor.seq
            ),
            Err(b) => {
                broken += 1;
                println!("{which} {replica}: BROKEN at {b}");
            }
        }
    }
    if by_replica.is_empty() && logs.is_empty() {
        println!(
            "no audit records in the lake and no local logs in {}",
            dir.display()
        );
    }
    Ok(if broken == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
