//! The lake's tables, named once and opened once.
//!
//! Data flow: lake location + catalog → [`inventory`] names every table of the lake once
//! (the name readers use, dataset, kind, Delta location, column layout) → [`TableRegistry::open`]
//! opens each Delta table (a table not written yet reads as empty, with the catalog's
//! schema) and grades its columns into a [`TableInfo`] → [`TableRegistry::refresh`] brings
//! each table forward by the commits made since it was read (delta-rs applies only the new
//! log entries to the snapshot it holds) and swaps in a new [`Snapshot`] → SQL sessions,
//! `table_at` and maintenance all read the same inventory; opening a session reads a
//! snapshot and does no I/O.

use std::sync::{Arc, RwLock};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::datasource::{MemTable, TableProvider};
use deltalake::DeltaTable;
use gdx_catalog::{Catalog, Dataset, DatasetId, EntityKind, Level};
use url::Url;

use crate::engine::df_err;
use crate::fold::current_schema;
use crate::location::TableKind as Stored;
use crate::policy::{ColumnGrade, ColumnInfo, TableInfo, TableKind};
use crate::profiles::definition::Profile;
use crate::profiles::grades;
use crate::schema::{
    dead_letter, dead_letter_schema, events_schema, personal_columns, profile_personal_columns,
    provenance,
};
use crate::table::{ColumnLayout, delta_err, open};
use crate::{LakeLocation, Result};

/// What the lake holds in one table.
#[derive(Debug, Clone, PartialEq)]
pub enum Contents {
    /// One dataset's events, state or deleted keys.
    Dataset(DatasetId),
    Profile(Profile),
    DeadLetters,
    /// The exchange's audit trail (`system.audit`).
    Audit,
    /// The elderly allowance's ledger (`scenarios.elderly_allowance_ledger`).
    AllowanceLedger,
    /// The enterprise rewards' ledger (`scenarios.rewards_ledger`).
    RewardsLedger,
    /// A benefit's 应享未享 findings (`scenarios.<benefit>_gaps`, a view).
    Gaps(crate::entitlements::Benefit),
    /// `catalog.datasets` or `catalog.fields`.
    Catalog,
}

/// One table of the lake, as the inventory names it.
#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    /// `schema.table` as readers name it.
    pub name: String,
    pub kind: TableKind,
    pub contents: Contents,
    /// The Delta table; `None` for tables made from the catalog itself.
    pub url: Option<Url>,
    /// How its files are written (which columns are personal, sorted, without statistics).
    pub layout: ColumnLayout,
    /// The schema of a table not written yet (`None` for profiles: their SQL decides).
    pub schema: Option<SchemaRef>,
}

impl TableSpec {
    /// The grading of this table's columns, as read with `schema`.
    pub(crate) fn info(&self, catalog: &Catalog, schema: &SchemaRef) -> TableInfo {
        table_info(catalog, &self.name, self.kind, &self.contents, schema)
    }

    /// The dataset whose data the table holds.
    pub fn dataset(&self) -> Option<&DatasetId> {
        match &self.contents {
            Contents::Dataset(id) => Some(id),
            _ => None,
        }
    }

    /// The table's folder under the lake root: `<dataset>/<events|current|deleted>`,
    /// `profiles/<name>`, `_system/dead_letters`.
    pub fn path_name(&self) -> String {
        match &self.contents {
            Contents::Dataset(id) => format!("{id}/{}", self.kind.as_str()),
            Contents::Profile(p) => format!("profiles/{}", p.name()),
            Contents::DeadLetters => "_system/dead_letters".into(),
            Contents::Audit => "_system/exchange/audit".into(),
            Contents::AllowanceLedger => {
                format!("_system/scenarios/{}", crate::ledger::ELDERLY_ALLOWANCE)
            }
            Contents::RewardsLedger => {
                format!("_system/scenarios/{}", crate::ledger::rewards::REWARDS)
            }
            Contents::Catalog => self.name.clone(),
            Contents::Gaps(b) => format!("scenarios/{}_gaps", b.name()),
        }
    }
}

