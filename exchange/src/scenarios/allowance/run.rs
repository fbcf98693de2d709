//! One monthly run of the elderly allowance: what is still owed, decided from the lake as of
//! the run's date, and committed to the ledger once.
//!
//! Data flow: the ledger read whole ([`Ledger`]: per person and month what gdx has paid net
//! of recoveries, the notices sent, the first month and the latest date runs read as of) →
//! the lake as of the run's date through the lake's policy, as the operator
//! ([`gdx_lake::sql::LakeSession`] with [`SessionOptions::as_of`]): household registrations
//! (born when, registered from when, moved out when), deaths from any of three records
//! (the police register, death certificates, cremations: the earliest date wins), and the
//! previous system's payments (`mca.elderly_allowance_payment`, status paid) → per person and
//! month of the run's window ([`WINDOW_MONTHS`] back, never before the ledger's first
//! month): due (registered in the district and alive on the month's first day, the band
//! by age at its end) against paid → a payment of what is missing (the month run, arrears,
//! a top-up after a band upgrade), or a recovery of what was over-paid (a death the previous
//! system learnt of late), and a notice for who reaches the first band next month → one
//! commit, refused when another run committed since this one read the ledger (then read
//! again and decide again).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Months, NaiveDate, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, TimestampMicrosecondType,
};
use gdx_lake::ledger::{self, LedgerTable, column as col};
use gdx_lake::sql::{AsOf, LakeSession, SessionOptions};
use gdx_lake::{AllowAll, LakeLocation, TableRegistry};
use serde::Serialize;

use super::policy::{AllowancePolicy, month_end, month_start};

/// How many months back a run reconciles (arrears and recoveries older than this are not
/// its business).
pub const WINDOW_MONTHS: u32 = 12;

/// Times a run decides again after another run committed first.
const MAX_ATTEMPTS: u32 = 5;

const REGISTRATION: &str = "ps.household_registration";
const DEATH_CERTIFICATE: &str = "nhc.death_certificate";
const CREMATION: &str = "mca.cremation";
const PAYMENTS: &str = "mca.elderly_allowance_payment";

/// Why a run did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("month {month:?} is not a month (YYYY-MM)")]
    BadMonth { month: String },
    #[error("month {month} begins after the run's date {as_of}: a month is paid once it has begun")]
    NotBegun { month: String, as_of: NaiveDate },
    #[error(
        "month {month} is before the ledger's first month {start}: earlier months are the previous system's"
    )]
    BeforeLedgerStart { month: String, start: String },
    #[error(
        "as of {as_of} is before run {run}'s {last}: a run reads the lake at least as late as the runs before it"
    )]
    AsOfBeforeLastRun {
        as_of: String,
        run: i64,
        last: String,
    },
    #[error(
        "the lake holds no household registration of anyone near the allowance's age as of {as_of}: nothing to decide from (is this the district's lake, and has it been ingested?)"
    )]
    NoRegistrations { as_of: String },
    #[error("another run committed first {attempts} times in a row; try again")]
    Contended { attempts: u32 },
    #[error("{table}: column {column} is not what the catalog says")]
    Column { table: String, column: String },
    #[error(transparent)]
    Lake(#[from] gdx_lake::Error),
}

impl RunError {
    /// A stable code for the exchange's error envelope.
    pub fn code(&self) -> &'static str {
        match self {
            RunError::BadMonth { .. } => "bad_month",
            RunError::NotBegun { .. } => "month_not_begun",
            RunError::BeforeLedgerStart { .. } => "before_ledger_start",
            RunError::AsOfBeforeLastRun { .. } => "as_of_before_last_run",
            RunError::NoRegistrations { .. } => "no_registrations",
            RunError::Contended { .. } => "run_contended",
            RunError::Column { .. } | RunError::Lake(_) => "run_failed",
        }
    }
}

/// What one run is asked to do.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// `YYYY-MM`.
    pub month: String,
    /// The business time the lake is read as of (normally now).
    pub as_of: AsOf,
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RunReport {
    /// The run's number in the ledger.
    pub run: i64,
    pub month: String,
    /// The first month it reconciled (arrears and recoveries from here to `month`).
    pub from: String,
    /// RFC 3339.
    pub as_of: String,
    pub payments: u64,
    /// Yuan, two decimals.
    pub paid: String,
    pub recoveries: u64,
    pub recovered: String,
    pub notices: u64,
    /// Payments stopped (a death or a move-out), told once each.
    pub stops: u64,
    /// Residents of the allowance's age read from the lake.
    pub residents_read: u64,
    /// Commits tried (more than one: another run committed first).
    pub attempts: u32,
    /// The ledger's Delta version after the commit.
    pub ledger_version: u64,
}

