//! How an append lays its rows out in Parquet files.
//!
//! Data flow: the batches of one append (in order) → [`group_into_files`] cuts them into at
//! most one run of consecutive batches per file, with about equal rows → each file is encoded
//! with [`ColumnLayout::writer_properties`] on a thread of its own → one commit adds them all.

use arrow::array::RecordBatch;
use deltalake::parquet::basic::Compression;
use deltalake::parquet::file::properties::{EnabledStatistics, WriterProperties};
use deltalake::parquet::schema::types::ColumnPath;

/// How a table's columns are written, beyond their types.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnLayout {
    /// Columns unique or nearly unique per row (for events tables,
    /// [`crate::schema::near_unique_columns`]), written without dictionary encoding like the
    /// unique provenance columns.
    pub unique: Vec<String>,
    /// Columns holding personal data (for a dataset's tables,
    /// [`crate::schema::personal_columns`]): they get no statistics in the Delta log, where
    /// every commit would otherwise copy a file's smallest and largest name, ID number, phone
    /// and address in clear text, into a log that is read and copied far more widely than
    /// the files.
    pub personal: Vec<String>,
    /// Whether the Parquet files themselves keep statistics for the personal columns: worth
    /// it for a table sorted by them (`current`, by key: point lookups skip row groups and
    /// pages inside a file), not for events in arrival order, whose bounds on random
    /// identifiers prune nothing and cost a compare per value.
    pub personal_file_statistics: bool,
    /// Whether the files keep statistics per page as well (Parquet's page index), for a table
    /// written sorted by key: a lookup by key then decodes the pages of the key column that
    /// can hold the key, not the whole row group (a million rows by Parquet's default).
    pub page_statistics: bool,
    /// When set, the only columns with statistics, in the files and in the Delta log (for
    /// events tables, [`crate::schema::events_statistics_columns`]: bounds of columns in
    /// arrival order prune nothing, and every reader of the table, ingest's own commits
    /// included, parses each file's logged statistics on every replay). `None`: every
    /// column. Personal columns stay out of the log either way.
    pub statistics: Option<Vec<String>>,
}

impl ColumnLayout {
    /// How the dead-letter table is written: the raw key, value and headers and the message
    /// (which may name a field of a record) keep no statistics in the Delta log.
    pub fn dead_letters() -> Self {
        use crate::schema::dead_letter;
        Self {
            personal: [
                dead_letter::KEY,
                dead_letter::VALUE,
                dead_letter::HEADERS,
                dead_letter::ERROR_MESSAGE,
            ]
            .map(str::to_owned)
            .to_vec(),
            ..Self::default()
        }
    }

    /// How an `events` table's columns are written: near-unique ones without a dictionary,
    /// statistics only for [`crate::schema::events_statistics_columns`] (never for personal
    /// ones).
    pub fn events(ds: &gdx_catalog::Dataset) -> Self {
        use crate::schema::{events_statistics_columns, near_unique_columns, personal_columns};
        Self {
            unique: near_unique_columns(ds),
            personal: personal_columns(ds),
            personal_file_statistics: false,
            page_statistics: false,
            statistics: Some(events_statistics_columns(ds)),
        }
    }
}

impl ColumnLayout {
    /// The layout of a table the fold or the profile build writes sorted by key (`current`,
    /// `deleted`, profiles): statistics per page for every column in the files (point
    /// lookups skip row groups and pages), none for the `personal` ones in the Delta log.
    pub fn folded(personal: Vec<String>) -> Self {
        Self {
            personal,
            personal_file_statistics: true,
            page_statistics: true,
            ..Self::default()
        }
    }

    /// The table property that keeps personal columns out of the Delta log's statistics for
    /// every writer (delta-rs's compaction, other engines): `delta.dataSkippingStatsColumns`
    /// listing the other columns of `schema`. `None` when no column is personal (Delta's
    /// default then applies). A column added later is not listed, so it has no statistics
    /// until it is: personal data stays out of the log by default.
    pub(crate) fn stats_columns(&self, schema: &arrow::datatypes::Schema) -> Option<String> {
        self.stats_columns_of(schema.fields().iter().map(|f| f.name().as_str()))
    }

