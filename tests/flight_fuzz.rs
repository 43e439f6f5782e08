//! Crafted Arrow IPC input never ends the server: mutated parameter batches bound to a
//! prepared statement over a raw Flight client get a clean error (never `INTERNAL`, never a
//! dead process), and the server keeps answering.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any,
    CommandPreparedStatementQuery, ProstMessageExt,
};
use arrow_flight::utils::batches_to_flight_data;
use arrow_flight::{Action, FlightData, FlightDescriptor};
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use fstore::sample::SplitMix64;
use futures::StreamExt;
use prost::Message;
use tonic::Code;
use tonic::transport::Channel;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(warehouse: &std::path::Path) -> (Server, u16) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fstore"))
        .arg("--warehouse")
        .arg(warehouse)
        .args(["serve", "--no-auth", "--addr", "127.0.0.1:0"])
        .env("FSTORE_LOG", "error")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn server");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let port = loop {
        let line = lines.next().expect("server exited").unwrap();
        if let Some(rest) = line.split("listening on grpc://127.0.0.1:").nth(1) {
            break rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Server(child), port)
}

async fn prepare(client: &mut FlightServiceClient<Channel>, sql: &str) -> bytes::Bytes {
    let body = ActionCreatePreparedStatementRequest {
        query: sql.to_string(),
        transaction_id: None,
    }
    .as_any()
    .encode_to_vec();
    let action = Action {
        r#type: "CreatePreparedStatement".to_string(),
        body: body.into(),
    };
    let mut results = client.do_action(action).await.unwrap().into_inner();
    let result = results.message().await.unwrap().unwrap();
    let any = Any::decode(&*result.body).unwrap();
    let prepared: ActionCreatePreparedStatementResult = any.unpack().unwrap().unwrap();
    prepared.prepared_statement_handle
}

/// The FlightData of a DoPut binding `batch` to the prepared statement `handle`.
fn bind_messages(handle: &bytes::Bytes, batch: &RecordBatch) -> Vec<FlightData> {
    let mut messages = batches_to_flight_data(&batch.schema(), vec![batch.clone()]).unwrap();
    let cmd = CommandPreparedStatementQuery {
        prepared_statement_handle: handle.clone(),
    };
    messages[0].flight_descriptor = Some(FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec()));
    messages
}

/// The sample generator's PRNG: the test must be reproducible.
struct Rng(SplitMix64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, messages: &mut [FlightData]) {
    let m = &mut messages[1 + rng.below(messages.len() - 1)];
    for _ in 0..1 + rng.below(6) {
        let in_header = rng.below(3) > 0 || m.data_body.is_empty();
        let bytes = if in_header {
            &mut m.data_header
        } else {
            &mut m.data_body
        };
        let mut v = bytes.to_vec();
        if v.is_empty() {
            continue;
        }
        match rng.below(4) {
            // a flipped byte
            0 => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            // a huge little-endian number over 8 bytes (lengths, offsets, row counts)
            1 if v.len() >= 8 => {
                let i = rng.below(v.len() - 7);
                let n = rng.next() >> rng.below(40);
                v[i..i + 8].copy_from_slice(&n.to_le_bytes());
            }
            // truncation
            2 => v.truncate(rng.below(v.len())),
            // a random byte
            _ => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
        }
        *bytes = v.into();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_parameter_batches_never_kill_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, port) = start(dir.path());
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = FlightServiceClient::new(channel)
        .max_decoding_message_size(64 << 20)
        .max_encoding_message_size(64 << 20);
    let handle = prepare(&mut client, "SELECT $1 + 1 AS x, $2 AS s").await;
    let schema = Arc::new(Schema::new(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![Some(41)])),
            Arc::new(StringArray::from(vec![Some("forty-one")])),
        ],
    )
    .unwrap();
    let valid = bind_messages(&handle, &batch);

    // The valid binding works.
    let response = client.do_put(futures::stream::iter(valid.clone())).await;
    assert!(response.is_ok(), "{response:?}");

    let mut rng = Rng(SplitMix64::new(20261204));
    let mut outcomes = std::collections::BTreeMap::new();
    for i in 0..500 {
        let mut messages = valid.clone();
        mutate(&mut rng, &mut messages);
        let code = match client.do_put(futures::stream::iter(messages)).await {
            Ok(r) => {
                let mut s = r.into_inner();
                let mut code = Code::Ok;
                while let Some(item) = s.next().await {
                    if let Err(e) = item {
                        code = e.code();
                    }
                }
                code
            }
            Err(e) => e.code(),
        };
        *outcomes.entry(format!("{code:?}")).or_insert(0) += 1;
        assert!(
            server.0.try_wait().unwrap().is_none(),
            "mutation {i} killed the server"
        );
        assert!(
            // Malformed input is the client's error; before the IPC checks, 92 of these
            // mutations answered CANCELLED.
            !matches!(
                code,
                Code::Internal | Code::Unknown | Code::Unavailable | Code::Cancelled
            ),
            "mutation {i} answered {code:?}"
        );
    }
    println!("mutated bindings: {outcomes:?}");
    // Still serving.
    let response = client.do_put(futures::stream::iter(valid)).await;
    assert!(response.is_ok(), "{response:?}");
}
