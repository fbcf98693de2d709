//! Checking audit chains: a local log, the lake's copy, and one against the other.
//!
//! Data flow: records in order (parsed from a log's lines, or read from `system.audit` per
//! replica) → [`check_chain`]: each record's hash recomputed (an edit shows), its sequence
//! number one more than the previous (a deletion, reordering or insertion shows), its
//! `prev_hash` the previous record's hash (a record moved or forged shows) → the first
//! [`Break`], or the chain's head → [`compare_with_lake`]: the lake's copy must be a prefix
//! of the local log, record for record (a local log truncated, or rewritten and re-hashed
//! from some record on, shows).

use super::chain::{AuditRecord, GENESIS};

/// What is wrong at the first broken link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakKind {
    /// The line is not a record.
    Unreadable,
    /// The record's content does not give its hash: it was edited.
    Edited,
    /// Records are missing before this one (deleted), or it is out of order.
    Sequence { expected: i64, found: i64 },
    /// Its `prev_hash` is not the previous record's hash (inserted, moved or forged).
    Link,
    /// The local record differs from the lake's copy of the same sequence number.
    DiffersFromLake,
    /// The local log ends before the last record the lake holds.
    Truncated { local: i64, lake: i64 },
    /// The chain ends before the head anchored on `gdx.audit`.
    BehindAnchor { chain: i64, anchored: i64 },
    /// The record is not the one whose hash was anchored on `gdx.audit`.
    DiffersFromAnchor,
}

/// The first broken link of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// 1-based line of a log file (0 for the lake's copy).
    pub line: usize,
    pub seq: Option<i64>,
    pub kind: BreakKind,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.seq {
            Some(s) => write!(f, "record {s}")?,
            None => f.write_str("a record")?,
        }
        if self.line > 0 {
            write!(f, " (line {})", self.line)?;
        }
        match &self.kind {
            BreakKind::Unreadable => f.write_str(": not a readable audit record"),
            BreakKind::Edited => f.write_str(": its content does not match its hash (edited)"),
            BreakKind::Sequence { expected, found } if found > expected => write!(
                f,
                ": expected record {expected}, found {found} (records deleted, or out of order)"
            ),
            BreakKind::Sequence { expected, found } => write!(
                f,
                ": expected record {expected}, found {found} (records out of order, or inserted)"
            ),
            BreakKind::Link => {
                f.write_str(": does not link to the record before it (inserted, moved or forged)")
            }
            BreakKind::DiffersFromLake => {
                f.write_str(": differs from the lake's copy of the same record")
            }
            BreakKind::Truncated { local, lake } => write!(
                f,
                ": the local log ends at record {local} but the lake holds up to {lake} (truncated)"
            ),
            BreakKind::BehindAnchor { chain, anchored } => write!(
                f,
                ": the chain ends at record {chain} but record {anchored} was anchored on gdx.audit (truncated)"
            ),
            BreakKind::DiffersFromAnchor => f.write_str(
                ": differs from the record anchored on gdx.audit (the chain was rewritten from here or earlier)",
            ),
        }
    }
}

/// The head of a verified chain: the last record's sequence number and hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

impl Default for Head {
    fn default() -> Self {
        Self {
            seq: 0,
            hash: GENESIS.to_owned(),
        }
    }
}

/// Checks records in order (with their line numbers, 0 when they have none).
pub fn check_chain<'a>(
    records: impl IntoIterator<Item = (usize, Option<&'a AuditRecord>)>,
) -> Result<Head, Break> {
    let mut head = Head::default();
    for (line, r) in records {
        let Some(r) = r else {
            return Err(Break {
                line,
                seq: None,
                kind: BreakKind::Unreadable,
            });
        };
        let brk = |kind| Break {
            line,
            seq: Some(r.seq),
            kind,
        };
        if r.computed_hash() != r.hash {
            return Err(brk(BreakKind::Edited));
        }
        if r.seq != head.seq + 1 {
            return Err(brk(BreakKind::Sequence {
                expected: head.seq + 1,
                found: r.seq,
            }));
        }
        if r.prev_hash != head.hash {
            return Err(brk(BreakKind::Link));
        }
        head = Head {
            seq: r.seq,
            hash: r.hash.clone(),
        };
    }
    Ok(head)
}

/// The records of a log file's text, one per non-empty line (`None` for a line that does
/// not parse), with line numbers.
pub fn parse_log(text: &str) -> Vec<(usize, Option<AuditRecord>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, serde_json::from_str(l).ok()))
        .collect()
}

/// Checks a parsed log.
pub fn check_log(parsed: &[(usize, Option<AuditRecord>)]) -> Result<Head, Break> {
    check_chain(parsed.iter().map(|(l, r)| (*l, r.as_ref())))
}

