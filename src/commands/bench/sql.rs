//! `gdx bench sql`: the same queries through each SQL door, side by side in one run.
//!
//! Data flow: a simulated district (as `gdx bench profiles` makes it) → one exchange in this
//! process, HTTP and pgwire on loopback → ps's own system as the caller (the same policy on
//! every door) → each query run, alternating, directly in a `LakeSession` opened with that
//! caller's policy (what a door does under its protocol), through `POST /v1/sql` over a
//! keep-alive connection, and through pgwire (tokio-postgres, simple protocol) → the three
//! answers checked equal as text rows → the median of each and each door's overhead.
//! Then point lookups by key: a prepared statement over pgwire from several connections,
//! beside a PostgreSQL server from the distribution's packages holding the same rows in a
//! table with a primary key (pgbench -S style), answers checked equal.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use gdx_catalog::district;
use gdx_exchange::access::CallerPolicy;
use gdx_exchange::http::{Exchange, ExchangeConfig};
use gdx_exchange::model::Role;
use gdx_exchange::pg::PgConfig;
use gdx_lake::sql::{LakeSession, SessionOptions};
use gdx_lake::{AllowAll, TableRegistry};
use tokio::io::BufReader;

use super::cores;
use super::exchange::{add, answer};
use super::profiles::built_district;
use super::sql_postgres::LocalPostgres;
use crate::cli::BenchSqlArgs;

const PURPOSE: &str = "social_assistance";

/// The scans: each reads every row of a table of the size of the district.
const QUERIES: [(&str, &str); 3] = [
    (
        "group by over the registration",
        "select street, count(*) as residents from ps.household_registration group by street",
    ),
    (
        "distinct count by status",
        "select status, count(*) as n, count(distinct household_id) as households \
         from ps.household_registration group by status",
    ),
    (
        "count over the event history",
        "select count(*) as events, count(distinct resident_id) as residents \
         from ps.household_registration_events",
    ),
];

/// The point lookup: one resident's row by key.
const LOOKUP: &str = "select resident_id, name, street, status from ps.household_registration where resident_id = $1";

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

fn sorted(mut rows: Vec<String>) -> Vec<String> {
    rows.sort();
    rows
}

