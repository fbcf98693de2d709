//! Statements over pgwire: the simple and the extended (prepared) protocol.
//!
//! Data flow: SQL text → [`statements::classify`] → for a query: the connection's caller
//! now (its key still active, the current grants: a revoked key or grant counts at the next
//! statement) → the connection's own lake session built from the caller's policy (cached
//! while neither the grants nor a table it shows changed; it carries a `pg_catalog` of
//! just the tables the caller sees) → planned read-only (Parse plans once to describe the
//! columns and parameter types; Execute plans again with the bound values) → read up to the
//! row cap (more rows is an error, never a silent cut), cancellable by the client → the
//! audit record, durable before any row leaves → rows encoded as the client asked (text
//! or binary per column). Refusals and failures are audited too, with the real reason.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::arrow_pg::datatypes::df::deserialize_parameters;
use datafusion_postgres::arrow_pg::datatypes::{
    arrow_schema_to_pg_fields, encode_recordbatch, into_pg_type,
};
use datafusion_postgres::pgwire;
use futures::Sink;
use gdx_lake::sql::QueryOutput;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::types::format::FormatOptions;

use super::statements::{self, Kind, refusal, user_error};
use super::{Connection, errors};
use crate::audit::{Entry, Outcome};
use crate::http::error::ApiError;
use crate::http::sql_error;

/// A statement prepared over the extended protocol.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    text: String,
    statement: Statement,
    kind: Kind,
    /// A query's plan as described at Parse: its columns and parameter types.
    plan: Option<Arc<LogicalPlan>>,
}

/// What the audit records of a statement that ran.
struct Ran {
    out: QueryOutput,
    tables: Vec<String>,
    grants: Vec<String>,
}

impl Connection {
    /// Runs one statement: a query is audited and answered with its rows.
    async fn execute<C: ClientInfo + Sync>(
        &self,
        client: &C,
        text: &str,
        statement: Statement,
        kind: &Kind,
        params: Vec<ScalarValue>,
        format: &Format,
    ) -> PgWireResult<Response> {
        match kind {
            Kind::Begin => return Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            Kind::End(tag) => return Ok(Response::TransactionEnd(Tag::new(tag))),
            Kind::Show(name) => return self.show(client, name),
            Kind::Refused(keyword) => {
                let e =
                    ApiError::bad_request("read_only", format!("{keyword} refused: read-only SQL"));
                self.record(text, Err(&e)).await?;
                return Err(refusal(keyword));
            }
            Kind::Query => {}
        }
        let _busy = self.conn.busy.read().await;
        match self.query(statement, params).await {
            Ok(ran) => {
                let action = format!("query {}", ran.tables.join(","));
                let rows = ran.out.rows();
                self.record(text, Ok((rows, ran.grants, action))).await?;
                encode(client, ran.out, format)
            }
            Err(e) => {
                self.record(text, Err(&e)).await?;
                Err(errors::to_pg(&e))
            }
        }
    }

    async fn query(&self, statement: Statement, params: Vec<ScalarValue>) -> Result<Ran, ApiError> {
        let current = self.current().await?;
        if !self.shared.app.limiter.allows(&current.principal) {
            return Err(ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many statements; retry in a moment",
            ));
        }
        let planned = current
            .session
            .plan_statement(statement, params)
            .await
            .map_err(sql_error)?;
        let grants = current.policy.grants_for(&planned.tables);
        let cancelled = self.conn.cancellable();
        let out = tokio::select! {
            out = current.session.collect(planned.stream) => out.map_err(sql_error)?,
            _ = cancelled => return Err(ApiError::new(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                "cancelled",
                "canceling statement due to user request",
            )),
        };
        if out.truncated {
            let cap = self.shared.app.limits.sql_max_rows;
            return Err(ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "row_cap",
                format!(
                    "the result has more than {cap} rows, the most one statement returns: \
                     aggregate, filter or add LIMIT (no rows were sent)"
                ),
            ));
        }
        Ok(Ran {
            out,
            tables: planned.tables,
            grants,
        })
    }

    /// The audit record of one statement, durable before its answer leaves.
    async fn record(
        &self,
        text: &str,
        result: Result<(usize, Vec<String>, String), &ApiError>,
    ) -> PgWireResult<()> {
        let login = self.conn.login();
        let mut entry = Entry {
            action: "query".into(),
            object: "pgwire".into(),
            request_hash: crate::secret::sha256_hex(format!("pgwire\n{text}").as_bytes()),
            ..Entry::default()
        };
        if let Some(l) = &login {
            entry.principal = l.principal.clone();
            entry.department = l.department.clone();
            entry.role = l.role.clone();
            entry.purpose = Some(l.purpose.clone());
            entry.case_id = Some(l.case_id.clone());
            entry.end_user = l.end_user.clone();
        }
        entry.policy_version = self.shared.app.store.current().version.number();
        match result {
            Ok((rows, grants, action)) => {
                entry.outcome = Some(Outcome::Allowed);
                entry.status = 200;
                entry.rows = rows as i64;
                entry.grants = grants;
                entry.action = action;
                entry.reason = "allowed".into();
            }
            Err(e) => {
                entry.outcome = Some(e.outcome());
                entry.status = i64::from(e.status.as_u16());
                entry.reason = e.reason.clone();
            }
        }
        let outcome = entry.outcome.unwrap_or(Outcome::Failed).as_str();
        metrics::counter!("gdx_exchange_calls_total", "action" => "pgwire-query", "outcome" => outcome)
            .increment(1);
        match self.shared.app.audit.record(entry).await {
            Ok(_) => Ok(()),
            Err(e) => {
                metrics::counter!("gdx_exchange_audit_failures_total").increment(1);
                Err(errors::to_pg(&ApiError::audit_unavailable(e.to_string())))
            }
        }
    }

    /// `SHOW name`: one row, one column.
    fn show<C: ClientInfo + Sync>(&self, client: &C, name: &str) -> PgWireResult<Response> {
        let login = self.conn.login();
        let (purpose, case_id) = login
            .as_ref()
            .map(|l| (l.purpose.as_str(), l.case_id.as_str()))
            .unwrap_or_default();
        let Some(value) = statements::show(name, client.metadata(), purpose, case_id) else {
            return Err(user_error(
                "42704",
                format!("unrecognized configuration parameter \"{name}\""),
            ));
        };
        let field = FieldInfo::new(name.into(), None, None, Type::TEXT, FieldFormat::Text);
        let fields = Arc::new(vec![field]);
        let mut encoder = DataRowEncoder::new(fields.clone());
        encoder.encode_field(&Some(value))?;
        let row = encoder.take_row();
        Ok(Response::Query(QueryResponse::new(
            fields,
            futures::stream::iter([Ok(row)]),
        )))
    }

    /// Parses and describes one statement for the extended protocol.
    async fn prepare(&self, sql: &str) -> PgWireResult<Option<Prepared>> {
        let mut parsed = statements::parse(&self.shared.parser, sql)?;
        if parsed.len() > 1 {
            return Err(user_error("42601", "a prepared statement is one statement"));
        }
        let Some(statement) = parsed.pop() else {
            return Ok(None);
        };
        let kind = statements::classify(&statement);
        let plan = match &kind {
            Kind::Query => {
                let described = async {
                    let current = self.current().await?;
                    current
                        .session
                        .describe(statement.clone())
                        .await
                        .map_err(sql_error)
                }
                .await;
                match described {
                    Ok(plan) => Some(Arc::new(plan)),
                    Err(e) => {
                        self.record(sql, Err(&e)).await?;
                        return Err(errors::to_pg(&e));
                    }
                }
            }
            _ => None,
        };
        Ok(Some(Prepared {
            text: sql.to_owned(),
            statement,
            kind,
            plan,
        }))
    }
}

