//! Property-certificate verification (房产证照真伪在线查验): is there one active certificate
//! with every attribute the clerk gives? Yes (`match`) or one single `no_match`.
//!
//! Data flow: `nre.property_certificate` and `hcd.housing_contract` at the registry's newest
//! versions, read whole as the operator ([`OperatorScan`]) → [`Register::from_batches`]: the
//! active certificates with their attributes normalised ([`normalize_text`], resident IDs
//! as [`ResidentId`]) and found by certificate number, by owner ID, and by housing contract
//! (the contract's unit address → the active certificates at that address) → swapped whole
//! into [`Registers`] whenever either table's version moves (off the request path) → per
//! call a clerk's [`Check`] is normalised into a [`Question`] (or refused: what is wrong
//! with the input, never anything about the register) → [`Register::check`] compares every
//! given attribute with every candidate, without stopping at the first difference, and
//! answers one bit; the [`Verdict`] keeps the real reason (which attributes differed) and
//! whom the question was about for the audit only.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arc_swap::ArcSwap;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use gdx_catalog::{IdError, ResidentId, normalize_text};
use gdx_lake::TableRegistry;
use gdx_lake::lookup::OperatorScan;

/// The certificates' table, and the contracts' (a contract number is a way in).
pub const CERTIFICATES: &str = "nre.property_certificate";
pub const CONTRACTS: &str = "hcd.housing_contract";

/// Longest text accepted for any attribute (characters, after normalisation).
const MAX_TEXT: usize = 200;

/// What a clerk asks, as sent: a way in (a certificate number, an owner's ID number and
/// name, or a housing contract number) and the attributes to confirm.
#[derive(Debug, Default, Clone)]
pub struct Check {
    pub certificate_no: Option<String>,
    pub owner_id: Option<String>,
    pub owner_name: Option<String>,
    pub contract_no: Option<String>,
    pub address: Option<String>,
    /// Square metres as decimal text (`89.5`, `８９.５０`).
    pub area_m2: Option<String>,
}

/// How the register is entered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handle {
    Certificate(String),
    Owner(String),
    Contract(String),
}

impl Handle {
    /// The key of the per-subject rate limit (the question's subject, whether or not the
    /// register holds it).
    pub fn rate_key(&self) -> String {
        match self {
            Handle::Certificate(no) => format!("certificate:{no}"),
            Handle::Owner(id) => format!("owner:{id}"),
            Handle::Contract(no) => format!("contract:{no}"),
        }
    }

    /// What the audit records as asked about.
    pub fn audit_subject(&self) -> String {
        match self {
            Handle::Owner(id) => id.clone(),
            other => other.rate_key(),
        }
    }

    fn describe(&self) -> &'static str {
        match self {
            Handle::Certificate(_) => "certificate number",
            Handle::Owner(_) => "owner",
            Handle::Contract(_) => "housing contract",
        }
    }
}

/// A clerk's question, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub handle: Handle,
    certificate_no: Option<String>,
    owner_id: Option<String>,
    owner_name: Option<String>,
    address: Option<String>,
    area_cents: Option<i64>,
}

/// Why a question cannot be asked (about the input alone).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckError {
    #[error(
        "give a certificate number (certificate_no), an owner's ID number and name (owner_id and owner_name), or a housing contract number (contract_no)"
    )]
    NoHandle,
    #[error("{field}: empty")]
    Empty { field: &'static str },
    #[error("{field}: longer than {MAX_TEXT} characters")]
    TooLong { field: &'static str },
    #[error("owner_id: {0}")]
    OwnerId(IdError),
    #[error("area_m2: a positive number of square metres with at most two decimals")]
    Area,
}

impl CheckError {
    /// The stable error code of the answer.
    pub fn code(&self) -> &'static str {
        match self {
            CheckError::NoHandle => "no_handle",
            CheckError::Empty { .. } => "empty_field",
            CheckError::TooLong { .. } => "too_long",
            CheckError::OwnerId(_) => "bad_owner_id",
            CheckError::Area => "bad_area",
        }
    }
}