/// Yuan with two decimals.
pub fn yuan(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", fen.abs() / 100, fen.abs() % 100)
}

fn period(first: NaiveDate) -> String {
    first.format("%Y-%m").to_string()
}

fn date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(719_163)?)
}

/// What the ledger holds, summed up.
#[derive(Debug, Default)]
struct Ledger {
    last_run: i64,
    /// (resident, month) → fen paid net of recoveries.
    net: HashMap<(String, String), i64>,
    entry_ids: HashSet<String>,
    notices: HashSet<(String, String)>,
    /// (resident, month) a stop was announced for.
    stops: HashSet<(String, String)>,
    start: Option<NaiveDate>,
    last_as_of: Option<DateTime<Utc>>,
}

fn text(table: &str, column: &str, a: &ArrayRef) -> Result<StringArray, RunError> {
    datafusion::arrow::compute::cast(a, &DataType::Utf8)
        .map(|c| c.as_string::<i32>().clone())
        .map_err(|_| RunError::Column {
            table: table.into(),
            column: column.into(),
        })
}

fn col_of<'a>(b: &'a RecordBatch, table: &str, name: &str) -> Result<&'a ArrayRef, RunError> {
    b.column_by_name(name).ok_or_else(|| RunError::Column {
        table: table.into(),
        column: name.into(),
    })
}

fn opt_str(a: &StringArray, i: usize) -> Option<&str> {
    a.is_valid(i).then(|| a.value(i))
}

impl Ledger {
    async fn read(table: &mut LedgerTable) -> Result<Self, RunError> {
        let last_run = table.last_run().await?;
        let name = "scenarios.elderly_allowance_ledger";
        let batches = table
            .query(&format!(
                "select {}, {}, {}, {}, {}, {} from t",
                col::ENTRY_ID,
                col::KIND,
                col::RESIDENT_ID,
                col::PERIOD,
                col::AMOUNT,
                col::AS_OF
            ))
            .await?;
        let mut l = Ledger {
            last_run,
            ..Ledger::default()
        };
        for b in &batches {
            let ids = text(name, col::ENTRY_ID, col_of(b, name, col::ENTRY_ID)?)?;
            let kinds = text(name, col::KIND, col_of(b, name, col::KIND)?)?;
            let who = text(name, col::RESIDENT_ID, col_of(b, name, col::RESIDENT_ID)?)?;
            let periods = text(name, col::PERIOD, col_of(b, name, col::PERIOD)?)?;
            let bad = |c: &str| RunError::Column {
                table: name.into(),
                column: c.into(),
            };
            let amounts = col_of(b, name, col::AMOUNT)?
                .as_primitive_opt::<Decimal128Type>()
                .ok_or_else(|| bad(col::AMOUNT))?;
            let as_of = col_of(b, name, col::AS_OF)?
                .as_primitive_opt::<TimestampMicrosecondType>()
                .ok_or_else(|| bad(col::AS_OF))?;
            for i in 0..b.num_rows() {
                let fen = amounts.value(i) as i64;
                let p = periods.value(i).to_owned();
                match kinds.value(i) {
                    "run" => {
                        let first = month_start(&p).ok_or_else(|| bad(col::PERIOD))?;
                        l.start = Some(l.start.map_or(first, |s| s.min(first)));
                        let at = DateTime::from_timestamp_micros(as_of.value(i))
                            .ok_or_else(|| bad(col::AS_OF))?;
                        l.last_as_of = Some(l.last_as_of.map_or(at, |t| t.max(at)));
                    }
                    kind => {
                        let r = opt_str(&who, i).ok_or_else(|| bad(col::RESIDENT_ID))?;
                        let key = (r.to_owned(), p);
                        match kind {
                            "payment" => *l.net.entry(key).or_default() += fen,
                            "recovery" => *l.net.entry(key).or_default() -= fen,
                            "notice" => {
                                l.notices.insert(key);
                            }
                            "stop" => {
                                l.stops.insert(key);
                            }
                            _ => return Err(bad(col::KIND)),
                        }
                    }
                }
                l.entry_ids.insert(ids.value(i).to_owned());
            }
        }
        Ok(l)
    }
}

