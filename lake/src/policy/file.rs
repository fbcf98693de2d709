//! A policy written as a TOML file: what one reader would see, for the operator's `gdx sql`.
//!
//! Data flow: the file → [`FilePolicy::parse`] (unknown keys, rules or access modes are
//! errors) → for each table, the first `[[tables]]` entry whose `name` matches (exact,
//! `schema.*`, or `*`) decides; a table no entry matches is hidden → its columns: those
//! named under `[tables.column]` take that rule, the others the entry's `columns` default
//! (`masked`: mask by PII kind, removed when sensitive (level ≥ 4) without a mask, stored
//! otherwise; `raw`; `remove`), and any column above
//! `max_level` is removed unless named → `rows`, a SQL predicate over stored values, is
//! planned against the table's columns. [`FilePolicy::check`] applies the file to every
//! table of the lake once, so a mistake is reported when the file is loaded, not when a
//! query happens to touch the table.
//!
//! ```toml
//! [[tables]]
//! name = "ps.household_registration"
//! rows = "street = '中华路街道'"
//! max_level = 3
//! [tables.column]
//! resident_id = "pseudonym"
//!
//! [[tables]]
//! name = "profiles.citizen"
//! access = "aggregate"
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::DFSchema;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::Expr;
use gdx_catalog::Pseudonymizer;
use serde::Deserialize;

use super::{
    Access, ColumnRule, DEFAULT_MIN_GROUP, PolicyError, ReadMode, TableAccess, TableInfo,
    TablePolicy,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    tables: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    #[serde(default)]
    access: Mode,
    /// Smallest group an aggregate-only reader sees.
    k: Option<usize>,
    #[serde(default)]
    columns: Default,
    max_level: Option<u8>,
    rows: Option<String>,
    #[serde(default)]
    column: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    #[default]
    Rows,
    Aggregate,
    Verify,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Default {
    #[default]
    Masked,
    Raw,
    Remove,
}

impl Entry {
    fn matches(&self, table: &str) -> bool {
        match self.name.strip_suffix('*') {
            Some(prefix) => table.starts_with(prefix),
            None => self.name == table,
        }
    }
}

/// A reader's policy read from a TOML file.
#[derive(Clone)]
pub struct FilePolicy {
    path: String,
    entries: Vec<Entry>,
    pseudonyms: Option<Arc<Pseudonymizer>>,
    /// Plans the row filters (a session state with the default functions).
    planner: Arc<datafusion::execution::SessionState>,
}

impl std::fmt::Debug for FilePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FilePolicy")
            .field("path", &self.path)
            .field("tables", &self.entries.len())
            .finish()
    }
}

impl FilePolicy {
    /// Reads the policy in `text` (from `path`, named in errors); `pseudonyms` is the key
    /// of its `pseudonym` rules.
    pub fn parse(
        path: &str,
        text: &str,
        pseudonyms: Option<Arc<Pseudonymizer>>,
    ) -> Result<Self, PolicyError> {
        let file_err = |why: String| PolicyError::File {
            path: path.to_owned(),
            why,
        };
        let doc: Document = toml::from_str(text).map_err(|e| file_err(e.message().to_owned()))?;
        for e in &doc.tables {
            for (column, rule) in &e.column {
                if ColumnRule::parse(rule).is_none() {
                    return Err(file_err(format!(
                        "table {}: column {column}: rule {rule:?} is none of raw, mask, \
                         pseudonym, year, remove",
                        e.name
                    )));
                }
            }
            if e.max_level.is_some_and(|l| !(1..=5).contains(&l)) {
                return Err(file_err(format!(
                    "table {}: max_level must be 1 to 5",
                    e.name
                )));
            }
            if e.k == Some(0) {
                return Err(file_err(format!("table {}: k must be at least 1", e.name)));
            }
        }
        Ok(Self {
            path: path.to_owned(),
            entries: doc.tables,
            pseudonyms,
            planner: Arc::new(SessionStateBuilder::new().with_default_features().build()),
        })
    }