    /// [`Self::stats_columns`] for a table with the columns `names`.
    pub(crate) fn stats_columns_of<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        if self.personal.is_empty() && self.statistics.is_none() {
            return None;
        }
        let listed: Vec<&str> = names
            .into_iter()
            .filter(|n| !self.is_personal(n) && self.has_statistics(n))
            .collect();
        Some(listed.join(","))
    }

    /// Whether `column` gets statistics at all ([`Self::statistics`]).
    fn has_statistics(&self, column: &str) -> bool {
        self.statistics
            .as_ref()
            .is_none_or(|s| s.iter().any(|c| c == column))
    }

    /// What an existing table's `delta.dataSkippingStatsColumns` must become so that no
    /// personal column has statistics in its log; `None` when it already keeps them out.
    /// A table made by an older gdx has no such property (Delta then logs the first 32
    /// columns); a table whose list names a column the catalog now grades personal loses
    /// that column from the list. The rest of an existing list is kept as it is.
    pub(crate) fn stats_columns_fix<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
        configured: Option<&str>,
    ) -> Option<String> {
        if self.personal.is_empty() {
            return None;
        }
        let Some(configured) = configured else {
            return self.stats_columns_of(names);
        };
        let listed: Vec<&str> = configured
            .split(',')
            .map(|c| c.trim().trim_matches('`'))
            .filter(|c| !c.is_empty())
            .collect();
        if !listed.iter().any(|c| self.is_personal(c)) {
            return None;
        }
        let kept: Vec<&str> = listed
            .into_iter()
            .filter(|c| !self.is_personal(c))
            .collect();
        if kept.is_empty() {
            return self.stats_columns_of(names);
        }
        Some(kept.join(","))
    }

    fn is_personal(&self, column: &str) -> bool {
        self.personal.iter().any(|p| p == column)
    }

    /// Parquet settings of appended files: delta-rs's (Snappy), minus dictionary encoding
    /// for the unique columns, statistics per column chunk (per page with
    /// [`Self::page_statistics`]) only for [`Self::statistics`] (when set) and, unless
    /// [`Self::personal_file_statistics`], never for the personal ones.
    /// Dictionaries for unique columns overflow and fall back to plain encoding after the writer has hashed
    /// every value for nothing: 7 % less CPU per message in `gdx bench ingest` for the
    /// provenance columns and key, 5 % more for the personal identifiers and timestamps, with
    /// files 0.7 % larger.
    pub(crate) fn writer_properties(&self) -> WriterProperties {
        use crate::schema::provenance as p;
        let level = if self.page_statistics {
            EnabledStatistics::Page
        } else {
            EnabledStatistics::Chunk
        };
        let mut b = WriterProperties::builder()
            .set_created_by(format!("gdx {}", env!("CARGO_PKG_VERSION")))
            .set_compression(Compression::SNAPPY)
            .set_statistics_enabled(level);
        let provenance = [p::OFFSET, p::KAFKA_TS, p::EVENT_TIME, p::KEY, p::EVENT_ID];
        for c in provenance
            .into_iter()
            .chain(self.unique.iter().map(String::as_str))
        {
            b = b.set_column_dictionary_enabled(ColumnPath::from(c), false);
        }
        if let Some(listed) = &self.statistics {
            b = b.set_statistics_enabled(EnabledStatistics::None);
            for c in listed {
                b = b.set_column_statistics_enabled(ColumnPath::from(c.as_str()), level);
            }
        }
        if !self.personal_file_statistics {
            for c in &self.personal {
                b = b.set_column_statistics_enabled(
                    ColumnPath::from(c.as_str()),
                    EnabledStatistics::None,
                );
            }
        }
        b.build()
    }
}

