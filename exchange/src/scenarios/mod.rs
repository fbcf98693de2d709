//! Smart scenarios: what window clerks, civil-affairs staff and residents see of gdx, built
//! on the lake and served by the exchange under the same grants, policy and audit as every
//! read.
//!
//! Data flow: the lake's `current` tables, read whole by the operator ([`gdx_lake::lookup::OperatorScan`])
//! whenever their Delta version moves → a scenario's in-memory register (e.g. the active
//! property certificates, [`certificate`]) swapped whole → the exchange's scenario endpoints
//! answer from it, per call, without planning a query.

pub mod certificate;
