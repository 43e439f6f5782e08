//! FStore's Flight SQL service: what each Flight SQL command does, over the engine, with the
//! caller's principal passed explicitly. [`super::transport`] decodes the RPCs and dispatches
//! here; every statement goes through the one executor, [`SqlSession`].
//!
//! Request flow for a query: `GetFlightInfo(CommandStatementQuery)` parses and plans (so bad
//! SQL fails here with `InvalidArgument`), returns the schema and a self-contained ticket
//! (the SQL); `DoGet` streams batches as DataFusion produces them (bounded memory, back
//! pressure from gRPC flow control). The plan made for `GetFlightInfo` is kept for a few
//! seconds (see [`super::caches`]), keyed by (principal, ticket), so `DoGet` normally need
//! not re-plan; a ticket that misses the cache is simply re-planned. Commands (DDL/DML/FStore
//! statements) run during `GetFlightInfo` (or `DoPut` for updates) and their ticket carries
//! the result.
//!
//! Prepared statements are stateless handles (SQL + bound parameters); see
//! [`super::prepared`].

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use arrow_flight::sql::{
    ActionCancelQueryResult, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, TableExistsOption, TableNotExistOption,
    TicketStatementQuery,
};
use arrow_flight::{
    CancelFlightInfoResult, CancelStatus, FlightData, FlightDescriptor, FlightEndpoint, FlightInfo,
    IpcMessage, SchemaAsIpc, Ticket,
};
use arrow_schema::Schema;
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::stream::Peekable;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Status, Streaming};
use tracing::Instrument;

use super::auth::Authenticator;
use super::caches::{Caches, TicketKey};
use super::ipc_check::{MAX_PARAMETER_ROWS, accept_parameters, checked_messages, guarded};
use super::metadata;
use super::metrics::{Method, Metrics};
use super::sessions::Sessions;
use super::status::{flight_status, into_status};
use super::streams::{DataStream, OneShot, RunningQueries, batch_stream, query_stream};
use super::tickets::{PreparedHandle, StatementTicket, any_bytes};
use crate::engine::Engine;
use crate::principal::Principal;
use crate::sql::exec::count_batch;
use crate::sql::temporary::Mode;
use crate::sql::{ParsedStatement, ResultKind, SqlSession, StatementResult};

/// The messages of a `DoPut`, the first one (with the command) still unread.
pub type Messages = Peekable<Streaming<FlightData>>;

/// The Flight SQL service.
pub struct FStoreFlightSql {
    pub(super) engine: Arc<Engine>,
    pub(super) auth: Arc<Authenticator>,
    pub(super) metrics: Arc<Metrics>,
    pub(super) running: Arc<RunningQueries>,
    pub(super) caches: Caches,
    pub(super) sessions: Sessions,
    limit: Arc<Semaphore>,
    max_concurrent: usize,
}

impl FStoreFlightSql {
    pub fn new(
        engine: Arc<Engine>,
        auth: Arc<Authenticator>,
        metrics: Arc<Metrics>,
        running: Arc<RunningQueries>,
        max_concurrent: usize,
    ) -> Self {
        Self {
            engine,
            auth,
            metrics,
            running,
            caches: Caches::default(),
            sessions: Sessions::default(),
            limit: Arc::new(Semaphore::new(max_concurrent.max(1))),
            max_concurrent: max_concurrent.max(1),
        }
    }

