//! Answers in the format the caller accepts: JSON, CSV, Arrow IPC stream, Parquet.
//!
//! Data flow: `Accept` (or `?format=`) → [`Format`] → a JSON page is encoded whole (it is
//! capped); the other formats stream: a task pulls record batches from the query, encodes
//! each as it comes and sends the bytes on (a Parquet file's row groups are flushed as they
//! fill), so a large export never sits whole in memory; when the stream ends the task
//! reports the row count (the export's audit record) and a failure aborts the body.

use std::io::Write;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use axum::body::{Body, Bytes};
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::error::ApiError;

/// An answer format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Csv,
    Arrow,
    Parquet,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Arrow => "application/vnd.apache.arrow.stream",
            Format::Parquet => "application/vnd.apache.parquet",
        }
    }

    /// From `?format=` or else the `Accept` header (JSON when neither says).
    pub fn negotiate(param: Option<&str>, accept: Option<&str>) -> Result<Self, ApiError> {
        if let Some(p) = param {
            return match p {
                "json" => Ok(Format::Json),
                "csv" => Ok(Format::Csv),
                "arrow" => Ok(Format::Arrow),
                "parquet" => Ok(Format::Parquet),
                _ => Err(ApiError::bad_request(
                    "bad_format",
                    "format is one of json, csv, arrow, parquet",
                )),
            };
        }
        let Some(accept) = accept else {
            return Ok(Format::Json);
        };
        for part in accept.split(',') {
            let mime = part.split(';').next().unwrap_or("").trim();
            match mime {
                "application/json" | "*/*" | "application/*" => return Ok(Format::Json),
                "text/csv" | "text/*" => return Ok(Format::Csv),
                "application/vnd.apache.arrow.stream" => return Ok(Format::Arrow),
                "application/vnd.apache.parquet" | "application/x-parquet" => {
                    return Ok(Format::Parquet);
                }
                _ => {}
            }
        }
        Err(ApiError::new(
            axum::http::StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "answers are application/json, text/csv, application/vnd.apache.arrow.stream or application/vnd.apache.parquet",
        ))
    }
}

/// Batches as a JSON array of objects (nulls written as null).
pub fn json_rows(batches: &[RecordBatch]) -> Result<Vec<u8>, ApiError> {
    let mut w = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, arrow::json::writer::JsonArray>(Vec::new());
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    w.write_batches(&refs)
        .and_then(|()| w.finish())
        .map_err(|e| ApiError::internal(format!("encoding JSON rows: {}", kind(&e))))?;
    let out = w.into_inner();
    Ok(if out.is_empty() { b"[]".to_vec() } else { out })
}

fn kind(e: &arrow::error::ArrowError) -> &'static str {
    match e {
        arrow::error::ArrowError::IoError(..) => "an I/O error",
        _ => "an Arrow encoding error",
    }
}

