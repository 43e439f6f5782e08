//! Prepared statements and the online hot path of Flight SQL.
//!
//! A prepared statement is planned once per SQL text and registry version ([`Prepared`]);
//! executions only bind parameters. A statement that is one online point lookup (see
//! `sql::lookup`) is answered by the engine's direct lookup, prepared or plain: a plain
//! statement's literals are made parameters, so each shape is planned once ([`LiteralShape`]).

use std::sync::Arc;
use std::time::Duration;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::array::RecordBatch;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::logical_expr::LogicalPlan;
use tonic::Status;

use super::service::{Executed, FStoreFlightSql};
use super::status::into_status;
use super::tickets::PreparedHandle;
use crate::principal::Principal;
use crate::sql::Reads;
use crate::sql::exec::{count_batch, is_command};
use crate::sql::lookup::{self, DirectLookup, parameterize};
use crate::sql::{FStoreStatement, ParsedStatement, ResultKind, SqlSession, StatementResult};

/// Online lookups read the registry (for other processes' changes) at most this often.
const HOT_REFRESH: Duration = Duration::from_millis(100);

/// A prepared statement, planned once per SQL text and registry version.
#[derive(Clone)]
pub struct Prepared {
    /// Registry sequence the plan was made at; a newer registry re-plans.
    seq: u64,
    pub statement: ParsedStatement,
    /// The DataFusion plan with unbound placeholders, or None for FStore statements (which
    /// take no parameters and are run by the engine as they are).
    pub plan: Option<LogicalPlan>,
    pub dataset_schema: SchemaRef,
    pub parameter_schema: SchemaRef,
    /// Set when the statement is an online point lookup by parameters.
    pub online: Option<Arc<DirectLookup>>,
    /// What the statement reads, checked at every execution (see `sql::authorize`).
    pub reads: Reads,
}

/// A plain statement's shape, planned at registry sequence `seq`: its online lookup and
/// result schema, or None when it is not one.
pub struct LiteralShape {
    seq: u64,
    lookup: Option<(Arc<DirectLookup>, SchemaRef)>,
}

impl FStoreFlightSql {
    /// Executes a prepared statement's handle: its online lookup, its query's plan (one
    /// bound row), or the command (once per bound row).
    pub(super) async fn execute_prepared(
        &self,
        handle: &[u8],
        principal: &Principal,
    ) -> Result<Executed, Status> {
        let handle = PreparedHandle::decode(handle)?;
        // One executor (one session lookup) for the whole request.
        let session = self.sql_for(principal);
        let prepared = self.prepared(&session, &handle.sql, principal).await?;
        if let Some(fast) = &prepared.online {
            let batch = self
                .run_prepared_online(&session, &prepared, fast, &handle, principal)
                .await?;
            return Ok(Executed::LookedUp(batch));
        }
        let mut results = self
            .run_prepared(&session, &prepared, &handle, principal)
            .await?;
        match results.pop() {
            Some(r) if r.kind == ResultKind::Query && results.is_empty() => {
                Ok(Executed::Query(r.df))
            }
            Some(r) if r.kind == ResultKind::Query => Err(Status::invalid_argument(
                "a query bound to several parameter rows: bind one row per execution",
            )),
            Some(r) => {
                let total = results.iter().chain([&r]).filter_map(|r| r.affected).sum();
                Ok(Executed::Command(r.affected.map(|_| total)))
            }
            None => Err(Status::internal("prepared statement produced no result")),
        }
    }

