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

/// The SQL of a profile as of `day`, over a session's table names.
pub fn sql(p: Profile, day: NaiveDate) -> String {
    p.template()
        .replace("{as_of}", &format!("DATE '{}'", day.format("%Y-%m-%d")))
}
