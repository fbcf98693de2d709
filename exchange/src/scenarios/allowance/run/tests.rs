use super::*;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn person(id: &str, birth: NaiveDate) -> Resident {
    Resident {
        id: id.into(),
        name: format!("name of {id}"),
        birth,
        registered_on: Some(d(2000, 1, 1)),
        moved_out_on: None,
        died: None,
    }
}

fn key(id: &str, p: &str) -> (String, String) {
    (id.to_owned(), p.to_owned())
}

fn decide_for(
    month: NaiveDate,
    from: NaiveDate,
    residents: &[Resident],
    ledger: &Ledger,
    before: &HashMap<(String, String), i64>,
) -> Vec<Entry> {
    decide(
        &AllowancePolicy::builtin(),
        month,
        from,
        month + chrono::Duration::days(14),
        residents,
        ledger,
        before,
    )
}

#[test]
fn pays_the_month_once_and_nothing_when_paid() {
    let people = [person("A", d(1950, 3, 2))];
    let m = d(2026, 5, 1);
    let e = decide_for(m, m, &people, &Ledger::default(), &HashMap::new());
    assert_eq!(e.len(), 1);
    assert_eq!(
        (e[0].kind, e[0].fen, e[0].reason),
        ("payment", 5_000, "due")
    );
    assert_eq!(e[0].band.as_deref(), Some("70-79"));
    let mut ledger = Ledger::default();
    ledger.net.insert(key("A", "2026-05"), 5_000);
    assert!(decide_for(m, m, &people, &ledger, &HashMap::new()).is_empty());
    // Paid by the previous system: nothing either.
    let before = HashMap::from([(key("A", "2026-05"), 5_000)]);
    assert!(decide_for(m, m, &people, &Ledger::default(), &before).is_empty());
}

#[test]
fn band_upgrade_from_the_birthday_month_tops_up_the_previous_payment() {
    // 80 on 2026-05-20: the 80-89 band for May; the previous system paid 70-79.
    let people = [person("A", d(1946, 5, 20))];
    let m = d(2026, 5, 1);
    let before = HashMap::from([(key("A", "2026-05"), 5_000)]);
    let e = decide_for(m, m, &people, &Ledger::default(), &before);
    assert_eq!(e.len(), 1);
    assert_eq!(
        (e[0].kind, e[0].fen, e[0].reason),
        ("payment", 5_000, "top_up")
    );
    assert_eq!(e[0].band.as_deref(), Some("80-89"));
}

#[test]
fn a_late_death_recovers_every_month_paid_after_it() {
    let mut a = person("A", d(1940, 1, 1));
    a.died = Some((d(2026, 3, 20), vec![DEATH_CERTIFICATE]));
    let (from, m) = (d(2026, 1, 1), d(2026, 5, 1));
    let before: HashMap<_, _> = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]
        .into_iter()
        .map(|p| (key("A", p), 10_000))
        .collect();
    let e = decide_for(m, from, &[a], &Ledger::default(), &before);
    let rec: Vec<_> = e
        .iter()
        .map(|e| (e.kind, e.period.as_str(), e.fen, e.reason))
        .collect();
    // March (the month of death) stays paid; April and May come back; the stop is told
    // for April.
    assert_eq!(
        rec,
        [
            ("stop", "2026-04", 0, "deceased"),
            ("recovery", "2026-04", 10_000, "deceased"),
            ("recovery", "2026-05", 10_000, "deceased")
        ]
    );
    assert_eq!(e[1].evidence, DEATH_CERTIFICATE);
}

#[test]
fn arrears_for_months_missed_and_nothing_before_registration_or_after_moving_out() {
    let mut a = person("A", d(1950, 1, 1));
    a.registered_on = Some(d(2026, 2, 1));
    a.moved_out_on = Some(d(2026, 4, 3));
    let (from, m) = (d(2026, 1, 1), d(2026, 5, 1));
    let e = decide_for(m, from, &[a], &Ledger::default(), &HashMap::new());
    let got: Vec<_> = e
        .iter()
        .map(|e| (e.kind, e.period.as_str(), e.reason))
        .collect();
    // Registered on 1 February and still on 1 April: February to April; stopped in May.
    assert_eq!(
        got,
        [
            ("payment", "2026-02", "arrears"),
            ("payment", "2026-03", "arrears"),
            ("payment", "2026-04", "arrears"),
            ("stop", "2026-05", "not_registered")
        ]
    );
}

#[test]
fn notice_a_month_before_the_seventieth_birthday_once() {
    let people = [person("A", d(1956, 6, 9)), person("B", d(1956, 8, 9))];
    let m = d(2026, 5, 1);
    let e = decide_for(m, m, &people, &Ledger::default(), &HashMap::new());
    let got: Vec<_> = e
        .iter()
        .map(|e| (e.kind, e.resident_id.as_str(), e.period.as_str()))
        .collect();
    assert_eq!(got, [("notice", "A", "2026-06")]);
    let mut ledger = Ledger::default();
    ledger.notices.insert(key("A", "2026-06"));
    assert!(decide_for(m, m, &people, &ledger, &HashMap::new()).is_empty());
}

#[test]
fn someone_paid_whom_the_register_no_longer_holds_is_recovered() {
    let mut ledger = Ledger::default();
    ledger.net.insert(key("Z", "2026-05"), 5_000);
    let m = d(2026, 5, 1);
    let e = decide_for(m, m, &[], &ledger, &HashMap::new());
    assert_eq!(e.len(), 1);
    assert_eq!(
        (e[0].kind, e[0].fen, e[0].reason),
        ("recovery", 5_000, "not_registered")
    );
    // Outside the run's window: left alone.
    let e = decide_for(d(2026, 6, 1), d(2026, 6, 1), &[], &ledger, &HashMap::new());
    assert!(e.is_empty());
}

#[test]
fn yuan_has_two_decimals() {
    assert_eq!(yuan(5_000), "50.00");
    assert_eq!(yuan(7), "0.07");
    assert_eq!(yuan(-12_345), "-123.45");
}

#[test]
fn a_stop_is_told_once_for_the_first_month_not_due() {
    let mut a = person("A", d(1940, 1, 1));
    a.died = Some((d(2026, 3, 20), vec![REGISTRATION]));
    let (from, m) = (d(2026, 1, 1), d(2026, 5, 1));
    let ledger = Ledger::default();
    let e = decide_for(m, from, std::slice::from_ref(&a), &ledger, &HashMap::new());
    let stops: Vec<_> = e
        .iter()
        .filter(|e| e.kind == "stop")
        .map(|e| (e.period.as_str(), e.reason))
        .collect();
    assert_eq!(stops, [("2026-04", "deceased")]);
    let mut told = Ledger::default();
    told.stops.insert(key("A", "2026-04"));
    let e = decide_for(m, from, &[a], &told, &HashMap::new());
    assert!(e.iter().all(|e| e.kind != "stop"));
}
