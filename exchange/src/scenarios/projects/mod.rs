//! 重大项目全生命周期: a major project's events across departments as one timeline, with the
//! stages that took longer than the district allows, the one it is stuck in, and the gaps.
//!
//! Data flow: `deploy/policies/project_stages.toml` (the stages in order and the days allowed
//! from the previous one, [`StagePolicy`]) + the project's events read from
//! `ndrc.project_event` through the caller's policy, as of a day ([`read`]) → [`timeline`]:
//! per stage its event (the earliest, if several), the days since the stage before, the limit
//! (summed over stages missing in between), flags `overdue` (recorded later than allowed),
//! `out_of_order` (dated before the stage before it), `gap` (missing while a later stage is
//! recorded), `stuck` (the next stage not recorded past its limit on the day asked) or
//! `waiting` → the exchange's `GET /v1/projects/{code}/timeline` and
//! `gdx scenario projects timeline|overdue`.

mod read;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

pub use read::{ReadError, read};

/// The built-in stage limits.
pub const DEFAULT_STAGES: &str = include_str!("../../../../deploy/policies/project_stages.toml");

/// Why a stage file was refused.
#[derive(Debug, thiserror::Error)]
pub enum StagePolicyError {
    #[error("project stages: {0}")]
    Toml(String),
    #[error("project stages: the file names policy {0:?}, not project_stages")]
    NotThisPolicy(String),
    #[error("project stages, stage {stage:?}: {rule}")]
    Stage { stage: String, rule: &'static str },
    #[error("project stages: no stage")]
    Empty,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    policy: String,
    version: u32,
    effective_from: String,
    notice: String,
    stages: Vec<Stage>,
}

/// One stage of a project's life.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// As `ndrc.project_event.stage` names it.
    pub stage: String,
    pub label: String,
    /// Days allowed from the previous stage (none for the first).
    pub max_days: Option<u32>,
}

/// The stages in order and their limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePolicy {
    pub version: u32,
    pub effective_from: String,
    pub notice: String,
    pub stages: Vec<Stage>,
}

/// The stages `ndrc.project_event` knows (its catalog description).
const KNOWN: [&str; 6] = [
    "approval",
    "bidding",
    "land",
    "construction_permit",
    "quality_supervision",
    "completion",
];

impl StagePolicy {
    pub fn builtin() -> Self {
        Self::parse(DEFAULT_STAGES).expect("the built-in project stages are valid")
    }

    pub fn parse(text: &str) -> Result<Self, StagePolicyError> {
        let f: File = toml::from_str(text).map_err(|e| StagePolicyError::Toml(e.to_string()))?;
        if f.policy != "project_stages" {
            return Err(StagePolicyError::NotThisPolicy(f.policy));
        }
        if f.stages.is_empty() {
            return Err(StagePolicyError::Empty);
        }
        for (i, s) in f.stages.iter().enumerate() {
            let bad = |rule| {
                Err(StagePolicyError::Stage {
                    stage: s.stage.clone(),
                    rule,
                })
            };
            if !KNOWN.contains(&s.stage.as_str()) {
                return bad("not a stage ndrc.project_event records");
            }
            if f.stages[..i].iter().any(|o| o.stage == s.stage) {
                return bad("listed twice");
            }
            match (i, s.max_days) {
                (0, Some(_)) => return bad("the first stage has no limit"),
                (1.., None) => return bad("needs max_days"),
                (_, Some(0)) => return bad("max_days must be positive"),
                _ => {}
            }
        }
        Ok(Self {
            version: f.version,
            effective_from: f.effective_from,
            notice: f.notice,
            stages: f.stages,
        })
    }
}

/// One recorded event of a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event_id: String,
    pub stage: String,
    pub date: NaiveDate,
    pub department: Option<String>,
}

/// What the lake holds of one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectEvents {
    pub code: String,
    pub name: String,
    pub builder_uscc: Option<String>,
    pub investment: Option<String>,
    pub events: Vec<Event>,
}

/// One stage on the timeline.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct StageLine {
    pub stage: String,
    pub label: String,
    /// The day it was recorded (none: not yet, or missing).
    #[schema(value_type = Option<String>)]
    pub date: Option<NaiveDate>,
    pub department: Option<String>,
    pub event_id: Option<String>,
    /// Days from the last stage recorded before it.
    pub days_since_previous: Option<i64>,
    /// Days allowed for that (summed over the stages missing in between).
    pub allowed_days: Option<u32>,
    /// For the next stage not recorded yet: the day it is due by.
    #[schema(value_type = Option<String>)]
    pub due_by: Option<NaiveDate>,
    /// `overdue`, `out_of_order`, `gap`, `stuck`, `waiting`.
    pub flags: Vec<&'static str>,
}

