//! `gdx scenario projects timeline | overdue`: project lifecycles from a terminal.
//!
//! Data flow: lake + catalog → a [`gdx_lake::TableRegistry`] → a lake session as the
//! operator (as of `--as-of`) → `ndrc.project_event` grouped by project
//! ([`gdx_exchange::scenarios::projects::read`]) → each project's [`timeline`] under the stage
//! limits → one project's timeline as JSON, or one JSON line per stuck project.

use std::process::ExitCode;
use std::sync::Arc;

use gdx_exchange::scenarios::projects::{StagePolicy, read, timeline};
use gdx_lake::AllowAll;
use gdx_lake::sql::{LakeSession, SessionOptions};

use super::ingest::runtime;
use super::load_catalog;
use crate::cli::{LakeArgs, ProjectsArgs, ProjectsCommand};

/// An operator's session over the lake, as of `as_of`.
pub(crate) async fn operator_session(
    lake: &LakeArgs,
    as_of: Option<gdx_lake::sql::AsOf>,
) -> anyhow::Result<LakeSession> {
    let catalog = load_catalog(&lake.source)?;
    let location = super::open_lake(&lake.lake)?;
    let registry = gdx_lake::TableRegistry::open(&location, &catalog).await?;
    let opts = SessionOptions {
        as_of,
        max_rows: usize::MAX,
        ..SessionOptions::default()
    };
    Ok(LakeSession::open(&registry, Arc::new(AllowAll), &opts).await?)
}

pub(crate) fn projects(cmd: ProjectsCommand) -> anyhow::Result<ExitCode> {
    let (code, opts) = match cmd {
        ProjectsCommand::Timeline { code, opts } => (Some(code), opts),
        ProjectsCommand::Overdue { opts } => (None, opts),
    };
    let ProjectsArgs {
        as_of,
        stages,
        lake,
    } = opts;
    let policy = super::policy_file(stages.as_deref(), StagePolicy::builtin, StagePolicy::parse)?;
    let day = as_of.map_or_else(gdx_lake::sql::time_travel::district_today, |a| a.date());
    let found = runtime()?.block_on(async {
        let session = operator_session(&lake, as_of).await?;
        anyhow::Ok(read(&session, code.as_deref()).await?)
    })?;
    match code {
        Some(code) => {
            let Some(p) = found.first() else {
                eprintln!("project {code}: no event recorded as of {day}");
                return Ok(ExitCode::from(1));
            };
            println!("{}", serde_json::to_string(&timeline(&policy, p, day))?);
        }
        None => {
            let mut stuck: Vec<serde_json::Value> = Vec::new();
            for p in &found {
                let t = timeline(&policy, p, day);
                if let Some(s) = t.stuck() {
                    let due = s.due_by.unwrap_or(day);
                    stuck.push(serde_json::json!({
                        "project_code": t.project_code,
                        "project_name": t.project_name,
                        "current_stage": t.current_stage,
                        "waiting_for": s.stage,
                        "due_by": due,
                        "days_overdue": (day - due).num_days(),
                        "flags": t.flags(),
                    }));
                }
            }
            stuck.sort_by_key(|v| {
                (
                    -v["days_overdue"].as_i64().unwrap_or(0),
                    v["project_code"].as_str().unwrap_or_default().to_owned(),
                )
            });
            for v in &stuck {
                println!("{v}");
            }
            eprintln!(
                "{} of {} projects stuck as of {day}",
                stuck.len(),
                found.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