/// Every table of the lake, in a stable order: per dataset its state, events and deleted
/// keys; the profiles; the dead letters; the catalog.
pub fn inventory(lake: &LakeLocation, catalog: &Catalog) -> Vec<TableSpec> {
    let mut out = Vec::new();
    for ds in catalog.datasets() {
        let base = format!("{}.{}", ds.id.department(), ds.id.name());
        let folded = ColumnLayout::folded(personal_columns(ds));
        for (kind, stored, name, layout, schema) in [
            (
                TableKind::Current,
                Stored::Current,
                base.clone(),
                folded.clone(),
                current_schema(ds),
            ),
            (
                TableKind::Events,
                Stored::Events,
                format!("{base}_events"),
                ColumnLayout::events(ds),
                events_schema(ds),
            ),
            (
                TableKind::Deleted,
                Stored::Deleted,
                format!("{base}_deleted"),
                folded,
                current_schema(ds),
            ),
        ] {
            out.push(TableSpec {
                name,
                kind,
                contents: Contents::Dataset(ds.id.clone()),
                url: Some(lake.table(&ds.id, stored)),
                layout,
                schema: Some(schema),
            });
        }
    }
    for p in Profile::ALL {
        out.push(TableSpec {
            name: format!("profiles.{}", p.name()),
            kind: TableKind::Profile,
            contents: Contents::Profile(p),
            url: Some(lake.profile(p.name())),
            layout: ColumnLayout::folded(profile_personal_columns(catalog, p)),
            schema: None,
        });
    }
    out.push(TableSpec {
        name: "system.dead_letters".into(),
        kind: TableKind::System,
        contents: Contents::DeadLetters,
        url: Some(lake.dead_letters()),
        layout: ColumnLayout::dead_letters(),
        schema: Some(dead_letter_schema()),
    });
    out.push(TableSpec {
        name: "system.audit".into(),
        kind: TableKind::System,
        contents: Contents::Audit,
        url: Some(lake.exchange("audit")),
        layout: crate::audit::audit_layout(),
        schema: Some(crate::audit::audit_schema()),
    });
    out.push(TableSpec {
        name: format!("scenarios.{}_ledger", crate::ledger::ELDERLY_ALLOWANCE),
        kind: TableKind::System,
        contents: Contents::AllowanceLedger,
        url: Some(lake.scenario(crate::ledger::ELDERLY_ALLOWANCE)),
        layout: crate::ledger::ledger_layout(),
        schema: Some(crate::ledger::ledger_schema()),
    });
    out.push(TableSpec {
        name: format!("scenarios.{}_ledger", crate::ledger::rewards::REWARDS),
        kind: TableKind::System,
        contents: Contents::RewardsLedger,
        url: Some(lake.scenario(crate::ledger::rewards::REWARDS)),
        layout: crate::ledger::rewards::layout(),
        schema: Some(crate::ledger::rewards::schema()),
    });
    for name in ["catalog.datasets", "catalog.fields"] {
        out.push(TableSpec {
            name: name.into(),
            kind: TableKind::System,
            contents: Contents::Catalog,
            url: None,
            layout: ColumnLayout::default(),
            schema: None,
        });
    }
    out
}

/// The grading of a column of a dataset's table: its field's, or for `_key` the strictest
/// of the key fields'; other provenance columns are public; anything else counts as level 5.
fn dataset_grade(ds: &Dataset, column: &str) -> ColumnGrade {
    if let Some(f) = ds.field(column) {
        return ColumnGrade::of_field(f);
    }
    if column == provenance::KEY {
        let keys: Vec<_> = ds.primary_key.iter().filter_map(|k| ds.field(k)).collect();
        let level = keys
            .iter()
            .map(|f| f.level_or_max())
            .max()
            .unwrap_or(Level::CORE);
        let pii = match keys.as_slice() {
            [one] => one.pii,
            _ => None,
        };
        return ColumnGrade {
            level,
            category: None,
            pii,
        };
    }
    if column.starts_with('_') {
        return ColumnGrade::public();
    }
    strictest()
}

fn strictest() -> ColumnGrade {
    ColumnGrade {
        level: Level::CORE,
        category: None,
        pii: None,
    }
}

/// The raw record and its headers are as sensitive as anything a feed carries; the error
/// message names fields and rules.
fn dead_letter_grade(column: &str) -> ColumnGrade {
    match column {
        dead_letter::KEY | dead_letter::VALUE | dead_letter::HEADERS => ColumnGrade {
            level: Level::SENSITIVE,
            category: None,
            pii: None,
        },
        dead_letter::ERROR_MESSAGE => ColumnGrade {
            level: Level::ORDINARY,
            category: None,
            pii: None,
        },
        _ => ColumnGrade::public(),
    }
}

