//! FStore's `FlightSqlService`: statements, prepared statements, updates, bulk ingest,
//! metadata, cancellation — over the engine, with the caller's principal passed explicitly.
//!
//! Request flow for a query: `GetFlightInfo(CommandStatementQuery)` parses and plans (so bad
//! SQL fails here with `InvalidArgument`), returns the schema and a self-contained ticket
//! (the SQL); `DoGet` streams batches as DataFusion produces them (bounded memory, back
//! pressure from gRPC flow control). The plan made for `GetFlightInfo` is kept for a few
//! seconds in a small cache keyed by (principal, ticket) so `DoGet` normally need not re-plan;
//! a ticket that misses the cache is simply re-planned. Commands (DDL/DML/FStore statements)
//! run during `GetFlightInfo` (or `DoPut` for updates) and their ticket carries the result.
//!
//! Prepared statements are stateless handles (SQL + bound parameters); planned statements
//! are cached per SQL text and registry version in a bounded cache, so repeated executions
//! only bind parameters and execute.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, CommandGetCatalogs,
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandPreparedStatementUpdate,
    CommandStatementIngest, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, SqlInfo, TableExistsOption, TableNotExistOption,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, BasicAuth, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus,
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::auth::{Authenticator, decode_basic};
use super::metadata;
use super::metrics::Metrics;
use super::status::into_status;
use super::tickets::{PreparedHandle, StatementTicket, any_bytes, decode_any};
use crate::engine::Engine;
use crate::principal::Principal;
use crate::sql::exec::{count_batch, is_command};
use crate::sql::lookup::{self, DirectLookup, parameterize};
use crate::sql::{FStoreStatement, ParsedStatement, ResultKind, SqlSession, StatementResult};

/// How long a plan made for `GetFlightInfo` waits for its `DoGet`.
const PLAN_TTL: Duration = Duration::from_secs(30);
/// Planned queries waiting for their `DoGet`.
const PLAN_CACHE: usize = 256;
/// Online lookups read the registry (for other processes' changes) at most this often.
const HOT_REFRESH: Duration = Duration::from_millis(100);
/// Prepared statements whose plans are kept.
const PREPARED_CACHE: usize = 1024;

/// Queries streaming right now, by ticket, so a client can cancel them.
#[derive(Debug, Default)]
pub struct RunningQueries {
    next: AtomicU64,
    map: Mutex<HashMap<u64, (Bytes, CancellationToken)>>,
}

impl RunningQueries {
    fn register(self: &Arc<Self>, ticket: Bytes) -> (RunningGuard, CancellationToken) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        self.lock().insert(id, (ticket, token.clone()));
        (
            RunningGuard {
                id,
                running: Arc::clone(self),
            },
            token,
        )
    }

    /// Cancels every running query of `ticket`; returns how many.
    pub fn cancel(&self, ticket: &[u8]) -> usize {
        let map = self.lock();
        let mut n = 0;
        for (t, token) in map.values() {
            if t.as_ref() == ticket {
                token.cancel();
                n += 1;
            }
        }
        n
    }

    /// Cancels everything (shutdown after the grace period).
    pub fn cancel_all(&self) -> usize {
        let map = self.lock();
        map.values().for_each(|(_, t)| t.cancel());
        map.len()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (Bytes, CancellationToken)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct RunningGuard {
    id: u64,
    running: Arc<RunningQueries>,
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.running.lock().remove(&self.id);
    }
}

/// A small cache with insertion-order eviction and an optional time limit.
struct BoundedCache<K, V> {
    map: HashMap<K, (Instant, V)>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> BoundedCache<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn put(&mut self, k: K, v: V) {
        if self.map.insert(k.clone(), (Instant::now(), v)).is_none() {
            self.order.push_back(k);
        }
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    fn get<Q>(&self, k: &Q, ttl: Option<Duration>) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let (at, v) = self.map.get(k)?;
        match ttl {
            Some(ttl) if at.elapsed() > ttl => None,
            _ => Some(v.clone()),
        }
    }

    fn take(&mut self, k: &K, ttl: Duration) -> Option<V> {
        let (at, v) = self.map.remove(k)?;
        self.order.retain(|x| x != k);
        (at.elapsed() <= ttl).then_some(v)
    }

    fn remove_where(&mut self, pred: impl Fn(&K) -> bool) {
        self.map.retain(|k, _| !pred(k));
        self.order.retain(|k| !pred(k));
    }
}

/// A prepared statement, planned once per SQL text and registry version.
#[derive(Clone)]
struct Prepared {
    /// Registry sequence the plan was made at; a newer registry re-plans.
    seq: u64,
    statement: ParsedStatement,
    /// The DataFusion plan with unbound placeholders, or None for FStore statements (which
    /// take no parameters and are run by the engine as they are).
    plan: Option<LogicalPlan>,
    dataset_schema: SchemaRef,
    parameter_schema: SchemaRef,
    /// Set when the statement is an online point lookup by parameters.
    online: Option<Arc<DirectLookup>>,
}

