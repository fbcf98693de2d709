//! `gdx bench verify`: property-certificate verifications under concurrent load, side by
//! side with the HTTP floor of the same server.
//!
//! Data flow: a simulated district (as `gdx bench profiles` makes it) → up to `--certificates`
//! active certificates read from the lake as the operator → for each, a request that matches
//! (every attribute) and a near miss (the owner's name one character longer), interleaved →
//! two exchanges in this process over the lake (audit fsync'd, and not), a civil-affairs app
//! with a verify grant approved as the rules require, and no per-subject limit (the bench
//! asks each certificate many times a minute) → every request answered once and checked
//! (`match` for matches, `no_match` for near misses) → the load generator (keep-alive
//! connections on its own one-thread runtime, each cycling through the requests from its own
//! place) → `/health`, the mix with the audit fsync'd, and without: requests/s, p50, p99, the
//! ratio to `/health`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use gdx_catalog::district;
use gdx_exchange::model::{ProcessingLevel, Role};
use gdx_lake::sql::{LakeSession, SessionOptions};
use gdx_lake::{AllowAll, TableRegistry};
use tokio::io::BufReader;

use super::cores;
use super::exchange::{add, answer, fsync_pair, grant, load_mix, row, stop_all};
use super::profiles::built_district;
use crate::cli::BenchVerifyArgs;

fn post(addr: std::net::SocketAddr, key: &str, body: &serde_json::Value) -> String {
    let body = body.to_string();
    format!(
        "POST /v1/verify/property-certificate HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\n\
         x-purpose: social_assistance\r\nx-case-id: BENCH-V\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
}

pub(crate) fn verify(args: BenchVerifyArgs) -> anyhow::Result<ExitCode> {
    let (tmp, lake, rt) = built_district(args.people, args.enterprises)?;
    let catalog = district::catalog();
    let (servers, key, certs) = rt.block_on(async {
        let registry = TableRegistry::open(&lake, &catalog).await?;
        let op =
            LakeSession::open(&registry, Arc::new(AllowAll), &SessionOptions::default()).await?;
        let out = op
            .query(&format!(
                "select certificate_no, owner_id, owner_name, address, cast(area_m2 as varchar) \
                 from nre.property_certificate where status = 'active' \
                 order by certificate_no limit {}",
                args.certificates
            ))
            .await?;
        let certs = gdx_lake::read::text_rows(&out.batches)?;
        anyhow::ensure!(!certs.is_empty(), "the district has no active certificate");
        let resources = Arc::new(gdx_exchange::resources::Resources::from_catalog(&catalog));
        let store = gdx_exchange::store::Store::open(&lake, resources).await?;
        let (app, key) = add(&store, "bench-mca-window", "mca", Role::App).await?;
        let (nre_appr, _) = add(&store, "bench-nre-approver", "nre", Role::Approver).await?;
        let (cpo, _) = add(&store, "bench-cpo", "bdc", Role::Cpo).await?;
        grant(
            &store,
            &app,
            "nre.property_certificate",
            ProcessingLevel::Verify,
            &[&nre_appr, &cpo],
        )
        .await?;
        let servers = fsync_pair(&registry, &tmp.path().join("audit"), |cfg| {
            cfg.verify_subject_per_minute = 0;
        })
        .await?;
        anyhow::Ok((servers, key, certs))
    })?;
    let (with, without) = (servers[0].local_addr(), servers[1].local_addr());
    let mix = |addr| -> Vec<(String, &'static str)> {
        let mut requests = Vec::new();
        for c in &certs {
            let mut body = serde_json::json!({"certificate_no": c[0], "owner_id": c[1],
                "owner_name": c[2], "address": c[3], "area_m2": format!("{:.2}", c[4].parse::<f64>().unwrap_or(0.0))});
            requests.push((post(addr, &key, &body), "match"));
            body["owner_name"] = serde_json::json!(format!("{}某", c[2]));
            requests.push((post(addr, &key, &body), "no_match"));
        }
        requests
    };
    // Every request answered once, and as expected, before any is timed.
    let checked = rt.block_on(async {
        let mut conn = BufReader::new(tokio::net::TcpStream::connect(with).await?);
        for (request, expected) in mix(with) {
            let (status, body) = answer(&mut conn, request.as_bytes()).await?;
            let got: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if status != 200 || got["result"] != expected {
                bail!("a verification answered {status} {got}, expected {expected}");
            }
        }
        anyhow::Ok(certs.len() * 2)
    })?;
    let health = format!("GET /health HTTP/1.1\r\nhost: {with}\r\n\r\n");
    println!(
        "gdx bench verify: {} residents, {} enterprises; {} certificates × (match, near miss) = {checked} requests, each checked once; {} cores; load generator in this process (1 thread), {} keep-alive connections, {} s per run",
        args.people,
        args.enterprises,
        certs.len(),
        cores(),
        args.connections,
        args.secs
    );
    println!(
        "{:<40} {:>10} {:>10} {:>10} {:>12} {:>7}",
        "endpoint", "req/s", "p50 ms", "p99 ms", "vs /health", "errors"
    );
    let floor = load_mix(with, vec![health], args.connections, args.secs)?;
    row("/health (HTTP floor)", &floor, floor.per_sec);
    let strip = |m: Vec<(String, &str)>| m.into_iter().map(|(r, _)| r).collect::<Vec<_>>();
    let on = load_mix(with, strip(mix(with)), args.connections, args.secs)?;
    row("verify, audit fsync'd", &on, floor.per_sec);
    let off = load_mix(without, strip(mix(without)), args.connections, args.secs)?;
    row("verify, audit not fsync'd", &off, floor.per_sec);
    println!(
        "the audit's cost: fsync on / off {:.3}x the verifications per second",
        on.per_sec / off.per_sec
    );
    stop_all(&rt, servers);
    Ok(ExitCode::SUCCESS)
}
