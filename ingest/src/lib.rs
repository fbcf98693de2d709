//! gdx ingest: department feeds in.
//!
//! Data flow: Kafka topics (one per catalog dataset, `<dept>.<dataset>`) → [`worker`]s in a
//! consumer group, each on its own thread → [`decode`] turns runs of raw messages into Arrow
//! event rows and dead letters → the lake's event tables and dead-letter table, each commit
//! carrying the Kafka offsets it covers, so every message lands exactly once. [`publish`]
//! produces feed files (validated, or as a department would send them); [`broker`] is the
//! embedded broker (librdkafka's mock cluster) with lag-based backpressure for producers.
//! The synthetic district those feeds come from is the `gdx-simulate` crate.

pub mod broker;
pub mod decode;
pub mod publish;
pub mod worker;
