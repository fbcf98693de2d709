//! The demo lake's Delta logs hold no personal data: no statistics of any column of level ≥ 3
//! in any table, `_system/*` included (and events tables log statistics only of the columns
//! that grow with arrival).

use std::collections::HashSet;
use std::path::Path;

/// The columns named by every add action's statistics in the Delta log at `table`.
fn logged_stats_columns(table: &Path) -> Vec<HashSet<String>> {
    let mut out = Vec::new();
    for log in std::fs::read_dir(table.join("_delta_log")).unwrap() {
        let log = log.unwrap().path();
        if log.extension().is_none_or(|e| e != "json") {
            continue;
        }
        for line in std::fs::read_to_string(&log).unwrap().lines() {
            let action: serde_json::Value = serde_json::from_str(line).unwrap();
            if let Some(stats) = action["add"]["stats"].as_str() {
                let stats: serde_json::Value = serde_json::from_str(stats).unwrap();
                let mut cols = HashSet::new();
                for part in ["minValues", "maxValues", "nullCount"] {
                    if let Some(o) = stats[part].as_object() {
                        cols.extend(o.keys().cloned());
                    }
                }
                out.push(cols);
            }
        }
    }
    out
}

/// Every Delta table of the lake (a directory holding `_delta_log`).
fn delta_tables(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    if dir.join("_delta_log").is_dir() {
        out.push(dir.to_owned());
        return;
    }
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            delta_tables(&p, out);
        }
    }
}

/// No value of a column of level ≥ 3 (names, ID numbers, phones, addresses, birth dates,
/// household numbers, dates of death, disability grades, amounts, ...) reaches a Delta log
/// as a file's smallest or largest value: not in events, current, deleted or profile tables,
/// and not in the dead letters. Other columns keep their statistics.
pub(crate) fn no_personal_data_in_any_delta_log(lake: &Path, catalog: &gdx_catalog::Catalog) {
    let graded = |f: &gdx_catalog::Field| f.level.is_none_or(|l| l.get() >= 3);
    let personal_fields = |ds: &gdx_catalog::Dataset| -> HashSet<String> {
        let mut cols: HashSet<String> = ds
            .fields
            .iter()
            .filter(|f| graded(f))
            .map(|f| f.name.clone())
            .collect();
        if ds
            .primary_key
            .iter()
            .any(|k| ds.field(k).is_some_and(graded))
        {
            cols.insert("_key".into());
        }
        cols
    };
    // Profiles: the grades declared beside their SQL.
    let profile_fields = |name: &str| -> HashSet<String> {
        let p = gdx_lake::profiles::Profile::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .unwrap();
        gdx_lake::profiles::grades::columns(p)
            .filter(|c| {
                gdx_lake::profiles::grades::grade(catalog, p, c).is_none_or(|g| g.level.get() >= 3)
            })
            .map(str::to_owned)
            .collect()
    };
    let dead_letters: HashSet<String> = ["key", "value", "headers", "error_message"]
        .map(str::to_owned)
        .into();
    let mut tables = Vec::new();
    delta_tables(lake, &mut tables);
    let mut checked = 0;
    for table in &tables {
        let rel = table
            .strip_prefix(lake)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let parts: Vec<&str> = rel.split('/').collect();
        let forbidden = match parts.as_slice() {
            ["profiles", p] => profile_fields(p),
            ["_system", "dead_letters"] => dead_letters.clone(),
            [dept, name, _kind] if !dept.starts_with('_') => {
                personal_fields(catalog.get(&format!("{dept}.{name}")).unwrap())
            }
            _ => HashSet::new(),
        };
        // Events log statistics only of the columns that grow with arrival.
        let allowed: Option<HashSet<String>> = match parts.as_slice() {
            [dept, name, "events"] if !dept.starts_with('_') => Some(
                gdx_lake::schema::events_statistics_columns(
                    catalog.get(&format!("{dept}.{name}")).unwrap(),
                )
                .into_iter()
                .collect(),
            ),
            _ => None,
        };
        for cols in logged_stats_columns(table) {
            let leaked: Vec<&String> = cols.intersection(&forbidden).collect();
            assert!(
                leaked.is_empty(),
                "{rel}: statistics of {leaked:?} in the log"
            );
            if let Some(allowed) = &allowed {
                let extra: Vec<&String> = cols.difference(allowed).collect();
                assert!(
                    extra.is_empty(),
                    "{rel}: statistics of {extra:?} in the log"
                );
            }
            assert!(!cols.is_empty(), "{rel}: a file without any statistics");
            checked += 1;
        }
    }
    assert!(tables.iter().any(|t| t.ends_with("profiles/citizen")));
    assert!(tables.iter().any(|t| t.ends_with("_system/dead_letters")));
    // `current` is sorted by key: its files keep the key's statistics for point lookups.
    let current = lake.join("ps/household_registration/current");
    for f in std::fs::read_dir(&current).unwrap() {
        let f = f.unwrap().path();
        if f.extension().is_some_and(|e| e == "parquet") {
            use parquet::file::reader::{FileReader, SerializedFileReader};
            let meta = SerializedFileReader::new(std::fs::File::open(&f).unwrap())
                .unwrap()
                .metadata()
                .clone();
            let rg = meta.row_group(0);
            let id = rg
                .columns()
                .iter()
                .find(|c| c.column_path().string() == "resident_id")
                .unwrap();
            assert!(id.statistics().is_some(), "{}", f.display());
        }
    }
    // At least an events and a current file per dataset.
    assert!(checked >= 2 * catalog.datasets().count(), "{checked} files");
}
