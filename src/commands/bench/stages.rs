//! What each of ingest's CPU stages costs alone, on one thread, over the bench's records:
//! the parts a pipeline can spread over the cores but not make cheaper.
//!
//! Data flow: the records as Kafka messages spread over the bench topic's partitions (as
//! the producer spreads them), in runs of the worker's run size → (decode) the worker's
//! [`DatasetDecoder`]: arrow-json, the catalog's checks, the provenance columns → (write)
//! an events Delta table in a temp dir, through the same [`EventTable::append`] the worker
//! uses (Parquet files, then one commit carrying one application transaction per partition
//! the run touched, as a real run's does) → the CPU time of each stage per message, on a
//! runtime with one thread while nothing else runs.
//!
//! With the CPU the bare consumer and the broker spend per message, the sum is what one
//! message costs at the least; `cores / sum` is the fastest gdx could possibly go on this
//! machine if the stages kept every core busy, the hand-overs between them cost nothing, and
//! nothing else ran.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use cpu_time::ProcessTime;
use gdx_catalog::Dataset;
use gdx_ingest::decode::{DatasetDecoder, Headers, Message};
use gdx_ingest::worker::DEFAULT_FLUSH_ROWS;
use gdx_lake::schema::events_schema;
use gdx_lake::table::ColumnLayout;
use gdx_lake::{EventTable, LakeLocation, PartitionTxn};

/// Messages per run, as the worker's.
const RUN: usize = DEFAULT_FLUSH_ROWS;
/// Passes over the records; each stage's figure is its fastest pass.
const PASSES: usize = 3;

/// CPU seconds per message of each stage, on one thread.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stages {
    pub(super) decode: f64,
    pub(super) write: f64,
}

/// Runs the stages over `lines` (`(key, value)` of `ds`'s topic, spread over `partitions`)
/// in `dir`.
pub(super) fn measure(
    ds: &Dataset,
    lines: &[(String, String)],
    partitions: i32,
    dir: &Path,
) -> anyhow::Result<Stages> {
    let partitions = partitions.max(1) as usize;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let decoder = DatasetDecoder::new(Arc::new(ds.clone()));
    let topic: Arc<str> = Arc::from(ds.topic.as_str());
    let n = lines.len().max(1) as f64;
    let mut best = Stages {
        decode: f64::MAX,
        write: f64::MAX,
    };
    for pass in 0..PASSES {
        let lake = LakeLocation::parse(
            dir.join(format!("stages-{pass}"))
                .to_str()
                .context("temp dir is UTF-8")?,
        )?;
        let mut table = rt.block_on(EventTable::open_or_create_with(
            lake.events(&ds.id),
            events_schema(ds),
            ds.id.as_str(),
            ColumnLayout::events(ds),
        ))?;
        let (mut decode, mut write, mut rows) = (0.0, 0.0, 0usize);
        let now_ms = chrono::Utc::now().timestamp_millis();
        for (r, run) in lines.chunks(RUN).enumerate() {
            // Message j goes to partition j % partitions, at offset j / partitions there.
            let msgs: Vec<Message> = run
                .iter()
                .enumerate()
                .map(|(i, (k, v))| Message {
                    topic: topic.clone(),
                    partition: ((r * RUN + i) % partitions) as i32,
                    offset: ((r * RUN + i) / partitions) as i64,
                    key: Some(k.as_bytes().to_vec()),
                    value: Some(v.as_bytes().to_vec()),
                    timestamp_ms: Some(now_ms),
                    headers: Headers::default(),
                })
                .collect();
            let t = ProcessTime::now();
            let decoded = decoder.decode(&msgs, now_ms * 1_000);
            decode += t.elapsed().as_secs_f64();
            anyhow::ensure!(
                decoded.dead_letters.is_empty(),
                "the bench's records decode without a dead letter ({} here)",
                decoded.dead_letters.len()
            );
            rows += decoded.batches.iter().map(|b| b.num_rows()).sum::<usize>();
            // The last offset of every partition this run touched.
            let mut last = vec![None; partitions];
            for m in &msgs {
                last[m.partition as usize] = Some(m.offset);
            }
            let txns: Vec<PartitionTxn> = last
                .iter()
                .enumerate()
                .filter_map(|(p, o)| {
                    o.map(|offset| PartitionTxn {
                        app_id: gdx_lake::table::app_id(
                            "bench-stages",
                            "local",
                            &ds.topic,
                            p as i32,
                        ),
                        offset,
                    })
                })
                .collect();
            let t = ProcessTime::now();
            rt.block_on(table.append(decoded.batches, &txns))?;
            write += t.elapsed().as_secs_f64();
        }
        anyhow::ensure!(
            rows == lines.len(),
            "stages decoded {rows} rows of {}",
            lines.len()
        );
        best.decode = best.decode.min(decode / n);
        best.write = best.write.min(write / n);
    }
    Ok(best)
}
