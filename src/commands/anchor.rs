//! The audit anchor on Kafka: chain heads published on `gdx.audit`, read back by
//! `gdx audit verify --brokers`.
//!
//! Data flow: the exchange's anchor task → [`KafkaAnchor::publish`] (one message per head,
//! key = replica, value = the anchor's JSON; acknowledged by every in-sync replica before
//! it returns) → the topic, outside the lake's trust boundary → [`read_anchors`] reads the
//! topic from its beginning to its end, each replica's anchors in order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use gdx_exchange::audit::anchor::{AUDIT_TOPIC, Anchor, AnchorSink};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// Publishes anchors on `gdx.audit`.
pub(crate) struct KafkaAnchor {
    producer: FutureProducer,
}

impl std::fmt::Debug for KafkaAnchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KafkaAnchor")
    }
}

impl KafkaAnchor {
    pub(crate) fn new(brokers: &str) -> anyhow::Result<Self> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            // A head that cannot be delivered is reported within this, not retried forever.
            .set("message.timeout.ms", "10000")
            .create()
            .context("creating the gdx.audit producer")?;
        Ok(Self { producer })
    }
}

impl AnchorSink for KafkaAnchor {
    fn publish(&self, anchor: &Anchor) -> Result<(), String> {
        let value = serde_json::to_vec(anchor).map_err(|e| e.to_string())?;
        let record = FutureRecord::to(AUDIT_TOPIC)
            .key(anchor.replica.as_bytes())
            .payload(&value);
        let delivery = self
            .producer
            .send_result(record)
            .map_err(|(e, _)| format!("{AUDIT_TOPIC}: {e}"))?;
        match futures::executor::block_on(delivery) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(format!("{AUDIT_TOPIC}: {e}")),
            Err(_) => Err(format!("{AUDIT_TOPIC}: the producer went away")),
        }
    }
}

/// Each replica's anchors on `gdx.audit`, in the order published (empty when the topic has
/// none).
pub(crate) fn read_anchors(brokers: &str) -> anyhow::Result<BTreeMap<String, Vec<Anchor>>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "gdx-audit-verify")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating the gdx.audit consumer")?;
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(AUDIT_TOPIC), timeout)
        .context("reading gdx.audit's metadata")?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == AUDIT_TOPIC && t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut ends = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(AUDIT_TOPIC, *p, timeout)
            .with_context(|| format!("reading gdx.audit partition {p}'s offsets"))?;
        if high > low {
            ends.insert(*p, high);
            assignment.add_partition_offset(AUDIT_TOPIC, *p, Offset::Beginning)?;
        }
    }
    let mut all: BTreeMap<String, Vec<Anchor>> = BTreeMap::new();
    if ends.is_empty() {
        return Ok(all);
    }
    consumer.assign(&assignment)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ends.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "gdx.audit: not read to its end within 60 s"
        );
        let Some(m) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = m.context("reading gdx.audit")?;
        if let Some(a) = m
            .payload()
            .and_then(|p| serde_json::from_slice::<Anchor>(p).ok())
        {
            all.entry(a.replica.clone()).or_default().push(a);
        }
        if ends
            .get(&m.partition())
            .is_some_and(|&end| m.offset() + 1 >= end)
        {
            ends.remove(&m.partition());
        }
    }
    Ok(all)
}
