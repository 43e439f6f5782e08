//! The sample data set: deterministic, seeded, any size.
//!
//! `sample_transactions(rows [, seed])` and `sample_products(products [, seed])` are table
//! functions, so the demo, the tests and the benchmarks all make data the same way
//! (`CREATE TABLE transactions AS SELECT * FROM sample_transactions(100000)`). Rows are
//! generated lazily in chunks (bounded memory at any size), and each chunk is seeded from
//! `(seed, chunk)`, so the data does not depend on how the scan is partitioned.
//!
//! transactions(transaction_id, customer_id, product_id, transaction_date, amount,
//! customer_category, conversion): ~100 transactions per customer over 2024-01-01 ..
//! 2024-04-01; ~1 % of amounts are NULL; conversion depends on category and amount, so
//! target encodings and feature selection have signal to find.
//!
//! products(product_id, price, category, updated_at): every product has 1–6 price updates over
//! the same period, so point-in-time joins have something to get right.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::SessionContext;

use crate::args::{at_most, identify_call, u64_arg};

/// The default seed of the sample data.
pub const DEFAULT_SEED: u64 = 42;
/// Rows per generated batch.
const CHUNK: u64 = 8192;
/// 2024-01-01T00:00:00Z in microseconds.
const START_US: i64 = 1_704_067_200_000_000;
/// The sample period: 91 days (to 2024-04-01).
const SPAN_US: i64 = 91 * 86_400_000_000;
const CATEGORIES: [&str; 4] = ["bronze", "silver", "gold", "platinum"];
const PRODUCT_CATEGORIES: [&str; 6] = [
    "electronics",
    "grocery",
    "fashion",
    "home",
    "sports",
    "books",
];

/// SplitMix64: tiny, fast, and the same on every platform and version.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.next_f64().max(f64::MIN_POSITIVE);
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

fn mix(seed: u64, stream: u64, chunk: u64) -> SplitMix64 {
    let mut s = SplitMix64::new(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
    for _ in 0..(chunk % 7) {
        s.next_u64();
    }
    SplitMix64::new(s.next_u64() ^ chunk.wrapping_mul(0xE703_7ED1_A0B4_28DB))
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

pub fn transactions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("transaction_id", DataType::Int64, false),
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("product_id", DataType::Utf8, false),
        Field::new("transaction_date", ts_type(), false),
        Field::new("amount", DataType::Float64, true),
        Field::new("customer_category", DataType::Utf8, false),
        Field::new("conversion", DataType::Int32, false),
    ]))
}

pub fn products_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("product_id", DataType::Utf8, false),
        Field::new("price", DataType::Float64, false),
        Field::new("category", DataType::Utf8, false),
        Field::new("updated_at", ts_type(), false),
    ]))
}

/// Number of customers for a given number of transactions.
pub fn customers_for(rows: u64) -> u64 {
    (rows / 100).max(10)
}

/// Number of products for a given number of transactions.
pub fn products_for(rows: u64) -> u64 {
    (rows / 1000).clamp(5, 10_000)
}

/// A customer's fixed category: a pure function of the customer, so it is consistent
/// across every transaction of that customer.
fn category_of(seed: u64, customer: u64) -> usize {
    (mix(seed, 3, customer).next_u64() % CATEGORIES.len() as u64) as usize
}

