//! Arrow schemas of the lake's tables, derived from the catalog.
//!
//! Data flow: a catalog [`Dataset`] → [`record_schema`] (the typed fields, used to decode
//! feed records) → [`events_schema`] (the typed fields, all nullable because a delete carries
//! only its key, plus the provenance columns of every event row) → Delta table schema.
//! [`dead_letter_schema`] is fixed.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use gdx_catalog::{Dataset, FieldType};

/// Provenance columns carried by every event row (DESIGN §3), in table order.
pub mod provenance {
    pub const TOPIC: &str = "_topic";
    pub const PARTITION: &str = "_partition";
    pub const OFFSET: &str = "_offset";
    pub const KAFKA_TS: &str = "_kafka_ts";
    pub const EVENT_TIME: &str = "_event_time";
    pub const INGESTED_AT: &str = "_ingested_at";
    /// `upsert` or `delete`.
    pub const OP: &str = "_op";
    pub const KEY: &str = "_key";
    pub const SCHEMA_VERSION: &str = "_schema_version";
    pub const EVENT_ID: &str = "_event_id";
    pub const SOURCE_SYSTEM: &str = "_source_system";
    /// Comma-separated names of fields whose coded identifier failed its check under the
    /// catalog's `flag` policy; null when every check passed.
    pub const FLAGS: &str = "_flags";
}

/// Timestamps are microseconds in UTC throughout the lake.
pub fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The Arrow type of a catalog field type.
pub fn arrow_type(ty: FieldType) -> DataType {
    match ty {
        FieldType::Utf8 => DataType::Utf8,
        FieldType::Int32 => DataType::Int32,
        FieldType::Int64 => DataType::Int64,
        FieldType::Float64 => DataType::Float64,
        FieldType::Boolean => DataType::Boolean,
        FieldType::Date32 => DataType::Date32,
        FieldType::Timestamp => timestamp(),
        FieldType::Money => DataType::Decimal128(18, 2),
    }
}

/// The typed fields of a dataset record, with the catalog's nullability.
pub fn record_schema(ds: &Dataset) -> SchemaRef {
    Arc::new(Schema::new(
        ds.fields
            .iter()
            .map(|f| Field::new(&f.name, arrow_type(f.ty), f.nullable))
            .collect::<Vec<_>>(),
    ))
}

/// The provenance columns.
pub fn provenance_fields() -> Vec<Field> {
    use provenance::*;
    vec![
        Field::new(TOPIC, DataType::Utf8, false),
        Field::new(PARTITION, DataType::Int32, false),
        Field::new(OFFSET, DataType::Int64, false),
        Field::new(KAFKA_TS, timestamp(), true),
        Field::new(EVENT_TIME, timestamp(), false),
        Field::new(INGESTED_AT, timestamp(), false),
        Field::new(OP, DataType::Utf8, false),
        Field::new(KEY, DataType::Utf8, false),
        Field::new(SCHEMA_VERSION, DataType::Int32, false),
        Field::new(EVENT_ID, DataType::Utf8, true),
        Field::new(SOURCE_SYSTEM, DataType::Utf8, true),
        Field::new(FLAGS, DataType::Utf8, true),
    ]
}

/// Columns whose values are (nearly) unique per row, written without dictionary encoding:
/// the primary key, personal identifiers and contact data (ID and certificate numbers, names,
/// phones, addresses, bank cards, e-mails, USCCs) and timestamps. A dictionary for them
/// costs a hash and a compare per value and then overflows anyway (or holds as many entries
/// as rows); codes, categories and dates keep theirs.
pub fn near_unique_columns(ds: &Dataset) -> Vec<String> {
    let mut cols: Vec<String> = ds.primary_key.clone();
    for f in &ds.fields {
        let unique = f.ty == FieldType::Timestamp
            || f.pii
                .is_some_and(|k| !matches!(k, gdx_catalog::PiiKind::BirthDate));
        if unique && !cols.contains(&f.name) {
            cols.push(f.name.clone());
        }
    }
    cols
}

