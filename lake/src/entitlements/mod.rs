//! 应享未享 and its reverse: per benefit, who is entitled but not receiving it, and who is
//! receiving it but no longer entitled, as views `scenarios.<benefit>_gaps` as of a day.
//!
//! Data flow: the lake's datasets as a session holds them (the stored state, or the state
//! rebuilt as of a time) → `common.sql` (deaths from the police, the hospitals' certificates
//! and cremations, earliest first; the police's registrations) → each benefit's rule
//! (`<benefit>.sql`: what other departments' records say is due, against what the benefit's
//! own system pays) → one row per finding: benefit, direction, rule, resident, name, the
//! item (band, subsidy type, pension type or case number), the datasets that are its
//! evidence, and the day → planned like the profiles over the operator's view of the
//! tables, so the reader's policy (grants, masks, row scopes) applies to the findings,
//! never to the records they join.

use chrono::NaiveDate;
use gdx_catalog::{Level, PiiKind};

use crate::policy::ColumnGrade;

/// A benefit whose records the lake checks against its rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Benefit {
    /// 高龄津贴 (民政): `mca.elderly_allowance_payment`.
    ElderlyAllowance,
    /// 最低生活保障 (民政): `mca.subsistence_allowance`.
    SubsistenceAllowance,
    /// 残疾人两项补贴 (民政): `mca.disability_subsidy`.
    DisabilitySubsidy,
    /// 基本养老金 (人社): `hrss.pension`.
    Pension,
}

/// The two directions of a finding.
pub const ENTITLED_NOT_RECEIVING: &str = "entitled_not_receiving";
pub const RECEIVING_NOT_ENTITLED: &str = "receiving_not_entitled";

/// The columns of every gaps view, in order.
pub const COLUMNS: [&str; 8] = [
    "benefit",
    "direction",
    "rule",
    "resident_id",
    "name",
    "item",
    "evidence",
    "as_of",
];

impl Benefit {
    pub const ALL: [Benefit; 4] = [
        Benefit::ElderlyAllowance,
        Benefit::SubsistenceAllowance,
        Benefit::DisabilitySubsidy,
        Benefit::Pension,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Benefit::ElderlyAllowance => "elderly_allowance",
            Benefit::SubsistenceAllowance => "subsistence_allowance",
            Benefit::DisabilitySubsidy => "disability_subsidy",
            Benefit::Pension => "pension",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// The view readers query: `scenarios.<benefit>_gaps`.
    pub fn table(self) -> String {
        format!("scenarios.{}_gaps", self.name())
    }

    /// The department that runs the benefit (and decides who else may read its gaps).
    pub fn department(self) -> &'static str {
        match self {
            Benefit::Pension => "hrss",
            _ => "mca",
        }
    }

    /// The benefit's own records, the ones the findings are about.
    pub fn dataset(self) -> &'static str {
        match self {
            Benefit::ElderlyAllowance => "mca.elderly_allowance_payment",
            Benefit::SubsistenceAllowance => "mca.subsistence_allowance",
            Benefit::DisabilitySubsidy => "mca.disability_subsidy",
            Benefit::Pension => "hrss.pension",
        }
    }

    /// The tables its view reads (a session without them has no such view).
    pub fn inputs(self) -> Vec<&'static str> {
        let mut t = vec![
            "ps.household_registration",
            "nhc.death_certificate",
            "mca.cremation",
            self.dataset(),
        ];
        match self {
            Benefit::DisabilitySubsidy => {
                t.extend(["mca.disability_certificate", "mca.subsistence_allowance"]);
            }
            Benefit::Pension => t.push("hrss.social_insurance_enrolment"),
            _ => {}
        }
        t
    }

    fn template(self) -> &'static str {
        match self {
            Benefit::ElderlyAllowance => include_str!("elderly_allowance.sql"),
            Benefit::SubsistenceAllowance => include_str!("subsistence_allowance.sql"),
            Benefit::DisabilitySubsidy => include_str!("disability_subsidy.sql"),
            Benefit::Pension => include_str!("pension.sql"),
        }
    }
}

