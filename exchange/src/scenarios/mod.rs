//! Smart scenarios: what window clerks, civil-affairs staff and residents see of gdx, built
//! on the lake and served by the exchange under the same grants, policy and audit as every
//! read.
//!
//! Data flow: the lake's `current` tables, read whole by the operator ([`gdx_lake::lookup::OperatorScan`])
//! whenever their Delta version moves → a scenario's in-memory register (e.g. the active
//! property certificates, [`certificate`]) swapped whole → the exchange's scenario endpoints
//! answer from it, per call, without planning a query.

pub mod allowance;
pub mod certificate;
pub mod outbox;
pub mod projects;
pub mod rewards;

/// Checks one policy file of `deploy/policies/` of any kind (its `policy = "..."` says
/// which): a one-line summary of what it holds, or what is wrong with it.
pub fn check_policy(text: &str) -> Result<String, String> {
    let kind = toml::from_str::<toml::Table>(text)
        .map_err(|e| format!("not TOML: {e}"))?
        .get("policy")
        .and_then(|v| v.as_str().map(str::to_owned))
        .ok_or("no `policy = \"...\"` line saying which kind of policy the file holds")?;
    match kind.as_str() {
        "reward" => {
            let p = rewards::RewardPolicy::parse(text).map_err(|e| e.to_string())?;
            Ok(format!(
                "reward policy {} v{} ({}): {} by {}, {}, {} – {}, cap {} a firm, budget {}, approvals {}",
                p.id,
                p.version,
                p.title,
                if p.application {
                    "on application"
                } else {
                    "without application (免申即享)"
                },
                p.department,
                match &p.amount {
                    rewards::Amount::Fixed(a) => format!("fixed {}", rewards::policy::yuan(*a)),
                    rewards::Amount::Tiered { tiers, top_up, .. } => format!(
                        "{} tiers{}",
                        tiers.len(),
                        if *top_up { " with top-ups" } else { "" }
                    ),
                },
                p.from,
                p.to,
                rewards::policy::yuan(p.per_firm_cap),
                rewards::policy::yuan(p.budget),
                p.approvals.join(" → ")
            ))
        }
        "elderly_allowance" => {
            let p = allowance::AllowancePolicy::parse(text).map_err(|e| e.to_string())?;
            Ok(format!(
                "elderly allowance policy: {} version(s)",
                p.versions().len()
            ))
        }
        "project_stages" => {
            let p = projects::StagePolicy::parse(text).map_err(|e| e.to_string())?;
            Ok(format!(
                "project stages v{}: {}",
                p.version,
                p.stages
                    .iter()
                    .map(|s| s.stage.as_str())
                    .collect::<Vec<_>>()
                    .join(" → ")
            ))
        }
        other => Err(format!(
            "policy = {other:?}: not a kind gdx knows (reward, elderly_allowance, project_stages)"
        )),
    }
}

/// Hundredths (fen, or hundredths of a square metre) of a non-negative decimal written with
/// at most two decimals, exactly as written (full-width digits accepted; no rounding).
pub fn hundredths(raw: &str) -> Option<i64> {
    let t = gdx_catalog::normalize_text(raw);
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 12 || !digits(whole) || frac.len() > 2 || !digits(frac) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    Some(whole * 100 + frac)
}

/// Every column of `batches` as text (cast as SQL casts to `varchar`; nulls as `None`), row
/// by row.
pub fn text_rows(
    batches: &[datafusion::arrow::array::RecordBatch],
) -> Result<Vec<Vec<Option<String>>>, datafusion::arrow::error::ArrowError> {
    use datafusion::arrow::array::{Array, AsArray};
    let mut all = Vec::new();
    for b in batches {
        let cols = (0..b.num_columns())
            .map(|i| {
                datafusion::arrow::compute::cast(
                    b.column(i),
                    &datafusion::arrow::datatypes::DataType::Utf8,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..b.num_rows() {
            all.push(
                cols.iter()
                    .map(|c| {
                        let c = c.as_string::<i32>();
                        (!c.is_null(r)).then(|| c.value(r).to_owned())
                    })
                    .collect(),
            );
        }
    }
    Ok(all)
}
