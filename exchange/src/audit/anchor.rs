//! Anchoring each replica's chain head outside the lake, on the `gdx.audit` topic.
//!
//! Data flow: every few seconds the exchange's anchor task reads the audit log's head →
//! when it moved, an [`Anchor`] (replica, sequence number, hash, time: no personal data)
//! goes to the [`AnchorSink`] (the binary's Kafka producer on `gdx.audit`, keyed by replica),
//! and once more at shutdown → `gdx audit verify --brokers` reads the newest anchor of each
//! replica back and [`check_anchor`] asks the chain it verified (the lake's copy, or a local
//! log) to still hold that record with that hash. A chain cut short in the local log and the
//! lake alike, or rewritten from some record on, no longer reaches its anchor. What a
//! truncation can hide is bounded by the anchor interval.

use serde::{Deserialize, Serialize};

use super::chain::AuditRecord;
use super::verify::{Break, BreakKind};

/// The topic chain heads are published on.
pub const AUDIT_TOPIC: &str = "gdx.audit";

/// A replica's chain head at a moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub replica: String,
    pub seq: i64,
    pub hash: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// Where anchors go. Publishing may block (it waits for the broker's acknowledgement): the
/// exchange calls it off its runtime's worker threads.
pub trait AnchorSink: std::fmt::Debug + Send + Sync {
    /// Stores `anchor` durably outside the lake, or says why it could not.
    fn publish(&self, anchor: &Anchor) -> Result<(), String>;
}

/// Whether `records` (one replica's chain, in order, already checked as a chain) still hold
/// the anchored record.
pub fn check_anchor(records: &[AuditRecord], anchor: &Anchor) -> Result<(), Break> {
    let last = records.last().map_or(0, |r| r.seq);
    match records.iter().find(|r| r.seq == anchor.seq) {
        Some(r) if r.hash == anchor.hash => Ok(()),
        Some(r) => Err(Break {
            line: 0,
            seq: Some(r.seq),
            kind: BreakKind::DiffersFromAnchor,
        }),
        None => Err(Break {
            line: 0,
            seq: Some(last),
            kind: BreakKind::BehindAnchor {
                chain: last,
                anchored: anchor.seq,
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::GENESIS;
    use crate::audit::chain::{Entry, Outcome};

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut out: Vec<AuditRecord> = Vec::new();
        for seq in 1..=n {
            let prev = out.last().map_or(GENESIS.to_owned(), |r| r.hash.clone());
            let entry = Entry {
                outcome: Some(Outcome::Allowed),
                action: "read".into(),
                object: format!("dataset:x{seq}"),
                ..Entry::default()
            };
            out.push(AuditRecord::seal(
                entry,
                seq,
                chrono::Utc::now(),
                "r1",
                &prev,
            ));
        }
        out
    }

    #[test]
    fn a_chain_cut_below_or_rewritten_at_its_anchor_is_caught() {
        let c = chain(6);
        let anchor = |r: &AuditRecord| Anchor {
            replica: "r1".into(),
            seq: r.seq,
            hash: r.hash.clone(),
            at: chrono::Utc::now(),
        };
        // Intact, and grown since the anchor.
        assert_eq!(check_anchor(&c, &anchor(&c[3])), Ok(()));
        assert_eq!(check_anchor(&c, &anchor(&c[5])), Ok(()));
        // Truncated below the anchor (a consistent chain of 4).
        let b = check_anchor(&c[..4], &anchor(&c[5])).unwrap_err();
        assert_eq!(
            b.kind,
            BreakKind::BehindAnchor {
                chain: 4,
                anchored: 6
            }
        );
        assert!(b.to_string().contains("anchored"), "{b}");
        // Rewritten and re-hashed from record 3 on: a consistent chain, but not the anchored one.
        let mut forged = c[..2].to_vec();
        let mut prev = forged[1].hash.clone();
        for seq in 3..=6 {
            let entry = Entry {
                outcome: Some(Outcome::Denied),
                action: "read".into(),
                object: "dataset:other".into(),
                ..Entry::default()
            };
            let r = AuditRecord::seal(entry, seq, chrono::Utc::now(), "r1", &prev);
            prev = r.hash.clone();
            forged.push(r);
        }
        assert!(crate::audit::verify::check_chain(forged.iter().map(|r| (0, Some(r)))).is_ok());
        let b = check_anchor(&forged, &anchor(&c[4])).unwrap_err();
        assert_eq!((b.seq, b.kind), (Some(5), BreakKind::DiffersFromAnchor));
        // Anchors carry no personal data: replica, number, hash, time.
        let json = serde_json::to_value(anchor(&c[0])).unwrap();
        assert_eq!(json.as_object().unwrap().len(), 4);
    }
}