/// The SQL of a benefit's gaps as of `day`, over a session's table names.
pub fn sql(b: Benefit, day: NaiveDate) -> String {
    let as_of = format!("DATE '{}'", day.format("%Y-%m-%d"));
    let body = b
        .template()
        .replace("{common}", include_str!("common.sql"))
        .replace("{as_of}", &as_of);
    let body = expand(&body);
    // One text type whatever each branch's functions return (a literal is Utf8, `concat`
    // may give Utf8View), so that every batch has the view's schema.
    let text: Vec<String> = COLUMNS[..7]
        .iter()
        .map(|c| format!("arrow_cast({c}, 'Utf8') AS {c}"))
        .collect();
    format!(
        "SELECT {}, {as_of} AS as_of FROM ({body}) gaps",
        text.join(", ")
    )
}

/// Expands the templates' shorthands `{name(a, b)}`.
fn expand(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut rest = text;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (Some(open), Some(close)) = (after.find('('), after.find(")}")) else {
            out.push('{');
            rest = after;
            continue;
        };
        let name = &after[..open];
        let args: Vec<&str> = after[open + 1..close].split(", ").collect();
        out.push_str(&shorthand(name, &args));
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

fn shorthand(name: &str, a: &[&str]) -> String {
    let arg = |i: usize| a.get(i).copied().unwrap_or("NULL");
    let part = |p: &str, x: &str| format!("CAST(date_part('{p}', {x}) AS INT)");
    match name {
        // Registered by the police in the district on a day.
        "registered" => format!(
            "({p}.registered_on <= {d} AND ({p}.moved_out_on IS NULL OR {p}.moved_out_on > {d}))",
            p = arg(0),
            d = arg(1)
        ),
        // Alive on a day (the day of death counts as alive).
        "alive" => format!(
            "({p}.died IS NULL OR {p}.died >= {d})",
            p = arg(0),
            d = arg(1)
        ),
        // Age reached by the end of the month of a month's last day: the birthday month
        // counts in full (29 February is reached in February of a common year).
        "age" => format!(
            "({} - {} - CASE WHEN {} > {} THEN 1 ELSE 0 END)",
            part("year", arg(1)),
            part("year", arg(0)),
            part("month", arg(0)),
            part("month", arg(1))
        ),
        // The elderly allowance's bands, as the payments name them, in order.
        "rank" => format!(
            "CASE {} WHEN '70-79' THEN 1 WHEN '80-89' THEN 2 WHEN '90-99' THEN 3 WHEN '100+' THEN 4 END",
            arg(0)
        ),
        "band" => format!(
            "CASE {} WHEN 1 THEN '70-79' WHEN 2 THEN '80-89' WHEN 3 THEN '90-99' WHEN 4 THEN '100+' END",
            arg(0)
        ),
        other => format!("{{{other}({})}}", a.join(", ")),
    }
}

/// The grading of a gaps view's columns: the resident's ID and name as the benefits'
/// records grade them; the rest describes the finding.
pub fn grade(column: &str) -> ColumnGrade {
    match column {
        "resident_id" => ColumnGrade {
            level: Level::SENSITIVE,
            category: Some("1.1.01".into()),
            pii: Some(PiiKind::IdNumber),
        },
        "name" => ColumnGrade {
            level: Level::ORDINARY,
            category: Some("1.1.02".into()),
            pii: Some(PiiKind::Name),
        },
        _ => ColumnGrade {
            level: Level::LOW,
            category: None,
            pii: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shorthand_is_expanded() {
        let day = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
        for b in Benefit::ALL {
            let s = sql(b, day);
            assert!(!s.contains('{') && !s.contains('}'), "{}: {s}", b.name());
            assert!(s.contains("DATE '2026-10-31'"));
            assert_eq!(Benefit::parse(b.name()), Some(b));
        }
        assert_eq!(
            expand("x {alive(p, DATE '2026-01-01')} y"),
            "x (p.died IS NULL OR p.died >= DATE '2026-01-01') y"
        );
    }
}
