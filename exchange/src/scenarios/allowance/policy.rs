//! The elderly allowance's rule (高龄津贴): age bands and monthly amounts as effective-dated,
//! versioned configuration, and what it pays one person for one month.
//!
//! Data flow: `deploy/policies/elderly_allowance.toml` (built in; a file of the same format
//! replaces it) → [`AllowancePolicy::parse`] checks every version (bands ascending without
//! gaps or overlaps, amounts positive in fen, versions in order of the month they take
//! effect) → per person and month [`AllowancePolicy::due`]: the version in force that month,
//! the band the person's age reaches by the month's last day (a band upgrade takes effect from
//! the birthday month) and its amount; [`AllowancePolicy::turns_eligible`] names who reaches
//! the first band next month (for the notice before the first payment). Who is alive and
//! registered in the district is the monthly run's to decide, from the lake.

use chrono::{Datelike, NaiveDate};
use serde::Deserialize;

use crate::scenarios::hundredths;

/// The built-in bands and amounts.
pub const DEFAULT_POLICY: &str = include_str!("../../../../deploy/policies/elderly_allowance.toml");

/// Why a policy file was refused (the version and the rule; files hold no personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("elderly allowance policy: {0}")]
    Toml(String),
    #[error("elderly allowance policy: the file names policy {0:?}, not elderly_allowance")]
    NotThisPolicy(String),
    #[error("elderly allowance policy: no version")]
    NoVersion,
    #[error("elderly allowance policy, version {version}: {rule}")]
    Version { version: u32, rule: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    policy: String,
    versions: Vec<VersionFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionFile {
    version: u32,
    effective_from: String,
    notice: String,
    bands: Vec<BandFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BandFile {
    band: String,
    min_age: u32,
    max_age: Option<u32>,
    monthly: String,
}

/// One age band of a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Band {
    pub name: String,
    pub min_age: u32,
    /// `None`: open-ended (100+).
    pub max_age: Option<u32>,
    /// Monthly amount in fen.
    pub monthly_fen: i64,
}

/// The bands in force from one month on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    pub version: u32,
    /// The first day of the month it takes effect from.
    pub effective_from: NaiveDate,
    pub notice: String,
    pub bands: Vec<Band>,
}

/// What one person is due for one month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub version: u32,
    pub band: String,
    pub amount_fen: i64,
}

/// Every version of the allowance's bands and amounts, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowancePolicy {
    versions: Vec<PolicyVersion>,
}

/// The first day of `month` (`YYYY-MM`).
pub fn month_start(month: &str) -> Option<NaiveDate> {
    let (y, m) = month.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)
}

/// The last day of the month `first` starts.
pub fn month_end(first: NaiveDate) -> NaiveDate {
    first
        .checked_add_months(chrono::Months::new(1))
        .and_then(|d| d.pred_opt())
        .unwrap_or(first)
}

