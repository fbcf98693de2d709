//! gdx catalog: the pure model every other layer reads.
//!
//! Data flow: dataset files (TOML, one dataset per file, e.g. `catalog/district/`) are
//! [loaded](load) into [`Dataset`] entries, checked by [`validate`] against the
//! [category tree](category) and, when a baseline is given, against the previously published
//! schema (additive evolution only). Ingest uses the field types and check policies to
//! decode and validate records; the lake derives Arrow schemas from them; the exchange uses
//! the grading ([`Level`]), the sharing types and the [masks](mask) to decide what a consumer
//! may see. Coded identifiers ([`ResidentId`], [`Uscc`], [`BankCard`], [`Mobile`]) validate on
//! construction after NFKC normalisation.
//!
//! This crate does no I/O beyond reading catalog files.

pub mod category;
pub mod district;
pub mod finding;
pub mod ident;
pub mod load;
pub mod mask;
pub mod model;
pub mod pseudonym;
pub mod validate;

pub use category::{CategoryCode, CategoryTree};
pub use ident::{BankCard, IdError, IdKind, Mobile, ResidentId, Uscc, normalize_text};
pub use load::{Catalog, LoadError};
pub use mask::{PiiKind, mask};
pub use model::{
    CheckPolicy, Dataset, DatasetId, EntityKind, EntityLink, EvolutionRule, FeedFormat, Field,
    FieldType, Level, OpenType, SharingType,
};
pub use pseudonym::Pseudonymizer;
pub use validate::{Finding, Report, Severity};