    /// The statement executor over this server's engine, for parsing (no session).
    pub(super) fn sql(&self) -> SqlSession<'_> {
        SqlSession::in_scope(&self.engine, crate::sql::settings::Scope::Sessionless)
    }

    /// The statement executor for `principal`'s request, in its session.
    pub(super) fn sql_for(&self, principal: &Principal) -> SqlSession<'_> {
        SqlSession::in_scope(&self.engine, self.sessions.scope(principal))
    }

    /// Metrics and a tracing span around one request.
    pub async fn observe<T>(
        &self,
        method: Method,
        fut: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let start = Instant::now();
        let span = tracing::info_span!("flight", rpc = method.0, command = method.1);
        let result = fut.instrument(span).await;
        if let Err(s) = &result {
            tracing::debug!(?method, code = ?s.code(), message = s.message(), "request failed");
        }
        self.metrics.record(
            method,
            start.elapsed(),
            result.as_ref().err().map(|s| s.code()),
        );
        result
    }

    /// A slot among the concurrent queries, or `ResourceExhausted`.
    fn permit(&self) -> Result<OwnedSemaphorePermit, Status> {
        Arc::clone(&self.limit).try_acquire_owned().map_err(|_| {
            self.metrics
                .queries_rejected
                .fetch_add(1, Ordering::Relaxed);
            Status::resource_exhausted(format!(
                "too many concurrent queries (limit {}); retry later",
                self.max_concurrent
            ))
        })
    }

    pub(super) fn parse(&self, sql: &str) -> Result<Vec<ParsedStatement>, Status> {
        if sql.len() > metadata::MAX_SQL_BYTES {
            return Err(Status::resource_exhausted(format!(
                "statement of {} bytes exceeds the limit of {} bytes",
                sql.len(),
                metadata::MAX_SQL_BYTES
            )));
        }
        let statements = self.sql().parse(sql).map_err(into_status)?;
        if statements.is_empty() {
            return Err(Status::invalid_argument("empty statement: nothing to run"));
        }
        Ok(statements)
    }

    /// Runs every statement; returns the last one and its result.
    async fn run_parsed(
        &self,
        statements: Vec<ParsedStatement>,
        principal: &Principal,
    ) -> Result<(ParsedStatement, StatementResult), Status> {
        let mut last = None;
        for stmt in statements {
            let result = self
                .sql_for(principal)
                .execute(&stmt, principal)
                .await
                .map_err(into_status)?;
            last = Some((stmt, result));
        }
        last.ok_or_else(|| Status::invalid_argument("empty statement"))
    }

    /// A FlightInfo whose single endpoint is `ticket`.
    pub fn info(
        &self,
        schema: &Schema,
        ticket: Bytes,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        Ok(FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
            .with_descriptor(descriptor)
            .with_total_records(-1)
            .with_total_bytes(-1))
    }

    /// A FlightInfo for a statement that already ran (its ticket carries its result).
    fn command_info(
        &self,
        affected: Option<u64>,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let schema = match affected {
            Some(_) => count_batch(0).schema(),
            None => {
                // Nothing to fetch: no endpoint, so the client makes no further call (which
                // matters when the command revoked the caller's own token: ALTER USER me
                // PASSWORD …).
                return Ok(FlightInfo::new()
                    .try_with_schema(&Schema::empty())
                    .map_err(|e| Status::internal(e.to_string()))?
                    .with_descriptor(descriptor)
                    .with_total_records(0)
                    .with_total_bytes(0));
            }
        };
        let ticket = TicketStatementQuery {
            statement_handle: StatementTicket::Done { affected }.encode(),
        };
        self.info(&schema, any_bytes(&ticket), descriptor)
    }

    /// A FlightInfo for a query whose plan waits in the cache for its `DoGet`.
    fn planned_info(
        &self,
        key: TicketKey,
        df: DataFrame,
        ticket: Bytes,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let schema = df.schema().as_arrow().clone();
        self.caches.planned.insert(key, df);
        self.info(&schema, ticket, descriptor)
    }

    /// A FlightInfo for an online lookup whose answer waits in the cache for its `DoGet`.
    fn looked_up_info(
        &self,
        key: TicketKey,
        batch: RecordBatch,
        ticket: Bytes,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let schema = batch.schema();
        self.caches.looked_up.insert(key, batch);
        self.info(&schema, ticket, descriptor)
    }

    /// Streams the query of a ticket: the waiting answer or plan, or else `plan()`'s.
    async fn stream_ticket(
        &self,
        key: TicketKey,
        ticket: Bytes,
        plan: impl Future<Output = Result<Result<DataFrame, RecordBatch>, Status>>,
    ) -> Result<DataStream, Status> {
        let permit = self.permit()?;
        if let Some(batch) = self.caches.looked_up.remove(&key) {
            return Ok(batch_stream(batch));
        }
        let df = match self.caches.planned.remove(&key) {
            Some(df) => df,
            None => match plan.await? {
                Ok(df) => df,
                Err(batch) => return Ok(batch_stream(batch)),
            },
        };
        query_stream(df, ticket, permit, &self.running, &self.metrics).await
    }
}

/// What a prepared statement's execution produced.
pub(super) enum Executed {
    /// The answer of an online lookup.
    LookedUp(RecordBatch),
    /// A query's plan, to stream.
    Query(DataFrame),
    /// A command that ran, and the rows it affected.
    Command(Option<u64>),
}

