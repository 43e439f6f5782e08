//! Online lookups over Flight SQL from a native client (arrow-flight's Flight SQL client,
//! the same three calls ADBC makes per execution: DoPut to bind, GetFlightInfo, DoGet), so
//! the figures show the server and the protocol without a Python client's own cost.
//!
//! Run against a server that serves a set with an Int64 key (benches/online_bench.py sets
//! one up and calls this):
//!
//!   cargo bench --bench online_lookup -- --addr 127.0.0.1:50051 --set bench_online \
//!       --key customer_id --entities 100000 --requests 10000 --concurrency 16 --duration 10
//!
//! Prints one JSON line: sequential latency percentiles (ms) and concurrent throughput.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrow_flight::sql::client::{FlightSqlServiceClient, PreparedStatement};
use datafusion::arrow::array::{Int64Array, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use futures::TryStreamExt;
use tonic::transport::{Channel, Endpoint};

struct Args {
    addr: String,
    set: String,
    key: String,
    entities: i64,
    requests: usize,
    concurrency: usize,
    duration: f64,
}

fn args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:50051".into(),
        set: "bench_online".into(),
        key: "customer_id".into(),
        entities: 100_000,
        requests: 10_000,
        concurrency: 16,
        duration: 10.0,
    };
    let v: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < v.len() {
        let next = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--addr" => a.addr = next,
            "--set" => a.set = next,
            "--key" => a.key = next,
            "--entities" => a.entities = next.parse().expect("--entities N"),
            "--requests" => a.requests = next.parse().expect("--requests N"),
            "--concurrency" => a.concurrency = next.parse().expect("--concurrency N"),
            "--duration" => a.duration = next.parse().expect("--duration S"),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

async fn prepare(
    addr: &str,
    sql: &str,
) -> (FlightSqlServiceClient<Channel>, PreparedStatement<Channel>) {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .expect("address")
        .tcp_nodelay(true)
        .connect()
        .await
        .expect("connect");
    let mut client = FlightSqlServiceClient::new(channel);
    let prepared = client
        .prepare(sql.to_string(), None)
        .await
        .expect("prepare");
    (client, prepared)
}

/// One lookup: bind, execute, fetch. Returns the rows.
async fn lookup(
    client: &mut FlightSqlServiceClient<Channel>,
    prepared: &mut PreparedStatement<Channel>,
    id: i64,
) -> usize {
    let schema = Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, true)]));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![id]))]).unwrap();
    prepared.set_parameters(batch).expect("bind");
    let info = prepared.execute().await.expect("execute");
    let ticket = info.endpoint[0].ticket.clone().expect("ticket");
    let batches: Vec<RecordBatch> = client
        .do_get(ticket)
        .await
        .expect("do_get")
        .try_collect()
        .await
        .expect("stream");
    batches.iter().map(|b| b.num_rows()).sum()
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let i = ((q / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let sql = format!(
        "SELECT * FROM online_features('{}') WHERE {} = ?",
        a.set, a.key
    );
    // Sequential latency.
    let (mut client, mut prepared) = prepare(&a.addr, &sql).await;
    let mut rng = 0x2545F4914F6CDD1Du64;
    let mut next_id = move |n: i64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as i64
    };
    for _ in 0..500 {
        lookup(&mut client, &mut prepared, next_id(a.entities)).await;
    }
    let mut ms = Vec::with_capacity(a.requests);
    let mut found = 0;
    for _ in 0..a.requests {
        let id = next_id(a.entities);
        let t = Instant::now();
        found += lookup(&mut client, &mut prepared, id).await;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    assert_eq!(found, a.requests, "every looked-up entity exists");
    ms.sort_by(f64::total_cmp);

    // Throughput: `concurrency` clients, each with its own connection, for `duration`.
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..a.concurrency {
        let (mut client, mut prepared) = prepare(&a.addr, &sql).await;
        let (done, stop) = (Arc::clone(&done), Arc::clone(&stop));
        let n = a.entities;
        tasks.push(tokio::spawn(async move {
            let mut id = c as i64;
            while !stop.load(Ordering::Relaxed) {
                id = (id * 7919 + 13) % n;
                lookup(&mut client, &mut prepared, id).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let start = Instant::now();
    let before = done.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(a.duration)).await;
    let count = done.load(Ordering::Relaxed) - before;
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    println!(
        "{{\"client\": \"rust-flight-sql\", \"requests\": {}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"p999_ms\": {:.3}, \"mean_ms\": {:.3}, \"concurrency\": {}, \"throughput_per_s\": {:.0}}}",
        a.requests,
        percentile(&ms, 50.0),
        percentile(&ms, 99.0),
        percentile(&ms, 99.9),
        ms.iter().sum::<f64>() / ms.len() as f64,
        a.concurrency,
        count as f64 / elapsed
    );
}
