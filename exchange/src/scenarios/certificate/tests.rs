use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use gdx_catalog::ResidentId;

use super::*;

fn id(seq: u16) -> String {
    ResidentId::compose(420106, NaiveDate::from_ymd_opt(1980, 5, 17).unwrap(), seq)
        .as_str()
        .to_owned()
}

const NO: &str = "鄂(2024)武汉市不动产权第0123456号";
const ADDRESS: &str = "湖北省武汉市武昌区白沙洲街道桃园社区临江大道298号11栋5单元604室";

/// certificate_no, owner_id, owner_name, address, area_m2, status, street.
type Row<'a> = (&'a str, &'a str, &'a str, &'a str, f64, &'a str, &'a str);

/// One way to spoil a question.
type Change = Box<dyn Fn(&mut Check)>;

fn certificates(rows: &[Row<'_>]) -> RecordBatch {
    let text = |f: &dyn Fn(&Row<'_>) -> String| {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("certificate_no", DataType::Utf8, false),
            Field::new("owner_id", DataType::Utf8, false),
            Field::new("owner_name", DataType::Utf8, false),
            Field::new("address", DataType::Utf8, false),
            Field::new("area_m2", DataType::Float64, false),
            Field::new("status", DataType::Utf8, false),
            Field::new("street", DataType::Utf8, false),
        ])),
        vec![
            text(&|r| r.0.to_owned()),
            text(&|r| r.1.to_owned()),
            text(&|r| r.2.to_owned()),
            text(&|r| r.3.to_owned()),
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.4).collect::<Vec<_>>(),
            )),
            text(&|r| r.5.to_owned()),
            text(&|r| r.6.to_owned()),
        ],
    )
    .unwrap()
}

fn contracts(rows: &[(&str, &str, &str)]) -> RecordBatch {
    let col = |i: usize| {
        Arc::new(StringArray::from(
            rows.iter().map(|r| [r.0, r.1, r.2][i]).collect::<Vec<_>>(),
        ))
    };
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("contract_no", DataType::Utf8, false),
            Field::new("unit_address", DataType::Utf8, false),
            Field::new("status", DataType::Utf8, false),
        ])),
        vec![col(0), col(1), col(2)],
    )
    .unwrap()
}

fn register() -> Register {
    let owner = id(2);
    let other = id(5);
    let certs = certificates(&[
        (
            NO,
            &owner,
            "欧阳建国",
            ADDRESS,
            89.5,
            "active",
            "白沙洲街道",
        ),
        (
            "鄂(2019)武汉市不动产权第0000042号",
            &other,
            "李红",
            "湖北省武汉市武昌区杨园街道1号",
            61.0,
            "cancelled",
            "杨园街道",
        ),
        (
            "鄂(2025)武汉市不动产权第0000077号",
            &owner,
            "欧阳建国",
            "湖北省武汉市武昌区杨园街道1号",
            61.0,
            "active",
            "杨园街道",
        ),
    ]);
    let cons = contracts(&[
        ("WS202400000001", ADDRESS, "filed"),
        (
            "WS202400000002",
            "湖北省武汉市武昌区杨园街道1号",
            "cancelled",
        ),
    ]);
    Register::from_batches(&[certs], &[cons], [Some(3), Some(1)]).unwrap()
}

fn ask(c: Check) -> Verdict {
    register().check(&Question::new(&c).unwrap(), &BTreeMap::new())
}

fn full() -> Check {
    Check {
        certificate_no: Some(NO.into()),
        owner_id: Some(id(2)),
        owner_name: Some("欧阳建国".into()),
        address: Some(ADDRESS.into()),
        area_m2: Some("89.5".into()),
        ..Check::default()
    }
}

#[test]
fn every_attribute_matching_one_active_certificate_is_a_match() {
    let v = ask(full());
    assert!(v.matched, "{v:?}");
    assert_eq!(v.reason, "match");
    assert_eq!(v.subjects, vec![format!("certificate:{NO}"), id(2)]);
    // The certificate number alone: is it genuine and in force?
    assert!(
        ask(Check {
            certificate_no: Some(NO.into()),
            ..Check::default()
        })
        .matched
    );
}

#[test]
fn inputs_are_normalised_before_comparing() {
    let owner = id(2).replace('X', "x");
    let wide: String = owner
        .chars()
        .map(|c| {
            char::from_u32(c as u32 - '0' as u32 + '０' as u32)
                .filter(|_| c.is_ascii_digit())
                .unwrap_or(c)
        })
        .collect();
    let v = ask(Check {
        certificate_no: Some("鄂（２０２４）武汉市不动产权第 0123456 号".into()),
        owner_id: Some(wide),
        owner_name: Some(" 欧阳 建国 ".into()),
        address: Some(format!(" {ADDRESS} ")),
        area_m2: Some("８９.５０".into()),
        ..Check::default()
    });
    assert!(v.matched, "{v:?}");
}

