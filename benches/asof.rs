//! Criterion benchmark of the AS-OF join at small scale: 1M feature rows of 10k entities
//! (1% ties on time) × a 100k-row spine, in memory, through SQL, with and without a CREATED
//! tie-break and a look-back bound. The side-by-side comparison with DuckDB and Polars on
//! Parquet is `benches/asof_compare.py` (see `benches/README.md`).
//!
//! ```text
//! cargo bench --bench asof
//! ```

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use datafusion::arrow::array::{Float64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::MemTable;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

const RIGHT_ROWS: usize = 1_000_000;
const LEFT_ROWS: usize = 100_000;
const ENTITIES: u64 = 10_000;
const BATCH: usize = 8192;
const T0: i64 = 1_704_067_200_000_000; // 2024-01-01 in microseconds
const RANGE: i64 = 90 * 86_400_000_000; // 90 days

/// A small deterministic generator (SplitMix64), so the bench needs no extra crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

fn table(schema: SchemaRef, batches: Vec<RecordBatch>, partitions: usize) -> Arc<MemTable> {
    let mut parts: Vec<Vec<RecordBatch>> = vec![vec![]; partitions];
    for (i, b) in batches.into_iter().enumerate() {
        parts[i % partitions].push(b);
    }
    Arc::new(MemTable::try_new(schema, parts).expect("mem table"))
}

fn features(rng: &mut Rng, partitions: usize) -> Arc<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("event_ts", ts_type(), false),
        Field::new("f1", DataType::Float64, false),
        Field::new("f2", DataType::Float64, false),
        Field::new("created_ts", ts_type(), false),
    ]));
    let mut batches = Vec::new();
    let mut last: Option<(String, i64)> = None;
    for start in (0..RIGHT_ROWS).step_by(BATCH) {
        let n = BATCH.min(RIGHT_ROWS - start);
        let (mut ids, mut ev, mut cr, mut f1, mut f2) = (vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..n {
            // 1% of rows repeat the previous row's entity and time: ties on time.
            let (id, t) = match (&last, rng.below(100)) {
                (Some((id, t)), 0) => (id.clone(), *t),
                _ => (
                    format!("customer_{}", rng.below(ENTITIES)),
                    T0 + rng.below(RANGE as u64) as i64,
                ),
            };
            cr.push(t + rng.below(3_600_000_000) as i64);
            ids.push(id.clone());
            ev.push(t);
            f1.push(rng.unit());
            f2.push(rng.unit());
            last = Some((id, t));
        }
        batches.push(
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringArray::from(ids)),
                    Arc::new(TimestampMicrosecondArray::from(ev)),
                    Arc::new(Float64Array::from(f1)),
                    Arc::new(Float64Array::from(f2)),
                    Arc::new(TimestampMicrosecondArray::from(cr)),
                ],
            )
            .expect("batch"),
        );
    }
    table(schema, batches, partitions)
}

fn spine(rng: &mut Rng, partitions: usize) -> Arc<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("ts", ts_type(), false),
    ]));
    let week = 7 * 86_400_000_000;
    let mut batches = Vec::new();
    for start in (0..LEFT_ROWS).step_by(BATCH) {
        let n = BATCH.min(LEFT_ROWS - start);
        let ids: Vec<String> = (0..n)
            .map(|_| format!("customer_{}", rng.below(ENTITIES)))
            .collect();
        let ts: Vec<i64> = (0..n)
            .map(|_| T0 - week + rng.below((RANGE + 2 * week) as u64) as i64)
            .collect();
        batches.push(
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(StringArray::from(ids)),
                    Arc::new(TimestampMicrosecondArray::from(ts)),
                ],
            )
            .expect("batch"),
        );
    }
    table(schema, batches, partitions)
}

fn bench_asof(c: &mut Criterion) {
    let partitions = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(partitions)
        .enable_all()
        .build()
        .expect("runtime");
    let state = fstore::asof::register(
        SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(partitions))
            .with_default_features(),
    )
    .expect("register")
    .build();
    let ctx = SessionContext::new_with_state(state);
    let mut rng = Rng(42);
    ctx.register_table("customer_features", features(&mut rng, partitions))
        .expect("features");
    ctx.register_table("entity_df", spine(&mut rng, partitions))
        .expect("spine");

    let queries = [
        (
            "plain",
            "MATCH_CONDITION (s.ts >= f.event_ts) ON s.customer_id = f.customer_id",
        ),
        (
            "created_tie_break",
            "MATCH_CONDITION (s.ts >= f.event_ts AND CREATED(f.created_ts)) ON s.customer_id = f.customer_id",
        ),
        (
            "lookback_7d",
            "MATCH_CONDITION (s.ts >= f.event_ts) ON s.customer_id = f.customer_id AND s.ts - f.event_ts <= INTERVAL '7 days'",
        ),
    ];
    let mut group = c.benchmark_group("asof_1M_x_100k");
    group.sample_size(10);
    for (name, join) in queries {
        let sql = format!(
            "SELECT count(*), count(f.f1), sum(f.f1), sum(f.f2) FROM entity_df s ASOF JOIN customer_features f {join}"
        );
        let statements = fstore::sql::asof::parse_sql(&sql).expect("parse");
        let fstore::sql::FStoreStatement::DataFusion(stmt) = &statements[0].statement else {
            panic!("not a DataFusion statement");
        };
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let plan = ctx
                        .state()
                        .statement_to_plan((**stmt).clone())
                        .await
                        .expect("plan");
                    ctx.execute_logical_plan(plan)
                        .await
                        .expect("df")
                        .collect()
                        .await
                        .expect("collect")
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_asof);
criterion_main!(benches);
