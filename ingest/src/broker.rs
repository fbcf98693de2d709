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
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, DefaultProducerContext, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// How long the embedded broker lets a new consumer group gather members before its first
/// assignment. Kafka's default (and the mock cluster's) is 3 s, which exists to spare a big
/// group a rebalance per joining member at start-up; on an in-process broker it only delays
/// every start. A worker that joins later causes one ordinary rebalance.
pub const INITIAL_REBALANCE_DELAY: Duration = Duration::from_millis(100);

/// An in-process Kafka cluster.
pub struct EmbeddedBroker {
    /// The client that owns the mock cluster (created with `test.mock.num.brokers`); the
    /// cluster lives as long as this client.
    owner: BaseProducer,
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
        let broker = Self::new(brokers)?;
        for ds in catalog.datasets() {
            broker.create_topic(&ds.topic, partitions)?;
        }
        Ok(broker)
    }

    /// Starts an empty cluster of `brokers` brokers.
    pub fn new(brokers: i32) -> rdkafka::error::KafkaResult<Self> {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", brokers.to_string())
            // librdkafka warns that the mock cluster replaced bootstrap.servers: expected.
            .set_log_level(RDKafkaLogLevel::Error)
            .create()?;
        let broker = Self { owner };
        broker.set_initial_rebalance_delay(INITIAL_REBALANCE_DELAY);
        Ok(broker)
    }

    fn cluster(&self) -> MockCluster<'_, DefaultProducerContext> {
        self.owner
            .client()
            .mock_cluster()
            .expect("the owner was created with test.mock.num.brokers")
    }

    /// Sets the broker's `group.initial.rebalance.delay.ms` (rdkafka has no safe binding).
    #[allow(unsafe_code)]
    fn set_initial_rebalance_delay(&self, delay: Duration) {
        use rdkafka::bindings as rd;
        let ms = i32::try_from(delay.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `owner` is a live client created with `test.mock.num.brokers`, so the
        // handle is a valid mock cluster owned by it, alive for this call; the setter only
        // takes the cluster's lock and stores the value.
        unsafe {
            let cluster = rd::rd_kafka_handle_mock_cluster(self.owner.client().native_ptr());
            assert!(!cluster.is_null(), "client without a mock cluster");
            rd::rd_kafka_mock_group_initial_rebalance_delay_ms(cluster, ms);
        }
    }

    /// Creates `topic` with `partitions` partitions (replication factor 1).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> rdkafka::error::KafkaResult<()> {
        self.cluster().create_topic(topic, partitions, 1)
    }

    pub fn bootstrap(&self) -> String {
        self.cluster().bootstrap_servers()
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use rdkafka::consumer::{BaseConsumer, Consumer};

    use super::*;

    #[test]
    fn a_new_group_gets_its_partitions_without_the_three_second_wait() {
        let broker = EmbeddedBroker::new(1).unwrap();
        broker.create_topic("ps.t", 2).unwrap();
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("group.id", "g")
            .create()
            .unwrap();
        let started = Instant::now();
        consumer.subscribe(&["ps.t"]).unwrap();
        while consumer.assignment().unwrap().count() < 2 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no assignment at all"
            );
            let _ = consumer.poll(Duration::from_millis(50));
        }
        // The mock cluster's default delay is 3 s; ours is 100 ms plus the join round trips.
        assert!(
            started.elapsed() < Duration::from_millis(2_500),
            "first assignment after {:?}",
            started.elapsed()
        );
    }
}
