//! Existing tables brought in line with the rule that personal columns have no statistics
//! in the Delta log.
//!
//! Data flow: a table as loaded → its columns and its `delta.dataSkippingStatsColumns` →
//! [`ColumnLayout::stats_columns_fix`] → when the property must change, one metadata-only
//! commit (SET TBLPROPERTIES) → the table at the new version. Tables created by gdx get the
//! property at creation; this covers tables an older gdx created, and fields the catalog has
//! since graded personal. Appends that race the commit see a metadata change and retry
//! ([`super::EventTable::append`]); two writers racing to fix the same table both end with it
//! fixed.

use deltalake::DeltaTable;
use deltalake::kernel::transaction::TransactionError;
use url::Url;

use super::{ColumnLayout, delta_err};
use crate::Result;

/// Attempts when other writers keep committing metadata under the fix.
const MAX_ATTEMPTS: u32 = 5;

/// Sets `table`'s statistics columns so that none of `layout`'s personal columns is listed
/// (and so gets statistics in the log from any writer, compaction included); returns the
/// table as it is afterwards. A table already in line, or not created yet, is returned as
/// it was, without a commit.
pub(crate) async fn keep_personal_stats_out(
    mut table: DeltaTable,
    url: &Url,
    layout: &ColumnLayout,
) -> Result<DeltaTable> {
    let key = deltalake::TableProperty::DataSkippingStatsColumns.as_ref();
    let mut attempt = 1;
    loop {
        let fix = {
            let Ok(snapshot) = table.snapshot() else {
                return Ok(table);
            };
            let schema = snapshot.schema();
            let configured = snapshot.metadata().configuration().get(key);
            layout.stats_columns_fix(
                schema.fields().map(|f| f.name().as_str()),
                configured.map(String::as_str),
            )
        };
        let Some(columns) = fix else {
            return Ok(table);
        };
        let done = table
            .clone()
            .set_tbl_properties()
            .with_properties([(key.to_owned(), columns)].into())
            .await;
        match done {
            Ok(t) => {
                tracing::info!(
                    table = %url,
                    "personal columns taken out of the table's Delta log statistics"
                );
                return Ok(t);
            }
            Err(e) if attempt < MAX_ATTEMPTS && lost_a_race(&e) => {
                // Typically another worker setting the same property first: look again.
                tracing::debug!(table = %url, attempt, "table changed under the property fix");
                table.update_state().await.map_err(|e| delta_err(url, e))?;
                attempt += 1;
            }
            Err(e) => return Err(delta_err(url, e)),
        }
    }
}

/// Whether a commit was refused because another writer committed first.
fn lost_a_race(e: &deltalake::DeltaTableError) -> bool {
    matches!(
        e,
        deltalake::DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(_)
                | TransactionError::VersionAlreadyExists(_)
                | TransactionError::MaxCommitAttempts(_)
        }
    )
}
