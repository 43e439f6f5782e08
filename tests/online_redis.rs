//! The Redis online store against a real `redis-server`: every test starts its own server on
//! a free port (and kills it when done). Without `redis-server` on PATH the tests are
//! skipped, unless `FSTORE_TEST_REQUIRE_REDIS=1`, which makes that a failure.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Decimal128Array, Float64Array, Int32Array, Int64Array,
    ListArray, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};
use fstore::error::ErrorKind;
use fstore::online::redis::RedisStore;
use fstore::online::{EntityKey, FEATURE_TS, MATERIALIZED_AT, OnlineStore, Snapshot, SnapshotInfo};

/// A `redis-server` of this test, killed on drop.
struct RedisServer {
    child: Child,
    port: u16,
}

impl RedisServer {
    /// Starts a server, or None (test skipped) when `redis-server` is not installed.
    fn start() -> Option<RedisServer> {
        match Command::new("redis-server").arg("--version").output() {
            Ok(out) if out.status.success() => {}
            other => {
                let why = match other {
                    Ok(out) => format!("redis-server --version failed: {:?}", out.status),
                    Err(e) => format!("redis-server not runnable: {e}"),
                };
                if std::env::var("FSTORE_TEST_REQUIRE_REDIS").as_deref() == Ok("1") {
                    panic!("{why} (FSTORE_TEST_REQUIRE_REDIS=1)");
                }
                eprintln!("skipping: {why}");
                return None;
            }
        }
        // A free port can be taken by someone else before the server binds it: retry.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string()])
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn redis-server");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // exited (port taken?): try another port
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(RedisServer { child, port });
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("redis-server on port {port} did not accept connections in 20 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("could not start redis-server");
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn store(&self) -> RedisStore {
        RedisStore::connect(&self.url())
            .await
            .expect("connect to redis")
    }

    async fn client(&self) -> RedisClient {
        RedisClient::connect(&self.url())
            .await
            .expect("connect to redis")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A direct connection to the test's server, for checking what the store wrote.
struct RedisClient(redis::aio::MultiplexedConnection);

impl RedisClient {
    async fn connect(url: &str) -> redis::RedisResult<RedisClient> {
        let client = redis::Client::open(url)?;
        Ok(RedisClient(
            client.get_multiplexed_async_connection().await?,
        ))
    }

    /// Runs one command (an error reply is an Err).
    async fn command(&self, command: redis::Cmd) -> redis::RedisResult<Reply> {
        let value: redis::Value = command.query_async(&mut self.0.clone()).await?;
        Ok(Reply::from(value))
    }
}

/// A reply, as the checks below read it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Simple(String),
    Integer(i64),
    /// None for nil.
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

impl From<redis::Value> for Reply {
    fn from(value: redis::Value) -> Reply {
        match value {
            redis::Value::Nil => Reply::Bulk(None),
            redis::Value::Int(i) => Reply::Integer(i),
            redis::Value::BulkString(b) => Reply::Bulk(Some(b)),
            redis::Value::Array(items) => {
                Reply::Array(Some(items.into_iter().map(Reply::from).collect()))
            }
            redis::Value::SimpleString(s) => Reply::Simple(s),
            redis::Value::Okay => Reply::Simple("OK".into()),
            other => panic!("unexpected RESP2 reply {other:?}"),
        }
    }
}

impl Reply {
    /// The bytes of a bulk or simple string; None for nil and other replies.
    fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(Some(b)) => Some(b),
            Reply::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The value of an integer reply.
    fn as_integer(&self) -> Option<i64> {
        match self {
            Reply::Integer(i) => Some(*i),
            _ => None,
        }
    }
}

/// A command from its name and arguments: `cmd(["HGET", key, "f"])`.
fn cmd<I, A>(args: I) -> redis::Cmd
where
    I: IntoIterator<Item = A>,
    A: AsRef<[u8]>,
{
    let mut command = redis::Cmd::new();
    for arg in args {
        command.arg(arg.as_ref());
    }
    command
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Every key matching `pattern` (SCAN).
async fn scan(client: &RedisClient, pattern: &str) -> Vec<String> {
    let mut cursor = b"0".to_vec();
    let mut keys = Vec::new();
    loop {
        let reply = client
            .command(cmd([
                b"SCAN".as_slice(),
                &cursor,
                b"MATCH",
                pattern.as_bytes(),
                b"COUNT",
                b"1000",
            ]))
            .await
            .expect("scan");
        let Reply::Array(Some(parts)) = reply else {
            panic!("SCAN answered {reply:?}")
        };
        let (Reply::Bulk(Some(next)), Reply::Array(Some(found))) = (&parts[0], &parts[1]) else {
            panic!("SCAN answered {parts:?}")
        };
        keys.extend(
            found
                .iter()
                .map(|k| String::from_utf8_lossy(k.as_bytes().expect("key")).into_owned()),
        );
        if next == b"0" {
            return keys;
        }
        cursor = next.clone();
    }
}

async fn dbsize(client: &RedisClient) -> i64 {
    client
        .command(cmd(["DBSIZE"]))
        .await
        .expect("dbsize")
        .as_integer()
        .expect("integer")
}

fn info(set: &str, key_columns: &[&str], generation: u64, rows: usize) -> SnapshotInfo {
    SnapshotInfo {
        set: set.to_string(),
        version: 1,
        key_columns: key_columns.iter().map(|k| k.to_string()).collect(),
        as_of: 1_700_000_000_000_000,
        materialized_at: 1_700_000_001_000_000,
        generation,
        rows: rows as u64,
    }
}

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn timestamps(values: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(values).with_timezone("UTC"))
}

fn key(parts: &[&str]) -> EntityKey {
    EntityKey(parts.iter().map(|p| p.to_string()).collect())
}

/// Asserts that `lookup.batch` holds, row by row, the snapshot rows `rows` (None: a missing
/// key, all NULL) and that `found` says which were found.
fn assert_rows(lookup: &fstore::online::Lookup, snapshot: &RecordBatch, rows: &[Option<u32>]) {
    let indices = UInt32Array::from(rows.to_vec());
    assert_eq!(lookup.batch.num_rows(), rows.len());
    assert_eq!(
        lookup.found,
        rows.iter().map(Option::is_some).collect::<Vec<_>>()
    );
    assert_eq!(lookup.batch.num_columns(), snapshot.num_columns());
    for (i, field) in snapshot.schema().fields().iter().enumerate() {
        let got_field = lookup.batch.schema().field(i).clone();
        assert_eq!(got_field.name(), field.name());
        assert_eq!(got_field.data_type(), field.data_type());
        assert!(got_field.is_nullable());
        let expected = take(snapshot.column(i).as_ref(), &indices, None).expect("take");
        assert_eq!(
            lookup.batch.column(i).as_ref(),
            expected.as_ref(),
            "column {}",
            field.name()
        );
    }
}

/// A snapshot with a column of every kind the store encodes, some NULLs, and a row whose
/// features are all NULL.
fn typed_snapshot(set: &str, generation: u64) -> Snapshot {
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new("score", DataType::Float64, true),
        Field::new("orders", DataType::Int64, true),
        Field::new("country", DataType::Utf8, true),
        Field::new("active", DataType::Boolean, true),
        Field::new(
            "last_seen",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("balance", DataType::Decimal128(12, 3), true),
        Field::new(
            "recent_items",
            DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true))),
            true,
        ),
        Field::new(FEATURE_TS, utc_micros(), true),
        Field::new(MATERIALIZED_AT, utc_micros(), false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1, 2, 3, -4, 5])),
        Arc::new(Float64Array::from(vec![
            Some(0.1),
            None,
            Some(-2.5e-300),
            Some(1.0 / 3.0),
            None,
        ])),
        Arc::new(Int64Array::from(vec![
            Some(7),
            Some(0),
            None,
            Some(i64::MAX),
            None,
        ])),
        Arc::new(StringArray::from(vec![
            Some("fr"),
            Some(""),
            Some("naïve:*?[x]\u{1f}"),
            None,
            None,
        ])),
        Arc::new(BooleanArray::from(vec![
            Some(true),
            Some(false),
            None,
            Some(true),
            None,
        ])),
        Arc::new(TimestampMicrosecondArray::from(vec![
            Some(1_700_000_000_123_456),
            Some(-1),
            None,
            Some(0),
            None,
        ])),
        Arc::new(
            Decimal128Array::from(vec![
                Some(12_345),
                Some(-1),
                None,
                Some(999_999_999_999),
                None,
            ])
            .with_precision_and_scale(12, 3)
            .expect("decimal"),
        ),
        Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), Some(2), None]),
            Some(vec![]),
            None,
            Some(vec![Some(i32::MIN)]),
            None,
        ])),
        timestamps(vec![
            Some(1_699_999_000_000_000),
            Some(1_699_999_000_000_001),
            None,
            Some(1_600_000_000_000_000),
            None,
        ]),
        timestamps(vec![Some(1_700_000_001_000_000); 5]),
    ];
    let batch = RecordBatch::try_new(schema, columns).expect("batch");
    Snapshot {
        info: info(set, &["user_id"], generation, batch.num_rows()),
        batch,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_lookup_round_trips_every_type() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = server.store().await;
    assert_eq!(store.kind(), "redis");
    assert!(
        store
            .lookup("users", &[key(&["1"])])
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.describe("users").await.unwrap().is_none());

    let snapshot = typed_snapshot("users", 10);
    let batch = snapshot.batch.clone();
    let expected_info = snapshot.info.clone();
    store.publish(snapshot).await.expect("publish");

    let (info, schema) = store.describe("users").await.unwrap().expect("described");
    assert_eq!(info, expected_info);
    assert_eq!(schema, batch.schema());

    // Found and missing keys, in request order; row 5 has only NULL features.
    let keys = [
        key(&["3"]),
        key(&["99"]),
        key(&["1"]),
        key(&["5"]),
        key(&["-4"]),
        key(&["2"]),
    ];
    let lookup = store
        .lookup("users", &keys)
        .await
        .unwrap()
        .expect("published");
    assert_eq!(lookup.info, expected_info);
    assert_rows(
        &lookup,
        &batch,
        &[Some(2), None, Some(0), Some(4), Some(3), Some(1)],
    );

    // A second node (no cache) sees the same.
    let other = server.store().await;
    let lookup = other
        .lookup("users", &keys)
        .await
        .unwrap()
        .expect("published");
    assert_rows(
        &lookup,
        &batch,
        &[Some(2), None, Some(0), Some(4), Some(3), Some(1)],
    );

    // No keys: an empty batch with the schema.
    let lookup = store
        .lookup("users", &[])
        .await
        .unwrap()
        .expect("published");
    assert_eq!(lookup.batch.num_rows(), 0);
    assert_eq!(lookup.batch.num_columns(), batch.num_columns());

    // A key of the wrong width is the caller's error.
    let err = store
        .lookup("users", &[key(&["1", "2"])])
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument, "{err}");

    // Layout: the pointer, the generations hash and one hash per entity.
    let client = server.client().await;
    assert_eq!(scan(&client, "fstore:online:users:g10:*").await.len(), 5);
    assert_eq!(dbsize(&client).await, 5 + 2);
    let hash = client
        .command(cmd(["HGETALL", "fstore:online:users:g10:5"]))
        .await
        .unwrap();
    let Reply::Array(Some(fields)) = hash else {
        panic!("{hash:?}")
    };
    // Row 5 has only NULL features and no _feature_ts: `__k` and `_materialized_at` remain.
    assert_eq!(fields.len(), 4, "{fields:?}");
    assert_eq!(fields[0], Reply::Bulk(Some(b"__k".to_vec())));
    assert_eq!(fields[1], Reply::Bulk(Some(b"5".to_vec())));

    // The pointer: info, schema, and how each stored column is encoded (the Int64 key is
    // rebuilt from the key text; the list is Arrow IPC; the rest is text).
    let pointer = client
        .command(cmd(["GET", "fstore:online:users"]))
        .await
        .unwrap();
    let pointer: serde_json::Value =
        serde_json::from_slice(pointer.as_bytes().expect("pointer")).unwrap();
    assert_eq!(pointer["info"]["generation"], 10);
    assert_eq!(pointer["key_generation"], 10);
    assert!(pointer["schema"]["fields"].is_array());
    let encodings: Vec<(String, String)> = pointer["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["encoding"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = [
        ("score", "text"),
        ("orders", "text"),
        ("country", "text"),
        ("active", "text"),
        ("last_seen", "text"),
        ("balance", "text"),
        ("recent_items", "ipc"),
        (FEATURE_TS, "text"),
        (MATERIALIZED_AT, "text"),
    ]
    .iter()
    .map(|(n, e)| (n.to_string(), e.to_string()))
    .collect();
    assert_eq!(encodings, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_sets_span_many_pipelines_and_scans() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = server.store().await;
    let client = server.client().await;
    const N: i64 = 4_500;
    for g in 1..=4 {
        store
            .publish(scaled_snapshot("big", g, 1..=N, g as i64))
            .await
            .unwrap();
    }
    assert_eq!(
        scan(&client, "fstore:online:big:g*:*").await.len() as i64,
        2 * N
    );
    assert_eq!(
        scan(&client, "fstore:online:big:g3:*").await.len() as i64,
        N
    );
    let keys: Vec<EntityKey> = (0..=N + 1).rev().map(|i| key(&[&i.to_string()])).collect();
    let lookup = store
        .lookup("big", &keys)
        .await
        .unwrap()
        .expect("published");
    let rows: Vec<Option<u32>> = (0..=N + 1)
        .rev()
        .map(|i| (1..=N).contains(&i).then(|| (i - 1) as u32))
        .collect();
    let snapshot = scaled_snapshot("big", 4, 1..=N, 4);
    assert_rows(&lookup, &snapshot.batch, &rows);
    store.remove("big").await.unwrap();
    assert_eq!(dbsize(&client).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn composite_keys_and_awkward_set_names() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = server.store().await;
    let schema = Arc::new(Schema::new(vec![
        Field::new("region", DataType::Utf8, false),
        Field::new("store_id", DataType::Int64, false),
        Field::new("revenue", DataType::Float64, true),
        Field::new(FEATURE_TS, utc_micros(), true),
        Field::new(MATERIALIZED_AT, utc_micros(), true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["eu", "us", "eu", "a:b*[c]?"])),
            Arc::new(Int64Array::from(vec![1, 1, 2, 7])),
            Arc::new(Float64Array::from(vec![
                Some(10.5),
                Some(20.0),
                None,
                Some(-1.0),
            ])),
            timestamps(vec![Some(1), Some(2), Some(3), None]),
            timestamps(vec![Some(9); 4]),
        ],
    )
    .unwrap();
    // Two sets whose names differ by characters that are special in keys and patterns.
    for set in ["shop:sales*", "shop"] {
        store
            .publish(Snapshot {
                info: info(set, &["region", "store_id"], 1, 4),
                batch: batch.clone(),
            })
            .await
            .expect("publish");
    }
    let keys = [
        key(&["us", "1"]),
        key(&["eu", "2"]),
        key(&["eu", "3"]),
        key(&["a:b*[c]?", "7"]),
        key(&["eu", "1"]),
    ];
    for set in ["shop:sales*", "shop"] {
        let lookup = store.lookup(set, &keys).await.unwrap().expect("published");
        assert_rows(&lookup, &batch, &[Some(1), Some(2), None, Some(3), Some(0)]);
    }
    // Republishing and removing one leaves the other alone.
    store
        .publish(Snapshot {
            info: info("shop", &["region", "store_id"], 2, 4),
            batch: batch.clone(),
        })
        .await
        .unwrap();
    store
        .publish(Snapshot {
            info: info("shop", &["region", "store_id"], 3, 4),
            batch: batch.clone(),
        })
        .await
        .unwrap();
    store.remove("shop").await.unwrap();
    assert!(store.lookup("shop", &keys).await.unwrap().is_none());
    let lookup = store
        .lookup("shop:sales*", &keys)
        .await
        .unwrap()
        .expect("kept");
    assert_rows(&lookup, &batch, &[Some(1), Some(2), None, Some(3), Some(0)]);
    let client = server.client().await;
    assert_eq!(dbsize(&client).await, 4 + 2);
}

/// A one-feature snapshot of entities `ids` whose value is `id * factor`.
fn scaled_snapshot(
    set: &str,
    generation: u64,
    ids: std::ops::RangeInclusive<i64>,
    factor: i64,
) -> Snapshot {
    let ids: Vec<i64> = ids.collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("value", DataType::Int64, true),
        Field::new(FEATURE_TS, utc_micros(), true),
        Field::new(MATERIALIZED_AT, utc_micros(), true),
    ]));
    let n = ids.len();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.clone())),
            Arc::new(Int64Array::from(
                ids.iter().map(|i| i * factor).collect::<Vec<_>>(),
            )),
            timestamps(vec![Some(generation as i64); n]),
            timestamps(vec![Some(generation as i64); n]),
        ],
    )
    .unwrap();
    Snapshot {
        info: info(set, &["id"], generation, n),
        batch,
    }
}

