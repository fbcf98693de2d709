//! A project's events as a lake session shows them (`ndrc.project_event`, through the
//! session's policy): one project by its code, or every project.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use gdx_lake::sql::LakeSession;

use super::{Event, ProjectEvents};

const TABLE: &str = "ndrc.project_event";

/// Why a project's events could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("project code: only letters, digits and '-', at most 40 characters")]
    BadCode,
    #[error(transparent)]
    Lake(#[from] gdx_lake::Error),
    #[error("{TABLE}.{column}: {reason}")]
    Column { column: String, reason: String },
}

/// The events of project `code` (or of every project), grouped by project, in date order.
pub async fn read(
    session: &LakeSession,
    code: Option<&str>,
) -> Result<Vec<ProjectEvents>, ReadError> {
    let filter = match code {
        Some(c) if c.is_empty() || c.len() > 40 => return Err(ReadError::BadCode),
        Some(c) if !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
            return Err(ReadError::BadCode);
        }
        Some(c) => format!("WHERE project_code = '{c}'"),
        None => String::new(),
    };
    let sql = format!(
        "SELECT event_id, project_code, project_name, stage, event_date, department, \
                builder_uscc, investment FROM {TABLE} {filter} \
         ORDER BY project_code, event_date, event_id"
    );
    let out = session.collect(session.stream(&sql).await?).await?;
    let rows = crate::scenarios::text_rows(&out.batches).map_err(|e| ReadError::Column {
        column: "*".into(),
        reason: e.to_string(),
    })?;
    let mut by_code: BTreeMap<String, ProjectEvents> = BTreeMap::new();
    for mut r in rows {
        let mut get = |c: usize| r[c].take();
        let (Some(id), Some(code), Some(stage), Some(date)) = (get(0), get(1), get(3), get(4))
        else {
            continue;
        };
        let date = NaiveDate::parse_from_str(&date, "%Y-%m-%d").map_err(|e| ReadError::Column {
            column: "event_date".into(),
            reason: e.to_string(),
        })?;
        let p = by_code
            .entry(code.clone())
            .or_insert_with(|| ProjectEvents {
                code,
                name: String::new(),
                builder_uscc: None,
                investment: None,
                events: Vec::new(),
            });
        // The latest event's name, builder and investment describe the project.
        if let Some(n) = get(2) {
            p.name = n;
        }
        p.builder_uscc = get(6).or(p.builder_uscc.take());
        p.investment = get(7).or(p.investment.take());
        p.events.push(Event {
            event_id: id,
            stage,
            date,
            department: get(5),
        });
    }
    Ok(by_code.into_values().collect())
}
