//! The demo lake's Delta logs hold no personal data: no statistics of personal columns (and
//! events tables log statistics only of the columns that grow with arrival).

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

/// Names, ID numbers, phones, addresses, birth dates never reach a Delta log as a file's
/// smallest or largest value: not in events, current, deleted or profile tables. Other
/// columns keep their statistics.
pub(crate) fn no_personal_data_in_any_delta_log(lake: &Path, catalog: &gdx_catalog::Catalog) {
    let personal_fields = |ds: &gdx_catalog::Dataset| -> HashSet<String> {
        let personal = |f: &gdx_catalog::Field| f.pii.is_some_and(|k| k.is_personal());
        let mut cols: HashSet<String> = ds
            .fields
            .iter()
            .filter(|f| personal(f))
            .map(|f| f.name.clone())
            .collect();
        if ds
            .primary_key
            .iter()
            .any(|k| ds.field(k).is_some_and(personal))
        {
            cols.insert("_key".into());
        }
        cols
    };
    let everywhere: HashSet<String> = catalog
        .datasets()
        .flat_map(personal_fields)
        .filter(|c| c != "_key")
        .collect();
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
            ["profiles", _] => everywhere.clone(),
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