/// Grades every column of a table whose provider has `schema`.
pub(crate) fn table_info(
    catalog: &Catalog,
    name: &str,
    kind: TableKind,
    contents: &Contents,
    schema: &SchemaRef,
) -> TableInfo {
    let grade = |column: &str| match contents {
        Contents::Dataset(id) => match catalog.get(id.as_str()) {
            Some(ds) => dataset_grade(ds, column),
            None => strictest(),
        },
        Contents::Profile(p) => grades::grade(catalog, *p, column).unwrap_or_else(strictest),
        Contents::DeadLetters => dead_letter_grade(column),
        Contents::Audit => crate::audit::audit_grade(column),
        Contents::AllowanceLedger => crate::ledger::ledger_grade(column),
        Contents::RewardsLedger => crate::ledger::rewards::grade(column),
        Contents::Gaps(_) => crate::entitlements::grade(column),
        Contents::Catalog => ColumnGrade::public(),
    };
    let subject = match contents {
        Contents::Dataset(id) => catalog.get(id.as_str()).map(|ds| {
            ds.entity(EntityKind::Resident)
                .or_else(|| ds.entity(EntityKind::Enterprise))
                .map(|e| e.field.clone())
                .unwrap_or_else(|| provenance::KEY.to_owned())
        }),
        Contents::Profile(p) => Some(grades::subject(*p).to_owned()),
        Contents::Gaps(_) => Some("resident_id".to_owned()),
        _ => None,
    };
    TableInfo {
        name: name.to_owned(),
        dataset: match contents {
            Contents::Dataset(id) => Some(id.clone()),
            _ => None,
        },
        kind,
        columns: schema
            .fields()
            .iter()
            .map(|f| ColumnInfo {
                name: f.name().clone(),
                data_type: f.data_type().clone(),
                grade: grade(f.name()),
            })
            .collect(),
        subject,
    }
}

/// One opened table.
#[derive(Debug, Clone)]
pub struct RegisteredTable {
    pub spec: Arc<TableSpec>,
    /// `None` for a profile not built yet (sessions plan its SQL instead).
    pub opened: Option<OpenedTable>,
    /// The Delta table read, for refreshes and `table_at`.
    delta: Option<DeltaTable>,
}

impl RegisteredTable {
    /// The Delta version held (`None`: not written yet, or a profile not built yet).
    pub fn version(&self) -> Option<u64> {
        self.opened.as_ref().and_then(|o| o.version)
    }
}

/// A table's provider (as stored, never handed to a reader unwrapped) and what it holds.
#[derive(Debug, Clone)]
pub struct OpenedTable {
    pub info: Arc<TableInfo>,
    pub(crate) provider: Arc<dyn TableProvider>,
    /// The Delta version read; `None` when the table is not written yet.
    pub version: Option<u64>,
}

/// The registry's tables at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    tables: Vec<RegisteredTable>,
    /// Profiles not built yet, planned from their SQL over this snapshot's tables by the
    /// first session that needs them.
    pub(crate) planned_profiles: tokio::sync::OnceCell<Vec<OpenedTable>>,
    /// The benefits' gaps views, planned over this snapshot's tables as of the day of the
    /// first session that needs them.
    pub(crate) planned_gaps: tokio::sync::OnceCell<Vec<OpenedTable>>,
}

impl Snapshot {
    pub fn tables(&self) -> &[RegisteredTable] {
        &self.tables
    }

    pub fn get(&self, name: &str) -> Option<&RegisteredTable> {
        self.tables.iter().find(|t| t.spec.name == name)
    }

    /// The Delta version of `name` this snapshot holds.
    pub fn version(&self, name: &str) -> Option<u64> {
        self.get(name).and_then(RegisteredTable::version)
    }
}

/// The lake's tables, shared by every session of a process.
#[derive(Debug)]
pub struct TableRegistry {
    lake: LakeLocation,
    catalog: Arc<Catalog>,
    snapshot: RwLock<Arc<Snapshot>>,
}

/// What a refresh found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshReport {
    /// Tables with commits (or created) since the last refresh.
    pub changed: Vec<String>,
}

impl TableRegistry {
    /// Opens every table of the lake's inventory.
    pub async fn open(lake: &LakeLocation, catalog: &Catalog) -> Result<Arc<Self>> {
        Self::open_some(lake, catalog, |_| true).await
    }