/// Cuts `batches` into at most `files` runs of consecutive batches with about equal rows
/// (a file never splits a batch; order is kept). Empty batches are dropped.
pub(super) fn group_into_files(batches: Vec<RecordBatch>, files: usize) -> Vec<Vec<RecordBatch>> {
    let batches: Vec<RecordBatch> = batches.into_iter().filter(|b| b.num_rows() > 0).collect();
    let total: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let files = files.clamp(1, batches.len().max(1));
    let mut out: Vec<Vec<RecordBatch>> = Vec::with_capacity(files);
    let mut current = Vec::new();
    let mut rows_done = 0;
    for b in batches {
        rows_done += b.num_rows();
        current.push(b);
        // Close file k once the rows so far reach k/files of the total.
        let closed = out.len() + 1;
        if closed < files && rows_done * files >= total * closed {
            out.push(std::mem::take(&mut current));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn events_keep_statistics_in_the_tables_column_order() {
        use crate::schema::events_schema;
        let c = gdx_catalog::district::catalog();
        let ds = c.get("ps.household_registration").unwrap();
        let layout = super::ColumnLayout::events(ds);
        let names: Vec<String> = events_schema(ds)
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            layout
                .stats_columns_of(names.iter().map(String::as_str))
                .as_deref(),
            Some("updated_at,_offset,_kafka_ts,_event_time,_ingested_at")
        );
    }
    use std::sync::Arc;

    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(rows: std::ops::Range<i64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from_iter_values(rows))]).unwrap()
    }

    fn shape(files: &[Vec<RecordBatch>]) -> Vec<Vec<usize>> {
        files
            .iter()
            .map(|f| f.iter().map(RecordBatch::num_rows).collect())
            .collect()
    }

    #[test]
    fn batches_are_cut_into_files_of_about_equal_rows_in_order() {
        let batches: Vec<_> = (0..13).map(|i| batch(i * 10..i * 10 + 10)).collect();
        let files = group_into_files(batches, 2);
        assert_eq!(shape(&files), vec![vec![10; 7], vec![10; 6]]);
        let keys: Vec<i64> = files
            .iter()
            .flatten()
            .flat_map(|b| {
                b.column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(keys, (0..130).collect::<Vec<_>>(), "order kept");
    }

    #[test]
    fn never_more_files_than_batches_nor_empty_ones() {
        assert_eq!(
            shape(&group_into_files(vec![batch(0..5)], 4)),
            vec![vec![5]]
        );
        assert_eq!(
            shape(&group_into_files(
                vec![batch(0..0), batch(0..3), batch(0..0)],
                2
            )),
            vec![vec![3]]
        );
        assert!(group_into_files(Vec::new(), 2).is_empty());
        assert_eq!(
            shape(&group_into_files(
                vec![batch(0..3), batch(0..3), batch(0..3)],
                8
            )),
            vec![vec![3], vec![3], vec![3]]
        );
    }

    #[test]
    fn an_uneven_run_still_gives_each_file_a_share() {
        // One big batch first: the rest go together into the second file.
        let files = group_into_files(vec![batch(0..100), batch(0..5), batch(0..5)], 2);
        assert_eq!(shape(&files), vec![vec![100], vec![5, 5]]);
        assert_eq!(
            shape(&group_into_files(vec![batch(0..10); 4], 1)),
            vec![vec![10; 4]]
        );
    }

    #[test]
    fn an_existing_tables_statistics_columns_lose_only_the_personal_ones() {
        let layout = ColumnLayout {
            personal: vec!["name".into(), "_key".into()],
            ..ColumnLayout::default()
        };
        let cols = ["_key", "name", "district", "_offset"];
        // No property (an older gdx): every other column of the table.
        assert_eq!(
            layout.stats_columns_fix(cols, None).as_deref(),
            Some("district,_offset")
        );
        // Already clean: nothing to change.
        assert_eq!(layout.stats_columns_fix(cols, Some("district")), None);
        // A column graded personal since: dropped, the rest of the list kept as it was.
        assert_eq!(
            layout
                .stats_columns_fix(cols, Some("district, `name`,_offset"))
                .as_deref(),
            Some("district,_offset")
        );
        // A list of personal columns only: the table's other columns instead.
        assert_eq!(
            layout.stats_columns_fix(cols, Some("name")).as_deref(),
            Some("district,_offset")
        );
        // A table without personal columns keeps Delta's default.
        assert_eq!(ColumnLayout::default().stats_columns_fix(cols, None), None);
    }

    #[test]
    fn only_the_listed_columns_get_statistics_and_never_a_personal_one() {
        let layout = ColumnLayout {
            personal: vec!["name".into()],
            statistics: Some(vec!["_offset".into(), "name".into()]),
            ..ColumnLayout::default()
        };
        let cols = ["name", "district", "_offset"];
        assert_eq!(layout.stats_columns_of(cols).as_deref(), Some("_offset"));
        let props = layout.writer_properties();
        let enabled = |c: &str| props.statistics_enabled(&ColumnPath::from(c));
        assert_eq!(enabled("_offset"), EnabledStatistics::Chunk);
        assert_eq!(enabled("district"), EnabledStatistics::None);
        assert_eq!(enabled("name"), EnabledStatistics::None);
        // Without a list every column keeps its statistics, personal ones only in the files.
        let all = ColumnLayout {
            personal: vec!["name".into()],
            personal_file_statistics: true,
            ..ColumnLayout::default()
        };
        assert_eq!(
            all.stats_columns_of(cols).as_deref(),
            Some("district,_offset")
        );
        let props = all.writer_properties();
        for c in cols {
            assert_eq!(
                props.statistics_enabled(&ColumnPath::from(c)),
                EnabledStatistics::Chunk
            );
        }
        // A table sorted by key keeps them per page (the page index) too.
        let props = ColumnLayout::folded(vec!["name".into()]).writer_properties();
        for c in cols {
            assert_eq!(
                props.statistics_enabled(&ColumnPath::from(c)),
                EnabledStatistics::Page
            );
        }
    }
}
