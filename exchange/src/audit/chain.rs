//! One audit record and its place in the hash chain.
//!
//! A record's hash is SHA-256 over the previous record's hash, a newline, and the record's
//! canonical JSON with `hash` empty (fields in declaration order, the time in RFC 3339 with
//! microseconds): the same bytes whether the record is read from a local log or rebuilt
//! from `system.audit`, so both copies verify alike.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allowed,
    Denied,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
        }
    }
}

/// What a handler records; the log adds sequence, time, replica and hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entry {
    pub principal: String,
    pub department: String,
    pub role: String,
    pub purpose: Option<String>,
    pub case_id: Option<String>,
    pub end_user: Option<String>,
    pub action: String,
    pub object: String,
    pub grants: Vec<String>,
    pub policy_version: i64,
    pub rows: i64,
    pub request_hash: String,
    pub outcome: Option<Outcome>,
    pub status: i64,
    /// The real reason (kept even when the caller is told only "not found").
    pub reason: String,
    /// The people or enterprises the answer was about.
    pub subjects: Vec<String>,
}

/// A sealed record, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: String,
    pub replica: String,
    pub principal: String,
    pub department: String,
    pub role: String,
    pub purpose: Option<String>,
    pub case_id: Option<String>,
    pub end_user: Option<String>,
    pub action: String,
    pub object: String,
    pub grants: Vec<String>,
    pub policy_version: i64,
    pub rows: i64,
    pub request_hash: String,
    pub outcome: String,
    pub status: i64,
    pub reason: String,
    pub subjects: Vec<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// A time as records write it.
pub fn time_text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl AuditRecord {
    /// Seals `entry` as record `seq` after the record whose hash is `prev_hash`.
    pub fn seal(entry: Entry, seq: i64, at: DateTime<Utc>, replica: &str, prev_hash: &str) -> Self {
        let mut r = Self {
            seq,
            at: time_text(at),
            replica: replica.to_owned(),
            principal: entry.principal,
            department: entry.department,
            role: entry.role,
            purpose: entry.purpose,
            case_id: entry.case_id,
            end_user: entry.end_user,
            action: entry.action,
            object: entry.object,
            grants: entry.grants,
            policy_version: entry.policy_version,
            rows: entry.rows,
            request_hash: entry.request_hash,
            outcome: entry.outcome.unwrap_or(Outcome::Failed).as_str().to_owned(),
            status: entry.status,
            reason: entry.reason,
            subjects: entry.subjects,
            prev_hash: prev_hash.to_owned(),
            hash: String::new(),
        };
        r.hash = r.computed_hash();
        r
    }

    /// The hash this record's content gives.
    pub fn computed_hash(&self) -> String {
        let mut bytes = Vec::with_capacity(self.prev_hash.len() + 1 + 512);
        bytes.extend_from_slice(self.prev_hash.as_bytes());
        bytes.push(b'\n');
        self.write_unsealed(&mut bytes);
        crate::secret::sha256_hex(&bytes)
    }

    /// Appends the record's canonical JSON with `hash` empty (what its hash covers).
    /// `hash` is the last field and hex (nothing to escape), so the JSON of the record as
    /// it is, with its hash value cut out, is that text: no copy of the record is made.
    fn write_unsealed(&self, out: &mut Vec<u8>) {
        let start = out.len();
        serde_json::to_writer(&mut *out, self).expect("an audit record serialises");
        let tail = format!("\"hash\":{}}}", serde_json::Value::from(self.hash.as_str()));
        debug_assert!(out[start..].ends_with(tail.as_bytes()));
        out.truncate(out.len() - tail.len());
        out.extend_from_slice(b"\"hash\":\"\"}");
    }

    /// Appends the record as one line of the local log.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        serde_json::to_writer(&mut *out, self).expect("an audit record serialises");
        out.push(b'\n');
    }
}
