//! The allowance's outcomes leave gdx: notifications on `gdx.notifications` (notice, payment,
//! stop, recovery: for an SMS or app gateway) and the payments as facts of
//! `mca.elderly_allowance_payment` (so the lake, the profiles and the reports see them), each
//! exactly once, from the ledger.
//!
//! Data flow: each run committed to the ledger → its lines ([`Allowance`]'s messages: a
//! notification per payment, recovery, stop and notice, keyed by the recipient's pseudonym
//! or masked ID; a payment fact per payment) → [`publish_outbox`]: every run not published
//! yet, in order, exactly once.

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Decimal128Type};
use gdx_catalog::PiiKind;
use gdx_catalog::Pseudonymizer;
use gdx_lake::LakeLocation;
use gdx_lake::ledger::{self, LedgerTable, column as col};
use serde::Serialize;

use super::run::yuan;
pub use crate::scenarios::outbox::{
    LEASE_MS, NOTIFICATIONS_TOPIC, OUTCOME_HEADER, OutMessage, OutcomeSink, OutcomeSource,
    PublishError, PublishReport, publish_outbox,
};

/// Where the payments go, as the dataset's facts.
pub const PAYMENTS_TOPIC: &str = "mca.elderly_allowance_payment";

const PUBLISHED: &str = "elderly_allowance/published";
const CLAIM: &str = "elderly_allowance/publishing";

/// A notification as the gateway reads it: who (a pseudonym when gdx has a pseudonym key,
/// and masked ID and name), what, how much.
#[derive(Debug, Serialize)]
struct Notification<'a> {
    outcome_id: &'a str,
    scenario: &'static str,
    /// `notice`, `payment`, `stop` or `recovery`.
    kind: &'a str,
    run: i64,
    period: &'a str,
    band: Option<&'a str>,
    amount: String,
    reason: &'a str,
    recipient: Option<String>,
    recipient_masked: String,
    name_masked: Option<String>,
    as_of: &'a str,
}

/// One ledger line as published.
struct Outcome {
    id: String,
    kind: String,
    resident_id: String,
    name: Option<String>,
    period: String,
    band: Option<String>,
    fen: i64,
    reason: String,
    as_of: String,
}

async fn outcomes(table: &LedgerTable, run: i64) -> Result<Vec<Outcome>, PublishError> {
    let batches = table
        .query(&format!(
            "select {}, {}, {}, {}, {}, {}, {}, {}, cast({} as varchar) from t \
             where {} = {run} and {} <> 'run' order by {}",
            col::ENTRY_ID,
            col::KIND,
            col::RESIDENT_ID,
            col::NAME,
            col::PERIOD,
            col::BAND,
            col::AMOUNT,
            col::REASON,
            col::AS_OF,
            col::RUN,
            col::KIND,
            col::ENTRY_ID
        ))
        .await?;
    let mut out = Vec::new();
    for b in &batches {
        let text = |i: usize, name: &'static str| {
            datafusion::arrow::compute::cast(b.column(i), &DataType::Utf8)
                .map_err(|_| PublishError::Column(name))
        };
        let cols = [
            text(0, col::ENTRY_ID)?,
            text(1, col::KIND)?,
            text(2, col::RESIDENT_ID)?,
            text(3, col::NAME)?,
            text(4, col::PERIOD)?,
            text(5, col::BAND)?,
            text(7, col::REASON)?,
            text(8, col::AS_OF)?,
        ];
        let s: Vec<_> = cols.iter().map(|c| c.as_string::<i32>()).collect();
        let fen = b
            .column(6)
            .as_primitive_opt::<Decimal128Type>()
            .ok_or(PublishError::Column(col::AMOUNT))?;
        for i in 0..b.num_rows() {
            let v = |c: usize| s[c].is_valid(i).then(|| s[c].value(i).to_owned());
            out.push(Outcome {
                id: v(0).unwrap_or_default(),
                kind: v(1).unwrap_or_default(),
                resident_id: v(2).ok_or(PublishError::Column(col::RESIDENT_ID))?,
                name: v(3),
                period: v(4).unwrap_or_default(),
                band: v(5),
                fen: fen.value(i) as i64,
                reason: v(6).unwrap_or_default(),
                as_of: v(7).unwrap_or_default(),
            });
        }
    }
    Ok(out)
}

