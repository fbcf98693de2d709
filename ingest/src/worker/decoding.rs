//! The decode stage of a worker's pipeline.
//!
//! Data flow: a buffered run of one topic → [`Decoders::start`] spawns its decoding at once
//! (on the blocking pool, one chunk per core) and returns a [`Run`] holding the task → the
//! sink awaits it when the previous run has landed. So while run N is being written and
//! committed, run N+1 is already being decoded and run N+2 polled.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::RecordBatch;
use gdx_catalog::Catalog;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::{Error, Result};
use crate::decode::{DatasetDecoder, DeadLetter, Message, last_offsets};

/// A run decoded in chunks: event batches and dead letters.
pub(crate) struct DecodedRun {
    pub(crate) batches: Vec<RecordBatch>,
    pub(crate) dead_letters: Vec<DeadLetter>,
}

/// What a run carries to the sink.
pub(crate) enum RunContent {
    /// A catalog topic, being decoded.
    Decoding(JoinHandle<Result<DecodedRun>>),
    /// A topic the catalog does not know: every message becomes a dead letter.
    Unknown(Vec<Message>),
}

/// One topic's run, on its way to the lake.
pub(crate) struct Run {
    pub(crate) topic: String,
    /// Highest offset per partition in the run.
    pub(crate) last: HashMap<i32, i64>,
    pub(crate) messages: usize,
    pub(crate) content: RunContent,
}

/// One decoder per catalog topic, made on first use.
pub(crate) struct Decoders {
    catalog: Arc<Catalog>,
    max_message_bytes: usize,
    by_topic: HashMap<String, DatasetDecoder>,
}

impl Decoders {
    pub(crate) fn new(catalog: Arc<Catalog>, max_message_bytes: usize) -> Self {
        Self {
            catalog,
            max_message_bytes,
            by_topic: HashMap::new(),
        }
    }

    /// Starts decoding `msgs` (one topic's run) on `rt`; `now_us` stamps the rows.
    pub(crate) fn start(
        &mut self,
        rt: &Handle,
        topic: String,
        msgs: Vec<Message>,
        now_us: i64,
    ) -> Run {
        let last = last_offsets(&msgs);
        let messages = msgs.len();
        let content = match self.decoder(&topic) {
            Some(d) => RunContent::Decoding(rt.spawn(decode_parallel(d, msgs, now_us))),
            None => RunContent::Unknown(msgs),
        };
        Run {
            topic,
            last,
            messages,
            content,
        }
    }

    fn decoder(&mut self, topic: &str) -> Option<DatasetDecoder> {
        if !self.by_topic.contains_key(topic) {
            let ds = self.catalog.by_topic(topic)?;
            let d = DatasetDecoder::new(Arc::new(ds.clone()))
                .with_max_message_bytes(self.max_message_bytes);
            self.by_topic.insert(topic.to_owned(), d);
        }
        self.by_topic.get(topic).cloned()
    }
}

/// Smallest chunk worth a thread of its own.
const MIN_DECODE_CHUNK: usize = 4_096;

/// Decodes a run on the blocking pool (decoding is CPU work, kept off the I/O runtime's
/// threads), split into one chunk per core so a large run uses them all. Messages are
/// independent, so chunking changes nothing but the batch boundaries.
async fn decode_parallel(
    decoder: DatasetDecoder,
    msgs: Vec<Message>,
    now_us: i64,
) -> Result<DecodedRun> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = msgs.len().div_ceil(cores).max(MIN_DECODE_CHUNK);
    let mut chunks: Vec<Vec<Message>> = Vec::new();
    let mut it = msgs.into_iter().peekable();
    while it.peek().is_some() {
        chunks.push(it.by_ref().take(chunk).collect());
    }
    let tasks: Vec<_> = chunks
        .into_iter()
        .map(|c| {
            let decoder = decoder.clone();
            tokio::task::spawn_blocking(move || decoder.decode(&c, now_us))
        })
        .collect();
    let mut run = DecodedRun {
        batches: Vec::new(),
        dead_letters: Vec::new(),
    };
    for t in tasks {
        let d = t.await.map_err(|e| Error::Task(e.to_string()))?;
        run.batches.extend(d.batches);
        run.dead_letters.extend(d.dead_letters);
    }
    Ok(run)
}
