//! The allowance's outcomes on Kafka: [`KafkaOutcomes`], the one [`OutcomeSink`].
//!
//! Data flow: the publisher's messages → an idempotent producer (acks from every in-sync
//! replica; a full queue waits for deliveries, so the embedded broker is never outrun) →
//! `gdx.notifications` and `mca.elderly_allowance_payment`, each message naming its outcome in
//! a header; read back by a consumer of its own (assigned offsets, no group commits) when
//! the publisher asks what a topic already holds.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use anyhow::Context;
use gdx_exchange::scenarios::allowance::publish::{OUTCOME_HEADER, OutMessage, OutcomeSink};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Publishes outcomes to a Kafka cluster.
pub(crate) struct KafkaOutcomes {
    brokers: String,
    producer: FutureProducer,
}

impl std::fmt::Debug for KafkaOutcomes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KafkaOutcomes")
    }
}

impl KafkaOutcomes {
    pub(crate) fn new(brokers: &str) -> anyhow::Result<Self> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("message.timeout.ms", "30000")
            .create()
            .context("creating the outcomes producer")?;
        Ok(Self {
            brokers: brokers.to_owned(),
            producer,
        })
    }

    fn consumer(&self) -> Result<BaseConsumer, String> {
        ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", "gdx-outcomes-readback")
            .set("enable.auto.commit", "false")
            .set("enable.partition.eof", "true")
            .create()
            .map_err(|e| format!("creating the read-back consumer: {e}"))
    }
}

fn wait(f: DeliveryFuture, topic: &str) -> Result<(), String> {
    match futures::executor::block_on(f) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => Err(format!("{topic}: {e}")),
        Err(_) => Err(format!("{topic}: the producer went away")),
    }
}

impl OutcomeSink for KafkaOutcomes {
    fn partitions(&self, topic: &str) -> Result<Vec<(i32, i64, i64)>, String> {
        let consumer = self.consumer()?;
        let metadata = consumer
            .fetch_metadata(Some(topic), TIMEOUT)
            .map_err(|e| format!("{topic}: metadata: {e}"))?;
        let mut out = Vec::new();
        for t in metadata.topics().iter().filter(|t| t.name() == topic) {
            if t.error().is_some() {
                continue; // no such topic yet
            }
            for p in t.partitions() {
                let (low, high) = consumer
                    .fetch_watermarks(topic, p.id(), TIMEOUT)
                    .map_err(|e| format!("{topic}/{}: watermarks: {e}", p.id()))?;
                out.push((p.id(), low, high));
            }
        }
        Ok(out)
    }

    fn outcomes_in(
        &self,
        topic: &str,
        ranges: &[(i32, i64, i64)],
    ) -> Result<HashSet<String>, String> {
        let mut ids = HashSet::new();
        if ranges.is_empty() {
            return Ok(ids);
        }
        let consumer = self.consumer()?;
        let mut tpl = TopicPartitionList::new();
        let mut left: HashMap<i32, i64> = HashMap::new();
        for &(p, from, to) in ranges {
            tpl.add_partition_offset(topic, p, Offset::Offset(from))
                .map_err(|e| e.to_string())?;
            left.insert(p, to);
        }
        consumer.assign(&tpl).map_err(|e| format!("{topic}: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while !left.is_empty() {
            if Instant::now() > deadline {
                return Err(format!(
                    "{topic}: reading back what was published timed out"
                ));
            }
            let Some(m) = consumer.poll(Duration::from_millis(500)) else {
                continue;
            };
            let m = match m {
                Ok(m) => m,
                Err(rdkafka::error::KafkaError::PartitionEOF(p)) => {
                    left.remove(&p);
                    continue;
                }
                Err(e) => return Err(format!("{topic}: {e}")),
            };
            if let Some(h) = m.headers() {
                for h in h.iter() {
                    if h.key == OUTCOME_HEADER
                        && let Some(v) = h.value
                    {
                        ids.insert(String::from_utf8_lossy(v).into_owned());
                    }
                }
            }
            if left
                .get(&m.partition())
                .is_some_and(|to| m.offset() + 1 >= *to)
            {
                left.remove(&m.partition());
            }
        }
        Ok(ids)
    }

    fn send_all(&self, messages: &[OutMessage]) -> Result<(), String> {
        let mut pending: VecDeque<(DeliveryFuture, &str)> = VecDeque::new();
        for m in messages {
            let mut headers = OwnedHeaders::new().insert(Header {
                key: OUTCOME_HEADER,
                value: Some(m.outcome.as_bytes()),
            });
            if let Some(t) = &m.event_time {
                headers = headers.insert(Header {
                    key: "event-time",
                    value: Some(t.as_bytes()),
                });
            }
            let mut record = FutureRecord::to(m.topic)
                .key(m.key.as_bytes())
                .payload(&m.payload)
                .headers(headers);
            loop {
                match self.producer.send_result(record) {
                    Ok(f) => {
                        pending.push_back((f, m.topic));
                        break;
                    }
                    Err((e, r))
                        if e.rdkafka_error_code()
                            == Some(rdkafka::types::RDKafkaErrorCode::QueueFull) =>
                    {
                        // Backpressure: wait for the oldest deliveries.
                        match pending.pop_front() {
                            Some((f, topic)) => wait(f, topic)?,
                            None => std::thread::sleep(Duration::from_millis(5)),
                        }
                        record = r;
                    }
                    Err((e, _)) => return Err(format!("{}: {e}", m.topic)),
                }
            }
        }
        for (f, topic) in pending {
            wait(f, topic)?;
        }
        Ok(())
    }
}