/// Columns that must keep their values out of the Delta log: fields of level ≥ 3 (ordinary
/// personal or business information and above: names, ID numbers, phones, addresses, birth
/// dates, but also household numbers, dates of death, disability grades, amounts), and the
/// `_key` provenance column when the primary key includes one of them. They get no
/// statistics in the Delta log (the table layout's `personal` columns).
pub fn personal_columns(ds: &Dataset) -> Vec<String> {
    let graded = |name: &str| {
        ds.field(name)
            .is_some_and(|f| f.level_or_max() >= gdx_catalog::Level::ORDINARY)
    };
    let mut cols: Vec<String> = ds
        .fields
        .iter()
        .filter(|f| graded(&f.name))
        .map(|f| f.name.clone())
        .collect();
    if ds.primary_key.iter().any(|k| graded(k)) {
        cols.push(provenance::KEY.to_owned());
    }
    cols
}

/// The columns of profile `p` that keep their values out of the Delta log: those graded
/// level ≥ 3 beside the profile's SQL ([`crate::profiles::grades`]).
pub fn profile_personal_columns(
    catalog: &gdx_catalog::Catalog,
    p: crate::profiles::definition::Profile,
) -> Vec<String> {
    crate::profiles::grades::columns(p)
        .filter(|c| {
            crate::profiles::grades::grade(catalog, p, c)
                .is_none_or(|g| g.level >= gdx_catalog::Level::ORDINARY)
        })
        .map(str::to_owned)
        .collect()
}

/// The columns of an `events` table that get statistics (min, max, null count) in its files
/// and its Delta log: those that grow with arrival, whose bounds let a reader skip files
/// (`_offset`, `_kafka_ts`, `_event_time`, `_ingested_at`, and the record's own non-personal
/// timestamps, such as when a registration happened). Codes, amounts, names and the like
/// arrive in no order: every file spans their whole range, so their bounds prune nothing,
/// while every reader, ingest's own commits included, parses them for every file on each
/// replay of the log.
pub fn events_statistics_columns(ds: &Dataset) -> Vec<String> {
    let mut cols: Vec<String> = [
        provenance::OFFSET,
        provenance::KAFKA_TS,
        provenance::EVENT_TIME,
        provenance::INGESTED_AT,
    ]
    .map(str::to_owned)
    .to_vec();
    cols.extend(
        ds.fields
            .iter()
            .filter(|f| f.ty == FieldType::Timestamp && !f.pii.is_some_and(|k| k.is_personal()))
            .map(|f| f.name.clone()),
    );
    cols
}

/// The `events` table: typed fields (nullable: deletes carry only the key) + provenance.
pub fn events_schema(ds: &Dataset) -> SchemaRef {
    let mut fields: Vec<Field> = ds
        .fields
        .iter()
        .map(|f| Field::new(&f.name, arrow_type(f.ty), true))
        .collect();
    fields.extend(provenance_fields());
    Arc::new(Schema::new(fields))
}

/// Columns of the dead-letter table.
pub mod dead_letter {
    pub const TOPIC: &str = "topic";
    pub const PARTITION: &str = "partition";
    pub const OFFSET: &str = "offset";
    pub const KEY: &str = "key";
    pub const VALUE: &str = "value";
    /// Message headers as a JSON object (values as UTF-8 where they are, else base64-free hex).
    pub const HEADERS: &str = "headers";
    pub const KAFKA_TS: &str = "kafka_ts";
    /// A stable class: not_json, not_utf8, wrong_type, missing_field, missing_key,
    /// unknown_field, duplicate_field, bad_check_digit, bad_identifier, oversized,
    /// unknown_topic, bad_envelope, bad_event_time.
    pub const ERROR_CLASS: &str = "error_class";
    pub const ERROR_MESSAGE: &str = "error_message";
    pub const DATASET: &str = "dataset";
    pub const INGESTED_AT: &str = "ingested_at";
}