async fn value_of(store: &RedisStore, set: &str, id: i64) -> Option<i64> {
    let lookup = store
        .lookup(set, &[key(&[&id.to_string()])])
        .await
        .unwrap()
        .expect("published");
    let values = lookup.batch.column(1);
    let values = values.as_any().downcast_ref::<Int64Array>().unwrap();
    lookup.found[0].then(|| values.value(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republishing_replaces_values_and_deletes_old_generations() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = server.store().await;
    let client = server.client().await;
    let hashes = |g: u64| format!("fstore:online:s:g{g}:*");

    store
        .publish(scaled_snapshot("s", 1, 1..=100, 1))
        .await
        .unwrap();
    assert_eq!(value_of(&store, "s", 42).await, Some(42));
    store
        .publish(scaled_snapshot("s", 2, 1..=100, 2))
        .await
        .unwrap();
    assert_eq!(value_of(&store, "s", 42).await, Some(84));
    // The previous generation stays for readers that still follow the old pointer.
    assert_eq!(scan(&client, &hashes(1)).await.len(), 100);

    store
        .publish(scaled_snapshot("s", 3, 1..=50, 3))
        .await
        .unwrap();
    assert_eq!(value_of(&store, "s", 42).await, Some(126));
    assert_eq!(
        value_of(&store, "s", 75).await,
        None,
        "entity gone from the source"
    );
    assert_eq!(
        scan(&client, &hashes(1)).await.len(),
        0,
        "generation 1 deleted"
    );
    assert_eq!(scan(&client, &hashes(2)).await.len(), 100);
    assert_eq!(scan(&client, &hashes(3)).await.len(), 50);
    assert_eq!(scan(&client, "fstore:online:s:g*:*").await.len(), 150);

    // Republishing the same generation number must not write into the live hashes.
    store
        .publish(scaled_snapshot("s", 3, 1..=50, 4))
        .await
        .unwrap();
    assert_eq!(value_of(&store, "s", 42).await, Some(168));
    assert_eq!(
        scan(&client, &hashes(2)).await.len(),
        0,
        "generation 2 deleted"
    );
    assert_eq!(scan(&client, &hashes(3)).await.len(), 50);
    assert_eq!(scan(&client, "fstore:online:s:g*:*").await.len(), 100);
    let (info, _) = store.describe("s").await.unwrap().unwrap();
    assert_eq!(info.generation, 3);

    // A second node whose cache holds an old pointer still reads a complete generation.
    let other = server.store().await;
    assert_eq!(value_of(&other, "s", 42).await, Some(168));
    store
        .publish(scaled_snapshot("s", 10, 1..=50, 5))
        .await
        .unwrap();
    store
        .publish(scaled_snapshot("s", 11, 1..=50, 6))
        .await
        .unwrap();
    // `other` may use its cached pointer for up to 500 ms: that generation was retired,
    // so it must notice and follow the new pointer.
    assert_eq!(value_of(&other, "s", 42).await, Some(252));
    assert_eq!(scan(&client, "fstore:online:s:g*:*").await.len(), 100);
    assert_eq!(dbsize(&client).await, 100 + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_see_whole_rows_of_one_generation() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    const ENTITIES: i64 = 300;
    const GENERATIONS: u64 = 25;
    let set = "live";

    // Row of entity k in generation g: a = g, b = g * 1_000_000 + k, s = "g{g}-k{k}",
    // l = [g, k].
    let snapshot = |g: u64| {
        let ids: Vec<i64> = (0..ENTITIES).collect();
        let gi = g as i64;
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new(
                "l",
                DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true))),
                true,
            ),
            Field::new(FEATURE_TS, utc_micros(), true),
            Field::new(MATERIALIZED_AT, utc_micros(), true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(Int64Array::from(vec![gi; ids.len()])),
                Arc::new(Int64Array::from(
                    ids.iter().map(|k| gi * 1_000_000 + k).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    ids.iter().map(|k| format!("g{g}-k{k}")).collect::<Vec<_>>(),
                )),
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(
                    ids.iter()
                        .map(|&k| Some(vec![Some(g as i32), Some(k as i32)])),
                )),
                timestamps(vec![Some(gi); ids.len()]),
                timestamps(vec![Some(gi); ids.len()]),
            ],
        )
        .unwrap();
        Snapshot {
            info: info(set, &["k"], g, ENTITIES as usize),
            batch,
        }
    };

    let publisher = Arc::new(server.store().await);
    publisher.publish(snapshot(1)).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));

    // Readers: two on other "nodes" (own pools, own pointer caches), one sharing the
    // publisher's store; each lookup asks for 64 keys.
    let mut readers = Vec::new();
    for r in 0..3 {
        let store = if r == 0 {
            publisher.clone()
        } else {
            Arc::new(server.store().await)
        };
        let done = done.clone();
        readers.push(tokio::spawn(async move {
            let mut lookups = 0u64;
            let mut last_generation = 0i64;
            let mut offset = r as i64;
            while !done.load(Ordering::Relaxed) || lookups < 5 {
                let ids: Vec<i64> = (0..64).map(|i| (offset + i * 7) % ENTITIES).collect();
                offset += 13;
                let keys: Vec<EntityKey> = ids.iter().map(|k| key(&[&k.to_string()])).collect();
                let lookup = store.lookup(set, &keys).await.unwrap().expect("published");
                assert!(
                    lookup.found.iter().all(|&f| f),
                    "every entity exists in every generation"
                );
                let batch = &lookup.batch;
                let col = |i: usize| {
                    batch
                        .column(i)
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .unwrap()
                };
                let (k, a, b) = (col(0), col(1), col(2));
                let s = batch
                    .column(3)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap();
                let l = batch
                    .column(4)
                    .as_any()
                    .downcast_ref::<ListArray>()
                    .unwrap();
                let g = a.value(0);
                assert!(
                    g >= last_generation,
                    "generations go forward: {g} after {last_generation}"
                );
                last_generation = g;
                assert_eq!(batch.num_rows(), ids.len());
                for (row, &id) in ids.iter().enumerate() {
                    assert_eq!(k.value(row), id);
                    assert_eq!(a.value(row), g, "one generation per lookup");
                    assert_eq!(b.value(row), g * 1_000_000 + id);
                    assert_eq!(s.value(row), format!("g{g}-k{id}"));
                    let items = l.value(row);
                    let items = items.as_any().downcast_ref::<Int32Array>().unwrap();
                    assert_eq!(items.values().to_vec(), vec![g as i32, id as i32]);
                }
                lookups += 1;
            }
            eprintln!("reader {r}: {lookups} lookups, last generation {last_generation}");
            (lookups, last_generation)
        }));
    }

    // Sixteen concurrent lookups at once, while publishing.
    let burst = {
        let store = publisher.clone();
        tokio::spawn(async move {
            let lookups = (0..16).map(|i| {
                let store = store.clone();
                async move {
                    let keys: Vec<EntityKey> = (0..32)
                        .map(|k| key(&[&((k * 5 + i) % ENTITIES).to_string()]))
                        .collect();
                    store.lookup(set, &keys).await.unwrap().expect("published")
                }
            });
            let results = futures::future::join_all(lookups).await;
            assert!(results.iter().all(|l| l.found.iter().all(|&f| f)));
        })
    };

    for g in 2..=GENERATIONS {
        publisher.publish(snapshot(g)).await.unwrap();
    }
    done.store(true, Ordering::Relaxed);
    burst.await.unwrap();
    for reader in readers {
        let (lookups, last) = reader.await.unwrap();
        assert!(lookups >= 5);
        assert!(last >= 1);
    }
    let client = server.client().await;
    assert_eq!(
        scan(&client, "fstore:online:live:g*:*").await.len() as i64,
        2 * ENTITIES,
        "only the last two generations remain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_deletes_everything() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = server.store().await;
    let client = server.client().await;
    for g in 1..=3 {
        store
            .publish(scaled_snapshot("gone", g, 1..=20, 1))
            .await
            .unwrap();
    }
    store
        .publish(scaled_snapshot("kept", 1, 1..=5, 1))
        .await
        .unwrap();
    assert_eq!(dbsize(&client).await, (2 * 20 + 2) + (5 + 2));

    store.remove("gone").await.unwrap();
    assert!(store.describe("gone").await.unwrap().is_none());
    assert!(
        store
            .lookup("gone", &[key(&["1"])])
            .await
            .unwrap()
            .is_none()
    );
    assert!(scan(&client, "fstore:online:gone*").await.is_empty());
    assert_eq!(dbsize(&client).await, 5 + 2);
    assert_eq!(value_of(&store, "kept", 3).await, Some(3));

    // Removing what is not there is fine; publishing again works.
    store.remove("gone").await.unwrap();
    store.remove("never").await.unwrap();
    store
        .publish(scaled_snapshot("gone", 1, 1..=2, 9))
        .await
        .unwrap();
    assert_eq!(value_of(&store, "gone", 2).await, Some(18));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_address_is_unavailable() {
    let port = free_port(); // nothing listens there
    let err = RedisStore::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(
        err.message
            .starts_with(&format!("cannot reach Redis at 127.0.0.1:{port}: ")),
        "{err}"
    );
    let err = RedisStore::connect("http://127.0.0.1:6379")
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_is_unavailable() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let store = server.store().await;
    store
        .publish(scaled_snapshot("s", 1, 1..=3, 1))
        .await
        .unwrap();
    assert_eq!(value_of(&store, "s", 2).await, Some(2));
    let port = server.port;
    drop(server);
    let err = store.lookup("s", &[key(&["2"])]).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
    assert!(err.message.contains(&format!("127.0.0.1:{port}")), "{err}");
    let err = store
        .publish(scaled_snapshot("s", 2, 1..=3, 1))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unavailable, "{err}");
}