    /// Opens the tables of the inventory that `keep` selects (a profile build reads only
    /// the datasets' state, or only their events).
    pub async fn open_some(
        lake: &LakeLocation,
        catalog: &Catalog,
        keep: impl Fn(&TableSpec) -> bool,
    ) -> Result<Arc<Self>> {
        let catalog = Arc::new(catalog.clone());
        let mut tables = Vec::new();
        let specs: Vec<TableSpec> = inventory(lake, &catalog)
            .into_iter()
            .filter(|s| keep(s))
            .collect();
        for spec in specs {
            tables.push(open_table(&catalog, Arc::new(spec), None).await?);
        }
        Ok(Arc::new(Self {
            lake: lake.clone(),
            catalog,
            snapshot: RwLock::new(Arc::new(Snapshot {
                tables,
                planned_profiles: tokio::sync::OnceCell::new(),
                planned_gaps: tokio::sync::OnceCell::new(),
            })),
        }))
    }

    pub fn lake(&self) -> &LakeLocation {
        &self.lake
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub(crate) fn shared_catalog(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }

    /// The tables as of the last open or refresh.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Reads the commits made since the last refresh; sessions opened afterwards see them.
    pub async fn refresh(&self) -> Result<RefreshReport> {
        let old = self.snapshot();
        let mut tables = Vec::with_capacity(old.tables.len());
        let mut report = RefreshReport::default();
        for t in &old.tables {
            let was = t.version();
            let next = open_table(&self.catalog, t.spec.clone(), t.delta.clone()).await?;
            let now = next.version();
            if was != now {
                report.changed.push(t.spec.name.clone());
            }
            tables.push(if was == now { t.clone() } else { next });
        }
        if !report.changed.is_empty() {
            *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(Snapshot {
                tables,
                planned_profiles: tokio::sync::OnceCell::new(),
                planned_gaps: tokio::sync::OnceCell::new(),
            });
        }
        Ok(report)
    }
}

/// Opens (or, given the table read before, brings forward) one table of the inventory.
async fn open_table(
    catalog: &Catalog,
    spec: Arc<TableSpec>,
    before: Option<DeltaTable>,
) -> Result<RegisteredTable> {
    let delta = match (&spec.url, before) {
        (Some(url), Some(mut t)) => {
            t.update_incremental(None)
                .await
                .map_err(|e| delta_err(url, e))?;
            Some(t)
        }
        (Some(url), None) => open(url).await?,
        (None, _) => None,
    };
    let (provider, version): (Arc<dyn TableProvider>, Option<u64>) = match &delta {
        Some(t) => (
            t.table_provider()
                .await
                .map_err(|e| df_err(&spec.name, e))?,
            t.version(),
        ),
        None => {
            let made = match (&spec.contents, &spec.schema) {
                (Contents::Catalog, _) => Some(crate::sql::catalog_table(catalog, &spec.name)?),
                (_, Some(schema)) => Some(Arc::new(
                    MemTable::try_new(schema.clone(), vec![vec![]])
                        .map_err(|e| df_err(&spec.name, e))?,
                ) as Arc<dyn TableProvider>),
                // A profile not built yet.
                (_, None) => None,
            };
            let Some(p) = made else {
                return Ok(RegisteredTable {
                    spec,
                    opened: None,
                    delta: None,
                });
            };
            (p, None)
        }
    };
    let info = Arc::new(spec.info(catalog, &provider.schema()));
    Ok(RegisteredTable {
        spec,
        opened: Some(OpenedTable {
            info,
            provider,
            version,
        }),
        delta,
    })
}

impl RegisteredTable {
    /// The table at an older version or time (`table_at`): the same table, so the same
    /// policy applies to what it returns.
    pub(crate) async fn at(&self, at: TableVersion) -> Result<Arc<dyn TableProvider>> {
        let Some(url) = &self.spec.url else {
            return Err(crate::Error::UnknownTable {
                name: self.spec.name.clone(),
                close: vec![],
            });
        };
        let mut t = DeltaTable::try_from_url(url.clone())
            .await
            .map_err(|e| delta_err(url, e))?;
        match at {
            TableVersion::Version(v) => t.load_version(v as _).await,
            TableVersion::Time(ts) => t.load_with_datetime(ts).await,
        }
        .map_err(|e| delta_err(url, e))?;
        t.table_provider()
            .await
            .map_err(|e| df_err(&self.spec.name, e))
    }
}

/// A version of a Delta table, by number or by commit time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableVersion {
    Version(u64),
    Time(chrono::DateTime<chrono::Utc>),
}
