use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Decimal128Type, Int64Type};
use gdx_catalog::district;

use super::*;

const PERSON: &str = r#"{"resident_id":"11010519491231002X","name":"张秀英","gender":"2","ethnicity":"01","birth_date":"1949-12-31","household_id":"420106000000001","relation_to_head":"02","street":"中华路街道","community":"司门口社区","address":"湖北省武汉市武昌区中华路街道司门口社区解放路1号","phone":"13800138000","status":"active","registered_on":"1950-01-20","moved_in_from":null,"moved_out_on":null,"moved_out_to":null,"deceased_on":null,"updated_at":"2025-01-01T08:30:00+08:00"}"#;

fn decoder(id: &str) -> DatasetDecoder {
    DatasetDecoder::new(Arc::new(district::catalog().get(id).unwrap().clone()))
}

fn msg(topic: &str, offset: i64, key: Option<&str>, value: Option<&str>) -> Message {
    Message {
        topic: topic.into(),
        partition: 0,
        offset,
        key: key.map(|k| k.as_bytes().to_vec()),
        value: value.map(|v| v.as_bytes().to_vec()),
        timestamp_ms: Some(1_735_691_400_000),
        headers: [
            ("event-time", "2025-01-01T08:30:00+08:00"),
            ("source-system", "hukou"),
        ]
        .into_iter()
        .collect(),
    }
}

fn person(replace: &[(&str, &str)]) -> String {
    let mut v: serde_json::Value = serde_json::from_str(PERSON).unwrap();
    for (k, new) in replace {
        if *new == "<absent>" {
            v.as_object_mut().unwrap().remove(*k);
        } else {
            v[*k] = serde_json::from_str(new).unwrap();
        }
    }
    v.to_string()
}

fn strings(b: &RecordBatch, col: &str) -> Vec<Option<String>> {
    b.column_by_name(col)
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|s| s.map(str::to_owned))
        .collect()
}

fn run(d: &DatasetDecoder, msgs: &[Message]) -> (Option<RecordBatch>, Vec<DeadLetter>) {
    let out = d.decode(msgs, 1_800_000_000_000_000);
    let rows: usize = out.batches.iter().map(RecordBatch::num_rows).sum();
    assert_eq!(
        rows + out.dead_letters.len(),
        msgs.len(),
        "every message is a row or a dead letter"
    );
    let batch = out.batches.first().map(|b| {
        arrow::compute::concat_batches(&b.schema(), &out.batches).expect("one events schema")
    });
    (batch, out.dead_letters)
}

#[test]
fn a_long_run_is_decoded_slice_by_slice_and_a_bad_message_costs_only_itself() {
    let d = decoder("ps.household_registration");
    let n = DECODE_SLICE * 2 + 10;
    let bad_at = DECODE_SLICE + 5;
    let msgs: Vec<Message> = (0..n as i64)
        .map(|o| {
            let value = if o as usize == bad_at {
                "{not json".to_owned()
            } else {
                PERSON.to_owned()
            };
            msg("ps.household_registration", o, None, Some(&value))
        })
        .collect();
    let out = d.decode(&msgs, 1_800_000_000_000_000);
    let rows: Vec<usize> = out.batches.iter().map(RecordBatch::num_rows).collect();
    assert_eq!(rows, vec![DECODE_SLICE, DECODE_SLICE - 1, 10]);
    assert_eq!(out.dead_letters.len(), 1);
    assert_eq!(out.dead_letters[0].offset, bad_at as i64);
    assert_eq!(out.dead_letters[0].class, ErrorClass::NotJson);
    let offsets: Vec<i64> = out
        .batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("_offset")
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    let expected: Vec<i64> = (0..n as i64).filter(|o| *o as usize != bad_at).collect();
    assert_eq!(offsets, expected, "every other message once, in order");
}

