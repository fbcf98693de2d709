//! The dataset model: the 13 core items of the government resource catalogue plus the
//! technical contract (topic, feed format, primary key, entity links, schema version).
//!
//! Data flow: TOML text → serde → [`Dataset`] (with the file it came from) → validation and
//! every consumer. Items that the catalogue requires are optional here so that a missing item
//! is reported by validation with its file and dataset, instead of failing the parse.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::ident::IdKind;
use crate::mask::PiiKind;

/// Identifier of a dataset: `<department>.<dataset>`, lowercase snake case (e.g.
/// `ps.household_registration`). It is also the dataset's Kafka topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DatasetId(String);

/// A dataset id that is not `<dept>.<dataset>` in lowercase snake case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid dataset id {0:?}: expected <department>.<dataset> in lowercase snake case, e.g. ps.household_registration"
)]
pub struct InvalidDatasetId(pub String);

fn is_snake(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.ends_with('_')
        && !s.contains("__")
}

impl DatasetId {
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidDatasetId> {
        let s = s.into();
        match s.split_once('.') {
            Some((dept, name)) if is_snake(dept) && is_snake(name) && !dept.contains('_') => {
                Ok(Self(s))
            }
            _ => Err(InvalidDatasetId(s)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The department code (the part before the dot).
    pub fn department(&self) -> &str {
        self.0.split_once('.').map(|(d, _)| d).unwrap_or(&self.0)
    }

    /// The dataset name within its department (the part after the dot).
    pub fn name(&self) -> &str {
        self.0.split_once('.').map(|(_, n)| n).unwrap_or(&self.0)
    }
}

impl TryFrom<String> for DatasetId {
    type Error = InvalidDatasetId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<DatasetId> for String {
    fn from(d: DatasetId) -> String {
        d.0
    }
}

impl std::fmt::Display for DatasetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Is a snake_case name (fields, dataset parts).
pub fn is_snake_case(s: &str) -> bool {
    is_snake(s)
}

/// Harm if leaked, 1 (public) to 5 (core/important).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Level(u8);

impl Level {
    pub const PUBLIC: Level = Level(1);
    pub const LOW: Level = Level(2);
    pub const ORDINARY: Level = Level(3);
    pub const SENSITIVE: Level = Level(4);
    pub const CORE: Level = Level(5);

    pub fn new(n: u8) -> Option<Level> {
        (1..=5).contains(&n).then_some(Level(n))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl TryFrom<u8> for Level {
    type Error = String;
    fn try_from(n: u8) -> Result<Self, Self::Error> {
        Level::new(n).ok_or_else(|| format!("level must be 1 to 5, got {n}"))
    }
}

impl From<Level> for u8 {
    fn from(l: Level) -> u8 {
        l.0
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "L{}", self.0)
    }
}

/// Sharing type (共享类型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SharingType {
    /// 无条件共享
    Unconditional,
    /// 有条件共享
    Conditional,
    /// 不予共享
    None,
}

/// Open type (开放类型).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenType {
    Open,
    Conditional,
    Closed,
}

/// How a department's Kafka feed encodes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FeedFormat {
    #[serde(rename = "json")]
    Json,
    #[serde(rename = "debezium-json")]
    DebeziumJson,
}

/// What to do with a record whose coded identifier fails its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckPolicy {
    /// Dead-letter the record.
    Reject,
    /// Keep the record and set its flag column.
    Flag,
}

/// Schema evolution rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvolutionRule {
    /// New versions may only add nullable fields.
    #[default]
    Additive,
}

/// Which kind of entity a field links to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A resident, by 18-digit resident ID.
    Resident,
    /// An enterprise, by unified social credit code.
    Enterprise,
}

/// A field that identifies a resident or an enterprise (used to build profiles).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityLink {
    pub field: String,
    pub kind: EntityKind,
}

/// Field types; each maps to one Arrow type in the lake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Arrow `Utf8`.
    Utf8,
    /// Arrow `Int32`.
    Int32,
    /// Arrow `Int64`.
    Int64,
    /// Arrow `Float64`.
    Float64,
    /// Arrow `Boolean`.
    Boolean,
    /// Arrow `Date32` (RFC 3339 full-date in JSON).
    Date32,
    /// Arrow `Timestamp(Microsecond, "UTC")` (RFC 3339 in JSON).
    Timestamp,
    /// Arrow `Decimal128(18, 2)`: money in yuan with fen.
    Money,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Utf8 => "utf8",
            FieldType::Int32 => "int32",
            FieldType::Int64 => "int64",
            FieldType::Float64 => "float64",
            FieldType::Boolean => "boolean",
            FieldType::Date32 => "date32",
            FieldType::Timestamp => "timestamp",
            FieldType::Money => "money",
        }
    }
}