pub fn dead_letter_schema() -> SchemaRef {
    use dead_letter::*;
    Arc::new(Schema::new(vec![
        Field::new(TOPIC, DataType::Utf8, false),
        Field::new(PARTITION, DataType::Int32, false),
        Field::new(OFFSET, DataType::Int64, false),
        Field::new(KEY, DataType::Binary, true),
        Field::new(VALUE, DataType::Binary, true),
        Field::new(HEADERS, DataType::Utf8, true),
        Field::new(KAFKA_TS, timestamp(), true),
        Field::new(ERROR_CLASS, DataType::Utf8, false),
        Field::new(ERROR_MESSAGE, DataType::Utf8, false),
        Field::new(DATASET, DataType::Utf8, true),
        Field::new(INGESTED_AT, timestamp(), false),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_identifiers_keys_and_timestamps_are_near_unique_codes_and_dates_are_not() {
        let c = gdx_catalog::district::catalog();
        let ds = c.get("ps.household_registration").unwrap();
        assert_eq!(
            near_unique_columns(ds),
            ["resident_id", "name", "address", "phone", "updated_at"]
        );
        // A composite key's parts are listed once each, before the other columns.
        let mut ds = ds.clone();
        ds.primary_key = vec!["household_id".into(), "resident_id".into()];
        assert_eq!(
            near_unique_columns(&ds)[..3],
            ["household_id", "resident_id", "name"]
        );
    }

    #[test]
    fn fields_of_level_3_and_above_and_a_key_made_of_one_keep_out_of_the_log() {
        let c = gdx_catalog::district::catalog();
        let ds = c.get("ps.household_registration").unwrap();
        assert_eq!(
            personal_columns(ds),
            [
                "resident_id",
                "name",
                "birth_date",
                "household_id",
                "relation_to_head",
                "address",
                "phone",
                "deceased_on",
                provenance::KEY
            ]
        );
        let disability = c.get("mca.disability_certificate").unwrap();
        for f in ["disability_category", "disability_grade"] {
            assert!(personal_columns(disability).contains(&f.to_owned()));
        }
        // An enterprise's USCC is not personal data, and neither is a key made of it.
        let ent = c
            .datasets()
            .find(|d| {
                d.primary_key.len() == 1
                    && d.field(&d.primary_key[0])
                        .and_then(|f| f.pii)
                        .is_some_and(|k| !k.is_personal())
            })
            .expect("a dataset keyed by a USCC");
        assert!(!personal_columns(ent).contains(&provenance::KEY.to_owned()));
        assert!(!personal_columns(ent).contains(&ent.primary_key[0]));
    }

    #[test]
    fn events_keep_statistics_only_for_columns_that_grow_with_arrival() {
        let c = gdx_catalog::district::catalog();
        let ds = c.get("ps.household_registration").unwrap();
        let cols = events_statistics_columns(ds);
        assert_eq!(
            cols,
            [
                provenance::OFFSET,
                provenance::KAFKA_TS,
                provenance::EVENT_TIME,
                provenance::INGESTED_AT,
                "updated_at"
            ]
        );
    }

    #[test]
    fn schemas_follow_the_catalog() {
        let c = gdx_catalog::district::catalog();
        let ds = c.get("ps.household_registration").unwrap();
        let rec = record_schema(ds);
        assert_eq!(
            rec.field_with_name("resident_id").unwrap().data_type(),
            &DataType::Utf8
        );
        assert!(!rec.field_with_name("resident_id").unwrap().is_nullable());
        assert_eq!(
            rec.field_with_name("birth_date").unwrap().data_type(),
            &DataType::Date32
        );
        let ev = events_schema(ds);
        assert_eq!(
            ev.fields().len(),
            ds.fields.len() + provenance_fields().len()
        );
        assert!(ev.field_with_name("resident_id").unwrap().is_nullable());
        assert_eq!(
            ev.field_with_name(provenance::OFFSET).unwrap().data_type(),
            &DataType::Int64
        );
        let money = c.get("tax.tax_paid").unwrap();
        assert_eq!(
            record_schema(money)
                .field_with_name("tax_paid")
                .unwrap()
                .data_type(),
            &DataType::Decimal128(18, 2)
        );
    }
}
