//! `gdx bench exchange`: the exchange under concurrent load, side by side with its HTTP floor.
//!
//! Data flow: a simulated district (as `gdx bench profiles` makes it: feeds → events →
//! fold → profiles) → two exchanges in this process over that lake (audit fsync'd, and not)
//! → principals and approved grants through the exchange's own operations → a load
//! generator on its own runtime (keep-alive connections over loopback, each sending the next
//! request when the last answer is read) → per endpoint: requests/s, p50, p99, and the ratio
//! to `/health` on the same server; every answer's status is checked (a 4xx/5xx counts as an
//! error and is reported).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use gdx_catalog::district;
use gdx_exchange::grants::GrantRequest;
use gdx_exchange::http::{Exchange, ExchangeConfig};
use gdx_exchange::model::{Department, PrincipalId, ProcessingLevel, Role};
use gdx_exchange::ops::{self, Decision};
use gdx_exchange::principals::Principal;
use gdx_exchange::purposes::Purposes;
use gdx_lake::sql::{LakeSession, SessionOptions};
use gdx_lake::{AllowAll, TableRegistry};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::cores;
use super::profiles::built_district;
use crate::cli::BenchExchangeArgs;

/// Adds a principal; returns it with its key.
pub(super) async fn add(
    store: &gdx_exchange::store::Store,
    id: &str,
    dept: &str,
    role: Role,
) -> anyhow::Result<(Principal, String)> {
    let key = store
        .add_principal(
            "bench",
            PrincipalId::new(id)?,
            Department::new(dept)?,
            role,
            "gdx bench",
        )
        .await?;
    let p = store
        .current()
        .principals
        .get(&PrincipalId::new(id)?)
        .cloned()
        .context("added")?;
    Ok((p, key))
}

/// A grant at `level` on `resource` for `consumer`, approved by whoever it needs.
pub(super) async fn grant(
    store: &gdx_exchange::store::Store,
    consumer: &Principal,
    resource: &str,
    level: ProcessingLevel,
    approvers: &[&Principal],
) -> anyhow::Result<()> {
    let request = GrantRequest {
        consumer: consumer.id.clone(),
        resource: resource.into(),
        level,
        fields: None,
        rows: Default::default(),
        purpose: "social_assistance".into(),
        legal_basis: Some("《社会救助暂行办法》第五十条".into()),
        expires_at: None,
    };
    let change = ops::request_grant(store, &Purposes::builtin(), consumer, request).await?;
    let id = change.grant().clone();
    for a in approvers {
        let state = store.current();
        let g = state.grants.get(&id).context("requested grant")?;
        if g.is_active(chrono::Utc::now()) {
            break;
        }
        let _ = ops::decide_grant(store, a, &id, Decision::Approve, "").await;
    }
    anyhow::ensure!(
        store
            .current()
            .grants
            .get(&id)
            .is_some_and(|g| g.is_active(chrono::Utc::now())),
        "grant on {resource} not active"
    );
    Ok(())
}

/// Two exchanges over `registry` with no per-principal limit: the audit fsync'd (first) and
/// not (second), so a run can show what durability costs.
pub(super) async fn fsync_pair(
    registry: &Arc<TableRegistry>,
    audit_dir: &std::path::Path,
    tune: impl Fn(&mut ExchangeConfig),
) -> anyhow::Result<Vec<Exchange>> {
    let mut servers = Vec::new();
    for (replica, fsync) in [("bench-fsync", true), ("bench-nofsync", false)] {
        let mut cfg = ExchangeConfig::new("127.0.0.1:0".parse()?, audit_dir.to_owned());
        cfg.replica = replica.into();
        cfg.audit_fsync = fsync;
        cfg.rate_per_second = 0;
        tune(&mut cfg);
        servers.push(Exchange::start(cfg, registry.clone(), None).await?);
    }
    Ok(servers)
}

/// One line of a load table: the endpoint's rate, latencies and ratio to the floor.
pub(super) fn row(label: &str, l: &Load, floor: f64) {
    println!(
        "{:<40} {:>10.0} {:>10.2} {:>10.2} {:>11.3}x {:>7}",
        label,
        l.per_sec,
        l.p50.as_secs_f64() * 1e3,
        l.p99.as_secs_f64() * 1e3,
        l.per_sec / floor,
        l.errors
    );
}