/// One chunk of transactions: rows `[first, first + n)`.
pub fn transactions_chunk(seed: u64, rows: u64, first: u64, n: u64) -> Result<RecordBatch> {
    let customers = customers_for(rows);
    let products = products_for(rows);
    let mut rng = mix(seed, 1, first / CHUNK);
    let mut ids = Vec::with_capacity(n as usize);
    let mut cust = Vec::with_capacity(n as usize);
    let mut prod = Vec::with_capacity(n as usize);
    let mut dates = Vec::with_capacity(n as usize);
    let mut amounts = Float64Builder::with_capacity(n as usize);
    let mut cats = Vec::with_capacity(n as usize);
    let mut conv = Vec::with_capacity(n as usize);
    for i in first..first + n {
        let c = rng.below(customers);
        let cat = category_of(seed, c);
        ids.push(i as i64 + 1);
        cust.push(format!("customer_{c}"));
        prod.push(format!("product_{}", rng.below(products)));
        // Whole seconds, so equal timestamps occur and windows have ties to get right.
        let t = START_US + (rng.below((SPAN_US / 1_000_000) as u64) as i64) * 1_000_000;
        dates.push(t);
        let base = [20.0, 45.0, 90.0, 180.0][cat];
        let amount = (base * (0.6 * rng.normal()).exp() * 100.0).round() / 100.0;
        if rng.below(100) == 0 {
            amounts.append_null();
        } else {
            amounts.append_value(amount);
        }
        cats.push(CATEGORIES[cat]);
        let logit = -2.2 + 0.55 * cat as f64 + 0.004 * amount.min(500.0);
        let p = 1.0 / (1.0 + (-logit).exp());
        conv.push(i32::from(rng.next_f64() < p));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(StringArray::from(cust)),
        Arc::new(StringArray::from(prod)),
        Arc::new(TimestampMicrosecondArray::from(dates)),
        Arc::new(amounts.finish()),
        Arc::new(StringArray::from(cats)),
        Arc::new(Int32Array::from(conv)),
    ];
    Ok(RecordBatch::try_new(transactions_schema(), columns)?)
}

/// Every price update of every product `[first, first + n)`.
pub fn products_chunk(seed: u64, first: u64, n: u64) -> Result<RecordBatch> {
    let mut ids = Vec::new();
    let mut prices = Vec::new();
    let mut cats = Vec::new();
    let mut times = Vec::new();
    for p in first..first + n {
        let mut rng = mix(seed, 2, p);
        let category = PRODUCT_CATEGORIES[rng.below(PRODUCT_CATEGORIES.len() as u64) as usize];
        let updates = 1 + rng.below(6);
        let mut price = (5.0 + rng.next_f64() * 495.0 * 100.0).round() / 100.0;
        // First version a week before the period, so most transactions find a price.
        let mut t = START_US - 7 * 86_400_000_000;
        for _ in 0..updates {
            ids.push(format!("product_{p}"));
            prices.push(price);
            cats.push(category);
            times.push(t);
            t += (rng.below(30 * 86_400) as i64 + 3_600) * 1_000_000;
            price = ((price * (1.0 + 0.1 * rng.normal())).max(1.0) * 100.0).round() / 100.0;
        }
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(ids)),
        Arc::new(datafusion::arrow::array::Float64Array::from(prices)),
        Arc::new(StringArray::from(cats)),
        Arc::new(TimestampMicrosecondArray::from(times)),
    ];
    Ok(RecordBatch::try_new(products_schema(), columns)?)
}

/// A lazily generated range of chunks.
#[derive(Debug)]
struct Generated {
    schema: SchemaRef,
    chunks: Vec<(u64, u64)>,
    make: fn(u64, u64, u64, u64) -> Result<RecordBatch>,
    seed: u64,
    total: u64,
}

impl PartitionStream for Generated {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }
    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (make, seed, total) = (self.make, self.seed, self.total);
        let stream = futures::stream::iter(
            self.chunks
                .clone()
                .into_iter()
                .map(move |(first, n)| make(seed, total, first, n)),
        );
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream,
        ))
    }
}

fn generated_table(
    schema: SchemaRef,
    total: u64,
    chunk: u64,
    seed: u64,
    make: fn(u64, u64, u64, u64) -> Result<RecordBatch>,
    partitions: usize,
) -> Result<Arc<dyn TableProvider>> {
    let mut parts: Vec<Vec<(u64, u64)>> = vec![Vec::new(); partitions.max(1)];
    let mut first = 0;
    let mut i = 0;
    while first < total {
        let n = chunk.min(total - first);
        let k = i % parts.len();
        parts[k].push((first, n));
        first += n;
        i += 1;
    }
    let streams = parts
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|chunks| {
            Arc::new(Generated {
                schema: Arc::clone(&schema),
                chunks,
                make,
                seed,
                total,
            }) as Arc<dyn PartitionStream>
        })
        .collect::<Vec<_>>();
    Ok(Arc::new(StreamingTable::try_new(schema, streams)?))
}

