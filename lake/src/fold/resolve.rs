//! The per-key decision of a fold, streamed over candidates sorted by key and recency.
//!
//! Data flow: candidate rows (current, deleted, new events) sorted by `_key`, then newest
//! first (`_event_time`, `_partition`, `_offset` descending, current before new on a tie) →
//! [`Resolver`] walks each key's run of rows: the first row wins; a winning delete goes to
//! `deleted`; a winning upsert goes to `current`, unless it is a new event whose fields equal
//! the current row's (a no-op: the current row stays, provenance and all) → batches of the
//! chosen rows. Memory: one batch plus the unfinished last key.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::array::{DynComparator, make_comparator};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::compute::{concat_batches, partition, take_record_batch};
use datafusion::arrow::datatypes::{Int32Type, SchemaRef};
use datafusion::arrow::error::ArrowError;

/// Which rows a pass keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// The state of every key whose latest event is an upsert.
    Current,
    /// Keys whose latest event is a delete.
    Deleted,
}

/// Source codes of the `_src` column.
pub(crate) const SRC_CURRENT: i32 = 0;
pub(crate) const SRC_NEW: i32 = 2;

#[derive(Debug)]
pub(crate) struct Resolver {
    keep: Keep,
    /// Schema of the input (target columns, then `_op`, `_src`).
    input: SchemaRef,
    /// Schema of the output (the target columns).
    output: SchemaRef,
    key: usize,
    op: usize,
    src: usize,
    /// Columns compared for the no-op check (the dataset's fields).
    data: Vec<usize>,
    pending: Option<RecordBatch>,
}

impl Resolver {
    pub(crate) fn new(
        keep: Keep,
        input: SchemaRef,
        data_fields: &[String],
    ) -> Result<Self, ArrowError> {
        let key = input.index_of("_key")?;
        let op = input.index_of("_op")?;
        let src = input.index_of("_src")?;
        let data = data_fields
            .iter()
            .map(|f| input.index_of(f))
            .collect::<Result<_, _>>()?;
        let output = Arc::new(
            input.project(
                &(0..input.fields().len())
                    .filter(|&i| i != op && i != src)
                    .collect::<Vec<_>>(),
            )?,
        );
        Ok(Self {
            keep,
            input,
            output,
            key,
            op,
            src,
            data,
            pending: None,
        })
    }

    pub(crate) fn output_schema(&self) -> SchemaRef {
        self.output.clone()
    }

    /// Takes one sorted batch; returns the decisions for every key completed so far.
    pub(crate) fn push(&mut self, batch: RecordBatch) -> Result<Option<RecordBatch>, ArrowError> {
        let batch = match self.pending.take() {
            Some(p) => concat_batches(&self.input, [&p, &batch])?,
            None => batch,
        };
        if batch.num_rows() == 0 {
            return Ok(None);
        }
        let runs = partition(&[batch.column(self.key).clone()])?.ranges();
        let last = runs.last().cloned().unwrap_or(0..0);
        // The last key may continue in the next batch.
        self.pending = Some(batch.slice(last.start, last.end - last.start));
        self.decide(&batch, &runs[..runs.len() - 1])
    }

    /// Decides the key still pending at the end of the input.
    pub(crate) fn finish(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        match self.pending.take() {
            Some(b) if b.num_rows() > 0 => {
                let runs = partition(&[b.column(self.key).clone()])?.ranges();
                self.decide(&b, &runs)
            }
            _ => Ok(None),
        }
    }

    fn decide(
        &self,
        batch: &RecordBatch,
        runs: &[std::ops::Range<usize>],
    ) -> Result<Option<RecordBatch>, ArrowError> {
        if runs.is_empty() {
            return Ok(None);
        }
        let ops = cast_utf8(batch.column(self.op))?;
        let ops = ops.as_string::<i32>();
        let src = batch.column(self.src).as_primitive::<Int32Type>();
        let mut same: Option<Vec<DynComparator>> = None;
        let mut chosen: Vec<u32> = Vec::with_capacity(runs.len());
        for run in runs {
            let winner = run.start;
            let delete = ops.value(winner) == "delete";
            match (self.keep, delete) {
                (Keep::Deleted, true) => chosen.push(winner as u32),
                (Keep::Current, false) => {
                    let current = run.clone().find(|&i| src.value(i) == SRC_CURRENT);
                    let pick = match current {
                        Some(c) if src.value(winner) == SRC_NEW => {
                            // Compare contents only where a new event would replace a row.
                            let cmp = match &same {
                                Some(c) => c,
                                None => same.insert(self.comparators(batch)?),
                            };
                            if cmp.iter().all(|f| f(winner, c).is_eq()) {
                                c
                            } else {
                                winner
                            }
                        }
                        _ => winner,
                    };
                    chosen.push(pick as u32);
                }
                _ => {}
            }
        }
        if chosen.is_empty() {
            return Ok(None);
        }
        let taken = take_record_batch(batch, &UInt32Array::from(chosen))?;
        let columns: Vec<ArrayRef> = (0..taken.num_columns())
            .filter(|&i| i != self.op && i != self.src)
            .map(|i| taken.column(i).clone())
            .collect();
        RecordBatch::try_new(self.output.clone(), columns).map(Some)
    }

    /// One comparator per data column of `batch` (nulls compare equal to nulls).
    fn comparators(&self, batch: &RecordBatch) -> Result<Vec<DynComparator>, ArrowError> {
        self.data
            .iter()
            .map(|&i| {
                let c = batch.column(i);
                make_comparator(c.as_ref(), c.as_ref(), SortOptions::default())
            })
            .collect()
    }
}

fn cast_utf8(a: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    datafusion::arrow::compute::cast(a, &datafusion::arrow::datatypes::DataType::Utf8)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int32Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn batch(rows: &[(&str, &str, &str, i32)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("_key", DataType::Utf8, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("_op", DataType::Utf8, false),
            Field::new("_src", DataType::Int32, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
                Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.3))),
            ],
        )
        .unwrap()
    }

    fn names(b: &RecordBatch) -> Vec<String> {
        let keys = b.column(0).as_string::<i32>();
        let names = b.column(1).as_string::<i32>();
        (0..b.num_rows())
            .map(|i| format!("{}={}", keys.value(i), names.value(i)))
            .collect()
    }

    #[test]
    fn keys_split_across_batches_are_decided_once() {
        let first = batch(&[
            ("a", "A2", "upsert", 2),
            ("a", "A1", "upsert", 0),
            ("b", "B", "upsert", 2), // new, same content as current → current row stays
        ]);
        let second = batch(&[
            ("b", "B", "upsert", 0),
            ("c", "", "delete", 2),
            ("c", "C", "upsert", 0),
        ]);
        let mut r = Resolver::new(Keep::Current, first.schema(), &["name".into()]).unwrap();
        let mut out = Vec::new();
        for b in [first.clone(), second.clone()] {
            if let Some(o) = r.push(b).unwrap() {
                out.extend(names(&o));
            }
        }
        if let Some(o) = r.finish().unwrap() {
            out.extend(names(&o));
        }
        assert_eq!(out, vec!["a=A2", "b=B"]);

        let mut d = Resolver::new(Keep::Deleted, first.schema(), &["name".into()]).unwrap();
        let mut out = Vec::new();
        for b in [first, second] {
            if let Some(o) = d.push(b).unwrap() {
                out.extend(names(&o));
            }
        }
        if let Some(o) = d.finish().unwrap() {
            out.extend(names(&o));
        }
        assert_eq!(out, vec!["c="]);
    }
}