/// Whole years from `birth` to `on`.
fn age_on(birth: NaiveDate, on: NaiveDate) -> i64 {
    let mut age = i64::from(on.year() - birth.year());
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

impl AllowancePolicy {
    /// The built-in policy.
    pub fn builtin() -> Self {
        Self::parse(DEFAULT_POLICY).expect("the built-in elderly allowance policy is valid")
    }

    /// Reads and checks a policy file.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let file: File = toml::from_str(text).map_err(|e| PolicyError::Toml(e.to_string()))?;
        if file.policy != "elderly_allowance" {
            return Err(PolicyError::NotThisPolicy(file.policy));
        }
        let mut versions: Vec<PolicyVersion> = Vec::new();
        for v in file.versions {
            let bad = |rule: String| PolicyError::Version {
                version: v.version,
                rule,
            };
            let effective_from = month_start(&v.effective_from)
                .ok_or_else(|| bad("effective_from is a month, YYYY-MM".into()))?;
            if let Some(prev) = versions.last() {
                if v.version <= prev.version {
                    return Err(bad(format!(
                        "versions ascend: it follows version {}",
                        prev.version
                    )));
                }
                if effective_from <= prev.effective_from {
                    return Err(bad(format!(
                        "takes effect after version {} (from {})",
                        prev.version,
                        prev.effective_from.format("%Y-%m")
                    )));
                }
            }
            if v.bands.is_empty() {
                return Err(bad("no band".into()));
            }
            let mut bands: Vec<Band> = Vec::new();
            for (i, b) in v.bands.iter().enumerate() {
                let monthly_fen = hundredths(&b.monthly).filter(|&f| f > 0).ok_or_else(|| {
                    bad(format!(
                        "band {}: monthly is a positive amount of yuan with at most two decimals",
                        b.band
                    ))
                })?;
                if b.max_age.is_some_and(|m| m < b.min_age) {
                    return Err(bad(format!("band {}: max_age below min_age", b.band)));
                }
                if let Some(prev) = bands.last() {
                    match prev.max_age {
                        Some(m) if m + 1 == b.min_age => {}
                        _ => {
                            return Err(bad(format!(
                                "band {} does not start where band {} ends",
                                b.band, prev.name
                            )));
                        }
                    }
                }
                if b.max_age.is_none() && i + 1 != v.bands.len() {
                    return Err(bad(format!(
                        "band {}: only the last band is open-ended",
                        b.band
                    )));
                }
                bands.push(Band {
                    name: b.band.clone(),
                    min_age: b.min_age,
                    max_age: b.max_age,
                    monthly_fen,
                });
            }
            versions.push(PolicyVersion {
                version: v.version,
                effective_from,
                notice: v.notice,
                bands,
            });
        }
        if versions.is_empty() {
            return Err(PolicyError::NoVersion);
        }
        Ok(Self { versions })
    }

    /// Every version, oldest first.
    pub fn versions(&self) -> &[PolicyVersion] {
        &self.versions
    }

    /// The lowest age any version pays from (who a run needs to read at all).
    pub fn youngest_age(&self) -> u32 {
        self.versions
            .iter()
            .filter_map(|v| v.bands.first())
            .map(|b| b.min_age)
            .min()
            .unwrap_or(0)
    }

    /// The version in force in the month starting `first`.
    pub fn in_force(&self, first: NaiveDate) -> Option<&PolicyVersion> {
        self.versions
            .iter()
            .rev()
            .find(|v| v.effective_from <= first)
    }

    /// What someone born on `birth` is due for the month starting `first` by age alone
    /// (whether they are alive and registered is the run's to check).
    pub fn due(&self, birth: NaiveDate, first: NaiveDate) -> Option<Due> {
        let v = self.in_force(first)?;
        let age = age_on(birth, month_end(first));
        let band = v.bands.iter().find(|b| {
            age >= i64::from(b.min_age) && b.max_age.is_none_or(|m| age <= i64::from(m))
        })?;
        Some(Due {
            version: v.version,
            band: band.name.clone(),
            amount_fen: band.monthly_fen,
        })
    }

    /// Whether someone born on `birth`, due nothing for the month starting `first`, is due
    /// the allowance the month after (the notice before the first payment).
    pub fn turns_eligible(&self, birth: NaiveDate, first: NaiveDate) -> bool {
        let next = first
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(first);
        self.due(birth, first).is_none() && self.due(birth, next).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn the_builtin_bands_pay_from_the_birthday_month() {
        let p = AllowancePolicy::builtin();
        let m = |s: &str| month_start(s).unwrap();
        // Turning 70 on 15 March 2025: nothing for February, 50 yuan from March.
        let birth = d(1955, 3, 15);
        assert_eq!(p.due(birth, m("2025-02")), None);
        assert_eq!(
            p.due(birth, m("2025-03")),
            Some(Due {
                version: 1,
                band: "70-79".into(),
                amount_fen: 5_000
            })
        );
        assert!(p.turns_eligible(birth, m("2025-02")));
        assert!(!p.turns_eligible(birth, m("2025-03")));
        // The upgrade to 80-89 in the month of the 80th birthday (31st: the month's last day).
        let birth = d(1945, 1, 31);
        assert_eq!(p.due(birth, m("2024-12")).unwrap().band, "70-79");
        assert_eq!(p.due(birth, m("2025-01")).unwrap().amount_fen, 10_000);
        // A 29 February birthday counts in a common year's February (age by 28 Feb: 69, so
        // March is the first month).
        let leap = d(1956, 2, 29);
        assert_eq!(p.due(leap, m("2026-02")), None);
        assert!(p.due(leap, m("2026-03")).is_some());
        assert_eq!(p.due(d(1920, 6, 1), m("2025-06")).unwrap().band, "100+");
        assert_eq!(
            p.due(d(1920, 6, 1), m("2025-06")).unwrap().amount_fen,
            50_000
        );
        // Before the first version took effect: nothing.
        assert_eq!(p.due(d(1930, 1, 1), m("2017-12")), None);
    }

    #[test]
    fn a_later_version_applies_from_its_month() {
        let text = format!(
            "{DEFAULT_POLICY}\n[[versions]]\nversion = 2\neffective_from = \"2026-01\"\nnotice = \"raised\"\nbands = [\n  {{ band = \"70-79\", min_age = 70, max_age = 79, monthly = \"60\" }},\n  {{ band = \"80+\", min_age = 80, monthly = \"150.50\" }},\n]\n"
        );
        let p = AllowancePolicy::parse(&text).unwrap();
        let birth = d(1940, 5, 5);
        assert_eq!(
            p.due(birth, month_start("2025-12").unwrap()).unwrap(),
            Due {
                version: 1,
                band: "80-89".into(),
                amount_fen: 10_000
            }
        );
        assert_eq!(
            p.due(birth, month_start("2026-01").unwrap()).unwrap(),
            Due {
                version: 2,
                band: "80+".into(),
                amount_fen: 15_050
            }
        );
    }

    #[test]
    fn a_policy_that_breaks_a_rule_is_refused_with_the_version_and_rule() {
        let one = |bands: &str, from: &str| {
            format!(
                "policy = \"elderly_allowance\"\n[[versions]]\nversion = 1\neffective_from = \"{from}\"\nnotice = \"n\"\nbands = [{bands}]\n"
            )
        };
        let refused = |text: &str| AllowancePolicy::parse(text).unwrap_err().to_string();
        let ok = r#"{ band = "a", min_age = 70, max_age = 79, monthly = "50" }"#;
        assert!(AllowancePolicy::parse(&one(ok, "2020-01")).is_ok());
        assert!(refused(&one(ok, "2020-13")).contains("effective_from"));
        let gap = r#"{ band = "a", min_age = 70, max_age = 79, monthly = "50" }, { band = "b", min_age = 81, monthly = "90" }"#;
        assert!(refused(&one(gap, "2020-01")).contains("does not start where band a ends"));
        let open_middle = r#"{ band = "a", min_age = 70, monthly = "50" }, { band = "b", min_age = 80, monthly = "90" }"#;
        assert!(refused(&one(open_middle, "2020-01")).contains("open-ended"));
        for amount in ["0", "-5", "50.001", "fifty", ""] {
            let b = format!(r#"{{ band = "a", min_age = 70, monthly = "{amount}" }}"#);
            assert!(refused(&one(&b, "2020-01")).contains("monthly"), "{amount}");
        }
        assert!(refused(&one("", "2020-01")).contains("no band"));
        let twice = format!(
            "{}[[versions]]\nversion = 2\neffective_from = \"2019-01\"\nnotice = \"n\"\nbands = [{ok}]\n",
            one(ok, "2020-01")
        );
        assert!(refused(&twice).contains("takes effect after version 1"));
        assert!(refused("policy = \"other\"\nversions = []\n").contains("not elderly_allowance"));
        assert!(refused("policy = \"elderly_allowance\"\nversions = []\n").contains("no version"));
    }
}
