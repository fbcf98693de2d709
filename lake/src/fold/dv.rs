//! Deletion vectors: which rows of a data file an incremental fold has superseded.
//!
//! Data flow: a data file's `add` action → [`deleted_rows`] reads the rows its deletion vector
//! already removes (the Delta kernel's reader: inline, or a `deletion_vector_<uuid>.bin`
//! file beside the data) → the fold adds the rows it supersedes → [`write`] serializes one
//! vector per file into a single new DV file (the kernel's writer: version byte, then per
//! vector its size, the portable RoaringTreemap and a CRC-32) and returns each file's
//! descriptor → [`replace`] turns a file and its new descriptor into the `remove` + `add`
//! pair of the commit. Any Delta reader with the `deletionVectors` feature (delta-rs's scan,
//! Spark, DuckDB) then skips those rows; the data file itself is never rewritten.

use delta_kernel::actions::deletion_vector_writer::{
    KernelDeletionVector, StreamingDeletionVectorWriter,
};
use deltalake::DeltaTable;
use deltalake::Path;
use deltalake::kernel::{Action, Add, DeletionVectorDescriptor, StorageType};
use deltalake::logstore::LogStore;
use object_store::ObjectStoreExt;

use crate::table::delta_err;
use crate::{Error, Result};

/// The Delta table property that lets writers add deletion vectors (and upgrades the table's
/// protocol to the `deletionVectors` reader and writer feature).
pub(super) const ENABLE: &str = "delta.enableDeletionVectors";

/// The positions (0-based, in file order) of the rows `dv` removes from its file, ascending.
pub(super) async fn deleted_rows(
    table: &DeltaTable,
    dv: Option<DeletionVectorDescriptor>,
) -> Result<Vec<u64>> {
    let Some(dv) = dv else {
        return Ok(Vec::new());
    };
    let url = table.table_url().clone();
    let kernel: delta_kernel::actions::deletion_vector::DeletionVectorDescriptor =
        dv.try_into().map_err(|e| {
            generic(
                &url,
                format!("an unreadable deletion vector descriptor: {e}"),
            )
        })?;
    let storage = table.log_store().engine(None).storage_handler();
    let mut root = url.clone();
    if !root.path().ends_with('/') {
        root.set_path(&format!("{}/", root.path()));
    }
    // The kernel's storage handler blocks on its own I/O.
    tokio::task::spawn_blocking(move || kernel.row_indexes(storage, &root))
        .await
        .map_err(|e| generic(&url, format!("a deletion-vector read task failed: {e}")))?
        .map_err(|e| generic(&url, format!("cannot read a deletion vector: {e}")))
}

fn generic(url: &url::Url, message: String) -> Error {
    delta_err(url, deltalake::DeltaTableError::Generic(message))
}

/// Writes one deletion vector per entry of `rows` (each the complete set of removed
/// positions of one file, old and new) into one new DV file of `table`; returns their
/// descriptors in the same order.
pub(super) async fn write(
    table: &DeltaTable,
    rows: &[Vec<u64>],
) -> Result<Vec<DeletionVectorDescriptor>> {
    let url = table.table_url().clone();
    let generic = |m: String| generic(&url, m);
    let id = uuid::Uuid::new_v4();
    let mut bytes = Vec::new();
    let mut written = Vec::with_capacity(rows.len());
    {
        let mut writer = StreamingDeletionVectorWriter::new(&mut bytes);
        for positions in rows {
            let mut dv = KernelDeletionVector::new();
            dv.add_deleted_row_indexes(positions.iter().copied());
            written.push(
                writer
                    .write_deletion_vector(dv)
                    .map_err(|e| generic(format!("cannot encode a deletion vector: {e}")))?,
            );
        }
        writer
            .finalize()
            .map_err(|e| generic(format!("cannot encode a deletion vector: {e}")))?;
    }
    table
        .object_store()
        .put(
            &Path::from(format!("deletion_vector_{id}.bin")),
            bytes.into(),
        )
        .await
        .map_err(|e| generic(format!("cannot store a deletion vector file: {e}")))?;
    let encoded = z85::encode(id.as_bytes());
    Ok(written
        .into_iter()
        .map(|w| DeletionVectorDescriptor {
            storage_type: StorageType::UuidRelativePath,
            path_or_inline_dv: encoded.clone(),
            offset: Some(w.offset),
            size_in_bytes: w.size_in_bytes,
            cardinality: w.cardinality,
        })
        .collect())
}

/// The commit's actions for a file whose deletion vector becomes `dv`: the file's `add`
/// removed and added again with the new vector (statistics no longer tight: the bounds may
/// belong to removed rows), or only removed when no row of it is left.
pub(super) fn replace(add: Add, dv: DeletionVectorDescriptor) -> Vec<Action> {
    let records = add_records(&add);
    let remove = Action::Remove(deltalake::kernel::Remove {
        path: add.path.clone(),
        deletion_timestamp: Some(chrono::Utc::now().timestamp_millis()),
        data_change: true,
        extended_file_metadata: Some(true),
        partition_values: Some(add.partition_values.clone()),
        size: Some(add.size),
        deletion_vector: add.deletion_vector.clone(),
        tags: add.tags.clone(),
        base_row_id: add.base_row_id,
        default_row_commit_version: add.default_row_commit_version,
    });
    if records.is_some_and(|n| dv.cardinality >= n) {
        return vec![remove];
    }
    let stats = add.stats.as_deref().map(loose_bounds);
    let again = Add {
        deletion_vector: Some(dv),
        data_change: true,
        modification_time: add.modification_time,
        stats: stats.or(add.stats.clone()),
        ..add
    };
    vec![remove, Action::Add(again)]
}

/// The file's row count as its statistics give it.
fn add_records(add: &Add) -> Option<i64> {
    let stats: serde_json::Value = serde_json::from_str(add.stats.as_deref()?).ok()?;
    stats.get("numRecords")?.as_i64()
}

/// Statistics JSON with `tightBounds: false`.
fn loose_bounds(stats: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(stats) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.insert("tightBounds".into(), serde_json::Value::Bool(false));
            serde_json::Value::Object(m).to_string()
        }
        _ => stats.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_marked_loose_and_the_rest_kept() {
        let s = loose_bounds(r#"{"numRecords":3,"minValues":{"a":1}}"#);
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["tightBounds"], false);
        assert_eq!(v["numRecords"], 3);
        assert_eq!(v["minValues"]["a"], 1);
    }
}
