//! gdx ingest: department feeds in, and the synthetic district that plays the departments.
//!
//! Data flow: the [`simulate`] module generates one deterministic population (residents,
//! households, enterprises, property) and projects it into every dataset of the catalog as
//! change events, with reporting lags and noise, keeping the ground truth beside them. The
//! Kafka consumer workers that land those feeds in the lake exactly once arrive with the
//! ingest issue.

pub mod broker;
pub mod decode;
pub mod publish;
pub mod simulate;
pub mod worker;