/// A project's timeline as of a day.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Timeline {
    pub project_code: String,
    pub project_name: String,
    pub builder_uscc: Option<String>,
    /// Total investment (yuan), as recorded.
    pub investment: Option<String>,
    #[schema(value_type = String)]
    pub as_of: NaiveDate,
    /// `completed`, `stuck` (the next stage past its limit) or `in_progress`.
    pub status: &'static str,
    /// The last stage recorded.
    pub current_stage: Option<String>,
    pub stages: Vec<StageLine>,
    /// Events whose stage the policy does not list (kept, never dropped).
    pub other_events: Vec<String>,
    /// The stage limits' version.
    pub stages_version: u32,
}

impl Timeline {
    /// The stage it is stuck waiting for, when it is.
    pub fn stuck(&self) -> Option<&StageLine> {
        self.stages.iter().find(|s| s.flags.contains(&"stuck"))
    }

    /// Every flag on the timeline, `stage:flag`.
    pub fn flags(&self) -> Vec<String> {
        self.stages
            .iter()
            .flat_map(|s| s.flags.iter().map(move |f| format!("{}:{f}", s.stage)))
            .collect()
    }
}

/// The timeline of `p` as of `as_of` under `policy`.
pub fn timeline(policy: &StagePolicy, p: &ProjectEvents, as_of: NaiveDate) -> Timeline {
    let event = |stage: &str| {
        p.events
            .iter()
            .filter(|e| e.stage == stage && e.date <= as_of)
            .min_by_key(|e| (e.date, e.event_id.clone()))
    };
    let recorded: Vec<Option<&Event>> = policy.stages.iter().map(|s| event(&s.stage)).collect();
    let last = recorded.iter().rposition(Option::is_some);
    let mut stages = Vec::new();
    // The last stage recorded so far, and the days allowed since it.
    let mut anchor: Option<NaiveDate> = None;
    let mut allowed: u32 = 0;
    let mut waiting_seen = false;
    for (i, (s, e)) in policy.stages.iter().zip(&recorded).enumerate() {
        allowed += s.max_days.unwrap_or(0);
        let mut line = StageLine {
            stage: s.stage.clone(),
            label: s.label.clone(),
            date: e.map(|e| e.date),
            department: e.and_then(|e| e.department.clone()),
            event_id: e.map(|e| e.event_id.clone()),
            days_since_previous: None,
            allowed_days: anchor.map(|_| allowed),
            due_by: None,
            flags: Vec::new(),
        };
        match (e, anchor) {
            (Some(e), Some(a)) => {
                let days = (e.date - a).num_days();
                line.days_since_previous = Some(days);
                if days < 0 {
                    line.flags.push("out_of_order");
                } else if days > i64::from(allowed) {
                    line.flags.push("overdue");
                }
            }
            (None, _) if last.is_some_and(|l| l > i) => line.flags.push("gap"),
            (None, Some(a)) if !waiting_seen => {
                waiting_seen = true;
                let due = a + chrono::Duration::days(i64::from(allowed));
                line.due_by = Some(due);
                line.flags
                    .push(if as_of > due { "stuck" } else { "waiting" });
            }
            _ => {}
        }
        if let Some(e) = e {
            anchor = Some(anchor.map_or(e.date, |a| a.max(e.date)));
            allowed = 0;
        }
        stages.push(line);
    }
    let known: Vec<&str> = policy.stages.iter().map(|s| s.stage.as_str()).collect();
    let other_events = p
        .events
        .iter()
        .filter(|e| e.date <= as_of && !known.contains(&e.stage.as_str()))
        .map(|e| e.event_id.clone())
        .collect();
    let completed = recorded.last().is_some_and(Option::is_some);
    let stuck = stages.iter().any(|s| s.flags.contains(&"stuck"));
    Timeline {
        project_code: p.code.clone(),
        project_name: p.name.clone(),
        builder_uscc: p.builder_uscc.clone(),
        investment: p.investment.clone(),
        as_of,
        status: if completed {
            "completed"
        } else if stuck {
            "stuck"
        } else {
            "in_progress"
        },
        current_stage: last.map(|l| policy.stages[l].stage.clone()),
        stages,
        other_events,
        stages_version: policy.version,
    }
}

#[cfg(test)]
mod tests;
