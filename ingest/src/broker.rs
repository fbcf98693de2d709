//! The embedded broker: librdkafka's mock cluster, in process, for demos and tests.
//!
//! Data flow: `gdx ingest`/`gdx demo` without `--brokers` → [`EmbeddedBroker::start`] creates
//! the cluster and one topic per catalog dataset → its bootstrap address is printed as
//! `broker: HOST:PORT` so any Kafka client can publish to it while gdx runs.
//!
//! Its limit: librdkafka's mock cluster keeps only the newest ~5 MB (and at most 100,000
//! message sets) per partition. Producers into it must apply backpressure ([`LagGate`]);
//! data dropped before it was ingested raises the worker's offset-gap alarm.

use std::time::Duration;

use gdx_catalog::Catalog;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// An in-process Kafka cluster.
pub struct EmbeddedBroker {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EmbeddedBroker({})", self.bootstrap())
    }
}

impl EmbeddedBroker {
    /// Starts a cluster of `brokers` brokers with every catalog topic at `partitions`.
    pub fn start(
        brokers: i32,
        catalog: &Catalog,
        partitions: i32,
    ) -> rdkafka::error::KafkaResult<Self> {
        let cluster = MockCluster::new(brokers)?;
        for ds in catalog.datasets() {
            cluster.create_topic(&ds.topic, partitions, 1)?;
        }
        Ok(Self { cluster })
    }

    pub fn bootstrap(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}

/// Holds a producer back while the ingest group lags too far behind on a topic.
pub struct LagGate {
    consumer: BaseConsumer,
    max_lag: i64,
}

impl std::fmt::Debug for LagGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LagGate(max_lag {})", self.max_lag)
    }
}

impl LagGate {
    /// Watches `group`'s committed offsets; `max_lag` is in messages per partition.
    pub fn new(brokers: &str, group: &str, max_lag: i64) -> rdkafka::error::KafkaResult<Self> {
        let consumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        Ok(Self { consumer, max_lag })
    }

    /// The largest lag over the partitions of `topic` (high watermark − committed offset).
    pub fn lag(&self, topic: &str) -> rdkafka::error::KafkaResult<i64> {
        let md = self
            .consumer
            .fetch_metadata(Some(topic), Duration::from_secs(5))?;
        let partitions: Vec<i32> = md
            .topics()
            .iter()
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        let mut tpl = TopicPartitionList::new();
        for p in &partitions {
            tpl.add_partition(topic, *p);
        }
        let committed = self
            .consumer
            .committed_offsets(tpl, Duration::from_secs(5))?;
        let mut worst = 0;
        for e in committed.elements() {
            let (_, high) =
                self.consumer
                    .fetch_watermarks(topic, e.partition(), Duration::from_secs(5))?;
            let done = match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            };
            worst = worst.max(high - done);
        }
        Ok(worst)
    }

    /// Blocks while the lag on `topic` is above the limit.
    pub fn wait(&self, topic: &str) -> rdkafka::error::KafkaResult<()> {
        while self.lag(topic)? > self.max_lag {
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}
