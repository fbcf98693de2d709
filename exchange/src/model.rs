//! The exchange's vocabulary: who (principals, roles, departments), what (processing
//! levels), and the identifiers that name them, each validated on construction.

use serde::{Deserialize, Serialize};

/// A principal's id: lowercase letters, digits, `.`, `_`, `-`; 2..=64 characters, starting
/// with a letter or digit (it appears in audit records, casbin tuples and URLs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PrincipalId(String);

/// Why an identifier was refused (the rule, never the value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {rule}")]
pub struct InvalidId {
    pub what: &'static str,
    pub rule: &'static str,
}

fn id_like(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    (2..=max).contains(&b.len())
        && b[0].is_ascii_lowercase() | b[0].is_ascii_digit()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

impl PrincipalId {
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidId> {
        let s = s.into();
        if id_like(&s, 64) {
            Ok(Self(s))
        } else {
            Err(InvalidId {
                what: "principal id",
                rule: "2 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PrincipalId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        Self::new(s)
    }
}

impl From<PrincipalId> for String {
    fn from(p: PrincipalId) -> String {
        p.0
    }
}

impl std::fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A grant's id: `g-` and 16 lowercase hex digits, random.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GrantId(String);

impl GrantId {
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidId> {
        let s = s.into();
        let ok = s.len() == 18
            && s.starts_with("g-")
            && s[2..]
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
        if ok {
            Ok(Self(s))
        } else {
            Err(InvalidId {
                what: "grant id",
                rule: "'g-' followed by 16 lowercase hex digits",
            })
        }
    }

    /// A fresh random id.
    pub fn random() -> Self {
        Self(format!("g-{}", crate::secret::random_hex(8)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GrantId {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        Self::new(s)
    }
}

impl From<GrantId> for String {
    fn from(g: GrantId) -> String {
        g.0
    }
}

impl std::fmt::Display for GrantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A department code (the casbin domain): a catalog department (`ps`, `mca`, …) or the
/// big-data centre `bdc`, which owns the profiles.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Department(String);

/// The department that runs the lake and owns the profiles (大数据中心).
pub const DATA_CENTRE: &str = "bdc";

/// The finance bureau (财政局): owns no dataset, approves and pays the enterprise rewards.
pub const FINANCE: &str = "finance";

/// Departments principals may belong to without owning a dataset of the catalog.
pub const DEPARTMENTS_WITHOUT_DATA: [&str; 2] = [DATA_CENTRE, FINANCE];

impl Department {
    pub fn new(s: impl Into<String>) -> Result<Self, InvalidId> {
        let s = s.into();
        let b = s.as_bytes();
        let ok = (2..=16).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_');
        if ok {
            Ok(Self(s))
        } else {
            Err(InvalidId {
                what: "department",
                rule: "2 to 16 of a-z, 0-9, '_', starting with a letter",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Department {
    type Error = InvalidId;
    fn try_from(s: String) -> Result<Self, InvalidId> {
        Self::new(s)
    }
}

impl From<Department> for String {
    fn from(d: Department) -> String {
        d.0
    }
}

impl std::fmt::Display for Department {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What kind of user a principal is; casbin's role policies say what each may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A department's own system: reads its department's datasets, requests grants.
    DepartmentSystem,
    /// A scenario app or window system: reads what its grants allow.
    App,
    /// An analyst: reads what its grants allow (SQL, rows).
    Analyst,
    /// Decides grant requests for its department's datasets.
    Approver,
    /// Reads the audit trail.
    Auditor,
    /// The chief privacy officer: second approval of sensitive grants, reads the audit.
    Cpo,
    /// Manages principals.
    Admin,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::DepartmentSystem,
        Role::App,
        Role::Analyst,
        Role::Approver,
        Role::Auditor,
        Role::Cpo,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::DepartmentSystem => "department_system",
            Role::App => "app",
            Role::Analyst => "analyst",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
            Role::Cpo => "cpo",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a consumer may use a dataset (DESIGN §5), weakest last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingLevel {
    /// Stored values.
    Raw,
    /// Personal values masked; sensitive values no mask fits removed.
    Masked,
    /// Statistics only; groups of fewer than k people suppressed.
    Aggregate,
    /// Yes/no answers of verification services only.
    Verify,
}

impl ProcessingLevel {
    pub const ALL: [ProcessingLevel; 4] = [
        ProcessingLevel::Raw,
        ProcessingLevel::Masked,
        ProcessingLevel::Aggregate,
        ProcessingLevel::Verify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProcessingLevel::Raw => "raw",
            ProcessingLevel::Masked => "masked",
            ProcessingLevel::Aggregate => "aggregate",
            ProcessingLevel::Verify => "verify",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl std::fmt::Display for ProcessingLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_validate_without_quoting_the_value() {
        assert!(PrincipalId::new("mca-allowance.app").is_ok());
        for bad in [
            "",
            "a",
            "Upper",
            "-lead",
            "has space",
            "x/../y",
            &"a".repeat(65),
        ] {
            let e = PrincipalId::new(bad).unwrap_err();
            assert!(bad.len() < 3 || !e.to_string().contains(bad), "{e}");
        }
        assert!(GrantId::new(GrantId::random().as_str()).is_ok());
        assert!(GrantId::new("g-ZZZZZZZZZZZZZZZZ").is_err());
        assert!(Department::new("mca").is_ok());
        assert!(Department::new("../x").is_err());
        assert_eq!(Role::parse("cpo"), Some(Role::Cpo));
        assert_eq!(
            ProcessingLevel::parse("verify"),
            Some(ProcessingLevel::Verify)
        );
    }
}
