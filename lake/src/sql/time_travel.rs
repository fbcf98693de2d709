//! Reading the lake as it was.
//!
//! Two kinds of "as of":
//! - Business time ([`AsOf`]): the state at a past date rebuilt from `events` — every event
//!   with `_event_time` at or before the cut-off, the latest per key, deletes removed. This is
//!   what an audit asks ("was this person eligible on 2026-03-01?"), and it includes keys that
//!   were deleted or changed later.
//! - Table versions: `table_at('ps.household_registration', 12)` or
//!   `table_at('profiles.citizen', '2026-11-29T10:00:00Z')` reads a Delta table at a version,
//!   or at the newest version committed at or before a timestamp.
//!
//! Data flow (business time): the `events` provider → a view filtered to the cut-off → a view
//! ranking per key by (`_event_time`, `_partition`, `_offset`) → the dataset's name.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::datasource::TableProvider;
use datafusion::logical_expr::Expr;
use url::Url;

/// The district's civil time (China Standard Time, no daylight saving).
pub fn district_offset() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("UTC+8")
}

/// A point in business time. A bare date means the end of that day in the district's time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsOf {
    cutoff: DateTime<Utc>,
}

impl AsOf {
    /// Parses `YYYY-MM-DD` (end of that day, UTC+8) or an RFC 3339 timestamp.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Ok(d) = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
            let next = d
                .succ_opt()
                .ok_or_else(|| format!("date {s:?} is out of range"))?
                .and_time(NaiveTime::MIN);
            let local = district_offset()
                .from_local_datetime(&next)
                .single()
                .ok_or_else(|| format!("date {s:?} is out of range"))?;
            // The last microsecond of the day.
            return Ok(Self {
                cutoff: local.with_timezone(&Utc) - chrono::Duration::microseconds(1),
            });
        }
        DateTime::parse_from_rfc3339(s.trim())
            .map(|t| Self {
                cutoff: t.with_timezone(&Utc),
            })
            .map_err(|_| format!("{s:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 timestamp"))
    }

    /// Events at or before this instant count.
    pub fn cutoff(&self) -> DateTime<Utc> {
        self.cutoff
    }

    /// The calendar day (district time) the cut-off falls on, for ages and date arithmetic.
    pub fn date(&self) -> NaiveDate {
        self.cutoff.with_timezone(&district_offset()).date_naive()
    }

    /// The cut-off as a SQL timestamp literal.
    pub fn sql_literal(&self) -> String {
        format!(
            "arrow_cast('{}', 'Timestamp(µs, \"UTC\")')",
            self.cutoff.format("%Y-%m-%dT%H:%M:%S%.6fZ")
        )
    }
}

impl std::str::FromStr for AsOf {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

/// SQL of the state of one dataset at the cut-off, over its (already cut-off) events view.
pub(crate) fn state_sql(events: &str, columns: &str) -> String {
    format!(
        "select {columns} from (select *, row_number() over (partition by _key \
         order by _event_time desc, _partition desc, _offset desc) as _rn from {events}) \
         where _rn = 1 and _op = 'upsert'"
    )
}

/// `table_at(name, version | timestamp)`: a Delta-backed table of the session at a version.
#[derive(Debug)]
pub(crate) struct TableAt {
    /// Session table name → Delta table URL.
    pub(crate) tables: Arc<BTreeMap<String, Url>>,
}

impl TableFunctionImpl for TableAt {
    fn call_with_args(
        &self,
        args: TableFunctionArgs,
    ) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        let usage = "table_at('<schema>.<table>', <version> | '<RFC 3339 timestamp>')";
        let [Expr::Literal(name, _), Expr::Literal(at, _)] = args.exprs() else {
            return plan_err!("usage: {usage}");
        };
        let Some(name) = name.try_as_str().flatten() else {
            return plan_err!("usage: {usage}");
        };
        let Some(url) = self.tables.get(name) else {
            let known: Vec<&str> = self.tables.keys().map(String::as_str).collect();
            return plan_err!(
                "table_at: no Delta table {name:?}; close: {}",
                super::close_names(name, &known).join(", ")
            );
        };
        enum At {
            Version(u64),
            Time(DateTime<Utc>),
        }
        let at = match at {
            ScalarValue::Int64(Some(v)) if *v >= 0 => At::Version(*v as u64),
            other => match other
                .try_as_str()
                .flatten()
                .map(DateTime::parse_from_rfc3339)
            {
                Some(Ok(t)) => At::Time(t.with_timezone(&Utc)),
                _ => return plan_err!("usage: {usage}"),
            },
        };
        let url = url.clone();
        let load = async move {
            let mut t = deltalake::DeltaTable::try_from_url(url).await?;
            match at {
                At::Version(v) => t.load_version(v as _).await?,
                At::Time(ts) => t.load_with_datetime(ts).await?,
            }
            Ok::<_, deltalake::DeltaTableError>(t.table_provider().await?)
        };
        // Table functions are planned synchronously; the Delta log is read on this worker
        // thread while the runtime moves other tasks elsewhere.
        let handle = tokio::runtime::Handle::try_current().map_err(|_| {
            datafusion::error::DataFusionError::Plan(
                "table_at needs the multi-threaded runtime".into(),
            )
        })?;
        tokio::task::block_in_place(|| handle.block_on(load))
            .map_err(|e| datafusion::error::DataFusionError::Plan(format!("table_at: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_means_the_end_of_that_day_in_district_time() {
        let a = AsOf::parse("2026-03-01").unwrap();
        assert_eq!(a.cutoff().to_rfc3339(), "2026-03-01T15:59:59.999999+00:00");
        assert_eq!(a.date(), NaiveDate::from_ymd_opt(2026, 3, 1).unwrap());
        let t = AsOf::parse("2026-03-01T08:00:00+08:00").unwrap();
        assert_eq!(t.cutoff().to_rfc3339(), "2026-03-01T00:00:00+00:00");
        assert!(
            AsOf::parse("March 1st")
                .unwrap_err()
                .contains("neither a date")
        );
    }
}
