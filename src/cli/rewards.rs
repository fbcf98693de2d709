//! `gdx scenario rewards …`: 云兑现 from a terminal, as the operator (approvals are made by
//! the departments' principals through the exchange's API, under casbin).

use std::path::PathBuf;

use clap::Subcommand;

use super::LakeArgs;

#[derive(Debug, Subcommand)]
pub(crate) enum RewardsCommand {
    /// Assess one reward policy file over the lake and settle it against the ledger: the
    /// eligible firms with what they would be owed and the records that make them eligible,
    /// the excluded ones with the rule that excludes them (JSON). Nothing is written.
    Run {
        /// The policy file (e.g. deploy/policies/rewards/high_tech_first.toml), or the id of a
        /// policy issued into the ledger (e.g. high-tech-first-2025).
        #[arg(long, env = "GDX_REWARD_POLICY")]
        policy: PathBuf,
        /// Read the lake as of this date (end of day, UTC+8) or RFC 3339 timestamp
        /// (default: now).
        #[arg(long, env = "GDX_AS_OF")]
        as_of: Option<gdx_lake::sql::AsOf>,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Issue policy files into the ledger (a new policy, or a higher version of one; the same
    /// version and text again is a no-op).
    Issue {
        /// Policy files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Decide an issued policy as of a date: each eligible firm not decided before is
    /// recorded with its amount and evidence (JSON report).
    Decide {
        /// The policy's id (e.g. high-tech-first-2025).
        #[arg(long, env = "GDX_REWARD_POLICY_ID")]
        policy: String,
        /// The day decided as of (end of day, UTC+8; default: today in the district).
        #[arg(long, env = "GDX_AS_OF")]
        as_of: Option<chrono::NaiveDate>,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Where each firm decided under a policy stands (one JSON line per firm).
    Firms {
        #[arg(long, env = "GDX_REWARD_POLICY_ID")]
        policy: String,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Issue the payment instructions a policy owes now (approved, account known; a failed or
    /// returned payment re-issued once) and write the batch for the bank: every instruction
    /// without a result yet (JSON report; the CSV with --out).
    Disburse {
        #[arg(long, env = "GDX_REWARD_POLICY_ID")]
        policy: String,
        /// Write the bank's batch file here (CSV: reference,uscc,name,account,amount).
        #[arg(long, env = "GDX_REWARD_BATCH_OUT")]
        out: Option<PathBuf>,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Publish the outcomes not published yet (eligible, approved, rejected, paid, failed,
    /// returned, mismatched), each once on gdx.notifications, keyed by the firm's USCC (a
    /// publisher killed half-way resends nothing the topic already holds).
    Publish {
        /// Kafka bootstrap servers.
        #[arg(long, env = "GDX_BROKERS")]
        brokers: String,
        #[command(flatten)]
        lake: LakeArgs,
    },
    /// Reconcile the bank's return file (CSV: account,amount,status,reference) into paid,
    /// failed, returned and mismatched (JSON report; rows refused by line and rule).
    Reconcile {
        /// The bank's file.
        file: PathBuf,
        #[command(flatten)]
        lake: LakeArgs,
    },
}