fn text(field: &'static str, raw: Option<&str>) -> Result<Option<String>, CheckError> {
    let Some(raw) = raw else { return Ok(None) };
    let t = normalize_text(raw);
    if t.is_empty() {
        return Err(CheckError::Empty { field });
    }
    if t.chars().count() > MAX_TEXT {
        return Err(CheckError::TooLong { field });
    }
    Ok(Some(t))
}

/// Square metres as hundredths, exactly as written (no rounding of a third decimal).
pub fn area_cents(raw: &str) -> Result<i64, CheckError> {
    // At most nine digits of whole square metres.
    super::hundredths(raw)
        .filter(|&c| c > 0 && c < 100_000_000_000)
        .ok_or(CheckError::Area)
}

impl Question {
    /// Normalises `c`: full-width digits and brackets, spaces (第 … 号), a lowercase x in an
    /// ID; the way in is the certificate number if given, else the owner's ID and name,
    /// else the contract number.
    pub fn new(c: &Check) -> Result<Self, CheckError> {
        let certificate_no = text("certificate_no", c.certificate_no.as_deref())?;
        let owner_name = text("owner_name", c.owner_name.as_deref())?;
        let contract_no = text("contract_no", c.contract_no.as_deref())?;
        let address = text("address", c.address.as_deref())?;
        let owner_id = match c.owner_id.as_deref() {
            Some(raw) => Some(
                ResidentId::parse(raw)
                    .map_err(CheckError::OwnerId)?
                    .as_str()
                    .to_owned(),
            ),
            None => None,
        };
        let area_cents = c.area_m2.as_deref().map(area_cents).transpose()?;
        let handle = match (&certificate_no, &owner_id, &owner_name, contract_no) {
            (Some(no), ..) => Handle::Certificate(no.clone()),
            (None, Some(id), Some(_), _) => Handle::Owner(id.clone()),
            (None, _, _, Some(no)) => Handle::Contract(no),
            _ => return Err(CheckError::NoHandle),
        };
        Ok(Self {
            handle,
            certificate_no,
            owner_id,
            owner_name,
            address,
            area_cents,
        })
    }

    /// The certificate's fields this question reads (for the grant's field list), the way
    /// in included.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        for (name, given) in [
            ("certificate_no", self.certificate_no.is_some()),
            ("owner_id", self.owner_id.is_some()),
            ("owner_name", self.owner_name.is_some()),
            ("address", self.address.is_some()),
            ("area_m2", self.area_cents.is_some()),
        ] {
            if given {
                f.push(name);
            }
        }
        f
    }
}

/// One active certificate, normalised for comparison, with every stored column as text
/// (for row scopes).
#[derive(Debug, Default)]
struct Cert {
    no: Box<str>,
    owner_id: Box<str>,
    owner_name: Box<str>,
    address: Box<str>,
    area_cents: i64,
    stored: Vec<Option<Box<str>>>,
}

/// The answer, and what only the audit is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub matched: bool,
    /// `match`, or why not: no active certificate, which attributes differed, out of scope.
    pub reason: String,
    /// Whom the question was about: the way in, and the owners of the certificates it found.
    pub subjects: Vec<String>,
}

/// The active property certificates at one pair of table versions.
#[derive(Debug, Default)]
pub struct Register {
    /// Versions of [`CERTIFICATES`] and [`CONTRACTS`] read.
    versions: [Option<u64>; 2],
    columns: Vec<String>,
    certs: Vec<Cert>,
    by_no: HashMap<Box<str>, Vec<u32>>,
    by_owner: HashMap<Box<str>, Vec<u32>>,
    by_contract: HashMap<Box<str>, Vec<u32>>,
}

fn text_column(batch: &RecordBatch, name: &str) -> Result<Arc<dyn Array>, String> {
    let c = batch
        .column_by_name(name)
        .ok_or_else(|| format!("column {name} missing"))?;
    cast(c, &DataType::Utf8).map_err(|e| format!("column {name}: {e}"))
}