    /// Applies the policy to every table once: an unknown column named for an exact table,
    /// a rule that does not fit a column, or a row filter that does not plan is an error.
    pub fn check(&self, tables: &[TableInfo]) -> Result<(), PolicyError> {
        for t in tables {
            let Some(entry) = self.entries.iter().find(|e| e.matches(&t.name)) else {
                continue;
            };
            if entry.name == t.name {
                for column in entry.column.keys() {
                    if t.column(column).is_none() {
                        return Err(PolicyError::UnknownColumn {
                            table: t.name.clone(),
                            column: column.clone(),
                        });
                    }
                }
            }
            if let Access::Read(access) = self.resolve(entry, t)? {
                for (name, rule) in &access.columns {
                    if let Some(col) = t.column(name) {
                        super::transform::Transform::resolve(&t.name, col, *rule)?;
                        if *rule == ColumnRule::Pseudonym && self.pseudonyms.is_none() {
                            return Err(PolicyError::Rule {
                                table: t.name.clone(),
                                column: name.clone(),
                                rule: "pseudonym",
                                why: "no pseudonym key is configured",
                            });
                        }
                    }
                }
                if access.mode != ReadMode::Rows && t.subject.is_none() {
                    return Err(PolicyError::NoSubject {
                        table: t.name.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn resolve(&self, entry: &Entry, t: &TableInfo) -> Result<Access, PolicyError> {
        let mode = match entry.access {
            Mode::Verify => return Ok(Access::VerifyOnly),
            Mode::Rows => ReadMode::Rows,
            Mode::Aggregate => ReadMode::Aggregate {
                k: entry.k.unwrap_or(DEFAULT_MIN_GROUP),
            },
        };
        let columns = t
            .columns
            .iter()
            .map(|c| {
                let rule = match entry.column.get(&c.name).and_then(|r| ColumnRule::parse(r)) {
                    Some(r) => r,
                    None if entry.max_level.is_some_and(|max| c.grade.level.get() > max) => {
                        ColumnRule::Remove
                    }
                    None => match entry.columns {
                        Default::Raw => ColumnRule::Raw,
                        Default::Remove => ColumnRule::Remove,
                        Default::Masked => super::masked_rule(c),
                    },
                };
                (c.name.clone(), rule)
            })
            .collect();
        let rows = match &entry.rows {
            Some(sql) => Some(self.row_filter(t, sql)?),
            None => None,
        };
        Ok(Access::Read(TableAccess {
            columns,
            rows,
            mode,
            tap_subject: false,
            push_rows: false,
        }))
    }

    fn row_filter(&self, t: &TableInfo, sql: &str) -> Result<Expr, PolicyError> {
        let schema = Schema::new(
            t.columns
                .iter()
                .map(|c| Field::new(&c.name, c.data_type.clone(), true))
                .collect::<Vec<_>>(),
        );
        let why = |e: datafusion::error::DataFusionError| PolicyError::RowFilter {
            table: t.name.clone(),
            // The planner's message may quote the filter's literals; name the kind only.
            why: match e {
                datafusion::error::DataFusionError::SQL(..) => "it is not a SQL expression",
                _ => "it names a column the table does not have, or mixes types",
            }
            .to_owned(),
        };
        let df_schema = DFSchema::try_from(schema).map_err(why)?;
        self.planner
            .create_logical_expr(sql, &df_schema)
            .map_err(why)
    }
}

impl TablePolicy for FilePolicy {
    fn access(&self, table: &TableInfo) -> Access {
        let Some(entry) = self.entries.iter().find(|e| e.matches(&table.name)) else {
            return Access::Hidden;
        };
        match self.resolve(entry, table) {
            Ok(a) => a,
            Err(e) => {
                // Deny by default; [`FilePolicy::check`] reports this when the file loads.
                tracing::warn!(table = %table.name, error = %e, "policy entry does not apply; table hidden");
                Access::Hidden
            }
        }
    }

    fn pseudonymizer(&self) -> Option<Arc<Pseudonymizer>> {
        self.pseudonyms.clone()
    }

    fn label(&self) -> String {
        format!("file {}", self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{ColumnGrade, ColumnInfo, TableKind};
    use datafusion::arrow::datatypes::DataType;
    use gdx_catalog::{Level, PiiKind};

    fn table() -> TableInfo {
        let col = |name: &str, level: u8, pii| ColumnInfo {
            name: name.into(),
            data_type: DataType::Utf8,
            grade: ColumnGrade {
                level: Level::new(level).unwrap(),
                category: None,
                pii,
            },
        };
        TableInfo {
            name: "ps.household_registration".into(),
            dataset: None,
            kind: TableKind::Current,
            columns: vec![
                col("resident_id", 4, Some(PiiKind::IdNumber)),
                col("name", 3, Some(PiiKind::Name)),
                col("household_id", 3, None),
                col("street", 2, None),
            ],
            subject: Some("resident_id".into()),
        }
    }

    #[test]
    fn entries_pick_rules_levels_and_rows() {
        let p = FilePolicy::parse(
            "p.toml",
            r#"
            [[tables]]
            name = "ps.household_registration"
            rows = "street = 'S1'"
            max_level = 3
            [tables.column]
            name = "raw"
            "#,
            None,
        )
        .unwrap();
        let t = table();
        p.check(std::slice::from_ref(&t)).unwrap();
        let Access::Read(a) = p.access(&t) else {
            panic!("readable")
        };
        assert_eq!(
            a.columns,
            [
                ("resident_id".to_owned(), ColumnRule::Remove),
                ("name".to_owned(), ColumnRule::Raw),
                ("household_id".to_owned(), ColumnRule::Raw),
                ("street".to_owned(), ColumnRule::Raw),
            ]
        );
        assert!(a.rows.is_some());
        let mut other = t.clone();
        other.name = "mca.cremation".into();
        assert_eq!(p.access(&other), Access::Hidden);
    }

    #[test]
    fn masked_removes_what_no_mask_fits() {
        let p = FilePolicy::parse("p.toml", "[[tables]]\nname = \"ps.*\"\n", None).unwrap();
        let mut t = table();
        t.columns[2].grade.level = Level::SENSITIVE;
        let Access::Read(a) = p.access(&t) else {
            panic!("readable")
        };
        let rules: Vec<ColumnRule> = a.columns.iter().map(|(_, r)| *r).collect();
        assert_eq!(
            rules,
            [
                ColumnRule::Mask,
                ColumnRule::Mask,
                ColumnRule::Remove,
                ColumnRule::Raw
            ]
        );
    }

    #[test]
    fn mistakes_are_reported_without_quoting_the_filter() {
        for (text, needle) in [
            ("[[tables]]\nname = \"x\"\nbogus = 1", "unknown field"),
            (
                "[[tables]]\nname = \"x\"\n[tables.column]\na = \"blur\"",
                "none of raw",
            ),
            (
                "[[tables]]\nname = \"x\"\naccess = \"all\"",
                "unknown variant",
            ),
        ] {
            let e = FilePolicy::parse("p.toml", text, None)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e}");
        }
        let t = table();
        for (body, needle) in [
            ("[tables.column]\nnot_a_column = \"raw\"", "no column"),
            (
                "[tables.column]\nresident_id = \"pseudonym\"",
                "no pseudonym key",
            ),
            ("rows = \"secret_literal_value = 'x'\"", "names a column"),
            ("[tables.column]\nhousehold_id = \"mask\"", "no PII kind"),
        ] {
            let text = format!("[[tables]]\nname = \"ps.household_registration\"\n{body}");
            let e = FilePolicy::parse("p.toml", &text, None)
                .unwrap()
                .check(std::slice::from_ref(&t))
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e}");
            assert!(!e.contains("secret_literal_value"), "{e}");
        }
    }
}