    /// Plans (or fetches the cached plan of) a prepared statement. The principal's
    /// privileges are checked before anything is planned (planning a table function does
    /// work); a cached plan is checked by whoever uses it: `create_prepared`, and the
    /// executor at every execution.
    pub(super) async fn prepared(
        &self,
        session: &SqlSession<'_>,
        sql: &str,
        principal: &Principal,
    ) -> Result<Arc<Prepared>, Status> {
        // Plans are shared between sessions that run with the server's settings; a session
        // that changed some plans its statements itself.
        let shared = !session.has_own_settings();
        let cached = shared.then(|| self.caches.prepared.get(sql)).flatten();
        if cached.as_ref().is_some_and(|p| p.online.is_some()) {
            self.engine
                .refresh_within(HOT_REFRESH)
                .await
                .map_err(into_status)?;
        } else {
            self.engine.refresh().await.map_err(into_status)?;
        }
        let seq = self.engine.registry().state().seq;
        if let Some(p) = cached
            && p.seq == seq
        {
            return Ok(p);
        }
        let statements = self.parse(sql)?;
        let [statement] = statements.as_slice() else {
            return Err(Status::invalid_argument(
                "a prepared statement holds exactly one statement",
            ));
        };
        let prepared = match &statement.statement {
            FStoreStatement::DataFusion(stmt) => {
                let reads = session.reads_of(stmt).map_err(into_status)?;
                session
                    .check_prepare(sql, &reads, principal)
                    .map_err(into_status)?;
                let plan = session.plan_datafusion(stmt).await.map_err(into_status)?;
                let dataset_schema = if is_command(&plan) {
                    count_batch(0).schema()
                } else {
                    Arc::new(plan.schema().as_arrow().clone())
                };
                let parameter_schema = parameter_schema(&plan).map_err(into_status)?;
                let online = lookup::recognize(&plan).map(Arc::new);
                Prepared {
                    reads,
                    seq,
                    statement: statement.clone(),
                    plan: Some(plan),
                    dataset_schema,
                    parameter_schema,
                    online,
                }
            }
            _ => Prepared {
                seq,
                statement: statement.clone(),
                plan: None,
                dataset_schema: Arc::new(Schema::empty()),
                parameter_schema: Arc::new(Schema::empty()),
                online: None,
                reads: Reads::default(),
            },
        };
        let prepared = Arc::new(prepared);
        if shared {
            self.caches
                .prepared
                .insert(sql.to_string(), Arc::clone(&prepared));
        }
        Ok(prepared)
    }
    /// Runs an online lookup statement (see [`DirectLookup`]) once per row of parameter
    /// values, in one store lookup; the result has the statement's `schema`. The executor
    /// checks and audits it.
    async fn run_online(
        &self,
        session: &SqlSession<'_>,
        text: &str,
        schema: &SchemaRef,
        fast: &DirectLookup,
        rows: &[Vec<ScalarValue>],
        principal: &Principal,
    ) -> Result<RecordBatch, Status> {
        session
            .lookup(text, fast, rows, schema, principal)
            .await
            .map_err(into_status)
    }

    /// Runs a prepared online lookup with its bound rows: one key per row (a client that
    /// binds a column of keys gets every entity in one round trip), or none when the
    /// statement takes no parameters.
    pub(super) async fn run_prepared_online(
        &self,
        session: &SqlSession<'_>,
        prepared: &Prepared,
        fast: &DirectLookup,
        handle: &PreparedHandle,
        principal: &Principal,
    ) -> Result<RecordBatch, Status> {
        // Every bound row is a key: a whole column of keys is one multi-entity lookup.
        let rows = match handle.params()? {
            Some(batch) if batch.num_rows() > 0 => (0..batch.num_rows())
                .map(|i| row_values(&batch, i, &prepared.parameter_schema))
                .collect::<Result<Vec<_>, _>>()?,
            _ => vec![vec![]],
        };
        let text = prepared.statement.sql();
        self.run_online(
            session,
            text,
            &prepared.dataset_schema,
            fast,
            &rows,
            principal,
        )
        .await
    }

    /// `sql`, when it is a plain statement that is one online lookup with literal keys (see
    /// [`DirectLookup`]): its result, looked up without optimizing or executing a plan.
    /// The statement's literals are made parameters and the plan of that shape is cached,
    /// so a service sending `… WHERE customer_id = 42` for ever new keys plans once. None
    /// for anything else, which goes the general way.
    pub(super) async fn literal_online(
        &self,
        sql: &str,
        statements: &[ParsedStatement],
        principal: &Principal,
    ) -> Result<Option<RecordBatch>, Status> {
        // Cheap tests first: every other statement goes its usual way untouched, and a
        // statement with its own placeholders is not a plain lookup.
        if !lookup::may_be_literal_lookup(sql) {
            return Ok(None);
        }
        let [statement] = statements else {
            return Ok(None);
        };
        let FStoreStatement::DataFusion(stmt) = &statement.statement else {
            return Ok(None);
        };
        // Shapes are planned with the server's settings and shared.
        let session = self.sql_for(principal);
        if session.has_own_settings() {
            return Ok(None);
        }
        let mut shape = stmt.as_ref().clone();
        let Some(values) = parameterize(&mut shape) else {
            return Ok(None);
        };
        self.engine
            .refresh_within(HOT_REFRESH)
            .await
            .map_err(into_status)?;
        let seq = self.engine.registry().state().seq;
        let key = shape.to_string();
        let cached = self.caches.shapes.get(&key).filter(|c| c.seq == seq);
        let planned = match cached {
            Some(c) => c,
            None => {
                // A shape that does not plan (or is no lookup) is left to the general path,
                // which plans the statement as written and reports its errors.
                let lookup = match session.plan_datafusion(&shape).await {
                    Ok(plan) => lookup::recognize(&plan)
                        .map(|fast| (Arc::new(fast), Arc::new(plan.schema().as_arrow().clone()))),
                    Err(_) => None,
                };
                let c = Arc::new(LiteralShape { seq, lookup });
                self.caches.shapes.insert(key, Arc::clone(&c));
                c
            }
        };
        let Some((fast, schema)) = &planned.lookup else {
            return Ok(None);
        };
        self.run_online(&session, sql, schema, fast, &[values], principal)
            .await
            .map(Some)
    }