/// The commands, one method each; [`super::transport`] calls them with the caller's principal.
impl FStoreFlightSql {
    /// `GetFlightInfo(CommandStatementQuery)`: plans a query (its plan waits for the
    /// `DoGet`), or runs anything else now; an online lookup is answered now.
    pub async fn statement_info(
        &self,
        query: CommandStatementQuery,
        principal: &Principal,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let _permit = self.permit()?;
        let statements = self.parse(&query.query)?;
        if let Some(batch) = self
            .literal_online(&query.query, &statements, principal)
            .await?
        {
            let (key, ticket) = query_ticket(&query.query, principal);
            return self.looked_up_info(key, batch, ticket, descriptor);
        }
        let (stmt, result) = self.run_parsed(statements, principal).await?;
        match result.kind {
            ResultKind::Query => {
                let (key, ticket) = query_ticket(&stmt.text, principal);
                self.planned_info(key, result.df, ticket, descriptor)
            }
            ResultKind::Command => self.command_info(result.affected, descriptor),
        }
    }

    /// `DoGet(TicketStatementQuery)`: a command's result, or the query's rows.
    pub async fn statement_stream(
        &self,
        ticket: TicketStatementQuery,
        principal: &Principal,
        raw: Bytes,
    ) -> Result<DataStream, Status> {
        let sql = match StatementTicket::decode(&ticket.statement_handle)? {
            StatementTicket::Done { affected: Some(n) } => return Ok(batch_stream(count_batch(n))),
            StatementTicket::Done { affected: None } => {
                return Ok(batch_stream(RecordBatch::new_empty(Arc::new(
                    Schema::empty(),
                ))));
            }
            StatementTicket::Query { sql } => sql,
        };
        let key = (principal.session_key(), ticket.statement_handle);
        let plan = async { self.plan_query(&sql, principal).await.map(Ok) };
        self.stream_ticket(key, raw, plan).await
    }

    /// Re-plans the query of a ticket whose plan is no longer waiting.
    async fn plan_query(&self, sql: &str, principal: &Principal) -> Result<DataFrame, Status> {
        let statements = self.parse(sql)?;
        let [stmt] = statements.as_slice() else {
            return Err(Status::invalid_argument(
                "a query ticket holds one statement",
            ));
        };
        let result = self
            .sql_for(principal)
            .execute(stmt, principal)
            .await
            .map_err(into_status)?;
        if result.kind != ResultKind::Query {
            return Err(Status::invalid_argument("a query ticket must hold a query"));
        }
        Ok(result.df)
    }

    /// `GetFlightInfo(CommandPreparedStatementQuery)`: executes the bound statement.
    pub async fn prepared_info(
        &self,
        cmd: CommandPreparedStatementQuery,
        principal: &Principal,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let _permit = self.permit()?;
        let key = (
            principal.session_key(),
            cmd.prepared_statement_handle.clone(),
        );
        let ticket = any_bytes(&cmd);
        match self
            .execute_prepared(&cmd.prepared_statement_handle, principal)
            .await?
        {
            Executed::LookedUp(batch) => self.looked_up_info(key, batch, ticket, descriptor),
            Executed::Query(df) => self.planned_info(key, df, ticket, descriptor),
            Executed::Command(affected) => self.command_info(affected, descriptor),
        }
    }

    /// `DoGet(CommandPreparedStatementQuery)`: the bound query's rows.
    pub async fn prepared_stream(
        &self,
        cmd: CommandPreparedStatementQuery,
        principal: &Principal,
        raw: Bytes,
    ) -> Result<DataStream, Status> {
        let handle = cmd.prepared_statement_handle;
        let plan = async {
            match self.execute_prepared(&handle, principal).await? {
                Executed::LookedUp(batch) => Ok(Err(batch)),
                Executed::Query(df) => Ok(Ok(df)),
                Executed::Command(_) => Err(Status::invalid_argument(
                    "the prepared statement is not a single query",
                )),
            }
        };
        self.stream_ticket((principal.session_key(), handle.clone()), raw, plan)
            .await
    }

    /// `DoPut(CommandStatementUpdate)`: the rows affected.
    pub async fn update(
        &self,
        cmd: CommandStatementUpdate,
        principal: &Principal,
    ) -> Result<i64, Status> {
        let _permit = self.permit()?;
        let (_, result) = self.run_parsed(self.parse(&cmd.query)?, principal).await?;
        Ok(affected(result).await?.unwrap_or(-1))
    }

