//! Criterion benchmarks of the window operators at small scale (the side-by-side comparison
//! with Polars and DuckDB at 10M rows is `benches/window_compare.py`).
//!
//! ```text
//! cargo bench --bench window
//! ```

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use datafusion::arrow::array::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use fstore::sample::{transactions_chunk, transactions_schema};

const ROWS: u64 = 200_000;

fn transactions(rows: u64) -> Vec<RecordBatch> {
    (0..rows)
        .step_by(8192)
        .map(|first| transactions_chunk(42, rows, first, 8192.min(rows - first)).unwrap())
        .collect()
}

fn context() -> SessionContext {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    fstore::window::register_table_functions(&ctx);
    let batches = transactions(ROWS);
    let half = batches.len() / 2;
    let parts = vec![batches[..half].to_vec(), batches[half..].to_vec()];
    ctx.register_table(
        "tx",
        Arc::new(MemTable::try_new(transactions_schema(), parts).unwrap()),
    )
    .unwrap();
    let spine: Vec<RecordBatch> = transactions(ROWS / 4)
        .into_iter()
        .map(|b| b.project(&[1, 3]).unwrap())
        .collect();
    let schema = spine[0].schema();
    ctx.register_table(
        "spine",
        Arc::new(MemTable::try_new(schema, vec![spine]).unwrap()),
    )
    .unwrap();
    ctx
}

fn run(rt: &tokio::runtime::Runtime, ctx: &SessionContext, sql: &str) -> usize {
    rt.block_on(async {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        batches.iter().map(RecordBatch::num_rows).sum()
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ctx = context();
    let mut group = c.benchmark_group("window");
    group.sample_size(10);
    group.bench_function("per_event_mean_sum_count_30d_200k", |b| {
        b.iter(|| {
            run(
                &rt,
                &ctx,
                "SELECT count(*), sum(m), sum(s), sum(n) FROM window_features('tx', 'customer_id', 'transaction_date', \
                 'mean(amount) 30d AS m', 'sum(amount) 30d AS s', 'count(amount) 30d AS n')",
            )
        })
    });
    group.bench_function("per_event_all_aggregates_7d_30d_200k", |b| {
        b.iter(|| {
            run(
                &rt,
                &ctx,
                "SELECT count(*), sum(m7), sum(sd30), max(mx30), sum(d30), count(l7) FROM window_features('tx', 'customer_id', 'transaction_date', \
                 'mean(amount) 7d AS m7', 'stddev(amount) 30d AS sd30', 'max(amount) 30d AS mx30', \
                 'count_distinct(product_id) 30d AS d30', 'last(product_id) 7d AS l7')",
            )
        })
    });
    group.bench_function("spine_50k_over_200k_events", |b| {
        b.iter(|| {
            run(
                &rt,
                &ctx,
                "SELECT count(*), sum(m), sum(n) FROM window_features_at('tx', 'customer_id', 'transaction_date', \
                 'spine', 'customer_id', 'transaction_date', 'mean(amount) 30d AS m', 'count(*) 30d AS n')",
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