    /// Runs a prepared statement once per bound parameter row (once when unbound).
    pub(super) async fn run_prepared(
        &self,
        session: &SqlSession<'_>,
        prepared: &Prepared,
        handle: &PreparedHandle,
        principal: &Principal,
    ) -> Result<Vec<StatementResult>, Status> {
        let Some(plan) = &prepared.plan else {
            let r = session
                .execute(&prepared.statement, principal)
                .await
                .map_err(into_status)?;
            return Ok(vec![r]);
        };
        let rows = match handle.params()? {
            Some(batch) if batch.num_rows() > 0 => (0..batch.num_rows())
                .map(|i| row_values(&batch, i, &prepared.parameter_schema))
                .collect::<Result<Vec<_>, _>>()?,
            _ => vec![vec![]],
        };
        let mut results = Vec::with_capacity(rows.len());
        for values in rows {
            let bound = if values.is_empty() {
                plan.clone()
            } else {
                plan.clone()
                    .with_param_values(ParamValues::from(values))
                    .map_err(into_status)?
            };
            if bound
                .get_parameter_types()
                .map(|t| !t.is_empty())
                .unwrap_or(false)
            {
                return Err(Status::invalid_argument(
                    "the statement has parameters: bind values before executing it",
                ));
            }
            results.push(
                session
                    .execute_plan(bound, prepared.statement.sql(), principal, &prepared.reads)
                    .await
                    .map_err(into_status)?,
            );
        }
        Ok(results)
    }
}

/// Parameter schema of a plan: `$1`, `$2`, … in order, with the types DataFusion inferred
/// (untyped placeholders are reported as Utf8, and any bound type is accepted for them).
fn parameter_schema(plan: &LogicalPlan) -> datafusion::error::Result<SchemaRef> {
    let types = plan.get_parameter_types()?;
    let mut names: Vec<(usize, String, Option<DataType>)> = types
        .into_iter()
        .map(|(name, t)| {
            let idx = name
                .trim_start_matches('$')
                .parse::<usize>()
                .unwrap_or(usize::MAX);
            (idx, name, t)
        })
        .collect();
    names.sort();
    Ok(Arc::new(Schema::new(
        names
            .into_iter()
            .map(|(_, name, t)| Field::new(name, t.unwrap_or(DataType::Utf8), true))
            .collect::<Vec<_>>(),
    )))
}

/// The values of one bound row, cast to the statement's parameter types where known.
fn row_values(
    batch: &RecordBatch,
    row: usize,
    params: &Schema,
) -> Result<Vec<ScalarValue>, Status> {
    if batch.num_columns() != params.fields().len() {
        return Err(Status::invalid_argument(format!(
            "the statement takes {} parameter(s), {} were bound",
            params.fields().len(),
            batch.num_columns()
        )));
    }
    batch
        .columns()
        .iter()
        .zip(params.fields())
        .map(|(col, field)| {
            let v = ScalarValue::try_from_array(col, row).map_err(into_status)?;
            if field.data_type() == &DataType::Utf8 && v.data_type() != DataType::Utf8
                || v.is_null()
            {
                // Untyped placeholder (reported as Utf8) or NULL: keep the bound value's type.
                if v.is_null() && field.data_type() != &DataType::Utf8 {
                    return ScalarValue::try_from(field.data_type()).map_err(into_status);
                }
                return Ok(v);
            }
            v.cast_to(field.data_type()).map_err(|e| {
                Status::invalid_argument(format!(
                    "parameter {} expects {}: {}",
                    field.name(),
                    field.data_type(),
                    crate::error::user_message(&e)
                ))
            })
        })
        .collect()
}