/// `sample_transactions(rows [, seed])`
#[derive(Debug)]
struct SampleTransactions;

impl TableFunctionImpl for SampleTransactions {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let f = "sample_transactions";
        at_most(exprs, 2, f, "rows [, seed]")?;
        let rows = u64_arg(exprs, 0, f, "rows", None)?;
        let seed = u64_arg(exprs, 1, f, "seed", Some(DEFAULT_SEED))?;
        let partitions = args.session().config().target_partitions();
        generated_table(
            identify_call(&transactions_schema(), f, exprs),
            rows,
            CHUNK,
            seed,
            transactions_chunk,
            partitions,
        )
    }
}

/// `sample_products(products [, seed])`
#[derive(Debug)]
struct SampleProducts;

impl TableFunctionImpl for SampleProducts {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let f = "sample_products";
        at_most(exprs, 2, f, "products [, seed]")?;
        let n = u64_arg(exprs, 0, f, "products", None)?;
        let seed = u64_arg(exprs, 1, f, "seed", Some(DEFAULT_SEED))?;
        generated_table(
            identify_call(&products_schema(), f, exprs),
            n,
            1024,
            seed,
            |seed, _total, first, n| products_chunk(seed, first, n),
            1,
        )
    }
}

/// Registers `sample_transactions` and `sample_products`.
pub fn register(ctx: &SessionContext) {
    ctx.register_udtf("sample_transactions", Arc::new(SampleTransactions));
    ctx.register_udtf("sample_products", Arc::new(SampleProducts));
}

/// The statements `fstore demo` runs: the sample data set as managed tables.
pub fn demo_sql(rows: u64, seed: u64) -> String {
    format!(
        "CREATE OR REPLACE TABLE transactions AS SELECT * FROM sample_transactions({rows}, {seed}) ORDER BY transaction_date;\n\
         CREATE OR REPLACE TABLE products AS SELECT * FROM sample_products({}, {seed});",
        products_for(rows)
    )
}

/// The sample data set's table functions (`sample_transactions`, `sample_products`).
pub struct SampleDataExtension;

#[async_trait::async_trait]
impl crate::engine::EngineExtension for SampleDataExtension {
    fn name(&self) -> &'static str {
        "sample-data"
    }
    async fn register(&self, setup: &mut crate::engine::Setup<'_>) -> Result<()> {
        register(setup.ctx);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_deterministic() {
        let a = transactions_chunk(7, 100_000, 8192, 100).unwrap();
        let b = transactions_chunk(7, 100_000, 8192, 100).unwrap();
        assert_eq!(a, b);
        let c = transactions_chunk(8, 100_000, 8192, 100).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn a_customer_keeps_one_category() {
        let b = transactions_chunk(42, 2_000, 0, 2_000).unwrap();
        let cust = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        let cat = b.column(5).as_any().downcast_ref::<StringArray>().unwrap();
        let mut seen = std::collections::HashMap::new();
        for i in 0..b.num_rows() {
            let prev = seen.insert(cust.value(i), cat.value(i));
            assert!(prev.is_none() || prev == Some(cat.value(i)));
        }
    }

    #[test]
    fn products_have_increasing_update_times() {
        let b = products_chunk(42, 0, 50).unwrap();
        let ids = b.column(0).as_any().downcast_ref::<StringArray>().unwrap();
        let ts = b
            .column(3)
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        for i in 1..b.num_rows() {
            if ids.value(i) == ids.value(i - 1) {
                assert!(ts.value(i) > ts.value(i - 1));
            }
        }
    }
}