/// A `POST /v1/sql` request.
fn sql_request(addr: SocketAddr, key: &str, sql: &str) -> Vec<u8> {
    let body = serde_json::json!({ "sql": sql }).to_string();
    format!(
        "POST /v1/sql HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\nx-purpose: {PURPOSE}\r\nx-case-id: BENCH-SQL\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A `POST /v1/sql` JSON answer as `|`-joined text rows.
fn http_rows(body: &[u8]) -> anyhow::Result<Vec<String>> {
    let v: serde_json::Value = serde_json::from_slice(body)?;
    let names: Vec<String> = v["columns"]
        .as_array()
        .context("columns")?
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    Ok(v["rows"]
        .as_array()
        .context("rows")?
        .iter()
        .map(|row| {
            names
                .iter()
                .map(|n| match &row[n] {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect())
}

/// A simple-protocol answer as `|`-joined text rows.
async fn pg_rows(client: &tokio_postgres::Client, sql: &str) -> anyhow::Result<Vec<String>> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or_default().to_owned())
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect())
}

/// A pgwire or PostgreSQL connection; its driver runs on the current runtime.
pub(super) async fn pg_connect(
    addr: SocketAddr,
    user: &str,
    password: Option<&str>,
    options: Option<&str>,
    dbname: &str,
) -> anyhow::Result<tokio_postgres::Client> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host(addr.ip().to_string())
        .port(addr.port())
        .user(user)
        .dbname(dbname);
    if let Some(p) = password {
        cfg.password(p);
    }
    if let Some(o) = options {
        cfg.options(o);
    }
    let (client, connection) = cfg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// Lookups by key from `connections` clients for `secs`: (lookups/s, p50, p99).
async fn lookups(
    clients: Vec<tokio_postgres::Client>,
    sql: &str,
    ids: Arc<Vec<String>>,
    secs: u64,
) -> anyhow::Result<(f64, Duration, Duration)> {
    let end = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (n, client) in clients.into_iter().enumerate() {
        let ids = ids.clone();
        let sql = sql.to_owned();
        tasks.push(tokio::spawn(async move {
            let stmt = client.prepare(&sql).await?;
            let mut lat = Vec::new();
            let mut i = n * 97;
            while Instant::now() < end {
                let id = &ids[i % ids.len()];
                i += 1;
                let t = Instant::now();
                let rows = client.query(&stmt, &[id]).await?;
                lat.push(t.elapsed());
                anyhow::ensure!(rows.len() == 1, "one row per key");
            }
            anyhow::Ok(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    let took = started.elapsed().as_secs_f64();
    all.sort();
    let q = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Ok((all.len() as f64 / took, q(0.5), q(0.99)))
}

pub(crate) fn sql(args: BenchSqlArgs) -> anyhow::Result<ExitCode> {
    let (tmp, lake, rt) = built_district(args.people, args.enterprises)?;
    let catalog = district::catalog();
    rt.block_on(async {
        let registry = TableRegistry::open(&lake, &catalog).await?;
        let resources = Arc::new(gdx_exchange::resources::Resources::from_catalog(&catalog));
        let store = gdx_exchange::store::Store::open(&lake, resources).await?;
        let (system, key) = add(&store, "bench-ps-sql", "ps", Role::DepartmentSystem).await?;
        drop(store);
        let mut cfg = ExchangeConfig::new("127.0.0.1:0".parse()?, tmp.path().join("audit"));
        cfg.replica = "bench-sql".into();
        cfg.rate_per_second = 0;
        cfg.pg = Some(PgConfig {
            listen: "127.0.0.1:0".parse()?,
            tls: None,
        });
        let ex = Exchange::start(cfg, registry.clone(), None).await?;
        let (http, pg) = (ex.local_addr(), ex.pg_addr().context("pgwire")?);
        let limits = ex.state().limits.clone();
        let options = SessionOptions {
            as_of: None,
            memory_limit: limits.memory_limit,
            max_rows: limits.sql_max_rows,
            timeout: Some(limits.timeout),
        };
        let operator =
            LakeSession::open(&registry, Arc::new(AllowAll), &SessionOptions::default()).await?;
        let counted = operator
            .query(
                "select (select count(*) from ps.household_registration) as current, \
                 (select count(*) from ps.household_registration_events) as events",
            )
            .await?;
        let sizes = gdx_lake::read::text_rows(&counted.batches)?
            .into_iter()
            .next()
            .context("sizes")?;
        let pg_options = format!("-c gdx.purpose={PURPOSE} -c gdx.case=BENCH-SQL");
        let client = pg_connect(pg, system.id.as_str(), Some(&key), Some(&pg_options), "gdx").await?;
        let mut conn = BufReader::new(tokio::net::TcpStream::connect(http).await?);
        println!(
            "gdx bench sql: {} residents ({} current rows, {} events in ps.household_registration); {} cores; one process: the exchange, its clients and the direct sessions share one runtime; {} runs per door, alternating",
            args.people,
            sizes[0],
            sizes[1],
            cores(),
            args.runs
        );
        println!(
            "{:<34} {:>12} {:>12} {:>12} {:>10} {:>10}",
            "query", "direct ms", "HTTP ms", "pgwire ms", "HTTP/dir", "pg/dir"
        );
        for (label, sql) in QUERIES {
            let (mut direct, mut over_http, mut over_pg) = (vec![], vec![], vec![]);
            let mut answers: Option<Vec<String>> = None;
            for _ in 0..args.runs {
                let t = Instant::now();
                let policy = CallerPolicy::of(&ex.state().store.current(), &system, chrono::Utc::now());
                let session = LakeSession::open(&registry, policy.into_arc(), &options).await?;
                let out = session.query(sql).await?;
                direct.push(t.elapsed());
                let d: Vec<String> = gdx_lake::read::text_rows(&out.batches)?
                    .into_iter()
                    .map(|r| r.join("|"))
                    .collect();

                let t = Instant::now();
                let (status, body) = answer(&mut conn, &sql_request(http, &key, sql)).await?;
                over_http.push(t.elapsed());
                anyhow::ensure!(status == 200, "{label}: HTTP {status}: {}", String::from_utf8_lossy(&body));
                let h = http_rows(&body)?;

                let t = Instant::now();
                let p = pg_rows(&client, sql).await?;
                over_pg.push(t.elapsed());

                let (d, h, p) = (sorted(d), sorted(h), sorted(p));
                anyhow::ensure!(d == h && d == p, "{label}: the doors answered differently");
                anyhow::ensure!(answers.as_ref().is_none_or(|a| *a == d), "{label}: answers changed between runs");
                answers = Some(d);
            }
            let (d, h, p) = (median(direct), median(over_http), median(over_pg));
            println!(
                "{:<34} {:>12.1} {:>12.1} {:>12.1} {:>9.3}x {:>9.3}x",
                label,
                d.as_secs_f64() * 1e3,
                h.as_secs_f64() * 1e3,
                p.as_secs_f64() * 1e3,
                h.as_secs_f64() / d.as_secs_f64(),
                p.as_secs_f64() / d.as_secs_f64()
            );
        }

        // Point lookups by key.
        let sample = operator
            .query(&format!(
                "select resident_id, name, street, status from ps.household_registration order by resident_id limit {}",
                args.keys
            ))
            .await?;
        let rows = gdx_lake::read::text_rows(&sample.batches)?;
        let ids: Arc<Vec<String>> = Arc::new(rows.iter().map(|r| r[0].clone()).collect());
        println!();
        println!(
            "point lookups by key (prepared, {} connections, {} s, {} distinct keys): {LOOKUP}",
            args.connections,
            args.secs,
            ids.len()
        );
        let mut clients = Vec::new();
        for _ in 0..args.connections {
            clients.push(pg_connect(pg, system.id.as_str(), Some(&key), Some(&pg_options), "gdx").await?);
        }
        let first = clients[0].query_one(LOOKUP, &[&ids[0]]).await?;
        let ours: Vec<Option<String>> = (0..4).map(|i| first.get(i)).collect();
        let (per_sec, p50, p99) = lookups(clients, LOOKUP, ids.clone(), args.secs).await?;
        println!(
            "{:<34} {:>10.0}/s  p50 {:>8.2} ms  p99 {:>8.2} ms",
            "gdx pgwire (the lake)",
            per_sec,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        if args.no_postgres {
            println!("PostgreSQL comparison skipped (--no-postgres)");
        } else {
            match LocalPostgres::start(&rows).await {
                Err(e) => println!("PostgreSQL comparison skipped: {e:#}"),
                Ok(server) => {
                    let sql = "select resident_id, name, street, status from hh where resident_id = $1";
                    let mut clients = Vec::new();
                    for _ in 0..args.connections {
                        clients.push(server.connect().await?);
                    }
                    let theirs = clients[0].query_one(sql, &[&ids[0]]).await?;
                    let theirs: Vec<Option<String>> = (0..4).map(|i| theirs.get(i)).collect();
                    anyhow::ensure!(ours == theirs, "PostgreSQL answered another row");
                    let (pg_per_sec, p50, p99) = lookups(clients, sql, ids, args.secs).await?;
                    println!(
                        "{:<34} {:>10.0}/s  p50 {:>8.2} ms  p99 {:>8.2} ms",
                        format!("PostgreSQL {} (primary key)", server.version),
                        pg_per_sec,
                        p50.as_secs_f64() * 1e3,
                        p99.as_secs_f64() * 1e3
                    );
                    println!("gdx / PostgreSQL: {:.4}x the lookups per second", per_sec / pg_per_sec);
                    server.stop();
                }
            }
        }
        ex.shutdown(Duration::from_secs(10)).await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
