//! Which profiles the lake builds, and the SQL of each (`citizen.sql`, `enterprise.sql`)
//! as of a day: plain definitions that sessions (which plan profiles not built yet) and
//! builds both read.

use chrono::NaiveDate;

/// The profiles the lake builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Citizen,
    Enterprise,
}

impl Profile {
    pub const ALL: [Profile; 2] = [Profile::Citizen, Profile::Enterprise];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Citizen => "citizen",
            Profile::Enterprise => "enterprise",
        }
    }

    fn template(self) -> &'static str {
        match self {
            Profile::Citizen => include_str!("citizen.sql"),
            Profile::Enterprise => include_str!("enterprise.sql"),
        }
    }
}

/// The rewards' ledger as sessions name it (the enterprise profile's rewards received).
pub const REWARDS_LEDGER: &str = "scenarios.rewards_ledger";

/// The ledger's columns the profile reads, with no rows: for a lake no reward was paid from.
const NO_REWARDS: &str = "(select cast(null as varchar) as uscc, cast(null as varchar) as policy, \
     cast(null as decimal(18, 2)) as amount, cast(null as varchar) as kind, \
     cast(null as varchar) as reason where false)";

/// The SQL of a profile as of `day`, over a session's table names (`with_ledger`: the
/// session has the rewards' ledger).
pub fn sql(p: Profile, day: NaiveDate, with_ledger: bool) -> String {
    p.template()
        .replace("{as_of}", &format!("DATE '{}'", day.format("%Y-%m-%d")))
        .replace(
            "{rewards_ledger}",
            if with_ledger {
                REWARDS_LEDGER
            } else {
                NO_REWARDS
            },
        )
}
