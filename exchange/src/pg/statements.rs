//! What a pgwire statement is, before anything runs: a query for the lake, a transaction
//! statement (answered, nothing to commit: the door is read-only), a `SHOW` of a session
//! setting, or a refusal.
//!
//! Data flow: SQL text → the Postgres-compatibility parser (`pg_catalog` casts and the like
//! rewritten for DataFusion) → [`Kind`] per statement. A refusal names the statement's
//! keyword, never its text.

use std::collections::HashMap;

use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError};

/// One statement, classified.
#[derive(Debug, Clone)]
pub(super) enum Kind {
    /// A read for the lake session (SELECT, WITH, VALUES, EXPLAIN, DESCRIBE).
    Query,
    /// BEGIN / START TRANSACTION.
    Begin,
    /// COMMIT / ROLLBACK / END.
    End(&'static str),
    /// SHOW of one setting.
    Show(String),
    /// Anything that writes or changes the session: refused.
    Refused(String),
}

pub(super) fn classify(statement: &Statement) -> Kind {
    match statement {
        Statement::Query(_) | Statement::Explain { .. } | Statement::ExplainTable { .. } => {
            Kind::Query
        }
        Statement::StartTransaction { .. } => Kind::Begin,
        Statement::Commit { .. } => Kind::End("COMMIT"),
        Statement::Rollback { .. } => Kind::End("ROLLBACK"),
        Statement::ShowVariable { variable } if !variable.is_empty() => Kind::Show(
            variable
                .iter()
                .map(|i| i.value.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        other => Kind::Refused(keyword(other)),
    }
}

/// The statement's leading keywords (`INSERT`, `COPY`, `CREATE TABLE`), no names or values.
fn keyword(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text
        .split_whitespace()
        .take(2)
        .filter(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
        .collect();
    let first = words.first().map(|w| w.to_ascii_uppercase());
    match (first.as_deref(), words.get(1)) {
        (Some(k @ ("CREATE" | "DROP" | "ALTER")), Some(what)) => {
            format!("{k} {}", what.to_ascii_uppercase())
        }
        (Some(k), _) => k.to_owned(),
        (None, _) => "this statement".into(),
    }
}

/// Parses SQL text as PostgreSQL clients write it.
pub(super) fn parse(
    parser: &PostgresCompatibilityParser,
    sql: &str,
) -> Result<Vec<Statement>, PgWireError> {
    parser
        .parse(sql)
        .map_err(|e| user_error("42601", format!("syntax error: {e}")))
}

/// An error the client caused (the connection stays).
pub(super) fn user_error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message.into(),
    )))
}

/// The refusal of a statement that is not a read.
pub(super) fn refusal(keyword: &str) -> PgWireError {
    user_error(
        "25006",
        format!(
            "{keyword} is refused: gdx serves reads only over SQL (SELECT, WITH, EXPLAIN, SHOW; \
             BEGIN/COMMIT change nothing), and session settings come from the connection's \
             startup options"
        ),
    )
}

/// The value of a setting `SHOW` asks for: what the connection started with, or the
/// server's fixed answer.
pub(super) fn show(
    name: &str,
    metadata: &HashMap<String, String>,
    purpose: &str,
    case_id: &str,
) -> Option<String> {
    let name = name.to_ascii_lowercase();
    let from_client = |k: &str| {
        metadata
            .iter()
            .find(|(m, _)| m.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(match name.as_str() {
        "gdx.purpose" => purpose.to_owned(),
        "gdx.case" => case_id.to_owned(),
        "application_name" => from_client("application_name").unwrap_or_default(),
        "client_encoding" => from_client("client_encoding").unwrap_or_else(|| "UTF8".into()),
        "datestyle" => from_client("DateStyle").unwrap_or_else(|| "ISO, MDY".into()),
        "timezone" | "time zone" => from_client("TimeZone").unwrap_or_else(|| "Etc/UTC".into()),
        "intervalstyle" => "postgres".into(),
        "server_version" => "16.6".into(),
        "server_version_num" => "160006".into(),
        "server_encoding" => "UTF8".into(),
        "search_path" => "public".into(),
        "standard_conforming_strings" | "integer_datetimes" => "on".into(),
        "transaction_read_only" | "default_transaction_read_only" => "on".into(),
        "transaction isolation level" | "transaction_isolation" => "read committed".into(),
        "is_superuser" => "off".into(),
        "max_identifier_length" => "63".into(),
        "lc_collate" | "lc_ctype" => "C".into(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(sql: &str) -> Kind {
        let p = PostgresCompatibilityParser::new();
        classify(&parse(&p, sql).unwrap()[0])
    }

    #[test]
    fn reads_pass_writes_and_settings_are_refused_by_keyword() {
        assert!(matches!(kind("select 1"), Kind::Query));
        assert!(matches!(
            kind("with a as (select 1) select * from a"),
            Kind::Query
        ));
        assert!(matches!(kind("explain select 1"), Kind::Query));
        assert!(matches!(kind("begin"), Kind::Begin));
        assert!(matches!(kind("commit"), Kind::End("COMMIT")));
        assert!(matches!(kind("rollback"), Kind::End("ROLLBACK")));
        assert!(matches!(kind("show search_path"), Kind::Show(s) if s == "search_path"));
        for (sql, said) in [
            ("insert into ps.x values ('secret')", "INSERT"),
            ("update ps.x set a = 'secret'", "UPDATE"),
            ("delete from ps.x where a = 'secret'", "DELETE"),
            ("copy ps.x to stdout", "COPY"),
            ("set search_path = 'secret'", "SET"),
            ("create table t (a int)", "CREATE TABLE"),
            ("drop table ps.x", "DROP TABLE"),
        ] {
            match kind(sql) {
                Kind::Refused(k) => {
                    assert_eq!(k, said, "{sql}");
                    assert!(!refusal(&k).to_string().contains("secret"));
                }
                other => panic!("{sql}: {other:?}"),
            }
        }
    }

    #[test]
    fn show_answers_known_settings_only() {
        let meta = HashMap::from([("application_name".to_owned(), "psql".to_owned())]);
        assert_eq!(
            show("application_name", &meta, "p", "c").as_deref(),
            Some("psql")
        );
        assert_eq!(show("gdx.purpose", &meta, "p", "c").as_deref(), Some("p"));
        assert_eq!(
            show("TRANSACTION_READ_ONLY", &meta, "p", "c").as_deref(),
            Some("on")
        );
        assert_eq!(show("work_mem", &meta, "p", "c"), None);
    }
}