/// A `Write` whose bytes are taken out after each batch.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn take(&self) -> Bytes {
        Bytes::from(std::mem::take(
            &mut *self.0.lock().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

enum Encoder {
    Csv(arrow::csv::Writer<Shared>),
    Arrow(arrow::ipc::writer::StreamWriter<Shared>),
    Parquet(parquet::arrow::ArrowWriter<Shared>),
    Json { first: bool },
}

/// Row groups of a streamed Parquet file are flushed at about this size.
const PARQUET_ROW_GROUP_BYTES: usize = 8 << 20;

impl Encoder {
    fn new(
        format: Format,
        schema: arrow::datatypes::SchemaRef,
        buf: &Shared,
    ) -> Result<Self, String> {
        Ok(match format {
            Format::Csv => Encoder::Csv(
                arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(buf.clone()),
            ),
            Format::Arrow => Encoder::Arrow(
                arrow::ipc::writer::StreamWriter::try_new(buf.clone(), &schema)
                    .map_err(|e| kind(&e).to_owned())?,
            ),
            Format::Parquet => Encoder::Parquet(
                parquet::arrow::ArrowWriter::try_new(buf.clone(), schema, None)
                    .map_err(|_| "a Parquet encoding error".to_owned())?,
            ),
            Format::Json => {
                buf.clone().write_all(b"[").map_err(|e| e.to_string())?;
                Encoder::Json { first: true }
            }
        })
    }

    fn write(&mut self, batch: &RecordBatch, buf: &Shared) -> Result<(), String> {
        match self {
            Encoder::Csv(w) => w.write(batch).map_err(|e| kind(&e).to_owned()),
            Encoder::Arrow(w) => w.write(batch).map_err(|e| kind(&e).to_owned()),
            Encoder::Parquet(w) => {
                w.write(batch)
                    .map_err(|_| "a Parquet encoding error".to_owned())?;
                if w.in_progress_size() >= PARQUET_ROW_GROUP_BYTES {
                    w.flush()
                        .map_err(|_| "a Parquet encoding error".to_owned())?;
                }
                Ok(())
            }
            Encoder::Json { first } => {
                let rows = json_rows(std::slice::from_ref(batch)).map_err(|e| e.reason)?;
                let inner = &rows[1..rows.len() - 1];
                if !inner.is_empty() {
                    let mut b = buf.clone();
                    if !*first {
                        b.write_all(b",").map_err(|e| e.to_string())?;
                    }
                    b.write_all(inner).map_err(|e| e.to_string())?;
                    *first = false;
                }
                Ok(())
            }
        }
    }

    fn finish(self, buf: &Shared) -> Result<(), String> {
        match self {
            Encoder::Csv(_) => Ok(()),
            Encoder::Arrow(mut w) => w.finish().map_err(|e| kind(&e).to_owned()),
            Encoder::Parquet(w) => w
                .close()
                .map(|_| ())
                .map_err(|_| "a Parquet encoding error".to_owned()),
            Encoder::Json { .. } => buf.clone().write_all(b"]").map_err(|e| e.to_string()),
        }
    }
}

/// What a finished stream reports.
#[derive(Debug, Clone)]
pub struct Streamed {
    pub rows: i64,
    /// Values of the subject column seen (capped).
    pub subjects: Vec<String>,
    /// Why the stream stopped early (value-free), if it did.
    pub error: Option<String>,
}

/// The first `n` rows of `batches`.
pub fn first_rows(batches: Vec<RecordBatch>, n: usize) -> Vec<RecordBatch> {
    let mut keep = n;
    batches
        .into_iter()
        .filter_map(|b| {
            let k = b.num_rows().min(keep);
            keep -= k;
            (k > 0).then(|| b.slice(0, k))
        })
        .collect()
}

/// Most subjects one audit record lists.
pub const MAX_SUBJECTS: usize = 1000;

/// Streams `stream` encoded as `format`; `done` runs when it ends (it may refuse, e.g. when
/// the export's audit record cannot be written: the body is then cut off with an error).
pub fn stream_body<D, Fut>(
    format: Format,
    mut stream: SendableRecordBatchStream,
    subject: Option<String>,
    done: D,
) -> Body
where
    D: FnOnce(Streamed) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let buf = Shared::default();
        let mut report = Streamed {
            rows: 0,
            subjects: vec![],
            error: None,
        };
        let fail = |why: String| std::io::Error::other(why);
        let result: Result<(), String> = async {
            let schema = stream.schema();
            let shown = match subject.as_deref().map(|s| schema.index_of(s)) {
                Some(Ok(i)) => {
                    let keep: Vec<usize> = (0..schema.fields().len()).filter(|&c| c != i).collect();
                    Some(keep)
                }
                _ => None,
            };
            let out_schema = match &shown {
                Some(keep) => {
                    std::sync::Arc::new(schema.project(keep).map_err(|e| kind(&e).to_owned())?)
                }
                None => schema.clone(),
            };
            let mut enc = Encoder::new(format, out_schema, &buf)?;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|_| "the query failed while streaming".to_owned())?;
                report.rows += batch.num_rows() as i64;
                collect_subjects(&batch, subject.as_deref(), &mut report.subjects);
                let batch = match &shown {
                    Some(keep) => batch.project(keep).map_err(|e| kind(&e).to_owned())?,
                    None => batch,
                };
                enc.write(&batch, &buf)?;
                let bytes = buf.take();
                if !bytes.is_empty() && tx.send(Ok(bytes)).await.is_err() {
                    return Err("the client went away".to_owned());
                }
            }
            enc.finish(&buf)?;
            Ok(())
        }
        .await;
        report.error = result.err();
        let failed = report.error.clone();
        let recorded = done(report).await;
        match (failed, recorded) {
            (None, Ok(())) => {
                let bytes = buf.take();
                if !bytes.is_empty() {
                    let _ = tx.send(Ok(bytes)).await;
                }
            }
            (Some(why), _) | (None, Err(why)) => {
                let _ = tx.send(Err(fail(why))).await;
            }
        }
    });
    Body::from_stream(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// Adds the values of column `subject` of `batch` to `out` (at most [`MAX_SUBJECTS`]).
pub fn collect_subjects(batch: &RecordBatch, subject: Option<&str>, out: &mut Vec<String>) {
    let Some(col) = subject.and_then(|s| batch.column_by_name(s)) else {
        return;
    };
    let Ok(text) = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8) else {
        return;
    };
    use arrow::array::{Array, AsArray};
    let text = text.as_string::<i32>();
    for i in 0..text.len() {
        if out.len() >= MAX_SUBJECTS {
            return;
        }
        if !text.is_null(i) {
            out.push(text.value(i).to_owned());
        }
    }
}