    /// `DoPut(CommandPreparedStatementUpdate)`: runs the statement once per bound row; the
    /// rows affected in total.
    pub async fn prepared_update(
        &self,
        cmd: CommandPreparedStatementUpdate,
        principal: &Principal,
        messages: Messages,
    ) -> Result<i64, Status> {
        let _permit = self.permit()?;
        let handle = bind_handle(&cmd.prepared_statement_handle, messages).await?;
        let session = self.sql_for(principal);
        let prepared = self.prepared(&session, &handle.sql, principal).await?;
        let mut total: Option<i64> = None;
        for r in self
            .run_prepared(&session, &prepared, &handle, principal)
            .await?
        {
            if let Some(n) = affected(r).await? {
                total = Some(total.unwrap_or(0) + n);
            }
        }
        Ok(total.unwrap_or(-1))
    }

    /// `DoPut(CommandPreparedStatementQuery)`: binds parameters; the new handle carries them.
    pub async fn bind(
        &self,
        cmd: CommandPreparedStatementQuery,
        messages: Messages,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let bound = bind_handle(&cmd.prepared_statement_handle, messages).await?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(bound.encode()),
        })
    }

    /// `DoPut(CommandStatementIngest)`: streams the client's rows into a managed table,
    /// created, appended to or replaced as the options say.
    pub async fn ingest(
        &self,
        cmd: CommandStatementIngest,
        principal: &Principal,
        messages: Messages,
    ) -> Result<i64, Status> {
        let _permit = self.permit()?;
        let table = cmd.table.to_ascii_lowercase();
        if cmd.temporary {
            // A table of the caller's session, in memory (sql::temporary).
            let sql = self.sql_for(principal);
            let mode = match ingest_mode(&table, sql.is_temporary(&table), &cmd)? {
                Some(false) => Mode::Create,
                Some(true) => Mode::Replace,
                None => Mode::Append,
            };
            let plan = ingest_plan(messages).await?;
            let rows = sql
                .ingest_temporary(&table, plan, mode)
                .await
                .map_err(into_status)?;
            return Ok(rows as i64);
        }
        let exists = self
            .engine
            .registry()
            .state()
            .relations
            .contains_key(&table);
        let replace = ingest_mode(&table, exists, &cmd)?;
        let plan = ingest_plan(messages).await?;
        let text = format!("INGEST INTO {table} (Flight SQL bulk ingest)");
        let sql = self.sql_for(principal);
        let result = match replace {
            Some(replace) => {
                sql.create_table_from_plan(&table, plan, replace, &text, principal)
                    .await
            }
            None => sql.insert_plan(&table, plan, &text, principal).await,
        };
        Ok(result
            .map_err(into_status)?
            .affected
            .map_or(-1, |n| n as i64))
    }

    /// `CreatePreparedStatement`: plans the statement; the handle is its SQL.
    pub async fn create_prepared(
        &self,
        req: ActionCreatePreparedStatementRequest,
        principal: &Principal,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let session = self.sql_for(principal);
        let prepared = self.prepared(&session, &req.query, principal).await?;
        // A cached plan was checked for whoever prepared it first.
        session
            .check_prepare(&req.query, &prepared.reads, principal)
            .map_err(into_status)?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: PreparedHandle::new(req.query).encode(),
            dataset_schema: ipc_schema(&prepared.dataset_schema)?,
            parameter_schema: ipc_schema(&prepared.parameter_schema)?,
        })
    }

    /// `ClosePreparedStatement`: handles are stateless; drops what still waits for a `DoGet`.
    pub fn close_prepared(&self, handle: Bytes, principal: &Principal) {
        let key = (principal.session_key(), handle);
        self.caches.planned.invalidate(&key);
        self.caches.looked_up.invalidate(&key);
    }

    /// `CancelQuery`: cancels the running queries of every endpoint of `info`.
    pub fn cancel_query(&self, info: &FlightInfo) -> ActionCancelQueryResult {
        // CancelResult: 1 = CANCELLED, 3 = NOT_CANCELLABLE (the enum is not re-exported).
        let result = if self.cancel(info) > 0 { 1 } else { 3 };
        ActionCancelQueryResult { result }
    }

    /// `CancelFlightInfo`: cancels the running queries of every endpoint of `info`.
    pub fn cancel_flight_info(&self, info: &FlightInfo) -> CancelFlightInfoResult {
        let status = match self.cancel(info) {
            0 => CancelStatus::NotCancellable,
            _ => CancelStatus::Cancelled,
        };
        CancelFlightInfoResult {
            status: status as i32,
        }
    }

    /// Cancels the running queries of every endpoint of `info`; returns how many.
    fn cancel(&self, info: &FlightInfo) -> usize {
        info.endpoint
            .iter()
            .filter_map(|e| e.ticket.as_ref())
            .map(|t| self.running.cancel(&t.ticket))
            .sum()
    }
}