fn messages(
    run: i64,
    outcomes: &[Outcome],
    pseudonyms: Option<&Pseudonymizer>,
) -> Result<Vec<OutMessage>, PublishError> {
    let json = |r: serde_json::Result<Vec<u8>>| r.map_err(|e| PublishError::Kafka(e.to_string()));
    let mut out = Vec::with_capacity(outcomes.len() * 2);
    for o in outcomes {
        let recipient = pseudonyms.map(|p| p.pseudonym(PiiKind::IdNumber, &o.resident_id));
        let masked = gdx_catalog::mask::mask(PiiKind::IdNumber, &o.resident_id);
        let n = Notification {
            outcome_id: &o.id,
            scenario: "elderly_allowance",
            kind: &o.kind,
            run,
            period: &o.period,
            band: o.band.as_deref(),
            amount: yuan(o.fen),
            reason: &o.reason,
            recipient: recipient.clone(),
            recipient_masked: masked.clone(),
            name_masked: o
                .name
                .as_deref()
                .map(|n| gdx_catalog::mask::mask(PiiKind::Name, n)),
            as_of: &o.as_of,
        };
        out.push(OutMessage {
            topic: NOTIFICATIONS_TOPIC,
            key: recipient.unwrap_or(masked),
            outcome: o.id.clone(),
            payload: json(serde_json::to_vec(&n))?,
            event_time: None,
        });
        if o.kind == "payment" {
            let paid_on = o.as_of.get(..10).unwrap_or_default().to_owned();
            let fact = serde_json::json!({
                "payment_id": o.id,
                "resident_id": o.resident_id,
                "name": o.name,
                "period": o.period,
                "band": o.band,
                "amount": o.fen as f64 / 100.0,
                "bank_card": null,
                "paid_on": paid_on,
                "status": "paid",
            });
            out.push(OutMessage {
                topic: PAYMENTS_TOPIC,
                key: o.id.clone(),
                outcome: o.id.clone(),
                payload: json(serde_json::to_vec(&fact))?,
                event_time: Some(o.as_of.replace(' ', "T")),
            });
        }
    }
    Ok(out)
}

/// The allowance's ledger as an outbox.
struct Allowance<'a> {
    pseudonyms: Option<&'a Pseudonymizer>,
}

#[async_trait::async_trait]
impl OutcomeSource for Allowance<'_> {
    fn published_mark(&self) -> &'static str {
        PUBLISHED
    }

    fn claim_mark(&self) -> &'static str {
        CLAIM
    }

    fn topics(&self) -> &'static [&'static str] {
        &[NOTIFICATIONS_TOPIC, PAYMENTS_TOPIC]
    }

    async fn messages(
        &self,
        table: &LedgerTable,
        runs: std::ops::RangeInclusive<i64>,
    ) -> Result<Vec<OutMessage>, PublishError> {
        let mut out = Vec::new();
        for run in runs {
            out.extend(messages(
                run,
                &outcomes(table, run).await?,
                self.pseudonyms,
            )?);
        }
        Ok(out)
    }
}

/// Publishes every run of the ledger not published yet, in order.
pub async fn publish(
    lake: &LakeLocation,
    sink: std::sync::Arc<dyn OutcomeSink>,
    pseudonyms: Option<&Pseudonymizer>,
) -> Result<PublishReport, PublishError> {
    let mut table = LedgerTable::open(lake.scenario(ledger::ELDERLY_ALLOWANCE)).await?;
    publish_outbox(&mut table, &Allowance { pseudonyms }, sink).await
}