/// One resident of the allowance's age, as the lake knew them at the run's date.
#[derive(Debug)]
struct Resident {
    id: String,
    name: String,
    birth: NaiveDate,
    registered_on: Option<NaiveDate>,
    moved_out_on: Option<NaiveDate>,
    /// The earliest date of death any record gives, and the records that give one.
    died: Option<(NaiveDate, Vec<&'static str>)>,
}

impl Resident {
    fn registered_on(&self, day: NaiveDate) -> bool {
        self.registered_on.is_some_and(|r| r <= day) && self.moved_out_on.is_none_or(|m| m > day)
    }

    fn alive_on(&self, day: NaiveDate) -> bool {
        self.died.as_ref().is_none_or(|(d, _)| *d >= day)
    }
}

async fn read_residents(
    session: &LakeSession,
    born_by: NaiveDate,
) -> Result<Vec<Resident>, RunError> {
    let sql = format!(
        "select r.resident_id, r.name, r.birth_date, r.registered_on, r.moved_out_on, \
                r.deceased_on, c.died as certified, k.died as cremated \
         from {REGISTRATION} r \
         left join (select resident_id, min(date_of_death) as died from {DEATH_CERTIFICATE} \
                    group by resident_id) c on c.resident_id = r.resident_id \
         left join (select resident_id, min(date_of_death) as died from {CREMATION} \
                    group by resident_id) k on k.resident_id = r.resident_id \
         where r.birth_date <= DATE '{born_by}'"
    );
    let out = session.collect(session.stream(&sql).await?).await?;
    let t = REGISTRATION;
    let mut people = Vec::new();
    for b in &out.batches {
        let ids = text(t, "resident_id", b.column(0))?;
        let names = text(t, "name", b.column(1))?;
        let dates: Vec<_> = (2..8)
            .map(|i| {
                b.column(i)
                    .as_primitive_opt::<Date32Type>()
                    .ok_or_else(|| RunError::Column {
                        table: t.into(),
                        column: b.schema().field(i).name().clone(),
                    })
            })
            .collect::<Result<_, _>>()?;
        let at = |c: usize, i: usize| {
            dates[c]
                .is_valid(i)
                .then(|| date(dates[c].value(i)))
                .flatten()
        };
        for i in 0..b.num_rows() {
            let (Some(id), Some(birth)) = (opt_str(&ids, i), at(0, i)) else {
                continue;
            };
            let mut died: Option<(NaiveDate, Vec<&'static str>)> = None;
            for (c, source) in [(3, REGISTRATION), (4, DEATH_CERTIFICATE), (5, CREMATION)] {
                if let Some(d) = at(c, i) {
                    let e = died.get_or_insert((d, Vec::new()));
                    e.0 = e.0.min(d);
                    e.1.push(source);
                }
            }
            people.push(Resident {
                id: id.to_owned(),
                name: opt_str(&names, i).unwrap_or_default().to_owned(),
                birth,
                registered_on: at(1, i),
                moved_out_on: at(2, i),
                died,
            });
        }
    }
    Ok(people)
}

/// (resident, month) → fen the previous system paid (status paid), leaving out the facts of
/// gdx's own payments (their ids are the ledger's).
async fn read_paid_before(
    session: &LakeSession,
    from: &str,
    to: &str,
    ledger: &Ledger,
) -> Result<HashMap<(String, String), i64>, RunError> {
    let sql = format!(
        "select payment_id, resident_id, period, amount from {PAYMENTS} \
         where status = 'paid' and period >= '{from}' and period <= '{to}'"
    );
    let out = session.collect(session.stream(&sql).await?).await?;
    let mut paid = HashMap::new();
    for b in &out.batches {
        let ids = text(PAYMENTS, "payment_id", b.column(0))?;
        let who = text(PAYMENTS, "resident_id", b.column(1))?;
        let periods = text(PAYMENTS, "period", b.column(2))?;
        let amounts = b
            .column(3)
            .as_primitive_opt::<Decimal128Type>()
            .ok_or_else(|| RunError::Column {
                table: PAYMENTS.into(),
                column: "amount".into(),
            })?;
        for i in 0..b.num_rows() {
            if ledger.entry_ids.contains(ids.value(i)) || !amounts.is_valid(i) {
                continue;
            }
            let (Some(r), Some(p)) = (opt_str(&who, i), opt_str(&periods, i)) else {
                continue;
            };
            *paid.entry((r.to_owned(), p.to_owned())).or_default() += amounts.value(i) as i64;
        }
    }
    Ok(paid)
}

/// One ledger line before it is numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    resident_id: String,
    name: String,
    period: String,
    band: Option<String>,
    policy_version: Option<u32>,
    fen: i64,
    reason: &'static str,
    evidence: String,
}

/// The decisions of one run (pure: the same inputs give the same lines, in a stable order).
fn decide(
    policy: &AllowancePolicy,
    month: NaiveDate,
    from: NaiveDate,
    today: NaiveDate,
    residents: &[Resident],
    ledger: &Ledger,
    paid_before: &HashMap<(String, String), i64>,
) -> Vec<Entry> {
    let mut months = Vec::new();
    let mut m = from;
    while m <= month {
        months.push(m);
        m = m + Months::new(1);
    }
    let next = month + Months::new(1);
    let mut out = Vec::new();
    let mut seen: HashSet<&str> = HashSet::new();
    let paid = |id: &str, p: &str| {
        let key = (id.to_owned(), p.to_owned());
        ledger.net.get(&key).copied().unwrap_or(0) + paid_before.get(&key).copied().unwrap_or(0)
    };
    for r in residents {
        if !seen.insert(&r.id) {
            continue;
        }
        let due_on = |first: NaiveDate| {
            (r.registered_on(first) && r.alive_on(first))
                .then(|| policy.due(r.birth, first))
                .flatten()
        };
        for &first in &months {
            let p = period(first);
            let registered = r.registered_on(first);
            let alive = r.alive_on(first);
            let due = due_on(first);
            let owed = due.as_ref().map_or(0, |d| d.amount_fen);
            // A stop: due the month before, not this one (a death or a move-out), told once.
            if owed == 0
                && due_on(first - Months::new(1)).is_some()
                && !ledger.stops.contains(&(r.id.clone(), p.clone()))
            {
                let (reason, evidence) = if alive {
                    ("not_registered", REGISTRATION.to_owned())
                } else {
                    (
                        "deceased",
                        r.died
                            .as_ref()
                            .map(|(_, s)| s.join(","))
                            .unwrap_or_default(),
                    )
                };
                out.push(Entry {
                    kind: "stop",
                    resident_id: r.id.clone(),
                    name: r.name.clone(),
                    period: p.clone(),
                    band: None,
                    policy_version: None,
                    fen: 0,
                    reason,
                    evidence,
                });
            }
            let have = paid(&r.id, &p);
            if owed == have {
                continue;
            }
            let (kind, reason, evidence) = if owed > have {
                let reason = if have > 0 {
                    "top_up"
                } else if first < month {
                    "arrears"
                } else {
                    "due"
                };
                let evidence = if paid_before.contains_key(&(r.id.clone(), p.clone())) {
                    format!("{REGISTRATION},{PAYMENTS}")
                } else {
                    REGISTRATION.to_owned()
                };
                ("payment", reason, evidence)
            } else if !alive {
                let sources = r
                    .died
                    .as_ref()
                    .map(|(_, s)| s.join(","))
                    .unwrap_or_default();
                ("recovery", "deceased", sources)
            } else if !registered {
                ("recovery", "not_registered", REGISTRATION.to_owned())
            } else {
                ("recovery", "over_band", REGISTRATION.to_owned())
            };
            out.push(Entry {
                kind,
                resident_id: r.id.clone(),
                name: r.name.clone(),
                period: p,
                band: due.as_ref().map(|d| d.band.clone()),
                policy_version: due.as_ref().map(|d| d.version),
                fen: (owed - have).abs(),
                reason,
                evidence,
            });
        }
        // The notice a month before the first payment.
        if r.registered_on(today)
            && r.alive_on(today + chrono::Duration::days(1))
            && policy.turns_eligible(r.birth, month)
            && !ledger.notices.contains(&(r.id.clone(), period(next)))
            && let Some(d) = policy.due(r.birth, next)
        {
            out.push(Entry {
                kind: "notice",
                resident_id: r.id.clone(),
                name: r.name.clone(),
                period: period(next),
                band: Some(d.band),
                policy_version: Some(d.version),
                fen: 0,
                reason: "turns_eligible",
                evidence: REGISTRATION.to_owned(),
            });
        }
    }
    // Paid people the lake no longer registers at all: nothing is due to them.
    let mut orphans: Vec<(&(String, String), i64)> = ledger
        .net
        .iter()
        .map(|(k, v)| (k, *v))
        .chain(paid_before.iter().map(|(k, v)| (k, *v)))
        .filter(|((id, p), v)| {
            *v != 0
                && !seen.contains(id.as_str())
                && month_start(p).is_some_and(|f| f >= from && f <= month)
        })
        .collect();
    orphans.sort();
    let mut done: HashSet<&(String, String)> = HashSet::new();
    for (key, _) in orphans {
        if !done.insert(key) {
            continue;
        }
        let have = paid(&key.0, &key.1);
        if have > 0 {
            out.push(Entry {
                kind: "recovery",
                resident_id: key.0.clone(),
                name: String::new(),
                period: key.1.clone(),
                band: None,
                policy_version: None,
                fen: have,
                reason: "not_registered",
                evidence: REGISTRATION.to_owned(),
            });
        }
    }
    out
}

fn batch(
    run: i64,
    month: &str,
    as_of: DateTime<Utc>,
    entries: &[Entry],
    summary: &str,
    net_fen: i64,
) -> Result<RecordBatch, RunError> {
    let now = Utc::now().timestamp_micros();
    let n = entries.len() + 1;
    let ids: Vec<String> = (1..=n).map(|i| format!("EA{run:06}{i:07}")).collect();
    let mut kinds: Vec<&str> = entries.iter().map(|e| e.kind).collect();
    kinds.push("run");
    let who: Vec<Option<&str>> = entries
        .iter()
        .map(|e| Some(e.resident_id.as_str()))
        .chain([None])
        .collect();
    let names: Vec<Option<&str>> = entries
        .iter()
        .map(|e| Some(e.name.as_str()).filter(|n| !n.is_empty()))
        .chain([None])
        .collect();
    let periods: Vec<&str> = entries
        .iter()
        .map(|e| e.period.as_str())
        .chain([month])
        .collect();
    let bands: Vec<Option<&str>> = entries
        .iter()
        .map(|e| e.band.as_deref())
        .chain([None])
        .collect();
    let versions: Vec<Option<i64>> = entries
        .iter()
        .map(|e| e.policy_version.map(i64::from))
        .chain([None])
        .collect();
    let amounts: Vec<i128> = entries
        .iter()
        .map(|e| i128::from(e.fen))
        .chain([i128::from(net_fen)])
        .collect();
    let reasons: Vec<&str> = entries.iter().map(|e| e.reason).chain([summary]).collect();
    let evidence: Vec<Option<&str>> = entries
        .iter()
        .map(|e| Some(e.evidence.as_str()))
        .chain([Some("ps.household_registration,nhc.death_certificate,mca.cremation,mca.elderly_allowance_payment")])
        .collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(Int64Array::from(vec![run; n])),
        Arc::new(StringArray::from(kinds)),
        Arc::new(StringArray::from(who)),
        Arc::new(StringArray::from(names)),
        Arc::new(StringArray::from(periods)),
        Arc::new(StringArray::from(bands)),
        Arc::new(Int64Array::from(versions)),
        Arc::new(
            Decimal128Array::from(amounts)
                .with_precision_and_scale(18, 2)
                .map_err(|_| RunError::Column {
                    table: "scenarios.elderly_allowance_ledger".into(),
                    column: col::AMOUNT.into(),
                })?,
        ),
        Arc::new(StringArray::from(reasons)),
        Arc::new(StringArray::from(evidence)),
        Arc::new(
            TimestampMicrosecondArray::from(vec![as_of.timestamp_micros(); n]).with_timezone("UTC"),
        ),
        Arc::new(TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC")),
    ];
    RecordBatch::try_new(ledger::ledger_schema(), columns).map_err(|_| RunError::Column {
        table: "scenarios.elderly_allowance_ledger".into(),
        column: "*".into(),
    })
}

/// Runs the allowance for `req.month` as of `req.as_of` and commits what it decided.
pub async fn run(
    registry: &TableRegistry,
    lake: &LakeLocation,
    policy: &AllowancePolicy,
    req: &RunRequest,
) -> Result<RunReport, RunError> {
    let month = month_start(&req.month).ok_or_else(|| RunError::BadMonth {
        month: req.month.clone(),
    })?;
    let today = req.as_of.date();
    if month > today {
        return Err(RunError::NotBegun {
            month: req.month.clone(),
            as_of: today,
        });
    }
    let mut table = LedgerTable::open(lake.scenario(ledger::ELDERLY_ALLOWANCE)).await?;
    let opts = SessionOptions {
        as_of: Some(req.as_of),
        max_rows: usize::MAX,
        ..SessionOptions::default()
    };
    let session = LakeSession::open(registry, Arc::new(AllowAll), &opts).await?;
    // The oldest birth date the first band can reach by the end of next month (notices).
    let born_by = month_end(month + Months::new(1)) - Months::new(12 * policy.youngest_age());
    let residents = read_residents(&session, born_by).await?;
    if residents.is_empty() {
        // A wrong lake or one not ingested yet: refused, not opened as an empty ledger.
        return Err(RunError::NoRegistrations {
            as_of: req.as_of.cutoff().to_rfc3339(),
        });
    }
    for attempt in 1..=MAX_ATTEMPTS {
        let ledger = Ledger::read(&mut table).await?;
        if let Some(start) = ledger.start
            && month < start
        {
            return Err(RunError::BeforeLedgerStart {
                month: req.month.clone(),
                start: period(start),
            });
        }
        if let Some(last) = ledger.last_as_of
            && req.as_of.cutoff() < last
        {
            return Err(RunError::AsOfBeforeLastRun {
                as_of: req.as_of.cutoff().to_rfc3339(),
                run: ledger.last_run,
                last: last.to_rfc3339(),
            });
        }
        let window_start = month - Months::new(WINDOW_MONTHS - 1);
        let from = ledger.start.map_or(month, |s| s.max(window_start));
        let paid_before = read_paid_before(&session, &period(from), &req.month, &ledger).await?;
        let entries = decide(
            policy,
            month,
            from,
            today,
            &residents,
            &ledger,
            &paid_before,
        );
        let count = |k: &str| entries.iter().filter(|e| e.kind == k).count() as u64;
        let sum = |k: &str| {
            entries
                .iter()
                .filter(|e| e.kind == k)
                .map(|e| e.fen)
                .sum::<i64>()
        };
        let (paid, recovered) = (sum("payment"), sum("recovery"));
        let summary = format!(
            "payments {} ({}), recoveries {} ({}), stops {}, notices {}; months {}..{}",
            count("payment"),
            yuan(paid),
            count("recovery"),
            yuan(recovered),
            count("stop"),
            count("notice"),
            period(from),
            req.month
        );
        let run = ledger.last_run + 1;
        let b = batch(
            run,
            &req.month,
            req.as_of.cutoff(),
            &entries,
            &summary,
            paid - recovered,
        )?;
        match table.append(b, run).await {
            Ok(version) => {
                tracing::info!(
                    run,
                    month = %req.month,
                    payments = count("payment"),
                    recoveries = count("recovery"),
                    notices = count("notice"),
                    attempt,
                    "elderly allowance run committed"
                );
                return Ok(RunReport {
                    run,
                    month: req.month.clone(),
                    from: period(from),
                    as_of: req.as_of.cutoff().to_rfc3339(),
                    payments: count("payment"),
                    paid: yuan(paid),
                    recoveries: count("recovery"),
                    recovered: yuan(recovered),
                    notices: count("notice"),
                    stops: count("stop"),
                    residents_read: residents.len() as u64,
                    attempts: attempt,
                    ledger_version: version,
                });
            }
            Err(e) if e.is_concurrent_commit() => {
                tracing::warn!(
                    run,
                    attempt,
                    "another allowance run committed first; deciding again"
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(RunError::Contended {
        attempts: MAX_ATTEMPTS,
    })
}

#[cfg(test)]
mod tests;