/// Stops the bench's exchanges.
pub(super) fn stop_all(rt: &tokio::runtime::Runtime, servers: Vec<Exchange>) {
    rt.block_on(async {
        for s in servers {
            s.shutdown(Duration::from_secs(10)).await;
        }
    });
}

/// One keep-alive connection: sends `request`, reads one answer (content-length bodies).
async fn once(conn: &mut BufReader<tokio::net::TcpStream>, request: &[u8]) -> anyhow::Result<u16> {
    Ok(answer(conn, request).await?.0)
}

/// [`once`], with the answer's body.
pub(super) async fn answer(
    conn: &mut BufReader<tokio::net::TcpStream>,
    request: &[u8],
) -> anyhow::Result<(u16, Vec<u8>)> {
    conn.get_mut().write_all(request).await?;
    let mut line = String::new();
    conn.read_line(&mut line).await?;
    let status: u16 = line.split(' ').nth(1).context("status line")?.parse()?;
    let mut len = 0usize;
    loop {
        line.clear();
        conn.read_line(&mut line).await?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse()?;
        }
    }
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body).await?;
    Ok((status, body))
}

/// Results of one endpoint under load.
pub(super) struct Load {
    pub(super) per_sec: f64,
    pub(super) p50: Duration,
    pub(super) p99: Duration,
    pub(super) errors: usize,
}

/// `connections` clients sending `request` as fast as answers come, for `secs`.
fn load(
    addr: std::net::SocketAddr,
    request: String,
    connections: usize,
    secs: u64,
) -> anyhow::Result<Load> {
    load_mix(addr, vec![request], connections, secs)
}

/// `connections` clients sending `requests` in turn (each client from its own place in the
/// list) as fast as answers come, for `secs`.
pub(super) fn load_mix(
    addr: std::net::SocketAddr,
    requests: Vec<String>,
    connections: usize,
    secs: u64,
) -> anyhow::Result<Load> {
    anyhow::ensure!(!requests.is_empty(), "no requests to send");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("gdx-bench-load")
        .build()?;
    rt.block_on(async move {
        let requests: Arc<Vec<Vec<u8>>> =
            Arc::new(requests.into_iter().map(String::into_bytes).collect());
        let end = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for c in 0..connections {
            let requests = requests.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn = BufReader::new(tokio::net::TcpStream::connect(addr).await?);
                let mut lat = Vec::new();
                let mut errors = 0usize;
                let mut next = c * requests.len() / connections.max(1);
                while Instant::now() < end {
                    let request = &requests[next % requests.len()];
                    next += 1;
                    let t = Instant::now();
                    let status = once(&mut conn, request).await?;
                    lat.push(t.elapsed());
                    if status >= 400 {
                        errors += 1;
                    }
                }
                anyhow::Ok((lat, errors))
            }));
        }
        let started = Instant::now();
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (lat, e) = t.await??;
            all.extend(lat);
            errors += e;
        }
        let took = started.elapsed().as_secs_f64();
        all.sort();
        let q = |p: f64| {
            all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Ok(Load {
            per_sec: all.len() as f64 / took,
            p50: q(0.5),
            p99: q(0.99),
            errors,
        })
    })
}

fn get(addr: std::net::SocketAddr, path: &str, key: Option<&str>) -> String {
    let mut r = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n");
    if let Some(k) = key {
        r.push_str(&format!(
            "authorization: Bearer {k}\r\nx-purpose: social_assistance\r\nx-case-id: BENCH-1\r\n"
        ));
    }
    r.push_str("\r\n");
    r
}