/// The Flight SQL service.
pub struct FStoreFlightSql {
    engine: Arc<Engine>,
    auth: Arc<Authenticator>,
    metrics: Arc<Metrics>,
    running: Arc<RunningQueries>,
    limit: Arc<Semaphore>,
    max_concurrent: usize,
    planned: Mutex<BoundedCache<(String, Bytes), DataFrame>>,
    prepared: Mutex<BoundedCache<String, Arc<Prepared>>>,
    /// Results of online lookups waiting for their `DoGet`.
    looked_up: Mutex<BoundedCache<(String, Bytes), RecordBatch>>,
    /// Plain statements' shapes (literals made parameters) and their online lookups.
    literal_shapes: Mutex<BoundedCache<String, Arc<LiteralShape>>>,
}

/// A plain statement's shape, planned at registry sequence `seq`: its online lookup and
/// result schema, or None when it is not one.
struct LiteralShape {
    seq: u64,
    lookup: Option<(Arc<DirectLookup>, SchemaRef)>,
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
            limit: Arc::new(Semaphore::new(max_concurrent.max(1))),
            max_concurrent: max_concurrent.max(1),
            planned: Mutex::new(BoundedCache::new(PLAN_CACHE)),
            prepared: Mutex::new(BoundedCache::new(PREPARED_CACHE)),
            looked_up: Mutex::new(BoundedCache::new(PLAN_CACHE)),
            literal_shapes: Mutex::new(BoundedCache::new(PREPARED_CACHE)),
        }
    }

    /// The statement executor over this server's engine.
    fn sql(&self) -> SqlSession<'_> {
        SqlSession::new(&self.engine)
    }

    fn principal<T>(&self, request: &Request<T>) -> Result<Principal, Status> {
        self.auth.authenticate(request.metadata())
    }

    /// Metrics and a tracing span around one request.
    async fn observe<T>(
        &self,
        method: &'static str,
        fut: impl Future<Output = Result<T, Status>>,
    ) -> Result<T, Status> {
        let start = Instant::now();
        let result = fut.instrument(tracing::info_span!("flight", method)).await;
        if let Err(s) = &result {
            tracing::debug!(method, code = ?s.code(), message = s.message(), "request failed");
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

    fn parse(&self, sql: &str) -> Result<Vec<ParsedStatement>, Status> {
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

    /// Runs every statement of `sql`; returns the last one and its result.
    async fn run_all(
        &self,
        sql: &str,
        principal: &Principal,
    ) -> Result<(ParsedStatement, StatementResult), Status> {
        self.run_parsed(self.parse(sql)?, principal).await
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
                .sql()
                .execute(&stmt, principal)
                .await
                .map_err(into_status)?;
            last = Some((stmt, result));
        }
        last.ok_or_else(|| Status::invalid_argument("empty statement"))
    }

    /// A query's DataFrame for a `DoGet`: the cached plan or a fresh one.
    async fn query_for_ticket(
        &self,
        sql: &str,
        key: (String, Bytes),
        principal: &Principal,
    ) -> Result<DataFrame, Status> {
        if let Some(df) = self.lock_planned().take(&key, PLAN_TTL) {
            return Ok(df);
        }
        let statements = self.parse(sql)?;
        let [stmt] = statements.as_slice() else {
            return Err(Status::invalid_argument(
                "a query ticket holds one statement",
            ));
        };
        let result = self
            .sql()
            .execute(stmt, principal)
            .await
            .map_err(into_status)?;
        if result.kind != ResultKind::Query {
            return Err(Status::invalid_argument("a query ticket must hold a query"));
        }
        Ok(result.df)
    }

    fn lock_planned(&self) -> std::sync::MutexGuard<'_, BoundedCache<(String, Bytes), DataFrame>> {
        self.planned.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_prepared(&self) -> std::sync::MutexGuard<'_, BoundedCache<String, Arc<Prepared>>> {
        self.prepared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Streams a DataFrame as Flight data, holding a concurrency slot, cancellable by ticket.
    async fn stream(
        &self,
        df: DataFrame,
        ticket: Bytes,
        permit: OwnedSemaphorePermit,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
        let batches = df.execute_stream().await.map_err(into_status)?;
        let metrics = Arc::clone(&self.metrics);
        let counted = batches.map(move |b| {
            if let Ok(b) = &b {
                metrics
                    .rows_sent
                    .fetch_add(b.num_rows() as u64, Ordering::Relaxed);
            }
            b.map_err(|e| FlightError::ExternalError(Box::new(e)))
        });
        let flight = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(counted)
            .map_err(super::status::flight_status);
        let (guard, token) = self.running.register(ticket);
        self.metrics.active_queries.fetch_add(1, Ordering::Relaxed);
        Ok(Response::new(Box::pin(QueryStream {
            inner: Box::pin(flight),
            cancelled: Box::pin(token.cancelled_owned()),
            done: false,
            metrics: Arc::clone(&self.metrics),
            _guard: guard,
            _permit: permit,
        })))
    }

    /// Plans (or fetches the cached plan of) a prepared statement.
    async fn prepared(&self, sql: &str) -> Result<Arc<Prepared>, Status> {
        let cached = self.lock_prepared().get(sql, None);
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
                let plan = self
                    .sql()
                    .plan_datafusion(stmt)
                    .await
                    .map_err(into_status)?;
                let dataset_schema = if is_command(&plan) {
                    count_batch(0).schema()
                } else {
                    Arc::new(plan.schema().as_arrow().clone())
                };
                let parameter_schema = parameter_schema(&plan).map_err(into_status)?;
                let online = lookup::recognize(&plan).map(Arc::new);
                Prepared {
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
            },
        };
        let prepared = Arc::new(prepared);
        self.lock_prepared()
            .put(sql.to_string(), Arc::clone(&prepared));
        Ok(prepared)
    }

    fn lock_looked_up(
        &self,
    ) -> std::sync::MutexGuard<'_, BoundedCache<(String, Bytes), RecordBatch>> {
        self.looked_up.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps an online lookup's `batch` for the `DoGet` of `ticket` (by principal and
    /// `handle`), and describes it.
    fn looked_up_info(
        &self,
        principal: &Principal,
        handle: Bytes,
        batch: RecordBatch,
        ticket: Bytes,
        request: Request<FlightDescriptor>,
    ) -> Result<FlightInfo, Status> {
        let schema = batch.schema();
        self.lock_looked_up()
            .put((principal.name.clone(), handle), batch);
        self.info(&schema, ticket, request.into_inner())
    }

    /// Runs an online lookup statement (see [`DirectLookup`]) with the given parameter
    /// values; the result has the statement's `schema`.
    async fn run_online(
        &self,
        schema: &SchemaRef,
        fast: &DirectLookup,
        params: &[ScalarValue],
    ) -> Result<RecordBatch, Status> {
        lookup::run(&self.engine, fast, params, schema)
            .await
            .map_err(into_status)
    }

    /// Runs a prepared online lookup with its bound row (one row, or none when the
    /// statement takes no parameters).
    async fn run_prepared_online(
        &self,
        prepared: &Prepared,
        fast: &DirectLookup,
        handle: &PreparedHandle,
    ) -> Result<RecordBatch, Status> {
        let params = match handle.params()? {
            Some(batch) if batch.num_rows() == 1 => {
                row_values(&batch, 0, &prepared.parameter_schema)?
            }
            Some(batch) if batch.num_rows() > 1 => {
                return Err(Status::invalid_argument(
                    "a query bound to several parameter rows: bind one row per execution",
                ));
            }
            _ => vec![],
        };
        self.run_online(&prepared.dataset_schema, fast, &params)
            .await
    }

    /// `sql`, when it is a plain statement that is one online lookup with literal keys (see
    /// [`DirectLookup`]): its result, looked up without optimizing or executing a plan.
    /// The statement's literals are made parameters and the plan of that shape is cached,
    /// so a service sending `… WHERE customer_id = 42` for ever new keys plans once. None
    /// for anything else, which goes the general way.
    async fn literal_online(
        &self,
        sql: &str,
        statements: &[ParsedStatement],
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
        let cached = self
            .lock_literal_shapes()
            .get(&key, None)
            .filter(|c| c.seq == seq);
        let planned = match cached {
            Some(c) => c,
            None => {
                // A shape that does not plan (or is no lookup) is left to the general path,
                // which plans the statement as written and reports its errors.
                let lookup = match self.sql().plan_datafusion(&shape).await {
                    Ok(plan) => lookup::recognize(&plan)
                        .map(|fast| (Arc::new(fast), Arc::new(plan.schema().as_arrow().clone()))),
                    Err(_) => None,
                };
                let c = Arc::new(LiteralShape { seq, lookup });
                self.lock_literal_shapes().put(key, Arc::clone(&c));
                c
            }
        };
        let Some((fast, schema)) = &planned.lookup else {
            return Ok(None);
        };
        self.run_online(schema, fast, &values).await.map(Some)
    }

    fn lock_literal_shapes(
        &self,
    ) -> std::sync::MutexGuard<'_, BoundedCache<String, Arc<LiteralShape>>> {
        self.literal_shapes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a prepared statement once per bound parameter row (once when unbound).
    async fn run_prepared(
        &self,
        prepared: &Prepared,
        handle: &PreparedHandle,
        principal: &Principal,
    ) -> Result<Vec<StatementResult>, Status> {
        let Some(plan) = &prepared.plan else {
            let r = self
                .sql()
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
                self.sql()
                    .execute_plan(bound, prepared.statement.sql(), principal)
                    .await
                    .map_err(into_status)?,
            );
        }
        Ok(results)
    }

    /// A FlightInfo whose single endpoint is `ticket`.
    fn info(
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
            None => Arc::new(Schema::empty()),
        };
        let ticket = TicketStatementQuery {
            statement_handle: StatementTicket::Done { affected }.encode(),
        };
        self.info(&schema, any_bytes(&ticket), descriptor)
    }

    /// Streams a small, complete batch (metadata, command results).
    fn batch_response(&self, batch: RecordBatch) -> Response<<Self as FlightService>::DoGetStream> {
        let schema = batch.schema();
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::iter(vec![Ok(batch)]))
            .map_err(super::status::flight_status);
        Response::new(Box::pin(stream))
    }

    /// Reads a DoPut's record batches into one batch (bound parameters are small).
    async fn read_batches(
        request: Request<PeekableFlightDataStream>,
    ) -> Result<Option<RecordBatch>, Status> {
        use super::ipc_check::{MAX_PARAMETER_ROWS, accept_parameters, checked_messages, guarded};
        // Each message is checked before it is decoded (see `ipc_check`).
        let stream = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
            checked_messages(request.into_inner(), MAX_PARAMETER_ROWS),
        );
        let batches: Vec<RecordBatch> = guarded(async {
            stream
                .try_collect()
                .await
                .map_err(super::status::flight_status)
        })
        .await?;
        accept_parameters(&batches)?;
        match batches.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            many => datafusion::arrow::compute::concat_batches(&many[0].schema(), many)
                .map(Some)
                .map_err(|e| Status::invalid_argument(e.to_string())),
        }
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