/// The rows as the client asked for them (text, or binary per column).
fn encode<C: ClientInfo>(client: &C, out: QueryOutput, format: &Format) -> PgWireResult<Response> {
    let options = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
    let fields = Arc::new(arrow_schema_to_pg_fields(
        &out.schema,
        format,
        Some(options),
    )?);
    let per_batch = fields.clone();
    let rows = out
        .batches
        .into_iter()
        .flat_map(move |b| encode_recordbatch(per_batch.clone(), b));
    Ok(Response::Query(QueryResponse::new(
        fields,
        futures::stream::iter(rows),
    )))
}

/// A plan's parameters, `$1`, `$2`, … in order, with the types the plan gives them.
fn parameter_types(
    plan: &LogicalPlan,
) -> PgWireResult<Vec<Option<datafusion::arrow::datatypes::DataType>>> {
    let types = plan
        .get_parameter_types()
        .map_err(|e| user_error("42P18", format!("parameter types: {e}")))?;
    let mut numbered: Vec<(usize, Option<datafusion::arrow::datatypes::DataType>)> = types
        .into_iter()
        .filter_map(|(name, t)| Some((name.strip_prefix('$')?.parse().ok()?, t)))
        .collect();
    numbered.sort_by_key(|(i, _)| *i);
    Ok(numbered.into_iter().map(|(_, t)| t).collect())
}

#[async_trait]
impl SimpleQueryHandler for Connection {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let parsed = statements::parse(&self.shared.parser, query)?;
        if parsed.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut out = Vec::with_capacity(parsed.len());
        for statement in parsed {
            let kind = statements::classify(&statement);
            let text = statement.to_string();
            match self
                .execute(
                    client,
                    &text,
                    statement,
                    &kind,
                    vec![],
                    &Format::UnifiedText,
                )
                .await
            {
                Ok(r) => out.push(r),
                // The statements after a failed one do not run, as in PostgreSQL.
                Err(PgWireError::UserError(info)) if !info.is_fatal() => {
                    out.push(Response::Error(info));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl QueryParser for Connection {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        self.prepare(sql).await
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        let Some(plan) = &stmt.plan else {
            return Ok(vec![]);
        };
        parameter_types(plan)?
            .iter()
            .map(|t| match t {
                Some(t) => into_pg_type(t),
                None => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        match (&stmt.plan, &stmt.kind) {
            (Some(plan), _) => arrow_schema_to_pg_fields(
                plan.schema().as_arrow(),
                column_format.unwrap_or(&Format::UnifiedText),
                None,
            ),
            (None, Kind::Show(name)) => Ok(vec![FieldInfo::new(
                name.clone(),
                None,
                None,
                Type::TEXT,
                FieldFormat::Text,
            )]),
            _ => Ok(vec![]),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for Connection {
    type Statement = Prepared;
    type QueryParser = Connection;

    fn query_parser(&self) -> Arc<Connection> {
        Arc::new(self.clone())
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let prepared = &portal.statement.statement;
        let params = match &prepared.plan {
            Some(plan) => {
                let types = parameter_types(plan)?;
                let refs: Vec<Option<&datafusion::arrow::datatypes::DataType>> =
                    types.iter().map(Option::as_ref).collect();
                match deserialize_parameters(portal, &refs)? {
                    ParamValues::List(values) => values.into_iter().map(|v| v.value).collect(),
                    ParamValues::Map(_) => vec![],
                }
            }
            None => vec![],
        };
        self.execute(
            client,
            &prepared.text,
            prepared.statement.clone(),
            &prepared.kind,
            params,
            &portal.result_column_format,
        )
        .await
    }
}