impl Register {
    /// Builds the register from the rows of both tables (as stored).
    pub fn from_batches(
        certificates: &[RecordBatch],
        contracts: &[RecordBatch],
        versions: [Option<u64>; 2],
    ) -> Result<Self, String> {
        let mut r = Register {
            versions,
            ..Register::default()
        };
        let mut by_address: HashMap<Box<str>, Vec<u32>> = HashMap::new();
        for batch in certificates {
            if r.columns.is_empty() {
                r.columns = batch
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
            }
            let stored: Vec<Arc<dyn Array>> = r
                .columns
                .iter()
                .map(|c| text_column(batch, c))
                .collect::<Result<_, _>>()?;
            let col = |name: &str| -> Result<usize, String> {
                r.columns
                    .iter()
                    .position(|c| c == name)
                    .ok_or_else(|| format!("column {name} missing"))
            };
            let (no, owner, name, address, status) = (
                col("certificate_no")?,
                col("owner_id")?,
                col("owner_name")?,
                col("address")?,
                col("status")?,
            );
            let area = batch
                .column_by_name("area_m2")
                .ok_or("column area_m2 missing")?;
            let area = cast(area, &DataType::Float64).map_err(|e| format!("area_m2: {e}"))?;
            let area = area.as_primitive::<Float64Type>();
            for row in 0..batch.num_rows() {
                let get = |c: usize| {
                    let a = stored[c].as_string::<i32>();
                    (!a.is_null(row)).then(|| a.value(row))
                };
                if get(status) != Some("active") {
                    continue;
                }
                let (Some(cert_no), Some(owner_id)) = (get(no), get(owner)) else {
                    continue;
                };
                let owner_id = match ResidentId::parse(owner_id) {
                    Ok(id) => id.as_str().into(),
                    // Kept as stored: it can only match the same text.
                    Err(_) => owner_id.into(),
                };
                let cert = Cert {
                    no: normalize_text(cert_no).into(),
                    owner_id,
                    owner_name: get(name).map(normalize_text).unwrap_or_default().into(),
                    address: get(address).map(normalize_text).unwrap_or_default().into(),
                    area_cents: if area.is_null(row) {
                        -1
                    } else {
                        (area.value(row) * 100.0).round() as i64
                    },
                    stored: (0..r.columns.len())
                        .map(|c| get(c).map(Into::into))
                        .collect(),
                };
                let at = u32::try_from(r.certs.len()).map_err(|_| "too many certificates")?;
                r.by_no.entry(cert.no.clone()).or_default().push(at);
                r.by_owner
                    .entry(cert.owner_id.clone())
                    .or_default()
                    .push(at);
                by_address.entry(cert.address.clone()).or_default().push(at);
                r.certs.push(cert);
            }
        }
        for batch in contracts {
            let (no, address, status) = (
                text_column(batch, "contract_no")?,
                text_column(batch, "unit_address")?,
                text_column(batch, "status")?,
            );
            let (no, address, status) = (
                no.as_string::<i32>(),
                address.as_string::<i32>(),
                status.as_string::<i32>(),
            );
            for row in 0..batch.num_rows() {
                if no.is_null(row) || address.is_null(row) || status.value(row) == "cancelled" {
                    continue;
                }
                if let Some(at) = by_address.get(normalize_text(address.value(row)).as_str()) {
                    r.by_contract
                        .insert(normalize_text(no.value(row)).into(), at.clone());
                }
            }
        }
        Ok(r)
    }

    /// Reads both tables at the registry's newest versions.
    pub async fn build(registry: &TableRegistry) -> Result<Self, String> {
        let read = async |table: &str| -> Result<(Option<u64>, Vec<RecordBatch>), String> {
            match OperatorScan::open(registry, table)
                .await
                .map_err(|e| e.log_safe())?
            {
                None => Ok((None, Vec::new())),
                Some(scan) => {
                    let version = scan.version;
                    Ok((version, scan.collect().await.map_err(|e| e.log_safe())?))
                }
            }
        };
        let (cv, certificates) = read(CERTIFICATES).await?;
        let (hv, contracts) = read(CONTRACTS).await?;
        Self::from_batches(&certificates, &contracts, [cv, hv])
    }

    /// Active certificates held.
    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// True when the registry still holds the versions this register was built from.
    pub fn is_current(&self, registry: &TableRegistry) -> bool {
        let snapshot = registry.snapshot();
        self.versions == [snapshot.version(CERTIFICATES), snapshot.version(CONTRACTS)]
    }