fn ipc_schema(schema: &Schema) -> Result<Bytes, Status> {
    let IpcMessage(bytes) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow_schema::ArrowError| Status::internal(e.to_string()))?;
    Ok(bytes)
}

/// The result stream of a query: cancellable, and releasing its slot when dropped.
struct QueryStream {
    inner: Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send>>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    done: bool,
    metrics: Arc<Metrics>,
    _guard: RunningGuard,
    _permit: OwnedSemaphorePermit,
}

impl Stream for QueryStream {
    type Item = Result<arrow_flight::FlightData, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.cancelled.as_mut().poll(cx).is_ready() {
            self.done = true;
            self.metrics
                .queries_cancelled
                .fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Status::cancelled("query cancelled"))));
        }
        let next = self.inner.as_mut().poll_next(cx);
        if matches!(next, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.done = true;
        }
        next
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        self.metrics.active_queries.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A record-batch stream that can be executed once: the rows of a bulk ingest, streamed from
/// the client straight into the table's Parquet writer.
struct OneShot {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl std::fmt::Debug for OneShot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneShot")
    }
}

impl PartitionStream for OneShot {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        match self.stream.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(s) => s,
            None => Box::pin(RecordBatchStreamAdapter::new(
                Arc::clone(&self.schema),
                futures::stream::once(async {
                    Err(DataFusionError::Execution(
                        "ingest stream already consumed".into(),
                    ))
                }),
            )),
        }
    }
}