/// One data item (信息项) of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: FieldType,
    #[serde(default = "yes")]
    pub nullable: bool,
    #[serde(default)]
    pub description: String,
    pub level: Option<Level>,
    pub category: Option<String>,
    pub pii: Option<PiiKind>,
    pub check: Option<CheckPolicy>,
}

fn yes() -> bool {
    true
}

impl Field {
    /// The coded identifier this field holds, judged by its PII kind.
    pub fn id_kind(&self) -> Option<IdKind> {
        match self.pii? {
            PiiKind::IdNumber => Some(IdKind::ResidentId),
            PiiKind::Uscc => Some(IdKind::Uscc),
            PiiKind::BankCard => Some(IdKind::BankCard),
            PiiKind::Phone => Some(IdKind::Mobile),
            _ => None,
        }
    }

    /// The field's level; ungraded fields count as the most sensitive (就高从严).
    pub fn level_or_max(&self) -> Level {
        self.level.unwrap_or(Level::CORE)
    }
}

/// The provider department (提供方).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    /// Short department code used in topics and schemas, e.g. `ps`.
    #[serde(default)]
    pub department: String,
    /// Department name, e.g. 区公安分局.
    #[serde(default)]
    pub name: String,
    /// The department's organisation code (统一社会信用代码 of the agency).
    #[serde(default)]
    pub code: String,
}

/// Sharing attributes (共享属性).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sharing {
    #[serde(rename = "type")]
    pub kind: SharingType,
    #[serde(default)]
    pub condition: String,
    /// 共享方式: interface, download, verify, ...
    #[serde(default)]
    pub method: String,
    /// The law or regulation that rules out or limits sharing.
    #[serde(default)]
    pub legal_basis: String,
}

/// Open attributes (开放属性).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Open {
    #[serde(rename = "type")]
    pub kind: OpenType,
    #[serde(default)]
    pub condition: String,
}

/// One catalogued dataset: a data resource and the feed that carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    pub id: DatasetId,
    /// 资源代码
    #[serde(default)]
    pub resource_code: String,
    /// 资源名称
    #[serde(default)]
    pub name: String,
    /// 资源提供方 and its code
    #[serde(default)]
    pub provider: Provider,
    /// 资源摘要
    #[serde(default)]
    pub summary: String,
    /// 资源格式 (database table, file, ...)
    #[serde(default)]
    pub format: String,
    /// 共享属性
    pub sharing: Option<Sharing>,
    /// 开放属性
    pub open: Option<Open>,
    /// 更新周期
    #[serde(default)]
    pub update_cycle: String,
    /// 发布日期
    pub publish_date: Option<NaiveDate>,
    /// 关联资源代码
    #[serde(default)]
    pub related: Vec<String>,
    /// Kafka topic; must equal the id.
    #[serde(default)]
    pub topic: String,
    pub feed_format: FeedFormat,
    #[serde(default)]
    pub primary_key: Vec<String>,
    #[serde(default)]
    pub entities: Vec<EntityLink>,
    #[serde(default = "one")]
    pub schema_version: u32,
    #[serde(default)]
    pub evolution: EvolutionRule,
    /// This version deliberately breaks compatibility (removes or retypes fields).
    #[serde(default)]
    pub breaking: bool,
    /// 信息项
    #[serde(default)]
    pub fields: Vec<Field>,
    /// The file this entry was loaded from.
    #[serde(skip)]
    pub source: String,
}

fn one() -> u32 {
    1
}

impl Dataset {
    /// Dataset level = max(field levels) (就高从严).
    pub fn level(&self) -> Level {
        self.fields
            .iter()
            .map(Field::level_or_max)
            .max()
            .unwrap_or(Level::PUBLIC)
    }

    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn sharing_type(&self) -> Option<SharingType> {
        self.sharing.as_ref().map(|s| s.kind)
    }

    /// The entity link of a kind, when the dataset has one.
    pub fn entity(&self, kind: EntityKind) -> Option<&EntityLink> {
        self.entities.iter().find(|e| e.kind == kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_ids() {
        let id = DatasetId::new("ps.household_registration").unwrap();
        assert_eq!(id.department(), "ps");
        assert_eq!(id.name(), "household_registration");
        for bad in [
            "ps", "PS.x", "ps.", ".x", "p_s.x", "ps.x.y", "ps.X", "ps.a__b", "ps.9a",
        ] {
            assert!(DatasetId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn levels() {
        assert!(Level::new(0).is_none());
        assert!(Level::new(6).is_none());
        assert_eq!(Level::new(4), Some(Level::SENSITIVE));
    }
}