    /// Whether one active certificate has every attribute `q` gives, within `scope` (the
    /// grant's row scope: column → allowed stored values). Every candidate is compared on
    /// every attribute, and a question that finds none is compared with an empty
    /// certificate, so a near miss costs what a stranger costs.
    pub fn check(&self, q: &Question, scope: &BTreeMap<String, Vec<String>>) -> Verdict {
        static NOBODY: std::sync::LazyLock<Cert> = std::sync::LazyLock::new(Cert::default);
        let found: &[u32] = match &q.handle {
            Handle::Certificate(no) => self.by_no.get(no.as_str()),
            Handle::Owner(id) => self.by_owner.get(id.as_str()),
            Handle::Contract(no) => self.by_contract.get(no.as_str()),
        }
        .map_or(&[], Vec::as_slice);
        let candidates: Vec<&Cert> = if found.is_empty() {
            vec![&*NOBODY]
        } else {
            found.iter().map(|&i| &self.certs[i as usize]).collect()
        };
        let differs = |given: &Option<String>, held: &str| {
            given
                .as_deref()
                .is_some_and(|g| g.as_bytes() != held.as_bytes())
        };
        let mut matched = false;
        let mut best: Option<(u32, Vec<&'static str>)> = None;
        let mut outside = false;
        for c in &candidates {
            let diffs: Vec<&'static str> = [
                ("certificate_no", differs(&q.certificate_no, &c.no)),
                ("owner_id", differs(&q.owner_id, &c.owner_id)),
                ("owner_name", differs(&q.owner_name, &c.owner_name)),
                ("address", differs(&q.address, &c.address)),
                ("area_m2", q.area_cents.is_some_and(|a| a != c.area_cents)),
            ]
            .into_iter()
            .filter(|(_, d)| *d)
            .map(|(f, _)| f)
            .collect();
            let in_scope = scope.iter().all(|(field, allowed)| {
                self.columns
                    .iter()
                    .position(|c| c == field)
                    .and_then(|i| c.stored.get(i).cloned().flatten())
                    .is_some_and(|v| allowed.iter().any(|a| a.as_str() == &*v))
            });
            matched |= diffs.is_empty() & in_scope & !found.is_empty();
            outside |= diffs.is_empty() & !in_scope;
            let n = diffs.len() as u32;
            if best.as_ref().is_none_or(|(b, _)| n < *b) {
                best = Some((n, diffs));
            }
        }
        let reason = if matched {
            "match".to_owned()
        } else if found.is_empty() {
            format!(
                "no_match: no active certificate for the {}",
                q.handle.describe()
            )
        } else if outside {
            "no_match: outside the grant's row scope".to_owned()
        } else {
            let fields = best.map(|(_, d)| d.join(", ")).unwrap_or_default();
            format!("no_match: differs in {fields}")
        };
        let mut subjects = vec![q.handle.audit_subject()];
        for &i in found {
            let owner = self.certs[i as usize].owner_id.to_string();
            if !subjects.contains(&owner) {
                subjects.push(owner);
            }
        }
        Verdict {
            matched,
            reason,
            subjects,
        }
    }
}

/// The register the exchange answers from, rebuilt when either table moves.
#[derive(Debug)]
pub struct Registers {
    held: ArcSwap<Register>,
}

impl Registers {
    /// Builds the first register (an empty one when the tables are not written yet).
    pub async fn open(registry: &TableRegistry) -> Result<Self, String> {
        Ok(Self {
            held: ArcSwap::from_pointee(Register::build(registry).await?),
        })
    }

    /// The newest register built. Until a moved table is read again (the registry refresh's
    /// interval plus one build), it is the one before.
    pub fn current(&self) -> Arc<Register> {
        self.held.load_full()
    }

    /// Rebuilds the register if either table has a newer version.
    pub async fn refresh(&self, registry: &TableRegistry) -> Result<(), String> {
        if self.held.load().is_current(registry) {
            return Ok(());
        }
        let started = std::time::Instant::now();
        let next = Register::build(registry).await?;
        tracing::info!(
            certificates = next.len(),
            ms = started.elapsed().as_millis() as u64,
            "property-certificate register rebuilt"
        );
        self.held.store(Arc::new(next));
        Ok(())
    }
}

#[cfg(test)]
mod tests;
