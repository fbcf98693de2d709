//! The PostgreSQL wire protocol door, end to end: the real `gdx exchange --pg` on a real
//! lake, the distribution's `psql` for the simple protocol and `tokio-postgres` (a real
//! driver) for prepared statements. What a connection sees is what the same grants show
//! through `POST /v1/sql`; logins, refusals and queries are audited.

mod common;

use common::exchange::{Server, eventually};
use serde_json::json;
use std::process::Command;

const PURPOSE: &str = "statistics";

/// psql's connection string for `user` on `s`, with purpose and case in the options.
fn conninfo(s: &Server, user: &str, options: &str) -> String {
    let (host, port) = s.pg.as_deref().unwrap().rsplit_once(':').unwrap();
    format!("host={host} port={port} user={user} dbname=gdx sslmode=disable options='{options}'")
}

fn statistics() -> String {
    format!("-c gdx.purpose={PURPOSE} -c gdx.case=PG-1")
}

/// Runs psql `-c sql` (unaligned, tuples only, `|`-separated); returns (ok, stdout, stderr).
fn psql_as(s: &Server, user: &str, key: &str, options: &str, sql: &str) -> (bool, String, String) {
    let o = Command::new("psql")
        .args([
            &conninfo(s, user, options),
            "-X",
            "-A",
            "-t",
            "-F",
            "|",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .env("PGPASSWORD", key)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql (postgresql-client) is installed");
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn psql(s: &Server, user: &str, key: &str, sql: &str) -> (bool, String, String) {
    psql_as(s, user, key, &statistics(), sql)
}

/// `POST /v1/sql` rows as `|`-separated lines, the way psql -A -t prints them.
fn http_lines(s: &Server, key: &str, sql: &str) -> String {
    http_answer(s, key, sql).unwrap_or_else(|status| panic!("{sql}: HTTP {status}"))
}

/// One answer of `POST /v1/sql`: the rows as `|`-separated lines, or the status it refused with.
fn http_answer(s: &Server, key: &str, sql: &str) -> Result<String, u16> {
    let r = s.call(
        "POST",
        "/v1/sql",
        &[
            ("authorization", &format!("Bearer {key}")),
            ("x-purpose", PURPOSE),
            ("x-case-id", "PG-1"),
            ("content-type", "application/json"),
        ],
        json!({ "sql": sql }).to_string().as_bytes(),
    );
    if r.status != 200 {
        return Err(r.status);
    }
    let v = r.json();
    let names: Vec<String> = v["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    Ok(v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            names
                .iter()
                .map(|n| match &row[n] {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("|")
                + "\n"
        })
        .collect())
}

/// The principal id of a key made by `s.principal` (the CLI prints only the key).
fn new_principal(s: &Server, prefix: &str, department: &str, role: &str) -> (String, String) {
    let id = common::exchange::unique(prefix);
    let key = s.principal_named(&id, department, role);
    (id, key)
}

/// A masked grant on the household registration for `key`, approved by ps.
fn masked_grant(s: &Server, key: &str) -> String {
    let approver = s.principal("ps-appr", "ps", "approver");
    let r = s.post(
        "/v1/grants",
        key,
        &json!({"resource": "ps.household_registration", "level": "masked",
                "purpose": PURPOSE, "legal_basis": "《统计法》"})
        .to_string(),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let d = s.post(
        &format!("/v1/grants/{id}/approve"),
        &approver,
        &json!({"reason": ""}).to_string(),
    );
    assert_eq!(d.json()["status"], "active", "{}", d.text());
    id
}

/// psql: `\dt` and `\d` list only what the grants show; a query answers the same masked
/// values as `POST /v1/sql`; a hidden table answers like a missing one; writes, COPY and
/// SET are refused; everything is audited with the tables read and the grant.
#[test]
fn psql_sees_exactly_what_the_grants_show() {
    let s = Server::start(&["--pg", "127.0.0.1:0"]);
    let (analyst, key) = new_principal(&s, "mca-analyst", "mca", "analyst");
    let (ok, tables, err) = psql(&s, &analyst, &key, "\\dt *.*");
    assert!(ok, "{err}");
    assert!(tables.contains("catalog|datasets|table"), "{tables}");
    assert!(!tables.contains("household_registration"), "{tables}");
    let hidden = psql(
        &s,
        &analyst,
        &key,
        "select * from ps.household_registration",
    );
    let missing = psql(
        &s,
        &analyst,
        &key,
        "select * from ps.household_registrationx",
    );
    assert!(!hidden.0 && !missing.0);
    assert_eq!(
        hidden.2.replace("ps.household_registration", "T"),
        missing.2.replace("ps.household_registrationx", "T"),
    );
    assert!(hidden.2.contains("does not exist"), "{}", hidden.2);

    let grant = masked_grant(&s, &key);
    let listed = eventually(10, || {
        psql(&s, &analyst, &key, "\\dt ps.*")
            .1
            .contains("household_registration")
    });
    assert!(listed, "the granted table is listed");
    let (ok, columns, err) = psql(&s, &analyst, &key, "\\d ps.household_registration");
    assert!(ok, "{err}");
    assert!(columns.contains("resident_id"), "{columns}");
    let sql = "select resident_id, name, street, birth_date from ps.household_registration order by 1, 2, 3 limit 5";
    let (ok, rows, err) = psql(&s, &analyst, &key, sql);
    assert!(ok, "{err}");
    assert_eq!(rows, http_lines(&s, &key, sql));
    assert!(rows.lines().next().unwrap().contains('*'), "masked: {rows}");
    // Aggregates over the same rows agree too.
    let agg =
        "select street, count(*) as n from ps.household_registration group by street order by 1";
    assert_eq!(psql(&s, &analyst, &key, agg).1, http_lines(&s, &key, agg));

    for (write, said) in [
        ("create table t as select 1", "CREATE TABLE"),
        (
            "insert into ps.household_registration select * from ps.household_registration",
            "INSERT",
        ),
        ("delete from ps.household_registration", "DELETE"),
        ("copy ps.household_registration to stdout", "COPY"),
        ("set search_path = ps", "SET"),
    ] {
        let (ok, _, err) = psql(&s, &analyst, &key, write);
        assert!(!ok, "{write}");
        assert!(
            err.contains(&format!("{said} is refused")),
            "{write}: {err}"
        );
    }
    let (ok, out, err) = psql(&s, &analyst, &key, "begin; select 1; commit;");
    assert!(ok, "{err}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["BEGIN", "1", "COMMIT"]
    );
    let (ok, out, _) = psql(&s, &analyst, &key, "show transaction_read_only");
    assert!(ok && out.trim() == "on", "{out}");
    let (ok, _, err) = psql(&s, &analyst, &key, "selec 1");
    assert!(!ok && err.contains("syntax error"), "{err}");

    let records = s.audit("object=pgwire");
    assert!(
        records.iter().any(|r| r["action"] == "connect"
            && r["outcome"] == "allowed"
            && r["principal"] == analyst.as_str()
            && r["purpose"] == PURPOSE
            && r["case_id"] == "PG-1"),
        "{records:?}"
    );
    assert!(
        records.iter().any(|r| r["action"]
            .as_str()
            .unwrap()
            .starts_with("query ps.household_registration")
            && r["outcome"] == "allowed"
            && r["rows"] == 5
            && r["grants"].as_array().unwrap().contains(&json!(grant))),
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["outcome"] == "denied" && r["reason"].as_str().unwrap().contains("COPY")),
        "{records:?}"
    );
}

/// A wrong key, another principal's key, a missing purpose or case, an unknown purpose, a
/// role that does not query: refused at login, and audited.
#[test]
fn logins_are_refused_without_a_valid_key_purpose_and_case() {
    let s = Server::start(&["--pg", "127.0.0.1:0"]);
    let (analyst, key) = new_principal(&s, "mca-analyst", "mca", "analyst");
    let (_, other_key) = new_principal(&s, "ps-analyst", "ps", "analyst");
    let wrong = psql(&s, &analyst, "gdx_0000", "select 1");
    assert!(
        !wrong.0 && wrong.2.contains("password authentication failed"),
        "{}",
        wrong.2
    );
    let other = psql(&s, &analyst, &other_key, "select 1");
    assert_eq!(other.2, wrong.2, "one answer for a wrong and another's key");
    let (ok, _, err) = psql_as(&s, &analyst, &key, "-c gdx.case=PG-1", "select 1");
    assert!(!ok && err.contains("purpose"), "{err}");
    let (ok, _, err) = psql_as(
        &s,
        &analyst,
        &key,
        "-c gdx.purpose=fishing -c gdx.case=1",
        "select 1",
    );
    assert!(!ok && err.contains("not a registered purpose"), "{err}");
    let (ok, _, err) = psql_as(
        &s,
        &analyst,
        &key,
        &format!("-c gdx.purpose={PURPOSE}"),
        "select 1",
    );
    assert!(!ok && err.contains("case"), "{err}");
    let (app, app_key) = new_principal(&s, "mca-app", "mca", "app");
    let (ok, _, err) = psql(&s, &app, &app_key, "select 1");
    assert!(!ok && err.contains("analysts"), "{err}");
    // The purpose can come in the application name (for BI tools with no options field).
    let o = Command::new("psql")
        .arg(format!(
            "{} application_name='metabase purpose={PURPOSE} case=Q4'",
            conninfo(&s, &analyst, "")
        ))
        .args(["-X", "-A", "-t", "-c", "select 42"])
        .env("PGPASSWORD", &key)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "42",
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let denied = s.audit("object=pgwire&outcome=denied");
    let reasons: Vec<&str> = denied.iter().filter_map(|r| r["reason"].as_str()).collect();
    assert!(reasons.contains(&"an unknown key"), "{reasons:?}");
    assert!(
        reasons.contains(&"the key of another principal"),
        "{reasons:?}"
    );
}

/// Prepared statements through a real driver (extended protocol, binary results), the
/// connection's grants re-read at every statement: a revoked key ends the connection.
#[test]
fn prepared_statements_through_a_driver_and_revocation_midway() {
    let s = Server::start(&["--pg", "127.0.0.1:0"]);
    let (analyst, key) = new_principal(&s, "mca-analyst", "mca", "analyst");
    masked_grant(&s, &key);
    let pg = s.pg.clone().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (host, port) = pg.rsplit_once(':').unwrap();
        let (client, connection) = tokio_postgres::Config::new()
            .host(host)
            .port(port.parse().unwrap())
            .user(&analyst)
            .password(&key)
            .dbname("gdx")
            .options(statistics())
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect");
        let conn = tokio::spawn(connection);
        // Parse once, run with different values; typed results.
        let stmt = client
            .prepare("select count(*) as n from ps.household_registration where street = $1")
            .await
            .expect("prepare");
        assert_eq!(stmt.params().len(), 1);
        let streets = client
            .query("select distinct street from ps.household_registration order by 1", &[])
            .await
            .unwrap();
        assert!(streets.len() > 1);
        let mut total = 0i64;
        for row in &streets {
            let street: String = row.get(0);
            let n: i64 = client.query_one(&stmt, &[&street]).await.unwrap().get("n");
            assert!(n > 0);
            total += n;
        }
        let all: i64 = client
            .query_one("select count(*) from ps.household_registration", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(total, all);
        // Masked values come with their column's type, the same as over HTTP.
        let sql = "select resident_id, name, birth_date from ps.household_registration order by 1, 2 limit 3";
        let rows = client.query(sql, &[]).await.unwrap();
        let text: String = rows
            .iter()
            .map(|r| {
                let id: String = r.get(0);
                let name: String = r.get(1);
                let born: Option<chrono::NaiveDate> = r.get(2);
                format!("{id}|{name}|{}\n", born.map(|d| d.to_string()).unwrap_or_default())
            })
            .collect();
        assert_eq!(text, http_lines(&s, &key, sql));
        // A hidden table fails at prepare, and the connection stays usable.
        let e = client.prepare("select * from ps.no_such_table").await.unwrap_err();
        assert_eq!(e.code(), Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE));
        assert_eq!(client.query_one("select 1::bigint", &[]).await.unwrap().get::<_, i64>(0), 1);
        // Revoked: the next statement is refused and the connection ends.
        let o = common::gdx(&["principal", "revoke", &analyst, "--lake", common::exchange::lake_arg()]);
        assert!(o.status.success());
        let mut refused = false;
        for _ in 0..50 {
            match client.query_one("select 1::bigint", &[]).await {
                Ok(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
                Err(_) => {
                    refused = true;
                    break;
                }
            }
        }
        assert!(refused, "a revoked key stops working on an open connection");
        drop(client);
        let _ = conn.await;
    });
}

/// The API key is the password: off loopback the server will not start without TLS, and
/// with a certificate it serves TLS (psql `sslmode=require`).
#[test]
fn tls_is_required_off_loopback_and_served_when_configured() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gdx"))
        .args([
            "exchange",
            "--lake",
            common::exchange::lake_arg(),
            "--listen",
            "127.0.0.1:0",
            "--audit-dir",
            tmp.path().join("audit").to_str().unwrap(),
            "--replica",
            &common::exchange::unique("r"),
            "--pg",
            "0.0.0.0:0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let exited = eventually(60, || child.try_wait().unwrap().is_some());
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(exited && !out.status.success(), "{err}");
    assert!(err.contains("needs TLS"), "{err}");

    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl makes a test certificate");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let s = Server::start(&[
        "--pg",
        "127.0.0.1:0",
        "--pg-tls-cert",
        cert.to_str().unwrap(),
        "--pg-tls-key",
        key.to_str().unwrap(),
    ]);
    let (analyst, api_key) = new_principal(&s, "mca-analyst", "mca", "analyst");
    let tls = conninfo(&s, &analyst, &statistics()).replace("sslmode=disable", "sslmode=require");
    let o = Command::new("psql")
        .args([&tls, "-X", "-A", "-t", "-c", "select 41 + 1"])
        .env("PGPASSWORD", &api_key)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(
        said.lines().any(|l| l == "42"),
        "{said} {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The policy through both doors: readers of every kind the grants make (own department as
/// stored, a masked grant, a masked grant scoped to one street, an aggregate-only grant, no
/// grant) run the same statements over `POST /v1/sql` and over pgwire; each pair of answers
/// is identical, and what one door refuses the other refuses too.
#[test]
fn every_kind_of_reader_gets_the_same_answers_through_both_doors() {
    let s = Server::start(&["--pg", "127.0.0.1:0"]);
    let approver = s.principal("ps-appr", "ps", "approver");
    let granted = |key: &str, level: &str, rows: Option<serde_json::Value>| {
        let mut body = json!({"resource": "ps.household_registration", "level": level,
                              "purpose": PURPOSE, "legal_basis": "《统计法》"});
        if let Some(r) = rows {
            body["rows"] = r;
        }
        let r = s.post("/v1/grants", key, &body.to_string());
        assert_eq!(r.status, 201, "{}", r.text());
        let id = r.json()["id"].as_str().unwrap().to_owned();
        if r.json()["status"] != "active" {
            let d = s.post(
                &format!("/v1/grants/{id}/approve"),
                &approver,
                &json!({"reason": ""}).to_string(),
            );
            assert_eq!(d.json()["status"], "active", "{}", d.text());
        }
    };
    let own = new_principal(&s, "ps-system", "ps", "department_system");
    let masked = new_principal(&s, "mca-analyst", "mca", "analyst");
    granted(&masked.1, "masked", None);
    let street = new_principal(&s, "mca-street", "mca", "analyst");
    granted(&street.1, "masked", Some(json!({"street": ["中华路街道"]})));
    let aggregate = new_principal(&s, "stats-analyst", "stats", "analyst");
    granted(&aggregate.1, "aggregate", None);
    let none = new_principal(&s, "tax-analyst", "tax", "analyst");
    let statements = [
        "select resident_id, name, phone, street from ps.household_registration order by 1, 2 limit 7",
        "select street, count(*) as n from ps.household_registration group by street order by street",
        "select count(*) as n from ps.household_registration where street = '中华路街道'",
        "select gender, count(*) as n, min(birth_date) as oldest from ps.household_registration group by gender order by gender",
        "select count(*) as events from ps.household_registration_events",
        "select * from ps.no_such_table",
    ];
    let mut compared = 0;
    for (who, key) in [&own, &masked, &street, &aggregate, &none] {
        for sql in statements {
            let over_http = http_answer(&s, key, sql);
            let (ok, out, err) = psql(&s, who, key, sql);
            match &over_http {
                Ok(rows) => {
                    assert!(ok, "{who}: {sql}: HTTP answered, pgwire refused: {err}");
                    assert_eq!(&out, rows, "{who}: {sql}");
                    compared += 1;
                }
                Err(status) => assert!(!ok, "{who}: {sql}: HTTP {status}, pgwire answered {out}"),
            }
        }
    }
    // Enough of the suite answered to mean something (refusals are checked alike above).
    assert!(compared >= 12, "{compared} answers compared");
}