/// The lake's copy of one replica's records must be a prefix of its local log.
pub fn compare_with_lake(
    local: &[(usize, Option<AuditRecord>)],
    lake: &[AuditRecord],
) -> Result<(), Break> {
    for (i, theirs) in lake.iter().enumerate() {
        match local.get(i) {
            None => {
                return Err(Break {
                    line: 0,
                    seq: Some(theirs.seq),
                    kind: BreakKind::Truncated {
                        local: local.len() as i64,
                        lake: lake.last().map_or(0, |r| r.seq),
                    },
                });
            }
            Some((line, mine)) if mine.as_ref() != Some(theirs) => {
                return Err(Break {
                    line: *line,
                    seq: Some(theirs.seq),
                    kind: BreakKind::DiffersFromLake,
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::chain::{Entry, Outcome};
    use super::*;

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_owned();
        (1..=n)
            .map(|seq| {
                let r = AuditRecord::seal(
                    Entry {
                        principal: "mca-app".into(),
                        action: "read:masked dataset:ps.household_registration".into(),
                        outcome: Some(Outcome::Allowed),
                        rows: seq,
                        ..Entry::default()
                    },
                    seq,
                    chrono::Utc::now(),
                    "r1",
                    &prev,
                );
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    fn lines(records: &[AuditRecord]) -> Vec<(usize, Option<AuditRecord>)> {
        records
            .iter()
            .enumerate()
            .map(|(i, r)| (i + 1, Some(r.clone())))
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_to_its_head() {
        let c = chain(5);
        let head = check_log(&lines(&c)).unwrap();
        assert_eq!(head.seq, 5);
        assert_eq!(head.hash, c[4].hash);
        compare_with_lake(&lines(&c), &c[..3]).unwrap();
    }

    #[test]
    fn every_kind_of_tampering_is_caught_at_its_record() {
        let c = chain(6);
        // Edited.
        let mut edited = c.clone();
        edited[2].rows = 99;
        let b = check_log(&lines(&edited)).unwrap_err();
        assert_eq!((b.seq, b.kind), (Some(3), BreakKind::Edited));
        // Edited and re-hashed: the next record's link breaks.
        let mut rehashed = c.clone();
        rehashed[2].rows = 99;
        rehashed[2].hash = rehashed[2].computed_hash();
        let b = check_log(&lines(&rehashed)).unwrap_err();
        assert_eq!((b.seq, b.kind), (Some(4), BreakKind::Link));
        // Deleted.
        let mut deleted = c.clone();
        deleted.remove(3);
        let b = check_log(&lines(&deleted)).unwrap_err();
        assert_eq!(
            b.kind,
            BreakKind::Sequence {
                expected: 4,
                found: 5
            }
        );
        // Reordered.
        let mut reordered = c.clone();
        reordered.swap(1, 2);
        let b = check_log(&lines(&reordered)).unwrap_err();
        assert_eq!(
            b.kind,
            BreakKind::Sequence {
                expected: 2,
                found: 3
            }
        );
        // Inserted: a forged record sealed after record 2.
        let mut inserted = c.clone();
        let forged = AuditRecord::seal(Entry::default(), 3, chrono::Utc::now(), "r1", &c[1].hash);
        inserted.insert(2, forged);
        let b = check_log(&lines(&inserted)).unwrap_err();
        assert_eq!(
            b.kind,
            BreakKind::Sequence {
                expected: 4,
                found: 3
            }
        );
        // Truncated: intact as a chain, caught against the lake's copy.
        let truncated = lines(&c[..4]);
        assert!(check_log(&truncated).is_ok());
        let b = compare_with_lake(&truncated, &c).unwrap_err();
        assert_eq!(b.kind, BreakKind::Truncated { local: 4, lake: 6 });
        // Rewritten from record 3 on with a valid chain: differs from the lake's copy.
        let mut rewritten = c[..2].to_vec();
        let mut prev = c[1].hash.clone();
        for seq in 3..=6 {
            let r = AuditRecord::seal(Entry::default(), seq, chrono::Utc::now(), "r1", &prev);
            prev = r.hash.clone();
            rewritten.push(r);
        }
        assert!(check_log(&lines(&rewritten)).is_ok());
        let b = compare_with_lake(&lines(&rewritten), &c[..4]).unwrap_err();
        assert_eq!((b.seq, b.kind), (Some(3), BreakKind::DiffersFromLake));
        // Garbage.
        let mut text: String = c
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n")
            .collect();
        text.insert_str(0, "{not json\n");
        let b = check_log(&parse_log(&text)).unwrap_err();
        assert_eq!((b.line, b.kind), (1, BreakKind::Unreadable));
    }
}