pub(crate) fn exchange(args: BenchExchangeArgs) -> anyhow::Result<ExitCode> {
    let (tmp, lake, rt) = built_district(args.people, args.enterprises)?;
    let catalog = district::catalog();

    let (servers, keys, id) = rt.block_on(async {
        let registry = TableRegistry::open(&lake, &catalog).await?;
        let op =
            LakeSession::open(&registry, Arc::new(AllowAll), &SessionOptions::default()).await?;
        let out = op
            .query("select resident_id from profiles.citizen order by resident_id limit 1 offset 7")
            .await?;
        let id = gdx_lake::read::text_rows(&out.batches)?
            .into_iter()
            .next()
            .context("a resident")?
            .remove(0);
        let resources = Arc::new(gdx_exchange::resources::Resources::from_catalog(&catalog));
        let store = gdx_exchange::store::Store::open(&lake, resources).await?;
        let (app, app_key) = add(&store, "bench-mca-app", "mca", Role::App).await?;
        let (_, ps_key) = add(&store, "bench-ps-system", "ps", Role::DepartmentSystem).await?;
        let (ps_appr, _) = add(&store, "bench-ps-approver", "ps", Role::Approver).await?;
        let (bdc_appr, _) = add(&store, "bench-bdc-approver", "bdc", Role::Approver).await?;
        let (cpo, _) = add(&store, "bench-cpo", "bdc", Role::Cpo).await?;
        let masked = ProcessingLevel::Masked;
        grant(
            &store,
            &app,
            "ps.household_registration",
            masked,
            &[&ps_appr, &cpo],
        )
        .await?;
        grant(&store, &app, "profiles.citizen", masked, &[&bdc_appr, &cpo]).await?;
        let servers = fsync_pair(&registry, &tmp.path().join("audit"), |_| {}).await?;
        anyhow::Ok((servers, (app_key, ps_key), id))
    })?;
    let (app_key, ps_key) = keys;
    let (with, without) = (servers[0].local_addr(), servers[1].local_addr());
    // One answer of each, checked before timing.
    let endpoints = [
        ("/health (HTTP floor)", "/health".to_owned(), None),
        (
            "profile lookup, masked",
            format!("/v1/profiles/citizens/{id}"),
            Some(app_key.as_str()),
        ),
        (
            "row lookup by key, own dept",
            format!("/v1/datasets/ps.household_registration/rows?resident_id={id}&limit=1"),
            Some(ps_key.as_str()),
        ),
        (
            "masked page of 10 rows",
            "/v1/datasets/ps.household_registration/rows?status=active&limit=10".to_owned(),
            Some(app_key.as_str()),
        ),
    ];
    for (label, path, key) in &endpoints {
        let check = rt.block_on(async {
            let mut conn = BufReader::new(tokio::net::TcpStream::connect(with).await?);
            once(&mut conn, get(with, path, *key).as_bytes()).await
        })?;
        if check != 200 {
            bail!("{label}: answered {check}");
        }
    }
    println!(
        "gdx bench exchange: {} residents, {} enterprises; {} cores; load generator in this process (1 thread), {} keep-alive connections, {} s per endpoint",
        args.people,
        args.enterprises,
        cores(),
        args.connections,
        args.secs
    );
    println!(
        "{:<40} {:>10} {:>10} {:>10} {:>12} {:>7}",
        "endpoint", "req/s", "p50 ms", "p99 ms", "vs /health", "errors"
    );
    let mut floor = 0.0;
    for (label, path, key) in &endpoints {
        let l = load(with, get(with, path, *key), args.connections, args.secs)?;
        if floor == 0.0 {
            floor = l.per_sec;
        }
        row(label, &l, floor);
    }
    println!();
    println!(
        "the audit's cost: the profile lookup with each record fsync'd (group commit) and without"
    );
    let path = format!("/v1/profiles/citizens/{id}");
    let on = load(
        with,
        get(with, &path, Some(&app_key)),
        args.connections,
        args.secs,
    )?;
    let off = load(
        without,
        get(without, &path, Some(&app_key)),
        args.connections,
        args.secs,
    )?;
    for (label, l) in [
        ("profile lookup, audit fsync'd", &on),
        ("profile lookup, audit not fsync'd", &off),
    ] {
        row(label, l, floor);
    }
    println!(
        "fsync on / off: {:.3}x the requests per second",
        on.per_sec / off.per_sec
    );
    stop_all(&rt, servers);
    Ok(ExitCode::SUCCESS)
}
