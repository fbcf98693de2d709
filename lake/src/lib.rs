//! gdx lake: Delta tables on an object store, and everything computed over them.
//!
//! Data flow (as the ingest and lake issues land): ingest hands decoded Arrow batches to the
//! lake writer → per dataset an append-only `events` Delta table at
//! `<lake>/<dept>/<dataset>/events/` (every commit carrying the Kafka offsets it covers as
//! Delta application transactions) and a `_system/dead_letters` table → folding into
//! `<lake>/<dept>/<dataset>/current/` (latest event per key) → citizen and enterprise profiles
//! built with DataFusion → SQL sessions (read-only, time travel) with the exchange's policy
//! rewrite placed above every table scan.
//!
//! The schemas of these tables are derived from the catalog (`gdx-catalog`); this crate never
//! hard-codes a dataset.
