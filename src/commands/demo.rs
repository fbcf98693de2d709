//! `gdx demo`: the whole pipeline on embedded defaults, ending with a summary.
//!
//! Data flow: embedded broker (catalog topics) → ingest workers on their threads → the
//! synthetic district written to `<data-dir>/feeds` and published as the departments would
//! (bad records included), held back while ingest lags → wait until every topic's lag is 0
//! → stop (flush, commit) → meanwhile a background loop folds events into `current` and
//! rebuilds the profiles; it folds and builds once more at the end → row counts per table,
//! dead letters per class, and example queries.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use gdx_catalog::district;
use gdx_ingest::broker::{EmbeddedBroker, LagGate};
use gdx_ingest::publish::{Mode, publish_file};
use gdx_lake::background::BackgroundConfig;
use gdx_lake::profiles::Profile;
use gdx_lake::read::{count_by, row_count};
use gdx_simulate::{self as simulate, Config, Quiet};
use indicatif::{ProgressBar, ProgressStyle};

use super::ingest::{ingest_and_fold, print_stats, runtime, wait_for_shutdown};
use super::publish::producer;
use crate::cli::DemoArgs;

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let catalog = Arc::new(district::catalog());
    let broker = EmbeddedBroker::start(1, &catalog, args.worker.partitions)
        .context("starting the embedded broker")?;
    let brokers = broker.bootstrap();
    println!("broker: {brokers}");
    let lake_dir = args.data_dir.join("lake");
    let lake = super::open_lake(lake_dir.to_str().context("data dir is not UTF-8")?)?;
    println!("lake: {lake}");
    let rt = runtime()?;
    // Folding and profile builds follow ingest continuously.
    let (workers, background) = ingest_and_fold(
        &rt,
        &brokers,
        &lake,
        &catalog,
        &args.worker,
        BackgroundConfig {
            maintenance_interval: None,
            ..BackgroundConfig::default()
        },
    )?;

    let feeds = args.data_dir.join("feeds");
    println!(
        "simulating {} residents and {} enterprises (seed {}) into {}",
        args.people,
        args.enterprises,
        args.seed,
        feeds.display()
    );
    let sim = Config {
        seed: args.seed,
        people: args.people,
        enterprises: args.enterprises,
        ..Config::default()
    };
    let summary = simulate::write_district(&sim, &catalog, &feeds, &Quiet)?;

    // The embedded broker keeps only ~5 MB per partition: publish no faster than ingest lands.
    let gate = LagGate::new(&brokers, &args.worker.group, 2_000)?;
    let p = producer(&brokers)?;
    let bar = ProgressBar::new(summary.events() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} publishing [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} {msg}",
        )
        .expect("static template"),
    );
    let mut done = 0u64;
    for feed in &summary.feeds {
        let ds = catalog
            .get(&feed.topic)
            .context("feed of a catalog dataset")?;
        bar.set_message(feed.topic.clone());
        publish_file(
            &p,
            ds,
            &feeds.join(&feed.file),
            Mode::AsIs,
            Some(&gate),
            &|n| bar.set_position(done + n as u64),
        )?;
        done += feed.events as u64;
    }
    bar.finish_and_clear();
    println!(
        "published {} events to {} topics; waiting for ingest to catch up",
        summary.events(),
        summary.feeds.len()
    );
    let caught_up = || {
        catalog
            .datasets()
            .all(|d| gate.lag(&d.topic).is_ok_and(|l| l == 0))
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    while !caught_up() && !workers.any_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
    }
    if args.keep_running {
        println!(
            "gdx demo keeps running: publish more with any Kafka client to {brokers} (topics = dataset ids); Ctrl-C to stop"
        );
        wait_for_shutdown(&rt, || workers.any_finished());
    }
    let (stats, alarms) = workers.stop()?;
    print_stats(&stats, &alarms);
    // Ingest has committed everything: one last fold and profile build.
    let bg = background.stop();

    println!();
    println!("{:<40} {:>10} {:>10}", "dataset", "events", "current");
    let mut total = 0;
    for ds in catalog.datasets() {
        let n = rt.block_on(row_count(&lake.events(&ds.id)))?;
        let c = rt.block_on(row_count(&lake.current(&ds.id)))?;
        total += n;
        println!("{:<40} {:>10} {:>10}", ds.id.as_str(), n, c);
    }
    for p in Profile::ALL {
        let n = rt.block_on(row_count(&lake.profile(p.name())))?;
        println!(
            "{:<40} {:>10} {:>10}",
            format!("profiles.{}", p.name()),
            "",
            n
        );
    }
    println!(
        "background: {} fold rounds, {} dataset folds, {} profile builds, {} errors",
        bg.fold_rounds, bg.folds, bg.profile_builds, bg.errors
    );
    if let (Some(p50), Some(p99)) = (bg.lag_quantile(0.5), bg.lag_quantile(0.99)) {
        println!(
            "freshness: events commit → in current p50 {p50:.2} s, p99 {p99:.2} s ({} incremental folds)",
            bg.lags.len()
        );
    }
    let dead = rt.block_on(count_by(&lake.dead_letters(), "error_class"))?;
    let dead_total: u64 = dead.iter().map(|(_, n)| n).sum();
    println!("{:<40} {:>10}", "_system/dead_letters", dead_total);
    for (class, n) in &dead {
        println!("  {class:<38} {n:>10}");
    }
    println!(
        "accepted {total} + dead-lettered {dead_total} = {} of {} published, in {:.0} s",
        total + dead_total,
        summary.events(),
        started.elapsed().as_secs_f64()
    );
    let events = lake.events(
        &catalog
            .get("ps.household_registration")
            .context("district dataset")?
            .id,
    );
    println!();
    // Commands that work as printed: this binary's own path (after `cargo run` there is no
    // `gdx` on the PATH) and the lake as given.
    let exe = std::env::current_exe().context("this binary's path")?;
    let gdx = shell_word(&exe.display().to_string());
    let lake_arg = shell_word(&lake_dir.display().to_string());
    println!("try:");
    println!("  {gdx} catalog show ps.household_registration");
    println!(
        "  {gdx} sql --lake {lake_arg} \"select household_status, count(*) from profiles.citizen group by 1\""
    );
    println!(
        "  {gdx} sql --lake {lake_arg} \"select resident_id, age, tags from profiles.citizen where tags like '%elderly_living_alone%' limit 5\""
    );
    println!(
        "  {gdx} sql --lake {lake_arg} --as-of 2025-06-30 \"select status, count(*) from ps.household_registration group by 1\""
    );
    println!(
        "  {gdx} sql --lake {lake_arg} \"select size_class, count(*) from profiles.enterprise group by 1\""
    );
    println!(
        "  python3 -c \"import deltalake; print(deltalake.DeltaTable('{}').to_pandas().head())\"",
        events.path()
    );
    println!(
        "  duckdb -c \"select _op, count(*) from delta_scan('{}') group by 1\"",
        events.path()
    );
    let complete = total + dead_total == summary.events() as u64;
    if !args.no_exchange {
        rt.block_on(serve_exchange(&args, &lake, &catalog, &gdx, &lake_arg))?;
    }
    Ok(if complete && alarms.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

/// The demo's principals: (shell variable, id prefix, department, role, who they are).
const DEMO_PRINCIPALS: [(&str, &str, &str, &str, &str); 7] = [
    (
        "MCA_APP",
        "demo-mca-app",
        "mca",
        "app",
        "app of mca (民政局): a consumer",
    ),
    (
        "PS_APPROVER",
        "demo-ps-approver",
        "ps",
        "approver",
        "approver of ps (公安): owns the household registration",
    ),
    (
        "PS_SYSTEM",
        "demo-ps-system",
        "ps",
        "department_system",
        "ps's own system: reads ps data as stored",
    ),
    (
        "NRE_SYSTEM",
        "demo-nre-system",
        "nre",
        "department_system",
        "nre's registration centre (不动产登记中心): verifies certificates",
    ),
    (
        "MCA_SYSTEM",
        "demo-mca-system",
        "mca",
        "department_system",
        "mca's own system (民政局): runs the elderly allowance",
    ),
    (
        "CPO",
        "demo-cpo",
        "bdc",
        "cpo",
        "the chief privacy officer: second approval of sensitive grants",
    ),
    (
        "AUDITOR",
        "demo-auditor",
        "bdc",
        "auditor",
        "reads the audit trail",
    ),
];

/// Serves the exchange over the demo's lake with demo principals, prints calls that work
/// when pasted, and waits for Ctrl-C or SIGTERM.
async fn serve_exchange(
    args: &DemoArgs,
    lake: &gdx_lake::LakeLocation,
    catalog: &Arc<gdx_catalog::Catalog>,
    gdx: &str,
    lake_arg: &str,
) -> anyhow::Result<()> {
    use gdx_exchange::model::{Department, PrincipalId, Role};
    use gdx_exchange::secret::random_hex;

    let mut cfg = super::exchange::exchange_config(&args.exchange, lake, 1024)?;
    // The demo serves pgwire too (on a free loopback port unless --pg says where).
    if cfg.pg.is_none() {
        cfg.pg = Some(gdx_exchange::pg::PgConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            tls: None,
        });
    }
    let audit_log = cfg.audit_dir.join(format!("{}.log", cfg.replica));
    let registry = gdx_lake::TableRegistry::open(lake, catalog).await?;
    let resources = Arc::new(gdx_exchange::resources::Resources::from_catalog(catalog));
    let store = gdx_exchange::store::Store::open(lake, resources).await?;
    // Fresh ids per run: keys are shown once, and a demo may run again on the same lake.
    let run = random_hex(2);
    let mut keys = Vec::new();
    for (var, prefix, dept, role, about) in DEMO_PRINCIPALS {
        let id = PrincipalId::new(format!("{prefix}-{run}"))?;
        let role = Role::parse(role).context("demo role")?;
        let key = store
            .add_principal("demo", id.clone(), Department::new(dept)?, role, about)
            .await?;
        keys.push((var, key, about, id));
    }
    drop(store);
    let ex =
        gdx_exchange::http::Exchange::start(cfg, registry, super::exchange::metrics_renderer())
            .await?;
    let url = format!("http://{}", ex.local_addr());
    println!();
    println!("exchange: {url} (audit log {})", audit_log.display());
    println!("demo principals, one per kind of user (keys are shown once; paste these first):");
    println!("  export GDX={url}");
    for (var, key, about, _) in &keys {
        println!("  export {var}={key}    # {about}");
    }
    let data = "-H 'X-Purpose: social_assistance' -H 'X-Case-Id: DEMO-2026-001'";
    let rows = "\"$GDX/v1/datasets/ps.household_registration/rows?limit=3&fields=resident_id,name,street,phone\"";
    println!("then, in order:");
    println!(
        "  # 1. mca reads ps's household registration without a grant: 404, audited as denied"
    );
    println!("  curl -s -H \"Authorization: Bearer $MCA_APP\" {data} {rows}; echo");
    println!(
        "  # 2. mca asks for a masked grant (owner approval needed: level 4, conditional sharing)"
    );
    println!(
        "  GRANT=$(curl -s -X POST -H \"Authorization: Bearer $MCA_APP\" -H 'Content-Type: application/json' -d '{{\"resource\":\"ps.household_registration\",\"level\":\"masked\",\"purpose\":\"social_assistance\",\"legal_basis\":\"《社会救助暂行办法》第五十条\"}}' \"$GDX/v1/grants\" | sed -E 's/.*\"id\":\"(g-[0-9a-f]+)\".*/\\1/'); echo \"$GRANT\""
    );
    println!("  # 3. ps's approver approves it");
    println!(
        "  curl -s -X POST -H \"Authorization: Bearer $PS_APPROVER\" \"$GDX/v1/grants/$GRANT/approve\"; echo"
    );
    println!("  # 4. the same read: masked rows (张*, 420106********002X, 138****1234)");
    println!("  curl -s -H \"Authorization: Bearer $MCA_APP\" {data} {rows}; echo");
    println!("  # 5. the audit trail of those calls, allowed and denied, with the real reasons");
    println!("  curl -s -H \"Authorization: Bearer $AUDITOR\" \"$GDX/v1/audit?limit=6\"; echo");
    println!("  # 6. every chain intact (also after Ctrl-C)");
    println!("  {gdx} audit verify --lake {lake_arg}");
    println!(
        "  # 7. the registration centre's window verifies a certificate (房产证照真伪在线查验): one of its rows is the question; yes or no, never the record"
    );
    println!(
        "  Q=$(curl -s -H \"Authorization: Bearer $NRE_SYSTEM\" {data} \"$GDX/v1/datasets/nre.property_certificate/rows?limit=1&status=active&fields=certificate_no,owner_name,area_m2\" | sed -E 's/.*\"rows\":\\[(\\{{[^}}]*\\}})\\].*/\\1/')"
    );
    println!(
        "  curl -s -X POST -H \"Authorization: Bearer $NRE_SYSTEM\" {data} -H 'Content-Type: application/json' -d \"$Q\" \"$GDX/v1/verify/property-certificate\"; echo"
    );
    println!(
        "  # 8. civil affairs runs October's elderly allowance (高龄津贴, no application) as of the 15th: payments, recoveries of late-reported deaths, stops and notices, once"
    );
    println!(
        "  curl -s -X POST -H \"Authorization: Bearer $MCA_SYSTEM\" {data} -H 'Content-Type: application/json' -d '{{\"month\":\"2026-10\",\"as_of\":\"2026-10-15\"}}' \"$GDX/v1/scenarios/elderly-allowance/runs\"; echo"
    );
    println!(
        "  # 9. civil affairs' 应享未享 as of the window's last day: per benefit, who is entitled but not receiving it and who receives it without being entitled, by rule (the people: the view's rows)"
    );
    println!(
        "  curl -s -H \"Authorization: Bearer $MCA_SYSTEM\" {data} \"$GDX/v1/scenarios/entitlements?as_of=2026-10-31\"; echo"
    );
    if let (Some(pg), Some((_, _, _, system))) = (
        ex.pg_addr(),
        keys.iter().find(|(var, ..)| *var == "PS_SYSTEM"),
    ) {
        println!(
            "  # 10. SQL over the PostgreSQL wire protocol (needs psql), as ps's own system: same policy, audited"
        );
        println!(
            "  PGPASSWORD=$PS_SYSTEM psql \"host={} port={} dbname=gdx user={system} options='-c gdx.purpose=social_assistance -c gdx.case=DEMO-2026-001'\" -c \"select street, count(*) as residents from ps.household_registration group by street order by residents desc, street limit 3\"",
            pg.ip(),
            pg.port()
        );
    }
    println!("exchange ready; Ctrl-C or SIGTERM stops it");
    {
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
    super::exchange::until_signal(&ex).await;
    eprintln!("stopping the exchange: finishing in-flight calls, shipping the audit");
    ex.shutdown(Duration::from_secs(30)).await;
    Ok(())
}

/// `s` as one shell word: as it is when it needs no quoting, else in single quotes.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@,".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
