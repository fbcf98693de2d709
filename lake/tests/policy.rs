//! The policy in the lake, tried as readers would try it: one sqllogictest file per reader
//! (`tests/slt/<reader>.slt`, its policy in `<reader>.toml`; `operator` reads with the
//! explicit allow-all), run over a small district written into a real Delta lake; then what
//! the files cannot say: time travel under a policy, sessions opened per request, and a
//! property test that no raw value of a masked column ever comes out.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use common::district::{self, MOVER, RESIDENTS, ZHONGHUA, ZIYANG};
use gdx_catalog::Pseudonymizer;
use gdx_lake::policy::file::FilePolicy;
use gdx_lake::sql::{AsOf, LakeSession, QueryOutput, SessionOptions};
use gdx_lake::{AllowAll, Error, LakeLocation, TablePolicy, TableRegistry};
use sqllogictest::{DBOutput, DefaultColumnType};

const KEY: &[u8] = b"policy-test-pseudonym-key";

fn slt_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt")
}

/// Every value of every row as text (NULL for nulls).
fn text(out: &QueryOutput) -> Vec<Vec<String>> {
    gdx_lake::read::text_rows(&out.batches).unwrap()
}

/// The policy of reader `name`: its TOML file, or the operator's allow-all.
fn policy(name: &str, registry: &TableRegistry) -> Arc<dyn TablePolicy> {
    let path = slt_dir().join(format!("{name}.toml"));
    if !path.exists() {
        return Arc::new(AllowAll);
    }
    let pseudonyms = Some(Arc::new(Pseudonymizer::new(KEY).unwrap()));
    let text = std::fs::read_to_string(&path).unwrap();
    let p = FilePolicy::parse(&path.display().to_string(), &text, pseudonyms).unwrap();
    let tables: Vec<_> = registry
        .snapshot()
        .tables()
        .iter()
        .filter_map(|t| t.opened.as_ref().map(|o| o.info.as_ref().clone()))
        .collect();
    p.check(&tables).unwrap();
    Arc::new(p)
}

struct Reader(LakeSession);

