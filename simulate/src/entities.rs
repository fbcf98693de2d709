//! What the economy and property generators add to the world: enterprises (with the fiscal
//! years the feeds report), construction projects, property certificates and their housing
//! contracts. Plain data: [`super::world::World`] holds them; [`super::economy`] and
//! [`super::property`] make them.

use chrono::NaiveDate;

use super::names;

#[derive(Debug, Clone)]
pub(crate) struct Enterprise {
    pub(crate) uscc: String,
    pub(crate) name: String,
    pub(crate) etype: &'static str,
    pub(crate) legal_rep: u32,
    pub(crate) industry: usize,
    pub(crate) capital_fen: i64,
    pub(crate) established: NaiveDate,
    pub(crate) street: u16,
    pub(crate) address: String,
    pub(crate) cancelled: Option<NaiveDate>,
    /// Insured employees who live outside the district.
    pub(crate) outside_staff: u32,
    /// Employees who are residents of the district (filled by employment).
    pub(crate) resident_staff: u32,
    /// Revenue per year of [`YEARS`], in fen.
    pub(crate) revenue: [i64; 2],
    pub(crate) tax: [i64; 2],
    pub(crate) high_tech: Option<NaiveDate>,
    pub(crate) sme: Option<(&'static str, NaiveDate)>,
    pub(crate) above_scale_first: Option<i32>,
    pub(crate) abnormal: Option<(NaiveDate, Option<NaiveDate>, &'static str)>,
    pub(crate) credit: [&'static str; 2],
}

/// The fiscal years the feeds report (tax, credit, statistics).
pub(crate) const YEARS: [i32; 2] = [2024, 2025];

impl Enterprise {
    pub(crate) fn headcount(&self) -> u32 {
        self.resident_staff + self.outside_staff
    }

    pub(crate) fn active_on(&self, d: NaiveDate) -> bool {
        self.established <= d && self.cancelled.is_none_or(|c| c > d)
    }

    pub(crate) fn industry_code(&self) -> &'static str {
        names::INDUSTRIES[self.industry].0
    }

    pub(crate) fn sector(&self) -> &'static str {
        names::INDUSTRIES[self.industry].2
    }

    /// Revenue threshold (fen) for the above-designated-size list of the sector.
    pub(crate) fn above_scale_threshold(&self) -> i64 {
        match self.sector() {
            "industry" | "wholesale_retail" => 2_000_000_000,
            "construction" => 5_000_000_000,
            _ => 1_000_000_000,
        }
    }

    /// Size class by headcount and revenue (工信部 classification, simplified).
    pub(crate) fn size_class(&self, year_idx: usize) -> &'static str {
        let staff = self.headcount();
        let revenue_wan = self.revenue[year_idx] / 1_000_000;
        if staff >= 1000 && revenue_wan >= 40_000 {
            "large"
        } else if staff >= 300 && revenue_wan >= 2_000 {
            "medium"
        } else if staff >= 20 && revenue_wan >= 300 {
            "small"
        } else {
            "micro"
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Project {
    pub(crate) code: String,
    pub(crate) name: String,
    pub(crate) builder: u32,
    pub(crate) investment_fen: i64,
    /// (stage, date, department), in order.
    pub(crate) events: Vec<(&'static str, NaiveDate, &'static str)>,
    /// A stage that happened but whose department never reported it (a gap on the timeline).
    pub(crate) unreported: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub(crate) struct Contract {
    pub(crate) no: String,
    pub(crate) signed: NaiveDate,
    pub(crate) filed: Option<NaiveDate>,
    pub(crate) price_fen: i64,
    pub(crate) developer: Option<u32>,
    pub(crate) project: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Property {
    pub(crate) cert_no: String,
    pub(crate) unit_no: String,
    pub(crate) owner: u32,
    pub(crate) address: String,
    pub(crate) area_m2: f64,
    pub(crate) usage: &'static str,
    pub(crate) registered: NaiveDate,
    pub(crate) mortgaged: bool,
    /// Mortgage released during the window.
    pub(crate) mortgage_released: Option<NaiveDate>,
    /// Cancelled (sold) on this date; the buyer's certificate is another property entry.
    pub(crate) cancelled: Option<NaiveDate>,
    pub(crate) contract: Option<Contract>,
}