#[test]
fn good_records_become_typed_rows_with_provenance() {
    let d = decoder("ps.household_registration");
    let full_width = person(&[("resident_id", "\"１１０１０５１９４９１２３１００２ｘ\"")]);
    let (b, dead) = run(
        &d,
        &[
            msg(
                "ps.household_registration",
                7,
                Some("11010519491231002X"),
                Some(PERSON),
            ),
            msg("ps.household_registration", 8, None, Some(&full_width)),
        ],
    );
    assert!(dead.is_empty(), "{dead:?}");
    let b = b.unwrap();
    assert_eq!(b.num_rows(), 2);
    // Identifiers are stored in canonical form; the key comes from the record.
    assert_eq!(
        strings(&b, "resident_id"),
        vec![Some("11010519491231002X".into()); 2]
    );
    assert_eq!(
        strings(&b, "_key"),
        vec![Some("11010519491231002X".into()); 2]
    );
    assert_eq!(strings(&b, "_op"), vec![Some("upsert".into()); 2]);
    assert_eq!(strings(&b, "_source_system"), vec![Some("hukou".into()); 2]);
    assert_eq!(strings(&b, "_flags"), vec![None, None]);
    let offsets: Vec<i64> = b
        .column_by_name("_offset")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec();
    assert_eq!(offsets, vec![7, 8]);
    let birth = b
        .column_by_name("birth_date")
        .unwrap()
        .as_primitive::<Date32Type>()
        .value(0);
    assert_eq!(
        birth,
        (chrono::NaiveDate::from_ymd_opt(1949, 12, 31).unwrap()
            - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
        .num_days() as i32
    );
    let event_time = b
        .column_by_name("_event_time")
        .unwrap()
        .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
        .value(0);
    assert_eq!(event_time, 1_735_691_400_000_000);
    assert_eq!(b.schema(), *d.events_schema());
}

#[test]
fn each_bad_input_class_is_dead_lettered_and_the_rest_kept() {
    let d = decoder("ps.household_registration");
    let t = "ps.household_registration";
    let cases: Vec<(Message, Option<ErrorClass>)> = vec![
        (msg(t, 0, None, Some(PERSON)), None),
        (
            msg(t, 1, None, Some("{not json")),
            Some(ErrorClass::NotJson),
        ),
        (
            msg(t, 2, None, Some("[1,2,3]")),
            Some(ErrorClass::WrongType),
        ),
        (
            msg(t, 3, None, Some(&person(&[("birth_date", "19491231")]))),
            Some(ErrorClass::WrongType),
        ),
        (
            msg(t, 4, None, Some(&person(&[("resident_id", "<absent>")]))),
            Some(ErrorClass::MissingKey),
        ),
        (
            msg(t, 5, None, Some(&person(&[("name", "null")]))),
            Some(ErrorClass::MissingField),
        ),
        (
            msg(
                t,
                6,
                None,
                Some(&person(&[("resident_id", "\"110105194912310021\"")])),
            ),
            Some(ErrorClass::BadCheckDigit),
        ),
        (
            msg(
                t,
                7,
                None,
                Some(&person(&[("resident_id", "\"1101051949\"")])),
            ),
            Some(ErrorClass::BadIdentifier),
        ),
        (
            msg(t, 8, None, Some(&format!("{PERSON}{PERSON}"))),
            Some(ErrorClass::NotJson),
        ),
        (msg(t, 9, Some("11010519491231002X"), None), None),
        (msg(t, 10, None, None), Some(ErrorClass::MissingKey)),
        (
            msg(t, 11, None, Some(&person(&[("phone", "\"12345\"")]))),
            None,
        ),
    ];
    let msgs: Vec<Message> = cases.iter().map(|(m, _)| m.clone()).collect();
    let (b, dead) = run(&d, &msgs);
    for (m, want) in &cases {
        let got = dead.iter().find(|x| x.offset == m.offset).map(|x| x.class);
        assert_eq!(
            got,
            *want,
            "offset {}: {:?}",
            m.offset,
            dead.iter().find(|x| x.offset == m.offset)
        );
    }
    for dl in &dead {
        assert!(
            !dl.message.contains("张秀英") && !dl.message.contains("11010519491231002X"),
            "dead-letter message leaks data: {}",
            dl.message
        );
        assert_eq!(dl.dataset.as_deref(), Some(t));
        assert_eq!(
            dl.value, msgs[dl.offset as usize].value,
            "raw bytes are kept"
        );
    }
    let b = b.unwrap();
    assert_eq!(
        strings(&b, "_op"),
        vec![
            Some("upsert".into()),
            Some("delete".into()),
            Some("upsert".into())
        ]
    );
    // The tombstone deletes by key; the bad phone is kept and flagged (policy `flag`).
    assert_eq!(
        strings(&b, "_key")[1].as_deref(),
        Some("11010519491231002X")
    );
    assert_eq!(strings(&b, "_flags")[2].as_deref(), Some("phone"));
    assert_eq!(strings(&b, "phone")[2].as_deref(), Some("12345"));
}

#[test]
fn flag_policy_keeps_the_record() {
    let d = decoder("mca.cremation");
    let rec = r#"{"cremation_no":"HH20250000001","resident_id":"110105194912310021","name":"张秀英","date_of_death":"2025-02-01","cremated_on":"2025-02-04","funeral_home":"武昌殡仪馆"}"#;
    let (b, dead) = run(&d, &[msg("mca.cremation", 0, None, Some(rec))]);
    assert!(dead.is_empty());
    let b = b.unwrap();
    assert_eq!(strings(&b, "_flags"), vec![Some("resident_id".into())]);
    assert_eq!(
        strings(&b, "resident_id"),
        vec![Some("110105194912310021".into())]
    );
}

#[test]
fn oversized_messages_are_refused() {
    let d = decoder("ps.household_registration").with_max_message_bytes(100);
    let (b, dead) = run(
        &d,
        &[msg("ps.household_registration", 0, None, Some(PERSON))],
    );
    assert!(b.is_none());
    assert_eq!(dead[0].class, ErrorClass::Oversized);
    assert!(dead[0].message.contains("limit is 100"));
}

#[test]
fn debezium_envelopes() {
    let d = decoder("nre.property_certificate");
    let t = "nre.property_certificate";
    let rec = |owner: &str, mortgaged: bool| {
        format!(
            r#"{{"certificate_no":"鄂(2023)武汉市不动产权第0001861号","unit_no":"420106008000GB00001F00093070","owner_id":"{owner}","owner_name":"田桂英","address":"湖北省武汉市武昌区白沙洲街道桃园社区临江大道298号","area_m2":85.06,"usage":"住宅","right_type":"国有建设用地使用权/房屋所有权","mortgaged":{mortgaged},"registered_on":"2023-03-08","status":"active"}}"#
        )
    };
    let env = |op: &str, before: Option<String>, after: Option<String>| {
        format!(
            r#"{{"before":{},"after":{},"op":"{op}","ts_ms":1735691400000,"source":{{"db":"nre"}}}}"#,
            before.unwrap_or("null".into()),
            after.unwrap_or("null".into())
        )
    };
    let good = "11010519491231002X";
    let msgs = vec![
        msg(t, 0, None, Some(&env("r", None, Some(rec(good, true))))),
        msg(
            t,
            1,
            None,
            Some(&env("u", Some(rec(good, true)), Some(rec(good, false)))),
        ),
        msg(t, 2, None, Some(&env("d", Some(rec(good, false)), None))),
        msg(t, 3, Some("鄂(2023)武汉市不动产权第0001861号"), None),
        msg(t, 4, None, Some(&env("x", None, Some(rec(good, true))))),
        msg(t, 5, None, Some(&env("c", None, None))),
        msg(
            t,
            6,
            None,
            Some(&env("c", None, Some(rec("110105194912310021", true)))),
        ),
        msg(t, 7, None, Some(&rec(good, true))),
    ];
    let (b, dead) = run(&d, &msgs);
    let class = |o: i64| dead.iter().find(|x| x.offset == o).map(|x| x.class);
    assert_eq!(class(4), Some(ErrorClass::BadEnvelope));
    assert_eq!(class(5), Some(ErrorClass::BadEnvelope));
    assert_eq!(class(6), Some(ErrorClass::BadCheckDigit));
    assert_eq!(class(7), Some(ErrorClass::BadEnvelope));
    let b = b.unwrap();
    assert_eq!(b.num_rows(), 4);
    assert_eq!(
        strings(&b, "_op"),
        vec![
            Some("upsert".into()),
            Some("upsert".into()),
            Some("delete".into()),
            Some("delete".into())
        ]
    );
    let key = Some("鄂(2023)武汉市不动产权第0001861号".to_owned());
    assert_eq!(strings(&b, "_key"), vec![key.clone(); 4]);
    // A delete carries no record values.
    assert_eq!(
        strings(&b, "owner_id"),
        vec![Some(good.into()), Some(good.into()), None, None]
    );
    let mortgaged = b.column_by_name("mortgaged").unwrap().as_boolean();
    assert!(mortgaged.value(0) && !mortgaged.value(1) && mortgaged.is_null(2));
}

#[test]
fn money_and_composite_keys() {
    let d = decoder("tax.tax_paid");
    let rec = r#"{"uscc":"91350100M000100Y43","year":2024,"tax_paid":1234567.89,"corporate_income_tax":0.1,"revenue":null}"#;
    let (b, dead) = run(
        &d,
        &[
            msg("tax.tax_paid", 0, None, Some(rec)),
            msg("tax.tax_paid", 1, Some("91350100M000100Y43|2024"), None),
        ],
    );
    assert!(dead.is_empty(), "{dead:?}");
    let b = b.unwrap();
    assert_eq!(
        strings(&b, "_key"),
        vec![Some("91350100M000100Y43|2024".into()); 2]
    );
    let tax = b
        .column_by_name("tax_paid")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    assert_eq!(tax.value(0), 123_456_789);
    assert_eq!(
        b.column_by_name("corporate_income_tax")
            .unwrap()
            .as_primitive::<Decimal128Type>()
            .value(0),
        10
    );
}

#[test]
fn a_reused_decoder_starts_clean_after_good_and_bad_runs() {
    let d = decoder("ps.household_registration");
    let n = MIN_POOLED_BATCH as i64;
    let good = |from: i64, name: &str| -> Vec<Message> {
        (from..from + n)
            .map(|o| {
                let v = person(&[("name", &format!("\"{name}{o}\""))]);
                msg("ps.household_registration", o, Some("k"), Some(&v))
            })
            .collect()
    };
    let (first, dead) = run(&d, &good(0, "甲"));
    assert!(dead.is_empty());
    assert_eq!(first.unwrap().num_rows(), n as usize);
    // A run of the same size that fails the fast path part-way (its decoder is dropped, half
    // fed), then good runs that reuse the pooled one: each has exactly its own rows.
    let mut bad = good(n, "乙");
    bad[(n / 2) as usize].value = Some(b"{\"resident_id\": [".to_vec());
    let (rows, dead) = run(&d, &bad);
    assert_eq!(dead.len(), 1);
    assert_eq!(rows.unwrap().num_rows(), n as usize - 1);
    for (i, name) in ["丙", "丁"].into_iter().enumerate() {
        let from = (2 + i as i64) * n;
        let (b, dead) = run(&d, &good(from, name));
        assert!(dead.is_empty());
        let b = b.unwrap();
        let names = strings(&b, "name");
        assert_eq!(names.len(), n as usize);
        assert_eq!(names[0].as_deref(), Some(format!("{name}{from}").as_str()));
        assert_eq!(
            names[n as usize - 1].as_deref(),
            Some(format!("{name}{}", from + n - 1).as_str())
        );
    }
}

#[test]
fn each_row_keeps_its_own_key_around_rejects_and_deletes() {
    let d = decoder("ps.household_registration");
    let t = "ps.household_registration";
    let upsert = |offset, id: &str| {
        msg(
            t,
            offset,
            None,
            Some(&person(&[("resident_id", &format!("\"{id}\""))])),
        )
    };
    let some = |v: &[&str]| v.iter().map(|s| Some((*s).to_owned())).collect::<Vec<_>>();
    // Only upserts: the key column is the (normalised) record key.
    let (b, dead) = run(
        &d,
        &[
            upsert(0, "420106198001010015"),
            upsert(1, "11010519491231002x"),
            upsert(2, "420106199002020025"),
        ],
    );
    assert!(dead.is_empty());
    let b = b.unwrap();
    let ids = some(&[
        "420106198001010015",
        "11010519491231002X",
        "420106199002020025",
    ]);
    assert_eq!(strings(&b, "_key"), ids);
    assert_eq!(strings(&b, "resident_id"), ids);
    // A reject and a tombstone in between: every kept row still has its own key.
    let (b, dead) = run(
        &d,
        &[
            upsert(0, "420106198001010015"),
            upsert(1, "11010519491231002x"),
            upsert(2, "110105194912310021"),
            msg(t, 3, Some("440524188001010014"), None),
            upsert(4, "420106199002020025"),
        ],
    );
    assert_eq!(
        dead.iter().map(|x| (x.offset, x.class)).collect::<Vec<_>>(),
        [(2, ErrorClass::BadCheckDigit)]
    );
    let b = b.unwrap();
    assert_eq!(
        strings(&b, "_key"),
        some(&[
            "420106198001010015",
            "11010519491231002X",
            "440524188001010014",
            "420106199002020025"
        ])
    );
    assert_eq!(
        strings(&b, "_op"),
        some(&["upsert", "upsert", "delete", "upsert"])
    );
}

/// Event times: the header wins, the Kafka timestamp stands in, and a header that is
/// malformed, out of range or far in the future is refused with the rule it breaks — never
/// replaced by another time, never a panic or a wrap on overflow.
#[test]
fn event_times_are_taken_as_sent_or_refused_with_their_rule() {
    let d = decoder("ps.household_registration");
    let arrived = 1_800_000_000_000_000; // `run` decodes with this arrival time
    let with = |offset: i64, header: Option<&str>, kafka_ms: Option<i64>| {
        let mut m = msg(
            "ps.household_registration",
            offset,
            Some("11010519491231002X"),
            Some(&person(&[])),
        );
        m.headers = match header {
            Some(h) => [("event-time", h), ("source-system", "hukou")]
                .into_iter()
                .collect(),
            None => [("source-system", "hukou")].into_iter().collect(),
        };
        m.timestamp_ms = kafka_ms;
        m
    };
    let msgs = vec![
        with(0, Some("2025-01-01T08:30:00+08:00"), Some(1)),
        with(1, Some("1735691400000"), Some(1)),
        with(2, None, Some(1_735_691_400_123)),
        with(3, None, None),
        with(4, Some("2025-13-01T00:00:00Z"), Some(1)),
        with(5, Some("yesterday"), Some(1)),
        with(6, Some(&i64::MAX.to_string()), Some(1)),
        with(7, None, Some(i64::MAX)),
        with(8, Some("2031-01-01T00:00:00Z"), Some(1)),
        // Within the day's tolerance of the arrival (clock drift).
        with(9, Some(&((arrived / 1000) + 3_600_000).to_string()), None),
    ];
    let (batch, dead) = run(&d, &msgs);
    let batch = batch.unwrap();
    let times: Vec<(i64, i64)> = batch
        .column_by_name("_offset")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .iter()
        .copied()
        .zip(
            batch
                .column_by_name("_event_time")
                .unwrap()
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .values()
                .iter()
                .copied(),
        )
        .collect();
    assert_eq!(
        times,
        vec![
            (0, 1_735_691_400_000_000),
            (1, 1_735_691_400_000_000),
            (2, 1_735_691_400_123_000),
            (3, arrived),
            (9, arrived + 3_600_000_000),
        ]
    );
    let mut refused: Vec<(i64, &str)> = dead
        .iter()
        .map(|d| (d.offset, d.message.as_str()))
        .collect();
    refused.sort();
    assert_eq!(refused.len(), 5, "{refused:?}");
    for d in &dead {
        assert_eq!(d.class, ErrorClass::BadEventTime);
        // The rule, never the value.
        for v in ["2025-13", "yesterday", &i64::MAX.to_string(), "2031"] {
            assert!(!d.message.contains(v), "{}", d.message);
        }
    }
    assert!(refused[0].1.contains("neither an RFC 3339 time"));
    assert!(refused[2].1.contains("out of range"));
    assert!(refused[3].1.contains("Kafka timestamp"));
    assert!(refused[4].1.contains("24 hours"));
}

/// Every way a department system's record can differ from its schema: accepted values are
/// the values sent (never a lossy change), refusals name the field and the rule and no part
/// of the value, and every message is a row or a dead letter.
#[test]
fn values_are_taken_as_sent_or_refused_with_their_rule() {
    let t = "tax.tax_paid";
    let d = decoder(t);
    let rec = |year: &str, tax: &str| {
        format!(r#"{{"uscc":"91350100M000100Y43","year":{year},"tax_paid":{tax}}}"#)
    };
    // (value, Some(fen of tax_paid, year) when accepted | Err((class, field and rule)))
    type Want = Result<(i128, i32), (ErrorClass, &'static str)>;
    let cases: Vec<(Vec<u8>, Want)> = vec![
        (rec("2024", "1234.05").into(), Ok((123_405, 2024))),
        // Numbers in strings, as many department systems send them: the same number.
        (rec("\"2024\"", "\"1234.05\"").into(), Ok((123_405, 2024))),
        (rec("2024.0", "1234.050").into(), Ok((123_405, 2024))),
        (rec("2.024e3", "12.3405e2").into(), Ok((123_405, 2024))),
        // A leading byte-order mark is not part of the JSON text.
        ([b"\xEF\xBB\xBF".as_slice(), rec("2024", "1").as_bytes()].concat(), Ok((100, 2024))),
        (rec("2024.9", "1").into(), Err((ErrorClass::WrongType, "field `year`: not a whole number"))),
        (rec("3000000000", "1").into(), Err((ErrorClass::WrongType, "field `year`: out of range for int32"))),
        (rec("\" 2024\"", "1").into(), Err((ErrorClass::WrongType, "field `year`: not a number"))),
        (rec("true", "1").into(), Err((ErrorClass::WrongType, "field `year`: not a number"))),
        (rec("2024", "1234.056").into(), Err((ErrorClass::WrongType, "field `tax_paid`: money has at most 2 decimal places"))),
        (rec("2024", "1e17").into(), Err((ErrorClass::WrongType, "field `tax_paid`: out of range for money"))),
        (rec("2024", "{\"yuan\":1}").into(), Err((ErrorClass::WrongType, "field `tax_paid`: expected money, got an object"))),
        (
            r#"{"uscc":"91350100M000100Y43","year":2024,"tax_paid":1,"tax_paid_cny":1}"#.into(),
            Err((ErrorClass::UnknownField, "field `tax_paid_cny` is not in the catalog's schema")),
        ),
        (
            r#"{"uscc":"91350100M000100Y43","year":2024,"tax_paid":1,"tax_paid":2}"#.into(),
            Err((ErrorClass::DuplicateField, "field `tax_paid` is given more than once")),
        ),
        // GBK: 张 is D5 C5.
        (
            b"{\"uscc\":\"91350100M000100Y43\",\"year\":2024,\"tax_paid\":1,\"revenue\":\"\xD5\xC5\"}".to_vec(),
            Err((ErrorClass::NotUtf8, "value is not UTF-8 text")),
        ),
    ];
    let msgs: Vec<Message> = cases
        .iter()
        .enumerate()
        .map(|(i, (v, _))| Message {
            value: Some(v.clone()),
            ..msg(t, i as i64, None, None)
        })
        .collect();
    let (b, dead) = run(&d, &msgs);
    let b = b.unwrap();
    let offsets = b
        .column_by_name("_offset")
        .unwrap()
        .as_primitive::<Int64Type>();
    let tax = b
        .column_by_name("tax_paid")
        .unwrap()
        .as_primitive::<Decimal128Type>();
    let year = b
        .column_by_name("year")
        .unwrap()
        .as_primitive::<arrow::datatypes::Int32Type>();
    for (i, (_, want)) in cases.iter().enumerate() {
        let row = (0..b.num_rows()).find(|r| offsets.value(*r) == i as i64);
        let letter = dead.iter().find(|x| x.offset == i as i64);
        match want {
            Ok((fen, y)) => {
                let r = row.unwrap_or_else(|| panic!("case {i} refused: {letter:?}"));
                assert_eq!((tax.value(r), year.value(r)), (*fen, *y), "case {i}");
            }
            Err((class, rule)) => {
                let l = letter.unwrap_or_else(|| panic!("case {i} accepted"));
                assert_eq!(l.class, *class, "case {i}: {}", l.message);
                assert!(l.message.starts_with(rule), "case {i}: {}", l.message);
                for part in ["2024.9", "3000000000", "1234.056", "1e17", "91350100"] {
                    assert!(!l.message.contains(part), "case {i}: {}", l.message);
                }
            }
        }
    }
}

#[test]
fn dates_floats_and_text_fields_follow_their_rules() {
    let t = "hcd.housing_contract";
    let d = decoder(t);
    let rec = |area: &str, signed: &str, name: &str| {
        format!(
            r#"{{"contract_no":"HT-1","project_name":"p","buyer_id":"11010519491231002X","buyer_name":{name},"area_m2":{area},"signed_on":{signed},"status":"filed"}}"#
        )
    };
    let msgs = [
        rec("89.5", "\"2024-03-01\"", "\"张三\""),
        rec("\"89.50\"", "\"2024-03-01\"", "\"张三\""),
        // A number in a text field is kept as its exact JSON text.
        rec("89.5", "\"2024-03-01\"", "12.50"),
        rec("89.5", "\"\"", "\"张三\""),
        rec("89.5", "20240301", "\"张三\""),
        rec("89.5", "\"2024-02-30\"", "\"张三\""),
        rec("1e999", "\"2024-03-01\"", "\"张三\""),
    ]
    .iter()
    .enumerate()
    .map(|(i, v)| msg(t, i as i64, None, Some(v)))
    .collect::<Vec<_>>();
    let (b, dead) = run(&d, &msgs);
    let b = b.unwrap();
    assert_eq!(b.num_rows(), 3, "{dead:?}");
    let area = b
        .column_by_name("area_m2")
        .unwrap()
        .as_primitive::<arrow::datatypes::Float64Type>();
    assert_eq!((area.value(0), area.value(1)), (89.5, 89.5));
    assert_eq!(strings(&b, "buyer_name")[2].as_deref(), Some("12.50"));
    let why = |o: i64| dead.iter().find(|x| x.offset == o).unwrap().message.clone();
    assert_eq!(
        why(3),
        "field `signed_on`: empty text is not a date (send null when there is none)"
    );
    assert_eq!(why(4), "field `signed_on`: expected a date (YYYY-MM-DD)");
    assert_eq!(why(5), "field `signed_on`: expected a date (YYYY-MM-DD)");
    assert_eq!(why(6), "field `area_m2`: out of range for float64");
}
