//! Ingest workers: Kafka feeds into the lake, exactly once.
//!
//! Data flow: a librdkafka consumer in a consumer group (auto-commit off) runs on its own
//! thread → on every partition assignment the worker reads, per partition, the last offset
//! the lake holds (Delta application transactions, app id `<job>/<cluster id>/<topic>/<partition>`)
//! and assigns the partition at that offset + 1 — or stops it with an offset-gap alarm when
//! the broker no longer has that offset → messages are buffered per topic → every
//! `flush_rows` messages or `flush_interval` (or at once when the consumer has caught up
//! with a tenth of `flush_rows` buffered) the run is handed to a flush task that decodes
//! and commits it ([`sink`]) while the worker goes on polling the next run (at most one run
//! in flight: the next hand-over waits for it) → group offsets are committed once a run has
//! landed, for lag monitoring only → before partitions are revoked, and on stop, the run in
//! flight lands and the buffers are flushed.

mod dead_letters;
mod decoding;
mod sink;

pub use sink::FlushStats;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gdx_catalog::Catalog;
use gdx_lake::LakeLocation;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::message::{BorrowedMessage, Headers as _, Message as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext};
use tokio::runtime::Handle;

use crate::decode::{DEFAULT_MAX_MESSAGE_BYTES, Headers, Message};
use decoding::Decoders;
use sink::Sinks;

/// Errors of an ingest worker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error(transparent)]
    Lake(#[from] gdx_lake::Error),
    #[error("topic {0} is not in the catalog")]
    UnknownTopic(String),
    #[error(
        "offset gap on {topic}/{partition}: the lake holds offsets up to {stored}, but the broker's log now starts at {log_start}; {lost} messages were deleted by retention before they were ingested. The partition is stopped; replay the missing data and restart"
    )]
    OffsetGap {
        topic: String,
        partition: i32,
        stored: i64,
        log_start: i64,
        lost: i64,
    },
    #[error("cannot reach the Kafka cluster at {0} (no cluster id)")]
    NoCluster(String),
    #[error("a flush task failed: {0}")]
    Task(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Messages a run holds before it is handed over, unless configured otherwise.
pub const DEFAULT_FLUSH_ROWS: usize = 50_000;

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub brokers: String,
    pub group: String,
    /// Names the job in the lake's application transactions.
    pub job: String,
    pub lake: LakeLocation,
    pub flush_rows: usize,
    pub flush_interval: Duration,
    pub max_message_bytes: usize,
    /// Consumer-group session timeout: how long a worker that died keeps its partitions.
    pub session_timeout: Duration,
}

impl WorkerConfig {
    pub fn new(brokers: impl Into<String>, lake: LakeLocation) -> Self {
        Self {
            brokers: brokers.into(),
            group: "gdx-ingest".into(),
            job: "ingest".into(),
            lake,
            flush_rows: DEFAULT_FLUSH_ROWS,
            flush_interval: Duration::from_secs(2),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            session_timeout: Duration::from_secs(10),
        }
    }
}

/// Totals of one worker's run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WorkerStats {
    pub messages: usize,
    pub skipped_duplicates: usize,
    pub rows: usize,
    pub dead_letters: usize,
    pub commits: usize,
}

/// What a flush task hands back: the sinks it borrowed, and per topic what landed.
type Landed = (Sinks, Result<Vec<(String, FlushStats)>>);

struct State {
    /// `None` while a flush task holds them.
    sinks: Option<Sinks>,
    /// The run being decoded and committed, and the group offsets to commit once it landed.
    inflight: Option<(tokio::task::JoinHandle<Landed>, TopicPartitionList)>,
    decoders: Decoders,
    /// Messages buffered per topic, in arrival order.
    buffers: BTreeMap<String, Vec<Message>>,
    buffered: usize,
    /// Next offset to accept per (topic, partition); anything below is already in the lake.
    next: HashMap<String, HashMap<i32, i64>>,
    stats: WorkerStats,
    alarms: Vec<Error>,
    failure: Option<Error>,
}

struct Context {
    rt: Handle,
    state: Arc<Mutex<State>>,
}

