//! The rewards' outcomes on `gdx.notifications` (服务找人: the firm learns it is eligible,
//! approved, rejected, paid, or that a payment failed), each exactly once, from the ledger.
//!
//! Data flow: each commit of the rewards' ledger → its lines that are outcomes for a firm
//! ([`outcome_of`]: a decision → `eligible`; the approval of a policy's last step →
//! `approved`; a rejection → `rejected` with its reason; a bank result → `paid`, `failed`,
//! `returned` or `mismatched`) → one notification each, keyed by the firm's USCC and naming
//! the ledger line as its outcome → [`publish_outbox`]: every commit not published yet, in
//! order, exactly once — by the exchange's `rewards-outcomes` task every few seconds, or
//! `gdx scenario rewards publish`.

use gdx_lake::LakeLocation;
use gdx_lake::ledger::LedgerTable;
use serde::Serialize;

use super::ledger::{Line, kind};
use super::policy::RewardPolicy;
use crate::scenarios::outbox::{
    NOTIFICATIONS_TOPIC, OutMessage, OutcomeSink, OutcomeSource, PublishError, PublishReport,
    publish_outbox,
};

const PUBLISHED: &str = "rewards/published";
const CLAIM: &str = "rewards/publishing";

/// A notification as the gateway reads it.
#[derive(Debug, Serialize)]
struct Notification<'a> {
    outcome_id: &'a str,
    scenario: &'static str,
    /// `eligible`, `approved`, `rejected`, `paid`, `failed`, `returned`, `mismatched`.
    kind: &'a str,
    policy: &'a str,
    policy_title: Option<&'a str>,
    period: &'a str,
    /// The firm (registration data, not personal).
    uscc: &'a str,
    name: Option<&'a str>,
    /// Yuan.
    amount: Option<&'a str>,
    /// A rejection's reason, a decision's basis.
    reason: Option<&'a str>,
    recorded_at: &'a str,
}

/// The outcome a line is for its firm, if any (`policy`: the line's policy as issued).
fn outcome_of<'a>(line: &'a Line, policy: Option<&RewardPolicy>) -> Option<&'a str> {
    match line.kind.as_str() {
        kind::DECISION => Some("eligible"),
        kind::APPROVAL
            if policy.and_then(|p| p.approvals.last()).map(String::as_str)
                == line.step.as_deref() =>
        {
            Some("approved")
        }
        kind::REJECTION => Some("rejected"),
        kind::BANK_RESULT => line.reason.as_deref(),
        _ => None,
    }
}

struct Rewards;

#[async_trait::async_trait]
impl OutcomeSource for Rewards {
    fn published_mark(&self) -> &'static str {
        PUBLISHED
    }

    fn claim_mark(&self) -> &'static str {
        CLAIM
    }

    fn topics(&self) -> &'static [&'static str] {
        &[NOTIFICATIONS_TOPIC]
    }

    async fn messages(
        &self,
        table: &LedgerTable,
        runs: std::ops::RangeInclusive<i64>,
    ) -> Result<Vec<OutMessage>, PublishError> {
        let ledger = super::ledger::read_table(table, *runs.end())
            .await
            .map_err(|e| PublishError::Kafka(e.log_safe()))?;
        let json =
            |r: serde_json::Result<Vec<u8>>| r.map_err(|e| PublishError::Kafka(e.to_string()));
        let mut out = Vec::new();
        for line in ledger.lines.iter().filter(|l| runs.contains(&l.seq)) {
            let policy = ledger.policy(&line.policy);
            let Some(k) = outcome_of(line, policy.as_ref().map(|(p, _)| p)) else {
                continue;
            };
            let Some(uscc) = line.uscc.as_deref() else {
                continue;
            };
            let n = Notification {
                outcome_id: &line.entry_id,
                scenario: "enterprise_reward",
                kind: k,
                policy: &line.policy,
                policy_title: policy.as_ref().map(|(p, _)| p.title.as_str()),
                period: &line.period,
                uscc,
                name: line.name.as_deref(),
                amount: line.amount.as_deref(),
                reason: line.reason.as_deref().filter(|_| k != "paid"),
                recorded_at: &line.recorded_at,
            };
            out.push(OutMessage {
                topic: NOTIFICATIONS_TOPIC,
                key: uscc.to_owned(),
                outcome: line.entry_id.clone(),
                payload: json(serde_json::to_vec(&n))?,
                event_time: None,
            });
        }
        Ok(out)
    }
}

/// Publishes every commit of the rewards' ledger not published yet, in order.
pub async fn publish(
    lake: &LakeLocation,
    sink: std::sync::Arc<dyn OutcomeSink>,
) -> Result<PublishReport, PublishError> {
    let mut table = super::ledger::open(lake)
        .await
        .map_err(|e| PublishError::Kafka(e.log_safe()))?;
    publish_outbox(&mut table, &Rewards, sink).await
}