#[async_trait]
impl sqllogictest::AsyncDB for Reader {
    type Error = Error;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, Error> {
        let out = self.0.query(sql).await?;
        let types = vec![DefaultColumnType::Any; out.schema.fields().len()];
        Ok(DBOutput::Rows {
            types,
            rows: text(&out),
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "gdx"
    }
}

async fn session(lake: &LakeLocation, reader: &str, as_of: Option<&str>) -> LakeSession {
    let catalog = gdx_catalog::district::catalog();
    let registry = TableRegistry::open(lake, &catalog).await.unwrap();
    let opts = SessionOptions {
        as_of: as_of.map(|a| AsOf::parse(a).unwrap()),
        ..SessionOptions::default()
    };
    LakeSession::open(&registry, policy(reader, &registry), &opts)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reader_sees_what_its_policy_allows() {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    let v1 = district::write(&lake).await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(slt_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    for file in files {
        let reader = file.file_stem().unwrap().to_str().unwrap().to_owned();
        let s = session(&lake, &reader, None).await;
        let mut db = Some(Reader(s));
        let mut runner = sqllogictest::Runner::new(move || {
            let db = db.take();
            async move { db.ok_or_else(|| Error::ReadOnly("one connection per reader".into())) }
        });
        runner.add_label(&format!("v{v1}"));
        runner.set_var("V1".into(), v1.to_string());
        if let Err(e) = runner.run_file_async(&file).await {
            panic!("{}: {e}", file.display());
        }
    }
}

async fn written() -> (tempfile::TempDir, LakeLocation) {
    let dir = tempfile::tempdir().unwrap();
    let lake = LakeLocation::parse(dir.path().to_str().unwrap()).unwrap();
    district::write(&lake).await;
    (dir, lake)
}

fn error(r: Result<QueryOutput, Error>) -> String {
    match r {
        Ok(out) => panic!("expected an error, got {} rows", out.rows()),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_as_of_a_date_is_read_through_the_policy_and_no_raw_events_stay_reachable() {
    let (_dir, lake) = written().await;
    // The operator as of March: the mover still on 中华路街道, no raw `_events_all` table.
    let operator = session(&lake, "operator", Some("2026-03-01")).await;
    let out = operator
        .query("select count(*) from ps.household_registration where street = '中华路街道'")
        .await
        .unwrap();
    assert_eq!(text(&out), [["7"]]);
    assert!(
        operator.tables().iter().all(|t| !t.contains("_events_all")),
        "{:?}",
        operator.tables()
    );
    let e = error(
        operator
            .query("select * from ps._household_registration_events_all")
            .await,
    );
    assert!(e.contains("unknown table"), "{e}");

    // The street office as of March: seven rows, all on its street, names as stored,
    // identifiers pseudonymous; the events it may not see are not there either.
    let street = session(&lake, "street", Some("2026-03-01")).await;
    let out = street
        .query("select count(*), count(distinct street), min(resident_id) from ps.household_registration")
        .await
        .unwrap();
    let rows = text(&out);
    assert_eq!(rows[0][..2], ["7", "1"]);
    assert!(rows[0][2].starts_with("p_"), "{rows:?}");
    let e = error(
        street
            .query("select * from ps.household_registration_events")
            .await,
    );
    assert!(e.contains("unknown table"), "{e}");
    // As-of profiles carry the same row filter.
    let out = street
        .query("select count(*) from profiles.citizen")
        .await
        .unwrap();
    assert_eq!(text(&out), [["7"]]);

    // The masked reader as of March sees masked values in the rebuilt state too.
    let masked = session(&lake, "masked", Some("2026-03-01")).await;
    let out = masked
        .query(&format!(
            "select count(*) from ps.household_registration where resident_id = '{MOVER}'"
        ))
        .await
        .unwrap();
    assert_eq!(text(&out), [["0"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_tables_fail_exactly_like_missing_ones() {
    let (_dir, lake) = written().await;
    let masked = session(&lake, "masked", None).await;
    let operator = session(&lake, "operator", None).await;
    // mca.cremation exists (the operator reads it); mca.cremations does not.
    operator.query("select * from mca.cremation").await.unwrap();
    for (hidden, missing) in [
        ("mca.cremation", "mca.cremations"),
        (
            "ps.household_registration_events",
            "ps.household_registration_evnts",
        ),
        ("system.dead_letters", "system.dead_letter"),
        ("catalog.fields", "catalog.field"),
    ] {
        let a = error(masked.query(&format!("select * from {hidden}")).await);
        let b = error(masked.query(&format!("select * from {missing}")).await);
        assert_eq!(a.replace(hidden, "T"), b.replace(missing, "T"), "{a} / {b}");
        let a = error(
            masked
                .query(&format!("select * from table_at('{hidden}', 0)"))
                .await,
        );
        let b = error(
            masked
                .query(&format!("select * from table_at('{missing}', 0)"))
                .await,
        );
        assert_eq!(a.replace(hidden, "T"), b.replace(missing, "T"), "{a} / {b}");
    }
    // No hint names a hidden table.
    let e = error(masked.query("select * from hrss.pensions").await);
    assert!(e.contains("hrss.pension"), "{e}");
    let e = error(masked.query("select * from mca.cremations").await);
    assert!(!e.contains("mca.cremation\""), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_the_policy_directly_above_each_scan_and_none_of_its_literals() {
    let (_dir, lake) = written().await;
    for reader in ["operator", "masked", "street"] {
        let s = session(&lake, reader, None).await;
        let out = s
            .query(
                "explain select h.name, p.bank_card from ps.household_registration h \
                 join hrss.pension p on p.resident_id = h.resident_id",
            )
            .await
            .unwrap();
        let plan: String = text(&out)
            .into_iter()
            .filter(|r| r[0] == "physical_plan")
            .map(|r| r[1].clone())
            .collect();
        let lines: Vec<&str> = plan.lines().collect();
        // A Delta table's scan is delta-rs's DeltaScanExec over DataFusion's Parquet source.
        let scans: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].contains("DeltaScanExec"))
            .collect();
        assert_eq!(scans.len(), 2, "{reader}:\n{plan}");
        for i in scans {
            // The operator reads as stored: the scan itself is the answer. Between the policy
            // and the scan only a repartition may stand (it moves batches, computes nothing:
            // DataFusion adds one above the single stream a scan of a table with deletion
            // vectors yields).
            let mut j = i - 1;
            while j > 0 && lines[j].trim_start().starts_with("RepartitionExec") {
                j -= 1;
            }
            let above = lines[j].trim_start().starts_with("PolicyExec");
            assert_eq!(
                above,
                reader != "operator",
                "{reader}: the policy is not directly above the scan:\n{plan}"
            );
        }
        assert!(
            !plan.contains(ZHONGHUA),
            "{reader}: a policy literal in\n{plan}"
        );
        if reader == "masked" {
            assert!(plan.contains("bank_card:mask"), "{plan}");
        }
        if reader == "street" {
            assert!(plan.contains("rows=filtered"), "{plan}");
            let e = error(
                s.query("explain analyze select count(*) from ps.household_registration")
                    .await,
            );
            assert!(e.contains("EXPLAIN ANALYZE"), "{e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_governed_reader_is_never_told_a_value_in_an_error() {
    let (_dir, lake) = written().await;
    let s = session(&lake, "street", None).await;
    // The cast fails on a stored name; the error names the kind of failure only.
    let e = error(
        s.query("select cast(name as int) from ps.household_registration")
            .await,
    );
    assert!(e.contains("could not be converted"), "{e}");
    for (_, name, ..) in RESIDENTS {
        assert!(!e.contains(name), "{e}");
    }
    // The operator is told the whole story.
    let op = session(&lake, "operator", None).await;
    let e = error(
        op.query("select cast(name as int) from ps.household_registration")
            .await,
    );
    assert!(
        RESIDENTS.iter().any(|r| e.contains(r.1)) || e.contains("Cast"),
        "{e}"
    );
    let _ = ZIYANG;
}

/// A policy made in code: one rule per protected column name, for the register and the
/// pensions alike, and perhaps a street filter on the register.
#[derive(Debug)]
struct Generated {
    rules: Vec<(&'static str, gdx_lake::policy::ColumnRule)>,
    street: Option<&'static str>,
    pseudonyms: Arc<Pseudonymizer>,
}

impl TablePolicy for Generated {
    fn access(&self, table: &gdx_lake::policy::TableInfo) -> gdx_lake::policy::Access {
        use gdx_lake::policy::{Access, ColumnRule, ReadMode, TableAccess};
        if !["ps.household_registration", "hrss.pension"].contains(&table.name.as_str()) {
            return Access::Hidden;
        }
        let columns = table
            .columns
            .iter()
            .map(|c| {
                let rule = self
                    .rules
                    .iter()
                    .find(|(n, _)| *n == c.name || (c.name == "_key" && *n == "resident_id"))
                    .map(|(_, r)| *r)
                    .unwrap_or(ColumnRule::Raw);
                (c.name.clone(), rule)
            })
            .collect();
        let rows = match (self.street, table.name.as_str()) {
            (Some(s), "ps.household_registration") => {
                Some(datafusion::prelude::col("street").eq(datafusion::prelude::lit(s)))
            }
            _ => None,
        };
        Access::Read(TableAccess {
            columns,
            rows,
            mode: ReadMode::Rows,
            tap_subject: false,
            push_rows: false,
        })
    }

    fn pseudonymizer(&self) -> Option<Arc<Pseudonymizer>> {
        Some(self.pseudonyms.clone())
    }

    fn label(&self) -> String {
        "generated".into()
    }
}

#[test]
fn no_raw_value_of_a_protected_column_ever_comes_out() {
    use gdx_lake::policy::ColumnRule::{Mask, Pseudonym, Remove};
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_dir, lake) = rt.block_on(written());
    let catalog = gdx_catalog::district::catalog();
    let registry = rt.block_on(TableRegistry::open(&lake, &catalog)).unwrap();
    // Every stored value of a protected column.
    let mut secrets: Vec<String> = Vec::new();
    for (id, name, _, _, phone) in RESIDENTS {
        secrets.extend([id.to_string(), name.to_string(), phone.to_string()]);
        // A birth date on 1 January is its own year mask: nothing more is revealed.
        let born = format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14]);
        if !born.ends_with("-01-01") {
            secrets.push(born);
        }
        secrets.push(format!("解放路{}号", &id[14..17]));
    }
    secrets.extend((0..5).map(|i| format!("62220202001122{i:05}")));

    let text_rule = prop_oneof![Just(Mask), Just(Pseudonym), Just(Remove)];
    let date_rule = prop_oneof![Just(Mask), Just(Remove)];
    let policy = (
        text_rule.clone(),
        text_rule.clone(),
        text_rule.clone(),
        text_rule.clone(),
        text_rule,
        date_rule,
        prop_oneof![Just(None), Just(Some(ZHONGHUA)), Just(Some(ZIYANG))],
    );
    let columns = [
        "resident_id",
        "name",
        "address",
        "phone",
        "bank_card",
        "birth_date",
        "street",
    ];
    let column = proptest::sample::select(columns.to_vec());
    let shape = prop_oneof![
        Just("{c}"),
        Just("upper({c})"),
        Just("concat({c}, '')"),
        Just("min({c})"),
        Just("max({c})"),
        Just("string_agg({c}, ',')"),
        Just("array_agg({c})"),
        Just("first_value({c})"),
        Just("cast({c} as varchar)"),
    ];
    let from = prop_oneof![
        Just("ps.household_registration t"),
        Just("hrss.pension t"),
        Just("ps.household_registration t join hrss.pension u on u.resident_id = t.resident_id"),
        Just(
            "(select * from ps.household_registration union all select * from ps.household_registration) t"
        ),
    ];
    let secret = proptest::sample::select(secrets.clone());
    let filter = prop_oneof![
        Just(String::new()),
        secret
            .clone()
            .prop_map(|s| format!("where t.resident_id = '{s}' or t.name = '{s}'")),
        secret.prop_map(|s| format!("where t.name like '{}%'", s.chars().next().unwrap())),
        Just("where t.resident_id in (select resident_id from hrss.pension)".to_owned()),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(policy, column, shape, from, filter),
            |((id, name, address, phone, card, birth, street), c, shape, from, filter)| {
                let policy = Generated {
                    rules: vec![
                        ("resident_id", id),
                        ("name", name),
                        ("address", address),
                        ("phone", phone),
                        ("bank_card", card),
                        ("birth_date", birth),
                    ],
                    street,
                    pseudonyms: Arc::new(Pseudonymizer::new(KEY).unwrap()),
                };
                let expr = shape.replace("{c}", &format!("t.{c}"));
                let aggregate = ["min", "max", "string_agg", "array_agg", "first_value"]
                    .iter()
                    .any(|a| shape.starts_with(a));
                let sql = if aggregate {
                    format!("select {expr} from {from} {filter}")
                } else {
                    format!("select {expr}, t.street from {from} {filter} order by 1")
                };
                let seen = rt.block_on(async {
                    let s =
                        LakeSession::open(&registry, Arc::new(policy), &SessionOptions::default())
                            .await
                            .unwrap();
                    match s.query(&sql).await {
                        Ok(out) => text(&out).concat().join("\n"),
                        Err(e) => e.to_string(),
                    }
                });
                // (A secret the query itself quotes may come back in a planning error.)
                for secret in secrets.iter().filter(|s| !sql.contains(s.as_str())) {
                    prop_assert!(!seen.contains(secret.as_str()), "{sql}\n{seen}");
                }
                Ok(())
            },
        )
        .unwrap();
}

/// A reader's policy further limited to one subject of one table, as the exchange limits
/// its callers' sessions for a lookup by key.
#[derive(Debug)]
struct KeyedBy {
    inner: Arc<dyn TablePolicy>,
    table: &'static str,
    column: &'static str,
    key: String,
}

impl TablePolicy for KeyedBy {
    fn access(&self, t: &gdx_lake::policy::TableInfo) -> gdx_lake::policy::Access {
        use datafusion::prelude::{col, lit};
        match self.inner.access(t) {
            gdx_lake::policy::Access::Read(mut a) if t.name == self.table => {
                let by_key = col(self.column).eq(lit(self.key.clone()));
                a.rows = Some(match a.rows.take() {
                    Some(r) => r.and(by_key),
                    None => by_key,
                });
                gdx_lake::policy::Access::Read(a)
            }
            other => other,
        }
    }

    fn pseudonymizer(&self) -> Option<Arc<Pseudonymizer>> {
        self.inner.pseudonymizer()
    }

    fn label(&self) -> String {
        self.inner.label()
    }
}

/// The point-lookup index answers, for every reader and subject, exactly what a session
/// under the same policy answers for that subject (same columns, same masked values, same
/// row scope), and nothing to readers who may not read rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_point_lookup_answers_what_a_session_answers_for_every_reader() {
    use gdx_lake::lookup::{Built, KeyIndex, Lookup};
    let (_dir, lake) = written().await;
    let catalog = gdx_catalog::district::catalog();
    let registry = TableRegistry::open(&lake, &catalog).await.unwrap();
    let Built::Index(index) = KeyIndex::build(&registry, "profiles.citizen", 64 << 20)
        .await
        .unwrap()
    else {
        panic!("profiles.citizen is keyed by resident_id and small")
    };
    assert!(index.is_current(&registry));
    assert_eq!(index.len(), RESIDENTS.len());
    let keys: Vec<String> = RESIDENTS
        .iter()
        .map(|r| r.0.to_owned())
        .chain(["110101190001010013".to_owned()])
        .collect();
    let mut seen_rows = 0;
    for reader in ["operator", "masked", "street"] {
        let p = policy(reader, &registry);
        for key in &keys {
            let keyed: Arc<dyn TablePolicy> = Arc::new(KeyedBy {
                inner: p.clone(),
                table: "profiles.citizen",
                column: "resident_id",
                key: key.clone(),
            });
            let s = LakeSession::open(&registry, keyed, &SessionOptions::default())
                .await
                .unwrap();
            let want = s.query("select * from profiles.citizen").await.unwrap();
            let Lookup::Rows(got) = index.lookup(p.as_ref(), key).unwrap() else {
                panic!("{reader} reads profiles.citizen")
            };
            let names = |s: &datafusion::arrow::datatypes::Schema| -> Vec<String> {
                s.fields().iter().map(|f| f.name().clone()).collect()
            };
            assert_eq!(names(&got.schema()), names(&want.schema), "{reader}");
            let got = gdx_lake::read::text_rows(&[got]).unwrap();
            assert_eq!(got, text(&want), "{reader} {key}");
            seen_rows += got.len();
        }
    }
    // The operator and the masked reader see every resident, the street office fewer.
    assert!(seen_rows > RESIDENTS.len() * 2, "{seen_rows}");
    assert!(seen_rows < RESIDENTS.len() * 3, "{seen_rows}");
    for reader in ["aggregate", "verify"] {
        let p = policy(reader, &registry);
        assert!(
            matches!(
                index.lookup(p.as_ref(), RESIDENTS[0].0).unwrap(),
                Lookup::NotReadable
            ),
            "{reader}"
        );
    }
    // A table past the budget is not held.
    assert!(matches!(
        KeyIndex::build(&registry, "profiles.citizen", 1024)
            .await
            .unwrap(),
        Built::TooLarge { .. }
    ));
    assert!(matches!(
        KeyIndex::build(&registry, "catalog.fields", 64 << 20)
            .await
            .unwrap(),
        Built::NotKeyed
    ));
}
