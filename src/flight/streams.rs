//! What the server streams back: query results (cancellable by ticket, each holding a
//! concurrency slot) and small complete batches; and the one-shot source that streams a bulk
//! ingest from the client straight into a table's writer. [`RunningQueries`] is the registry
//! of streaming queries that `CancelQuery` / `CancelFlightInfo` and shutdown cancel.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use arrow_flight::FlightData;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_schema::SchemaRef;
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::{Stream, StreamExt, TryStreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::Status;

use super::metrics::Metrics;
use super::status::{flight_status, into_status};

/// The response stream of `DoGet`.
pub type DataStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

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

/// Streams a small, complete batch (metadata, command results).
pub fn batch_stream(batch: RecordBatch) -> DataStream {
    let schema = batch.schema();
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::iter(vec![Ok(batch)]))
            .map_err(flight_status),
    )
}

/// Streams a DataFrame as Flight data, holding a concurrency slot, cancellable by `ticket`.
pub async fn query_stream(
    df: DataFrame,
    ticket: Bytes,
    permit: OwnedSemaphorePermit,
    running: &Arc<RunningQueries>,
    metrics: &Arc<Metrics>,
) -> Result<DataStream, Status> {
    let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    // The session's time limit runs from here: physical planning, then every batch.
    let (df, limit) = crate::engine::options::query_timeout_of(df);
    let mut deadline = limit.map(|l| Deadline {
        sleep: Box::pin(tokio::time::sleep(l)),
        limit: l,
    });
    let batches = match &mut deadline {
        Some(d) => tokio::select! {
            b = df.execute_stream() => b,
            () = d.sleep.as_mut() => {
                metrics.queries_timed_out.fetch_add(1, Ordering::Relaxed);
                return Err(d.exceeded());
            }
        },
        None => df.execute_stream().await,
    }
    .map_err(into_status)?;
    let counter = Arc::clone(metrics);
    let counted = batches.map(move |b| {
        if let Ok(b) = &b {
            counter
                .rows_sent
                .fetch_add(b.num_rows() as u64, Ordering::Relaxed);
        }
        b.map_err(|e| FlightError::ExternalError(Box::new(e)))
    });
    let flight = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(counted)
        .map_err(flight_status);
    let (guard, token) = running.register(ticket);
    metrics.active_queries.fetch_add(1, Ordering::Relaxed);
    Ok(Box::pin(QueryStream {
        inner: Box::pin(flight),
        cancelled: Box::pin(token.cancelled_owned()),
        deadline,
        done: false,
        metrics: Arc::clone(metrics),
        _guard: guard,
        _permit: permit,
    }))
}

/// When a query must have finished.
struct Deadline {
    sleep: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl Deadline {
    fn exceeded(&self) -> Status {
        Status::deadline_exceeded(format!(
            "query stopped: it ran longer than its time limit of {:?} (fstore.query_timeout, --query-timeout)",
            self.limit
        ))
    }
}

/// The result stream of a query: cancellable, limited in time, and releasing its slot when
/// dropped. A cancelled or timed-out query's execution is dropped at once (DataFusion aborts
/// its tasks), not when the client lets go of the stream.
struct QueryStream {
    inner: Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send>>,
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    deadline: Option<Deadline>,
    done: bool,
    metrics: Arc<Metrics>,
    _guard: RunningGuard,
    _permit: OwnedSemaphorePermit,
}

impl Stream for QueryStream {
    type Item = Result<FlightData, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.cancelled.as_mut().poll(cx).is_ready() {
            self.stop();
            self.metrics
                .queries_cancelled
                .fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Some(Err(Status::cancelled("query cancelled"))));
        }
        if let Some(d) = &mut self.deadline
            && d.sleep.as_mut().poll(cx).is_ready()
        {
            let status = d.exceeded();
            self.stop();
            self.metrics
                .queries_timed_out
                .fetch_add(1, Ordering::Relaxed);
            return Poll::Ready(Some(Err(status)));
        }
        let next = self.inner.as_mut().poll_next(cx);
        if matches!(next, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.done = true;
        }
        next
    }
}

impl QueryStream {
    /// Ends the stream and drops the execution behind it now.
    fn stop(&mut self) {
        self.done = true;
        self.inner = Box::pin(futures::stream::empty());
    }
}

impl Drop for QueryStream {
    fn drop(&mut self) {
        self.metrics.active_queries.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A record-batch stream that can be executed once: the rows of a bulk ingest, streamed from
/// the client straight into the table's Parquet writer.
pub struct OneShot {
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

impl OneShot {
    pub fn new(stream: SendableRecordBatchStream) -> Self {
        Self {
            schema: stream.schema(),
            stream: Mutex::new(Some(stream)),
        }
    }
}
