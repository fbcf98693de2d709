//! Commits the table layer builds itself (added files, offsets only), and telling a commit
//! another writer's schema change refused from a real failure.
//!
//! Data flow: actions (Add files) + application transactions → [`commit_actions`] →
//! delta-rs's CommitBuilder (concurrent blind appends are merged; a commit touching the same
//! app id, or a winning commit that changed metadata or protocol, is refused) → the table
//! handle moves to the new version's snapshot.

use deltalake::DeltaTable;
use deltalake::DeltaTableError;
use deltalake::kernel::Action;
use deltalake::kernel::transaction::{
    CommitBuilder, CommitConflictError, CommitProperties, TableReference, TransactionError,
};
use deltalake::protocol::{DeltaOperation, SaveMode};

/// Attempts of one append when other writers keep changing the schema under it.
pub(super) const MAX_ATTEMPTS: u32 = 5;

/// Whether a commit was refused only because another writer changed the table's metadata
/// (schema) or protocol since this handle loaded it: reload and try again.
pub(super) fn table_changed_under(e: &DeltaTableError) -> bool {
    matches!(
        e,
        DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(
                CommitConflictError::MetadataChanged | CommitConflictError::ProtocolChanged(_)
            )
        }
    )
}

/// A commit without data that records application transactions (Kafka offsets, or the events
/// version a fold reached); `table` moves to the new version.
pub(crate) async fn commit_txns_only(
    table: &mut DeltaTable,
    props: CommitProperties,
) -> Result<u64, DeltaTableError> {
    commit_actions(table, props, Vec::new()).await
}

/// An append commit of `actions` (added files) with the application transactions of
/// `props`; `table` moves to the new version.
pub(super) async fn commit_actions(
    table: &mut DeltaTable,
    props: CommitProperties,
    actions: Vec<Action>,
) -> Result<u64, DeltaTableError> {
    let operation = DeltaOperation::Write {
        mode: SaveMode::Append,
        partition_by: None,
        predicate: None,
    };
    let snapshot = table.snapshot()?;
    let committed = CommitBuilder::from(props)
        .with_actions(actions)
        .build(
            Some(snapshot as &dyn TableReference),
            table.log_store(),
            operation,
        )
        .await?;
    let version = committed.version();
    // The commit's own post-commit snapshot already holds every version up to this one
    // (other writers' too); reloading would list and replay the log a second time.
    table.state = Some(committed.snapshot());
    Ok(version)
}
