//! A small district written into a real lake: twelve residents on two streets, five of them
//! with pensions, one who moves street later; folded, with profiles built. The policy tests
//! read it as different readers.

use datafusion::arrow::json::ReaderBuilder;
use gdx_catalog::Dataset;
use gdx_lake::fold::{FoldOptions, fold};
use gdx_lake::profiles::{BuildOptions, build};
use gdx_lake::schema::events_schema;
use gdx_lake::{EventTable, LakeLocation, PartitionTxn};
use serde_json::{Value, json};

pub(crate) const ZHONGHUA: &str = "中华路街道";
pub(crate) const ZIYANG: &str = "紫阳街道";

/// (resident ID, name, street, household, phone)
pub(crate) const RESIDENTS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "420106194003120113",
        "张三丰",
        ZHONGHUA,
        "H001",
        "13812340001",
    ),
    (
        "420106194511080138",
        "李四",
        ZHONGHUA,
        "H001",
        "13812340002",
    ),
    (
        "420106195001010150",
        "王五",
        ZHONGHUA,
        "H002",
        "13812340003",
    ),
    (
        "420106195512300176",
        "欧阳娜娜",
        ZHONGHUA,
        "H002",
        "13812340004",
    ),
    (
        "42010619600615019X",
        "赵六",
        ZHONGHUA,
        "H003",
        "13812340005",
    ),
    (
        "420106197007040210",
        "钱七",
        ZHONGHUA,
        "H003",
        "13812340006",
    ),
    ("420106198002020231", "孙八", ZIYANG, "H004", "13812340007"),
    ("420106198511110251", "周九", ZIYANG, "H004", "13812340008"),
    ("42010619900909027X", "吴十", ZIYANG, "H005", "13812340009"),
    (
        "420106199505050293",
        "郑十一",
        ZIYANG,
        "H005",
        "13812340010",
    ),
    (
        "420106200001010314",
        "冯十二",
        ZIYANG,
        "H006",
        "13812340011",
    ),
    (
        "420106201008080336",
        "陈十三",
        ZHONGHUA,
        "H006",
        "13812340012",
    ),
];

/// The resident who moves from 中华路街道 to 紫阳街道 on 2026-06-01.
pub(crate) const MOVER: &str = "420106201008080336";

fn birth_date(id: &str) -> String {
    format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14])
}

fn resident(r: &(&str, &str, &str, &str, &str), street: &str) -> Value {
    let (id, name, _, household, phone) = r;
    let community = if street == ZHONGHUA {
        "司门口社区"
    } else {
        "紫阳社区"
    };
    json!({
        "resident_id": id, "name": name,
        "gender": if id.as_bytes()[16] % 2 == 1 { "male" } else { "female" },
        "ethnicity": "汉族", "birth_date": birth_date(id), "household_id": household,
        "relation_to_head": "head", "street": street, "community": community,
        "address": format!("湖北省武汉市武昌区{street}{community}解放路{}号", &id[14..17]),
        "phone": phone, "status": "active", "registered_on": "2001-01-01",
    })
}

/// Appends `records` (upserts keyed by `key`) at `event_time`, offsets from `offset`.
async fn append(
    lake: &LakeLocation,
    ds: &Dataset,
    key: &str,
    records: &[Value],
    offset: i64,
    event_time: &str,
) {
    let mut text = String::new();
    for (i, r) in records.iter().enumerate() {
        let mut r = r.clone();
        let o = r.as_object_mut().unwrap();
        let k = o[key].as_str().unwrap().to_owned();
        o.insert("_topic".into(), json!(ds.id.as_str()));
        o.insert("_partition".into(), json!(0));
        o.insert("_offset".into(), json!(offset + i as i64));
        o.insert("_event_time".into(), json!(event_time));
        o.insert("_ingested_at".into(), json!("2026-11-01T00:00:00Z"));
        o.insert("_op".into(), json!("upsert"));
        o.insert("_key".into(), json!(k));
        o.insert("_schema_version".into(), json!(1));
        text.push_str(&r.to_string());
        text.push('\n');
    }
    let batch = ReaderBuilder::new(events_schema(ds))
        .build(std::io::Cursor::new(text.into_bytes()))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut t = EventTable::open_or_create(lake.events(&ds.id), events_schema(ds), "t")
        .await
        .unwrap();
    let txn = PartitionTxn {
        app_id: format!("test/c/{}/0", ds.id),
        offset: offset + records.len() as i64 - 1,
    };
    t.append(vec![batch], &[txn]).await.unwrap();
}

/// Writes, folds and profiles the district into `lake`. Returns the `current` version of
/// the household register before the move.
pub(crate) async fn write(lake: &LakeLocation) -> u64 {
    let catalog = gdx_catalog::district::catalog();
    let hr = catalog.get("ps.household_registration").unwrap();
    let people: Vec<Value> = RESIDENTS.iter().map(|r| resident(r, r.2)).collect();
    append(
        lake,
        hr,
        "resident_id",
        &people,
        0,
        "2026-01-10T09:00:00+08:00",
    )
    .await;
    let pension = catalog.get("hrss.pension").unwrap();
    // Four pensioners on 中华路街道, one on 紫阳街道.
    let pensions: Vec<Value> = [0, 1, 2, 3, 6]
        .iter()
        .map(|&i| (i, &RESIDENTS[i]))
        .map(|(i, (id, name, ..))| {
            json!({
                "resident_id": id, "name": name, "pension_type": "enterprise",
                "monthly_amount": format!("{}.50", 3000 + 100 * i), "start_date": "2010-01-01",
                "bank_card": format!("62220202001122{:05}", i), "status": "active",
            })
        })
        .collect();
    append(
        lake,
        pension,
        "resident_id",
        &pensions,
        0,
        "2026-01-10T09:00:00+08:00",
    )
    .await;
    for ds in [hr, pension] {
        fold(lake, ds, &FoldOptions::default()).await.unwrap();
    }
    let before = deltalake::open_table(lake.current(&hr.id))
        .await
        .unwrap()
        .version()
        .unwrap() as u64;
    // The mover's new address, months later.
    let mover = RESIDENTS.iter().find(|r| r.0 == MOVER).unwrap();
    append(
        lake,
        hr,
        "resident_id",
        &[resident(mover, ZIYANG)],
        RESIDENTS.len() as i64,
        "2026-06-01T09:00:00+08:00",
    )
    .await;
    fold(lake, hr, &FoldOptions::default()).await.unwrap();
    build(lake, &catalog, &BuildOptions::default())
        .await
        .unwrap();
    before
}
