//! What validation reports: one finding per problem, with its rule, file, dataset and field
//! (loading reports unparsable files the same way, so one pass lists every problem).

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Blocks publication.
    Violation,
    /// Reported, does not block.
    Warning,
}

/// One problem found in a catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// Stable rule id, e.g. `pk-not-a-field`.
    pub rule: &'static str,
    pub file: String,
    pub dataset: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sev = match self.severity {
            Severity::Violation => "violation",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}[{}] {}", self.rule, self.file)?;
        if let Some(d) = &self.dataset {
            write!(f, ": dataset {d}")?;
        }
        if let Some(x) = &self.field {
            write!(f, ", field `{x}`")?;
        }
        write!(f, ": {}", self.message)
    }
}