impl ClientContext for Context {
    /// librdkafka's statistics (every few seconds): per-partition consumer lag as a gauge.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    metrics::gauge!("gdx_ingest_partition_lag", "topic" => topic.clone(), "partition" => partition.to_string()).set(p.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for Context {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let mut state = self.state.lock().expect("worker state");
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let mut assign = TopicPartitionList::new();
                // gdx's own output topics and Kafka's internal ones are not feeds.
                let parts: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .filter(|e| is_feed_topic(e.topic()))
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                let resumed = land(&mut state, consumer, &self.rt).and_then(|()| {
                    let sinks = state.sinks.as_mut().expect("no flush in flight");
                    self.rt.block_on(sinks.resume_offsets(&parts))
                });
                match resumed {
                    Ok(offsets) => {
                        for ((topic, partition), offset) in parts.into_iter().zip(offsets) {
                            match check_gap(consumer, &topic, partition, offset) {
                                Ok(()) => {
                                    let at = offset.map_or(Offset::Beginning, Offset::Offset);
                                    assign
                                        .add_partition_offset(&topic, partition, at)
                                        .expect("valid offset");
                                    state
                                        .next
                                        .entry(topic)
                                        .or_default()
                                        .insert(partition, offset.unwrap_or(0));
                                }
                                Err(alarm @ Error::OffsetGap { .. }) => {
                                    tracing::error!(%alarm, "offset gap: partition stopped");
                                    metrics::counter!("gdx_ingest_offset_gap_alarms_total", "topic" => topic).increment(1);
                                    state.alarms.push(alarm);
                                }
                                Err(e) => {
                                    tracing::error!(error = %e, topic, partition, "cannot read the partition's log start; partition not assigned");
                                    state.failure.get_or_insert(e);
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the lake's offsets; partitions not assigned");
                        state.failure.get_or_insert(e);
                    }
                }
                if let Err(e) = consumer.assign(&assign) {
                    state.failure.get_or_insert(e.into());
                }
                // Group offsets mirror the lake (lag metrics, and producers' backpressure):
                // a worker that died after its lake commit but before its group commit
                // would otherwise leave the lag looking higher than it is.
                let mut done = TopicPartitionList::new();
                for e in assign.elements() {
                    if let Offset::Offset(o) = e.offset() {
                        done.add_partition_offset(e.topic(), e.partition(), Offset::Offset(o))
                            .expect("valid offset");
                    }
                }
                if done.count() > 0
                    && let Err(e) = consumer.commit(&done, CommitMode::Async)
                {
                    tracing::warn!(error = %e, "group offset commit failed (lag metrics only)");
                }
            }
            _ => {
                // Revocation (or a rebalance error): land what we hold before letting go.
                if let Err(e) = drain(&mut state, consumer, &self.rt) {
                    state.failure.get_or_insert(e);
                }
                state.next.clear();
                if let Err(e) = consumer.unassign() {
                    state.failure.get_or_insert(e.into());
                }
            }
        }
    }
}