/// The cache key and ticket of a query's statement text.
fn query_ticket(sql: &str, principal: &Principal) -> (TicketKey, Bytes) {
    let handle = StatementTicket::Query {
        sql: sql.to_string(),
    }
    .encode();
    let ticket = any_bytes(&TicketStatementQuery {
        statement_handle: handle.clone(),
    });
    ((principal.session_key(), handle), ticket)
}

/// Rows affected by a statement; a query sent as an update is run to completion and its
/// rows counted.
async fn affected(result: StatementResult) -> Result<Option<i64>, Status> {
    Ok(match result.kind {
        ResultKind::Command => result.affected.map(|n| n as i64),
        ResultKind::Query => {
            let batches = result.df.collect().await.map_err(into_status)?;
            Some(batches.iter().map(|b| b.num_rows() as i64).sum())
        }
    })
}

/// A prepared handle bound to the parameter rows of a `DoPut`, if it sent any.
async fn bind_handle(handle: &[u8], messages: Messages) -> Result<PreparedHandle, Status> {
    let handle = PreparedHandle::decode(handle)?;
    match read_parameters(messages).await? {
        Some(batch) => handle.with_params(&batch),
        None => Ok(handle),
    }
}

/// Reads a `DoPut`'s parameter rows into one batch (bound parameters are small; each
/// message is checked before it is decoded, see `ipc_check`).
async fn read_parameters(messages: Messages) -> Result<Option<RecordBatch>, Status> {
    let stream = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
        checked_messages(messages, MAX_PARAMETER_ROWS),
    );
    let batches: Vec<RecordBatch> =
        guarded(async { stream.try_collect().await.map_err(flight_status) }).await?;
    accept_parameters(&batches)?;
    match batches.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        many => datafusion::arrow::compute::concat_batches(&many[0].schema(), many)
            .map(Some)
            .map_err(|e| Status::invalid_argument(e.to_string())),
    }
}

/// Whether an ingest creates (`Some(false)`), replaces (`Some(true)`) or appends to (`None`)
/// the table, from its options and whether it exists.
fn ingest_mode(
    table: &str,
    exists: bool,
    cmd: &CommandStatementIngest,
) -> Result<Option<bool>, Status> {
    let options = cmd.table_definition_options.unwrap_or_default();
    let if_exists =
        TableExistsOption::try_from(options.if_exists).unwrap_or(TableExistsOption::Unspecified);
    let if_not_exist = TableNotExistOption::try_from(options.if_not_exist)
        .unwrap_or(TableNotExistOption::Unspecified);
    match (exists, if_exists, if_not_exist) {
        (false, _, TableNotExistOption::Fail) => {
            Err(Status::not_found(format!("table '{table}' not found")))
        }
        (false, _, _) => Ok(Some(false)),
        (true, TableExistsOption::Append, _) => Ok(None),
        (true, TableExistsOption::Replace, _) => Ok(Some(true)),
        (true, _, _) => Err(Status::already_exists(format!(
            "table '{table}' already exists"
        ))),
    }
}

/// A plan that scans the rows of a bulk ingest, decoded lazily from the client's stream so
/// they go straight into the table's writer (rows of one batch are bounded by the largest
/// message: one bit each).
async fn ingest_plan(messages: Messages) -> Result<LogicalPlan, Status> {
    let mut batches = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
        checked_messages(messages, super::MAX_MESSAGE_BYTES * 8),
    )
    .peekable();
    let schema = match Pin::new(&mut batches).peek().await {
        Some(Ok(b)) => b.schema(),
        Some(Err(_)) => {
            return Err(match batches.next().await {
                Some(Err(e)) => flight_status(e),
                _ => Status::internal("ingest stream failed"),
            });
        }
        None => return Err(Status::invalid_argument("bulk ingest without any data")),
    };
    let rows = batches.map_err(|e| DataFusionError::External(Box::new(e)));
    let source = OneShot::new(Box::pin(RecordBatchStreamAdapter::new(
        Arc::clone(&schema),
        rows,
    )));
    let provider = StreamingTable::try_new(schema, vec![Arc::new(source)]).map_err(into_status)?;
    let source = datafusion::datasource::provider_as_source(Arc::new(provider));
    LogicalPlanBuilder::scan("ingest", source, None)
        .and_then(|b| b.build())
        .map_err(into_status)
}

fn ipc_schema(schema: &Schema) -> Result<Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow_schema::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}