#[tonic::async_trait]
impl FlightSqlService for FStoreFlightSql {
    type FlightService = FStoreFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        self.observe("handshake", async {
            let header = request
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let principal = match header.as_deref().and_then(|h| h.strip_prefix("Basic ")) {
                Some(basic) => {
                    let (user, password) = decode_basic(basic.trim())?;
                    self.auth.login(&user, &password)?
                }
                None => {
                    // pyarrow's ClientAuthHandler sends a BasicAuth message as the payload.
                    let mut stream = request.into_inner();
                    match stream.message().await? {
                        Some(msg) if !msg.payload.is_empty() => {
                            let basic = BasicAuth::decode(msg.payload).map_err(|_| {
                                Status::unauthenticated("malformed handshake payload")
                            })?;
                            self.auth.login(&basic.username, &basic.password)?
                        }
                        _ if self.auth.no_auth() => Principal::new("anonymous"),
                        _ => {
                            return Err(Status::unauthenticated(
                                "missing credentials: send HTTP Basic",
                            ));
                        }
                    }
                }
            };
            let token = self.auth.issue(&principal);
            let out = futures::stream::iter(vec![Ok(HandshakeResponse {
                protocol_version: 0,
                payload: Bytes::from(token.clone()),
            })]);
            let mut response: Response<
                Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>,
            > = Response::new(Box::pin(out));
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| Status::internal("token is not a valid header"))?;
            response.metadata_mut().insert("authorization", value);
            tracing::info!(user = %principal, "login");
            Ok(response)
        })
        .await
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.observe("get_flight_info_statement", async {
            let principal = self.principal(&request)?;
            let _permit = self.permit()?;
            let statements = self.parse(&query.query)?;
            if let Some(batch) = self.literal_online(&query.query, &statements).await? {
                let handle = StatementTicket::Query {
                    sql: query.query.clone(),
                }
                .encode();
                let ticket = any_bytes(&TicketStatementQuery {
                    statement_handle: handle.clone(),
                });
                let info = self.looked_up_info(&principal, handle, batch, ticket, request)?;
                return Ok(Response::new(info));
            }
            let (stmt, result) = self.run_parsed(statements, &principal).await?;
            let descriptor = request.into_inner();
            let info = match result.kind {
                ResultKind::Query => {
                    let handle = StatementTicket::Query {
                        sql: stmt.text.clone(),
                    }
                    .encode();
                    let schema = result.df.schema().as_arrow().clone();
                    self.lock_planned()
                        .put((principal.name.clone(), handle.clone()), result.df);
                    let ticket = any_bytes(&TicketStatementQuery {
                        statement_handle: handle,
                    });
                    self.info(&schema, ticket, descriptor)?
                }
                ResultKind::Command => self.command_info(result.affected, descriptor)?,
            };
            Ok(Response::new(info))
        })
        .await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.observe("do_get_statement", async {
            let principal = self.principal(&request)?;
            match StatementTicket::decode(&ticket.statement_handle)? {
                StatementTicket::Done { affected } => Ok(match affected {
                    Some(n) => self.batch_response(count_batch(n)),
                    None => self.batch_response(RecordBatch::new_empty(Arc::new(Schema::empty()))),
                }),
                StatementTicket::Query { sql } => {
                    let permit = self.permit()?;
                    let key = (principal.name.clone(), ticket.statement_handle.clone());
                    if let Some(batch) = self.lock_looked_up().take(&key, PLAN_TTL) {
                        return Ok(self.batch_response(batch));
                    }
                    let df = self.query_for_ticket(&sql, key, &principal).await?;
                    self.stream(df, request.into_inner().ticket, permit).await
                }
            }
        })
        .await
    }

    async fn do_put_statement_update(
        &self,
        command: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.observe("do_put_statement_update", async {
            let principal = self.principal(&request)?;
            let _permit = self.permit()?;
            let (_, result) = self.run_all(&command.query, &principal).await?;
            Ok(match result.kind {
                ResultKind::Command => result.affected.map(|n| n as i64).unwrap_or(-1),
                // A query sent as an update: run it to completion, report its row count.
                ResultKind::Query => {
                    let batches = result.df.collect().await.map_err(into_status)?;
                    batches.iter().map(|b| b.num_rows() as i64).sum()
                }
            })
        })
        .await
    }

    async fn do_put_statement_ingest(
        &self,
        command: CommandStatementIngest,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.observe("do_put_statement_ingest", async {
            let principal = self.principal(&request)?;
            let _permit = self.permit()?;
            if command.temporary {
                return Err(Status::unimplemented("temporary tables are not supported"));
            }
            let table = command.table.to_ascii_lowercase();
            let options = command.table_definition_options.unwrap_or_default();
            let exists = self
                .engine
                .registry()
                .state()
                .relations
                .contains_key(&table);
            let if_exists = TableExistsOption::try_from(options.if_exists)
                .unwrap_or(TableExistsOption::Unspecified);
            let if_not_exist = TableNotExistOption::try_from(options.if_not_exist)
                .unwrap_or(TableNotExistOption::Unspecified);
            // Decode the client's stream lazily: rows go straight into the Parquet writer.
            // Rows of one batch are bounded by the largest message (one bit each).
            let mut batches = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
                super::ipc_check::checked_messages(
                    request.into_inner(),
                    super::MAX_MESSAGE_BYTES * 8,
                ),
            )
            .peekable();
            let first = Pin::new(&mut batches).peek().await;
            let schema = match first {
                Some(Ok(b)) => b.schema(),
                Some(Err(_)) => {
                    return Err(match batches.next().await {
                        Some(Err(e)) => super::status::flight_status(e),
                        _ => Status::internal("ingest stream failed"),
                    });
                }
                None => return Err(Status::invalid_argument("bulk ingest without any data")),
            };
            let rows = batches.map_err(|e| DataFusionError::External(Box::new(e)));
            let source = OneShot {
                schema: Arc::clone(&schema),
                stream: Mutex::new(Some(Box::pin(RecordBatchStreamAdapter::new(
                    Arc::clone(&schema),
                    rows,
                )))),
            };
            let provider = StreamingTable::try_new(Arc::clone(&schema), vec![Arc::new(source)])
                .map_err(into_status)?;
            let plan = LogicalPlanBuilder::scan(
                "ingest",
                datafusion::datasource::provider_as_source(Arc::new(provider)),
                None,
            )
            .and_then(|b| b.build())
            .map_err(into_status)?;
            let text = format!("INGEST INTO {table} (Flight SQL bulk ingest)");
            let result = match (exists, if_exists, if_not_exist) {
                (false, _, TableNotExistOption::Fail) => {
                    return Err(Status::not_found(format!("table '{table}' not found")));
                }
                (false, _, _) => {
                    self.sql()
                        .create_table_from_plan(&table, plan, false, &text, &principal)
                        .await
                }
                (true, TableExistsOption::Append, _) => {
                    self.sql()
                        .insert_plan(&table, plan, &text, &principal)
                        .await
                }
                (true, TableExistsOption::Replace, _) => {
                    self.sql()
                        .create_table_from_plan(&table, plan, true, &text, &principal)
                        .await
                }
                (true, _, _) => {
                    return Err(Status::already_exists(format!(
                        "table '{table}' already exists"
                    )));
                }
            }
            .map_err(into_status)?;
            Ok(result.affected.map(|n| n as i64).unwrap_or(-1))
        })
        .await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        self.observe("create_prepared_statement", async {
            self.principal(&request)?;
            let prepared = self.prepared(&query.query).await?;
            Ok(ActionCreatePreparedStatementResult {
                prepared_statement_handle: PreparedHandle::new(query.query).encode(),
                dataset_schema: ipc_schema(&prepared.dataset_schema)?,
                parameter_schema: ipc_schema(&prepared.parameter_schema)?,
            })
        })
        .await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        self.observe("close_prepared_statement", async {
            let principal = self.principal(&request)?;
            // Handles are stateless; drop any plan still waiting for a DoGet of this handle.
            let handle = query.prepared_statement_handle;
            self.lock_planned().remove_where(|(p, h)| {
                *p == principal.name
                    && h.starts_with(&handle[..handle.len().min(16)])
                    && *h == handle
            });
            Ok(())
        })
        .await
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.observe("bind_prepared_statement", async {
            self.principal(&request)?;
            let handle = PreparedHandle::decode(&query.prepared_statement_handle)?;
            let bound = match Self::read_batches(request).await? {
                Some(batch) => handle.with_params(&batch)?,
                None => handle,
            };
            Ok(DoPutPreparedStatementResult {
                prepared_statement_handle: Some(bound.encode()),
            })
        })
        .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.observe("get_flight_info_prepared_statement", async {
            let principal = self.principal(&request)?;
            let _permit = self.permit()?;
            let handle = PreparedHandle::decode(&cmd.prepared_statement_handle)?;
            let prepared = self.prepared(&handle.sql).await?;
            if let Some(fast) = &prepared.online {
                let batch = self.run_prepared_online(&prepared, fast, &handle).await?;
                let ticket = any_bytes(&cmd);
                let key = cmd.prepared_statement_handle.clone();
                let info = self.looked_up_info(&principal, key, batch, ticket, request)?;
                return Ok(Response::new(info));
            }
            let mut results = self.run_prepared(&prepared, &handle, &principal).await?;
            let descriptor = request.into_inner();
            let info = match results.pop() {
                Some(r) if r.kind == ResultKind::Query && results.is_empty() => {
                    let schema = r.df.schema().as_arrow().clone();
                    let ticket = any_bytes(&cmd);
                    self.lock_planned().put(
                        (
                            principal.name.clone(),
                            cmd.prepared_statement_handle.clone(),
                        ),
                        r.df,
                    );
                    self.info(&schema, ticket, descriptor)?
                }
                Some(r) if r.kind == ResultKind::Query => {
                    return Err(Status::invalid_argument(
                        "a query bound to several parameter rows: bind one row per execution",
                    ));
                }
                Some(r) => {
                    let total = results
                        .iter()
                        .chain(std::iter::once(&r))
                        .filter_map(|r| r.affected)
                        .sum::<u64>();
                    self.command_info(r.affected.map(|_| total), descriptor)?
                }
                None => return Err(Status::internal("prepared statement produced no result")),
            };
            Ok(Response::new(info))
        })
        .await
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.observe("do_get_prepared_statement", async {
            let principal = self.principal(&request)?;
            let permit = self.permit()?;
            let key = (
                principal.name.clone(),
                cmd.prepared_statement_handle.clone(),
            );
            if let Some(batch) = self.lock_looked_up().take(&key, PLAN_TTL) {
                return Ok(self.batch_response(batch));
            }
            let cached = self.lock_planned().take(&key, PLAN_TTL);
            let df = match cached {
                Some(df) => df,
                None => {
                    let handle = PreparedHandle::decode(&cmd.prepared_statement_handle)?;
                    let prepared = self.prepared(&handle.sql).await?;
                    if let Some(fast) = &prepared.online {
                        let batch = self.run_prepared_online(&prepared, fast, &handle).await?;
                        return Ok(self.batch_response(batch));
                    }
                    let mut results = self.run_prepared(&prepared, &handle, &principal).await?;
                    match (results.pop(), results.is_empty()) {
                        (Some(r), true) if r.kind == ResultKind::Query => r.df,
                        _ => {
                            return Err(Status::invalid_argument(
                                "the prepared statement is not a single query",
                            ));
                        }
                    }
                }
            };
            self.stream(df, request.into_inner().ticket, permit).await
        })
        .await
    }

    async fn do_put_prepared_statement_update(
        &self,
        cmd: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.observe("do_put_prepared_statement_update", async {
            let principal = self.principal(&request)?;
            let _permit = self.permit()?;
            let handle = PreparedHandle::decode(&cmd.prepared_statement_handle)?;
            let handle = match Self::read_batches(request).await? {
                Some(batch) => handle.with_params(&batch)?,
                None => handle,
            };
            let prepared = self.prepared(&handle.sql).await?;
            let results = self.run_prepared(&prepared, &handle, &principal).await?;
            let mut total: Option<i64> = None;
            for r in results {
                let n = match r.kind {
                    ResultKind::Command => r.affected.map(|n| n as i64),
                    ResultKind::Query => Some(
                        r.df.collect()
                            .await
                            .map_err(into_status)?
                            .iter()
                            .map(|b| b.num_rows() as i64)
                            .sum(),
                    ),
                };
                if let Some(n) = n {
                    total = Some(total.unwrap_or(0) + n);
                }
            }
            Ok(total.unwrap_or(-1))
        })
        .await
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        self.observe("cancel_query", async {
            self.principal(&request)?;
            let info = FlightInfo::decode(query.info)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
            let n = self.cancel_info(&info);
            // CancelResult: 1 = CANCELLED, 3 = NOT_CANCELLABLE (the enum is not re-exported).
            Ok(ActionCancelQueryResult {
                result: if n > 0 { 1 } else { 3 },
            })
        })
        .await
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let method = if request.get_ref().r#type == "CancelFlightInfo" {
            "cancel_flight_info"
        } else {
            "unknown_action"
        };
        self.observe(method, async {
            self.principal(&request)?;
            if request.get_ref().r#type != "CancelFlightInfo" {
                return Err(Status::unimplemented(format!(
                    "unknown action '{}'",
                    request.get_ref().r#type
                )));
            }
            let body = request.into_inner().body;
            let req = CancelFlightInfoRequest::decode(body.clone())
                .ok()
                .filter(|r| r.info.is_some())
                .or_else(|| {
                    decode_any(&body)
                        .ok()
                        .and_then(|any| CancelFlightInfoRequest::decode(any.value).ok())
                })
                .ok_or_else(|| Status::invalid_argument("malformed CancelFlightInfoRequest"))?;
            let info = req
                .info
                .ok_or_else(|| Status::invalid_argument("CancelFlightInfoRequest without info"))?;
            let n = self.cancel_info(&info);
            let status = if n > 0 {
                CancelStatus::Cancelled
            } else {
                CancelStatus::NotCancellable
            };
            let result = CancelFlightInfoResult {
                status: status as i32,
            };
            let out = futures::stream::iter(vec![Ok(arrow_flight::Result {
                body: Bytes::from(result.encode_to_vec()),
            })]);
            Ok(Response::new(
                Box::pin(out) as <Self as FlightService>::DoActionStream
            ))
        })
        .await
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.observe("get_flight_info_catalogs", async {
            self.principal(&request)?;
            let info = self.info(
                &metadata::catalogs_schema(),
                any_bytes(&query),
                request.into_inner(),
            )?;
            Ok(Response::new(info))
        })
        .await
    }

    async fn do_get_catalogs(
        &self,
        _query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.observe("do_get_catalogs", async {
            self.principal(&request)?;
            self.engine.refresh().await.map_err(into_status)?;
            Ok(self.batch_response(metadata::catalogs(self.engine.ctx()).map_err(into_status)?))
        })
        .await
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.observe("get_flight_info_schemas", async {
            self.principal(&request)?;
            let info = self.info(
                &metadata::db_schemas_schema(),
                any_bytes(&query),
                request.into_inner(),
            )?;
            Ok(Response::new(info))
        })
        .await
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.observe("do_get_schemas", async {
            self.principal(&request)?;
            self.engine.refresh().await.map_err(into_status)?;
            Ok(self.batch_response(
                metadata::db_schemas(self.engine.ctx(), query).map_err(into_status)?,
            ))
        })
        .await
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.observe("get_flight_info_tables", async {
            self.principal(&request)?;
            let schema = metadata::tables_schema(query.include_schema);
            let info = self.info(&schema, any_bytes(&query), request.into_inner())?;
            Ok(Response::new(info))
        })
        .await
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.observe("do_get_tables", async {
            self.principal(&request)?;
            self.engine.refresh().await.map_err(into_status)?;
            let state = self.engine.registry().state();
            let batch = metadata::tables(self.engine.ctx(), query, &state)
                .await
                .map_err(into_status)?;
            Ok(self.batch_response(batch))
        })
        .await
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.observe("get_flight_info_table_types", async {
            self.principal(&request)?;
            let info = self.info(
                &metadata::table_types_schema(),
                any_bytes(&query),
                request.into_inner(),
            )?;
            Ok(Response::new(info))
        })
        .await
    }

    async fn do_get_table_types(
        &self,
        _query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.observe("do_get_table_types", async {
            self.principal(&request)?;
            Ok(self.batch_response(metadata::table_types().map_err(into_status)?))
        })
        .await
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.observe("get_flight_info_sql_info", async {
            self.principal(&request)?;
            let info = self.info(
                &metadata::SQL_INFO.schema(),
                any_bytes(&query),
                request.into_inner(),
            )?;
            Ok(Response::new(info))
        })
        .await
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.observe("do_get_sql_info", async {
            self.principal(&request)?;
            let batch = query
                .into_builder(&metadata::SQL_INFO)
                .build()
                .map_err(|e| Status::internal(e.to_string()))?;
            Ok(self.batch_response(batch))
        })
        .await
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.observe("get_flight_info_xdbc_type_info", async {
            self.principal(&request)?;
            let info = self.info(
                &metadata::XDBC_INFO.schema(),
                any_bytes(&query),
                request.into_inner(),
            )?;
            Ok(Response::new(info))
        })
        .await
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.observe("do_get_xdbc_type_info", async {
            self.principal(&request)?;
            let batch = query
                .into_builder(&metadata::XDBC_INFO)
                .build()
                .map_err(|e| Status::internal(e.to_string()))?;
            Ok(self.batch_response(batch))
        })
        .await
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.observe("get_flight_info_primary_keys", async {
            self.principal(&request)?;
            let info = self.info(
                &metadata::primary_keys_schema(),
                any_bytes(&query),
                request.into_inner(),
            )?;
            Ok(Response::new(info))
        })
        .await
    }

    async fn do_get_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.observe("do_get_primary_keys", async {
            self.principal(&request)?;
            self.engine.refresh().await.map_err(into_status)?;
            let state = self.engine.registry().state();
            let batch = metadata::primary_keys(
                query.catalog.as_deref(),
                query.db_schema.as_deref(),
                &query.table,
                &state,
            )
            .map_err(into_status)?;
            Ok(self.batch_response(batch))
        })
        .await
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.observe("get_flight_info_exported_keys", async {
            self.principal(&request)?;
            let info = self.info(
                &metadata::foreign_keys_schema(),
                any_bytes(&query),
                request.into_inner(),
            )?;
            Ok(Response::new(info))
        })
        .await
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.observe("do_get_exported_keys", async {
            self.principal(&request)?;
            Ok(self.batch_response(RecordBatch::new_empty(metadata::foreign_keys_schema())))
        })
        .await
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.observe("get_flight_info_imported_keys", async {
            self.principal(&request)?;
            let info = self.info(
                &metadata::foreign_keys_schema(),
                any_bytes(&query),
                request.into_inner(),
            )?;
            Ok(Response::new(info))
        })
        .await
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.observe("do_get_imported_keys", async {
            self.principal(&request)?;
            Ok(self.batch_response(RecordBatch::new_empty(metadata::foreign_keys_schema())))
        })
        .await
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.observe("get_flight_info_cross_reference", async {
            self.principal(&request)?;
            let info = self.info(
                &metadata::foreign_keys_schema(),
                any_bytes(&query),
                request.into_inner(),
            )?;
            Ok(Response::new(info))
        })
        .await
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.observe("do_get_cross_reference", async {
            self.principal(&request)?;
            Ok(self.batch_response(RecordBatch::new_empty(metadata::foreign_keys_schema())))
        })
        .await
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

impl FStoreFlightSql {
    /// Cancels the running queries of every endpoint of `info`.
    fn cancel_info(&self, info: &FlightInfo) -> usize {
        info.endpoint
            .iter()
            .filter_map(|e| e.ticket.as_ref())
            .map(|t| self.running.cancel(&t.ticket))
            .sum()
    }
}