/// An offset gap is an error: the lake's next offset must still be on the broker.
fn check_gap(
    consumer: &BaseConsumer<Context>,
    topic: &str,
    partition: i32,
    next: Option<i64>,
) -> Result<()> {
    if let Some(next) = next {
        let (low, _high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
        if next < low {
            return Err(Error::OffsetGap {
                topic: topic.to_owned(),
                partition,
                stored: next - 1,
                log_start: low,
                lost: low - next,
            });
        }
    }
    Ok(())
}

/// Starts decoding the buffered run and hands it to a flush task once the previous run has
/// landed (decoding overlaps that wait).
fn start_flush(state: &mut State, consumer: &BaseConsumer<Context>, rt: &Handle) -> Result<()> {
    if state.buffered == 0 {
        return land(state, consumer, rt);
    }
    let buffers = std::mem::take(&mut state.buffers);
    state.buffered = 0;
    let now_us = chrono::Utc::now().timestamp_micros();
    let runs: Vec<_> = buffers
        .into_iter()
        .map(|(topic, msgs)| state.decoders.start(rt, topic, msgs, now_us))
        .collect();
    let mut offsets = TopicPartitionList::new();
    for run in &runs {
        for (p, o) in &run.last {
            offsets
                .add_partition_offset(&run.topic, *p, Offset::Offset(o + 1))
                .expect("valid offset");
        }
    }
    land(state, consumer, rt)?;
    let mut sinks = state.sinks.take().expect("no flush in flight");
    let task = rt.spawn(async move {
        let mut landed = Vec::new();
        for run in runs {
            let started = Instant::now();
            let topic = run.topic.clone();
            match sinks.flush_run(run, now_us).await {
                Ok(s) => {
                    metrics::histogram!("gdx_ingest_commit_seconds", "topic" => topic.clone())
                        .record(started.elapsed().as_secs_f64());
                    landed.push((topic, s));
                }
                Err(e) => return (sinks, Err(e)),
            }
        }
        (sinks, Ok(landed))
    });
    state.inflight = Some((task, offsets));
    Ok(())
}

/// Waits for the run in flight to land (if any), takes the sinks back, then commits the
/// group offsets of what landed (for lag monitoring only; the lake is the source of truth).
fn land(state: &mut State, consumer: &BaseConsumer<Context>, rt: &Handle) -> Result<()> {
    let Some((task, offsets)) = state.inflight.take() else {
        return Ok(());
    };
    let (sinks, landed) = rt.block_on(task).map_err(|e| Error::Task(e.to_string()))?;
    state.sinks = Some(sinks);
    for (topic, s) in landed? {
        metrics::counter!("gdx_ingest_messages_total", "topic" => topic.clone())
            .increment(s.messages as u64);
        metrics::counter!("gdx_ingest_rows_committed_total", "topic" => topic.clone())
            .increment(s.rows as u64);
        metrics::counter!("gdx_ingest_dead_letters_total", "topic" => topic)
            .increment(s.dead_letters as u64);
        state.stats.rows += s.rows;
        state.stats.dead_letters += s.dead_letters;
        state.stats.commits += s.commits;
    }
    if let Err(e) = consumer.commit(&offsets, CommitMode::Async) {
        tracing::warn!(error = %e, "group offset commit failed (lag metrics only)");
    }
    Ok(())
}

/// Lands everything held: the run in flight, then the buffers.
fn drain(state: &mut State, consumer: &BaseConsumer<Context>, rt: &Handle) -> Result<()> {
    start_flush(state, consumer, rt)?;
    land(state, consumer, rt)
}

/// A polled message, copied out of librdkafka's buffer; `topic` is the topic's shared name
/// (the previous message's, reused when it is the same topic).
fn owned(m: &BorrowedMessage<'_>, topic: &mut Arc<str>) -> Message {
    if &**topic != m.topic() {
        *topic = m.topic().into();
    }
    let headers = match m.headers() {
        None => Headers::default(),
        Some(h) => {
            let (count, bytes) = h.iter().fold((0, 0), |(c, b), x| {
                (c + 1, b + x.key.len() + x.value.map_or(0, <[u8]>::len))
            });
            let mut out = Headers::with_capacity(count, bytes);
            for x in h.iter() {
                out.push(x.key, x.value.unwrap_or_default());
            }
            out
        }
    };
    Message {
        topic: topic.clone(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        timestamp_ms: m.timestamp().to_millis(),
        headers,
    }
}

/// A run of at least `flush_rows / IDLE_FLUSH_DIVISOR` messages lands as soon as the
/// consumer is idle, without waiting for the flush interval.
const IDLE_FLUSH_DIVISOR: usize = 10;

/// The subscription: every topic named like a department feed.
const FEED_TOPICS: &str = "^[a-z][a-z0-9]*[.][a-z][a-z0-9_]*$";

/// Whether a matching topic is a department feed (gdx's own `gdx.*` topics are not).
fn is_feed_topic(topic: &str) -> bool {
    !topic.starts_with("gdx.") && !topic.starts_with('_')
}

/// The worker's fetch settings (also one of the two configurations `gdx bench ingest`'s bare
/// consumer runs with).
pub fn tune_fetching(config: &mut ClientConfig) -> &mut ClientConfig {
    config
        // A full prefetch queue (while a run is being committed) would otherwise pause
        // fetching for a whole second (librdkafka's default), starving the next run.
        .set("fetch.queue.backoff.ms", "20")
        // Bounded prefetch: half of librdkafka's 64 MB queue. Fetch sizes stay at the
        // defaults (50 MB per fetch, 1 MB per partition): capping them at 16 MB and 256 KB
        // cut the 10M-record backlog over 2,048 partitions from 296k to 233k msg/s (a bare
        // consumer: 1.1M → 0.29M msg/s) for no memory gain (`gdx bench ingest --copies 10
        // --partitions 2048`: peak RSS 564 MiB capped, 578 MiB not).
        .set("queued.max.messages.kbytes", "32768")
        // A fetch request whose partitions have no new data waits this long at the broker,
        // and a broker connection has one fetch in flight. With many partitions, some
        // caught up and the rest paused by the full prefetch queue, such a fetch held every
        // other partition back for librdkafka's default 500 ms: on the 10M-record backlog
        // over 2,048 partitions, 18 stalls of ~0.5 s in a 28 s run. 100 ms: no stall over
        // 0.25 s, 426k instead of 361k msg/s (`gdx bench ingest --copies 10 --partitions
        // 2048`, one run each); the 256-partition bench is unchanged. A new message still
        // answers a waiting fetch at once; an idle consumer sends up to ten fetches a second.
        .set("fetch.wait.max.ms", "100")
}

/// Runs one worker until `stop` is set (then flushes and returns) or a fatal error.
/// Blocking: call it on a thread of its own; lake I/O runs on `rt`.
pub fn run(
    cfg: &WorkerConfig,
    catalog: Arc<Catalog>,
    rt: Handle,
    stop: &AtomicBool,
) -> Result<(WorkerStats, Vec<Error>)> {
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &cfg.brokers)
        .create()?;
    let cluster = probe
        .client()
        .fetch_cluster_id(Duration::from_secs(10))
        .ok_or_else(|| Error::NoCluster(cfg.brokers.clone()))?;
    drop(probe);
    let sinks = Sinks::new(cfg.lake.clone(), catalog.clone(), cfg.job.clone(), cluster);
    let state = Arc::new(Mutex::new(State {
        sinks: Some(sinks),
        inflight: None,
        decoders: Decoders::new(catalog.clone(), cfg.max_message_bytes),
        buffers: BTreeMap::new(),
        buffered: 0,
        next: HashMap::new(),
        stats: WorkerStats::default(),
        alarms: Vec::new(),
        failure: None,
    }));
    let consumer: BaseConsumer<Context> = tune_fetching(&mut ClientConfig::new())
        .set("bootstrap.servers", &cfg.brokers)
        .set("group.id", &cfg.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            cfg.session_timeout.as_millis().to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (cfg.session_timeout.as_millis() / 4).max(100).to_string(),
        )
        .set("message.max.bytes", "10000000")
        .set("statistics.interval.ms", "5000")
        .set("topic.metadata.refresh.interval.ms", "10000")
        .create_with_context(Context {
            rt: rt.clone(),
            state: state.clone(),
        })?;
    // Every `<dept>.<dataset>` topic: the catalog's, and any other, whose messages become
    // `unknown_topic` dead letters instead of being ignored.
    consumer.subscribe(&[FEED_TOPICS])?;
    let mut last_flush = Instant::now();
    let mut topic: Arc<str> = Arc::from("");
    while !stop.load(Ordering::Relaxed) {
        let polled = consumer.poll(Duration::from_millis(100));
        let mut st = state.lock().expect("worker state");
        if let Some(e) = st.failure.take() {
            return Err(e);
        }
        let polled = match polled {
            Some(Err(e)) => {
                // Consumption errors (a subscribed topic that does not exist yet, a broker
                // going away) are reported and retried by librdkafka; they are not fatal.
                tracing::warn!(error = %e, "kafka consumption error");
                None
            }
            other => other,
        };
        let idle = polled.is_none();
        if let Some(result) = polled {
            let m = result?;
            st.stats.messages += 1;
            let next = st
                .next
                .get_mut(m.topic())
                .and_then(|t| t.get_mut(&m.partition()));
            match next {
                Some(next) if m.offset() >= *next => {
                    *next = m.offset() + 1;
                    let msg = owned(&m, &mut topic);
                    match st.buffers.get_mut(&*msg.topic) {
                        Some(run) => run.push(msg),
                        None => {
                            st.buffers.insert(msg.topic.to_string(), vec![msg]);
                        }
                    }
                    st.buffered += 1;
                }
                // Already in the lake, or a partition we no longer own.
                _ => st.stats.skipped_duplicates += 1,
            }
        }
        // A run that has landed is taken back at once: its group offsets (lag, and the
        // producers' backpressure) must not wait for the next run to fill.
        if st
            .inflight
            .as_ref()
            .is_some_and(|(task, _)| task.is_finished())
        {
            land(&mut st, &consumer, &rt)?;
        }
        // The clock is read when idle or every 512 messages, not for every message.
        let check_clock = idle || st.buffered.is_multiple_of(512);
        // Caught up with a sizeable run buffered (the end of a burst or backlog): nothing
        // is coming to fill it, so it lands now; a trickle still waits for the interval
        // rather than committing a few rows at a time.
        let burst_done = idle && st.buffered >= (cfg.flush_rows / IDLE_FLUSH_DIVISOR).max(1);
        if st.buffered >= cfg.flush_rows
            || burst_done
            || (st.buffered > 0 && check_clock && last_flush.elapsed() >= cfg.flush_interval)
        {
            start_flush(&mut st, &consumer, &rt)?;
            last_flush = Instant::now();
        }
    }
    let mut st = state.lock().expect("worker state");
    drain(&mut st, &consumer, &rt)?;
    let stats = st.stats.clone();
    let alarms = std::mem::take(&mut st.alarms);
    drop(st);
    consumer.unsubscribe();
    Ok((stats, alarms))
}
