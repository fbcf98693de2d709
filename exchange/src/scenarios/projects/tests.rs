use super::*;

fn d(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn project(events: &[(&str, &str)]) -> ProjectEvents {
    ProjectEvents {
        code: "2401-420106-04-01-000001".into(),
        name: "示例项目".into(),
        builder_uscc: None,
        investment: None,
        events: events
            .iter()
            .enumerate()
            .map(|(i, (stage, date))| Event {
                event_id: format!("XM{i}"),
                stage: (*stage).into(),
                date: d(date),
                department: None,
            })
            .collect(),
    }
}

fn flags(t: &Timeline) -> Vec<String> {
    t.flags()
}

#[test]
fn the_builtin_limits_load() {
    let p = StagePolicy::builtin();
    assert_eq!(p.stages.len(), 6);
    assert_eq!(p.stages[0].max_days, None);
    assert_eq!(p.stages[4].max_days, Some(60));
}

#[test]
fn a_project_on_time_is_waiting_then_stuck_past_the_limit() {
    let p = StagePolicy::builtin();
    let pr = project(&[("approval", "2026-01-10"), ("bidding", "2026-05-01")]);
    let t = timeline(&p, &pr, d("2026-06-01"));
    assert_eq!(t.status, "in_progress");
    assert_eq!(t.current_stage.as_deref(), Some("bidding"));
    assert_eq!(flags(&t), ["land:waiting"]);
    assert_eq!(t.stages[1].days_since_previous, Some(111));
    assert_eq!(t.stages[2].due_by, Some(d("2026-10-28")));
    // The day after the limit: stuck in land.
    let t = timeline(&p, &pr, d("2026-10-29"));
    assert_eq!(t.status, "stuck");
    assert_eq!(t.stuck().unwrap().stage, "land");
    // An event after the day asked is not known yet.
    let t = timeline(&p, &pr, d("2026-03-01"));
    assert_eq!(flags(&t), ["bidding:waiting"]);
}

#[test]
fn overdue_gaps_and_out_of_order_stages_are_flagged() {
    let p = StagePolicy::builtin();
    let pr = project(&[
        ("approval", "2024-01-01"),
        ("bidding", "2024-08-01"), // 213 days > 180
        // land missing
        ("construction_permit", "2025-01-01"), // 153 days ≤ 180 + 120
        ("quality_supervision", "2024-12-20"), // before the permit
        ("completion", "2026-06-30"),
        ("ribbon_cutting", "2026-07-01"),
    ]);
    let t = timeline(&p, &pr, d("2026-10-31"));
    assert_eq!(t.status, "completed");
    assert_eq!(
        flags(&t),
        [
            "bidding:overdue",
            "land:gap",
            "quality_supervision:out_of_order"
        ]
    );
    assert_eq!(t.stages[3].allowed_days, Some(300));
    assert_eq!(t.other_events, ["XM5"]);
}

#[test]
fn a_stage_file_with_a_mistake_is_refused_by_name() {
    let base = StagePolicy::builtin();
    assert!(!base.notice.is_empty());
    let cases = [
        (
            DEFAULT_STAGES.replace("stage = \"land\"", "stage = \"landing\""),
            "not a stage",
        ),
        (
            DEFAULT_STAGES.replace("max_days = 60", "max_days = 0"),
            "positive",
        ),
        (
            DEFAULT_STAGES.replace("max_days = 120", ""),
            "needs max_days",
        ),
        (
            DEFAULT_STAGES.replace("stage = \"bidding\"", "stage = \"approval\""),
            "listed twice",
        ),
        (
            DEFAULT_STAGES.replace("policy = \"project_stages\"", "policy = \"x\""),
            "not project_stages",
        ),
        (format!("{DEFAULT_STAGES}\nextra = 1\n"), "unknown field"),
    ];
    for (text, why) in cases {
        let e = StagePolicy::parse(&text).unwrap_err().to_string();
        assert!(e.contains(why), "{e}");
    }
}