#[test]
fn any_attribute_off_is_one_no_match_whose_reason_only_the_audit_sees() {
    let cases: Vec<(&str, Change)> = vec![
        ("owner_id", Box::new(|c| c.owner_id = Some(id(3)))),
        (
            "owner_name",
            Box::new(|c| c.owner_name = Some("欧阳建军".into())),
        ),
        (
            "address",
            Box::new(|c| c.address = Some(format!("{ADDRESS}1"))),
        ),
        ("area_m2", Box::new(|c| c.area_m2 = Some("89.51".into()))),
    ];
    for (field, change) in cases {
        let mut c = full();
        change(&mut c);
        let v = ask(c);
        assert!(!v.matched, "{field}");
        assert_eq!(v.reason, format!("no_match: differs in {field}"));
    }
    let mut c = full();
    c.certificate_no = Some("鄂(2024)武汉市不动产权第0123457号".into());
    let v = ask(c);
    assert!(!v.matched);
    assert_eq!(
        v.reason,
        "no_match: no active certificate for the certificate number"
    );
}

#[test]
fn a_cancelled_certificate_does_not_verify() {
    let v = ask(Check {
        certificate_no: Some("鄂(2019)武汉市不动产权第0000042号".into()),
        ..Check::default()
    });
    assert!(!v.matched);
    assert!(v.reason.contains("no active certificate"), "{}", v.reason);
}

#[test]
fn owner_and_contract_are_ways_in() {
    // By owner: either of the owner's two active certificates.
    let v = ask(Check {
        owner_id: Some(id(2)),
        owner_name: Some("欧阳建国".into()),
        area_m2: Some("61".into()),
        ..Check::default()
    });
    assert!(v.matched, "{v:?}");
    assert_eq!(v.subjects[0], id(2));
    assert!(
        !ask(Check {
            owner_id: Some(id(2)),
            owner_name: Some("欧阳建国".into()),
            area_m2: Some("62".into()),
            ..Check::default()
        })
        .matched
    );
    // By contract: the certificate of the home that contract sold.
    let v = ask(Check {
        contract_no: Some("WS202400000001".into()),
        owner_id: Some(id(2)),
        ..Check::default()
    });
    assert!(v.matched, "{v:?}");
    assert!(
        !ask(Check {
            contract_no: Some("WS202400000001".into()),
            owner_id: Some(id(5)),
            ..Check::default()
        })
        .matched
    );
    // A cancelled contract leads nowhere.
    assert!(
        !ask(Check {
            contract_no: Some("WS202400000002".into()),
            ..Check::default()
        })
        .matched
    );
}

#[test]
fn a_row_scope_limits_what_can_match() {
    let r = register();
    let q = Question::new(&full()).unwrap();
    let scope = |street: &str| BTreeMap::from([("street".to_owned(), vec![street.to_owned()])]);
    assert!(r.check(&q, &scope("白沙洲街道")).matched);
    let v = r.check(&q, &scope("杨园街道"));
    assert!(!v.matched);
    assert_eq!(v.reason, "no_match: outside the grant's row scope");
    let unknown = BTreeMap::from([("nope".to_owned(), vec!["x".to_owned()])]);
    assert!(!r.check(&q, &unknown).matched);
}

#[test]
fn questions_that_cannot_be_asked_say_what_is_wrong_with_the_input() {
    let err = |c: Check| Question::new(&c).unwrap_err();
    assert_eq!(err(Check::default()), CheckError::NoHandle);
    // A name alone, or an ID alone, is not a way in.
    assert_eq!(
        err(Check {
            owner_name: Some("李红".into()),
            ..Check::default()
        }),
        CheckError::NoHandle
    );
    assert_eq!(
        err(Check {
            certificate_no: Some("  ".into()),
            ..Check::default()
        }),
        CheckError::Empty {
            field: "certificate_no"
        }
    );
    let bad_id = err(Check {
        owner_id: Some("420106198005170021".into()),
        owner_name: Some("李红".into()),
        ..Check::default()
    });
    assert_eq!(bad_id.code(), "bad_owner_id");
    assert!(!bad_id.to_string().contains("420106"), "{bad_id}");
    for bad in ["", "0", "-1", "89.567", "1e3", "89,5", "abc", "1234567890"] {
        assert_eq!(area_cents(bad), Err(CheckError::Area), "{bad}");
    }
    assert_eq!(area_cents("89.5"), Ok(8950));
    assert_eq!(area_cents("89.05"), Ok(8905));
    assert_eq!(area_cents("120"), Ok(12000));
    let long = "号".repeat(201);
    assert_eq!(
        err(Check {
            certificate_no: Some(long),
            ..Check::default()
        }),
        CheckError::TooLong {
            field: "certificate_no"
        }
    );
}

#[test]
fn fields_name_what_the_question_reads() {
    let q = Question::new(&Check {
        contract_no: Some("WS1".into()),
        address: Some("x".into()),
        ..Check::default()
    })
    .unwrap();
    assert_eq!(q.fields(), vec!["address"]);
    assert_eq!(Question::new(&full()).unwrap().fields().len(), 5);
}
