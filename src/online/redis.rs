//! The Redis online store (`--online-store redis://host:port`, `rediss://` for TLS): several
//! serving nodes share one Redis; each set's latest snapshot is a generation of hashes plus
//! a pointer naming it.
//!
//! # Layout
//!
//! `{set}` below is the set's name with `%` and `:` percent-encoded (`%25`, `%3A`), so that
//! a set's keys can never be mistaken for another set's (names are normally identifiers and
//! appear unchanged).
//!
//! * `fstore:online:{set}`: the **pointer**, a string holding JSON
//!   `{"info": SnapshotInfo, "schema": <arrow Schema (serde)>, "key_generation": G,
//!   "fields": [{"name": column, "encoding": "text" | "ipc"}, …]}`. Readers follow it;
//!   publishing replaces it with one `GETSET` (the atomic swap). `key_generation` is the
//!   `G` of the hashes below: `info.generation`, unless that number is already taken by
//!   another publication of the set (republishing the same generation, or retrying a failed
//!   attempt), in which case the next free number.
//! * `fstore:online:{set}:g{G}:{entity}`: one **HASH per entity** of generation `G`, where
//!   `{entity}` is [`EntityKey::encoded`] (parts joined by U+001F). Fields:
//!   - `__k`: the entity key text (so an entity whose features are all NULL still exists);
//!   - one field per column listed in the pointer's `fields`: every non-key column
//!     (features, `_feature_ts`, `_materialized_at`) and any key column whose canonical key
//!     text does not cast back to the column's exact values. A NULL cell is an absent field.
//!     Values are **text** (`arrow::compute::cast` to Utf8, read back with a cast from Utf8)
//!     for booleans, numbers, decimals, strings, dates, times and timestamps when the column
//!     survives the round trip exactly (checked at publish time), otherwise **ipc**: the
//!     Arrow IPC stream of a one-row, one-column batch (lists, structs, maps, …).
//!
//!   Key columns not listed in `fields` are rebuilt from the requested key text.
//! * `fstore:online:{set}:gens`: a HASH whose fields are the generations `G` that exist
//!   (value: when the publication started, µs). A publisher claims its `G` here (`HSETNX`)
//!   before writing hashes, and retiring a generation removes it here *before* unlinking its
//!   hashes. A lookup ends its pipeline with `HEXISTS …:gens G`: if `G` is still there after
//!   all its `HMGET`s ran, none of them can have raced a deletion; if not, the lookup
//!   re-reads the pointer and runs again. So readers never see a partly deleted generation,
//!   whatever their pointer cache age.
//!
//! # Publishing
//!
//! Claim `G`; write every row with pipelined `HSET`s (1000 entities per pipeline, a few
//! pipelines in flight); swap the pointer; then retire generations other than the new and
//! the previous one (the previous one stays for a whole refresh cycle, so a reader that
//! read the old pointer a moment ago still finds its keys): drop them from `gens`, then
//! `SCAN 0 MATCH fstore:online:{set}:g*:* COUNT 1000` and `UNLINK` every hash whose
//! generation is no longer in `gens`. Generations newer than both kept ones are left alone
//! (another publisher may be writing them); they are retired by a later, newer publication.
//! A publication that fails before the swap removes what it wrote (best effort) and leaves
//! the previous snapshot serving; a failure while retiring old generations after the swap
//! is only logged (the new snapshot is live).
//!
//! Publications of one set are meant to run one at a time (the refresh scheduler's job);
//! concurrent ones still never mix rows of two snapshots, and the last swap wins.
//!
//! Durability is Redis's: a snapshot survives a Redis restart only if Redis persists
//! (RDB/AOF).
//!
//! # Lookups
//!
//! The parsed pointer is cached per set for at most 500 ms; a lookup is then one pipeline
//! of `HMGET {set}:g{G}:{entity} __k f1 f2 …` per key (plus the `HEXISTS` above). The result
//! has the snapshot's schema with every column nullable: a key that is not found gives a
//! row of NULLs, key columns included.
//!
//! # Connections
//!
//! The [`redis`] crate's [`ConnectionManager`]: one multiplexed connection for lookups and
//! one for publishing and removing, each reconnecting by itself after a failure (a few
//! attempts with a short backoff, then commands fail as `Unavailable`). A command whose
//! connection dropped under it is sent once more on the new connection when running it
//! twice changes nothing (reads, `HSET`s of the same values, deletions); the generation
//! claim (`HSETNX`) and the swap (`GETSET`) are not. Connecting times out after
//! [`CONNECT_TIMEOUT`], a command or pipeline after [`RESPONSE_TIMEOUT`]. TLS (`rediss://`)
//! uses rustls with the system's root certificates.

use std::collections::{HashMap, HashSet};
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringArray, new_null_array,
};
use datafusion::arrow::compute::{CastOptions, can_cast_types, cast, cast_with_options, concat};
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use futures::{StreamExt, TryStreamExt};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisError, Value};
use serde::{Deserialize, Serialize};

use super::key::row_key;
use super::{EntityKey, Lookup, OnlineStore, Result, Snapshot, SnapshotInfo};
use crate::error::{ErrorKind, FStoreError};

/// Prefix of every key the store writes.
pub const KEY_PREFIX: &str = "fstore:online:";
/// The hash field holding the entity key text.
pub const KEY_FIELD: &str = "__k";
/// How long a parsed pointer is reused without asking Redis.
pub const POINTER_CACHE_TTL: Duration = Duration::from_millis(500);
/// Entities per `HSET` pipeline when publishing.
const WRITE_CHUNK: usize = 1000;
/// `HSET` pipelines in flight at once when publishing.
const WRITE_CONCURRENCY: usize = 4;
/// Lookups retried when their generation is retired under them.
const LOOKUP_ATTEMPTS: usize = 4;

/// How a stored column's cells are written in the hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Encoding {
    /// The cell cast to Utf8.
    Text,
    /// Arrow IPC stream of a one-row, one-column batch.
    Ipc,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredField {
    name: String,
    encoding: Encoding,
}

/// The JSON of the pointer key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pointer {
    info: SnapshotInfo,
    schema: Schema,
    key_generation: u64,
    fields: Vec<StoredField>,
}

/// Where a result column comes from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// Part `n` of the requested key text.
    KeyText(usize),
    /// Reply element `n` of the HMGET (after `__k`), so encoded.
    Field(usize, Encoding),
}

/// A pointer, parsed and checked, ready for lookups.
#[derive(Debug)]
struct Loaded {
    info: SnapshotInfo,
    key_generation: u64,
    schema: SchemaRef,
    /// The schema with every column nullable (rows of missing keys are NULL).
    out_schema: SchemaRef,
    sources: Vec<Source>,
    /// `__k` then the stored fields: the HMGET arguments after the key.
    hmget_fields: Vec<Vec<u8>>,
}

impl Loaded {
    fn new(pointer: Pointer) -> std::result::Result<Loaded, String> {
        let schema = Arc::new(pointer.schema);
        let mut sources = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let name = field.name();
            if let Some(n) = pointer.fields.iter().position(|f| f.name == *name) {
                sources.push(Source::Field(n, pointer.fields[n].encoding));
            } else if let Some(n) = pointer.info.key_columns.iter().position(|k| k == name) {
                sources.push(Source::KeyText(n));
            } else {
                return Err(format!("column {name} is neither stored nor a key column"));
            }
        }
        let out_schema = Arc::new(Schema::new_with_metadata(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<Field>>(),
            schema.metadata().clone(),
        ));
        let mut hmget_fields = vec![KEY_FIELD.as_bytes().to_vec()];
        hmget_fields.extend(pointer.fields.iter().map(|f| f.name.as_bytes().to_vec()));
        Ok(Loaded {
            info: pointer.info,
            key_generation: pointer.key_generation,
            schema,
            out_schema,
            sources,
            hmget_fields,
        })
    }
}

/// The key names of one set.
struct Keys {
    /// The set name as it appears in keys.
    token: String,
    /// `fstore:online:{set}:g` — what every entity hash key of the set starts with.
    entity_prefix: String,
}

impl Keys {
    fn new(set: &str) -> Keys {
        let mut token = String::with_capacity(set.len());
        for c in set.chars() {
            match c {
                '%' => token.push_str("%25"),
                ':' => token.push_str("%3A"),
                c => token.push(c),
            }
        }
        let entity_prefix = format!("{KEY_PREFIX}{token}:g");
        Keys {
            token,
            entity_prefix,
        }
    }

    fn pointer(&self) -> String {
        format!("{KEY_PREFIX}{}", self.token)
    }

    fn generations(&self) -> String {
        format!("{KEY_PREFIX}{}:gens", self.token)
    }

    fn entity(&self, generation: u64, encoded_key: &str) -> Vec<u8> {
        format!("{KEY_PREFIX}{}:g{generation}:{encoded_key}", self.token).into_bytes()
    }

    /// SCAN pattern of every entity hash of the set, any generation.
    fn entity_pattern(&self) -> String {
        format!("{}*:*", glob_escape(&self.entity_prefix))
    }

    /// The generation of an entity hash key of this set.
    fn generation_of(&self, key: &[u8]) -> Option<u64> {
        let rest = key.strip_prefix(self.entity_prefix.as_bytes())?;
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || rest.get(digits) != Some(&b':') {
            return None;
        }
        std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
    }
}

/// Escapes the glob metacharacters of a Redis MATCH pattern.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A column's cells, encoded for the hashes.
enum Encoded {
    Text(StringArray),
    Ipc(Vec<Option<Vec<u8>>>),
}

impl Encoded {
    fn encoding(&self) -> Encoding {
        match self {
            Encoded::Text(_) => Encoding::Text,
            Encoded::Ipc(_) => Encoding::Ipc,
        }
    }

    fn value(&self, row: usize) -> Option<&[u8]> {
        match self {
            Encoded::Text(a) => (!a.is_null(row)).then(|| a.value(row).as_bytes()),
            Encoded::Ipc(v) => v[row].as_deref(),
        }
    }
}

/// Types whose text form is tried (and kept when it round-trips exactly).
fn text_candidate(dt: &DataType) -> bool {
    use DataType::*;
    matches!(
        dt,
        Boolean
            | Int8
            | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
            | Float16
            | Float32
            | Float64
            | Utf8
            | LargeUtf8
            | Utf8View
            | Date32
            | Date64
            | Time32(_)
            | Time64(_)
            | Timestamp(..)
            | Decimal32(..)
            | Decimal64(..)
            | Decimal128(..)
            | Decimal256(..)
    )
}

/// The column as text, if casting it to Utf8 and back gives exactly the column.
fn text_encode(column: &ArrayRef) -> Option<StringArray> {
    let dt = column.data_type();
    if !text_candidate(dt)
        || !can_cast_types(dt, &DataType::Utf8)
        || !can_cast_types(&DataType::Utf8, dt)
    {
        return None;
    }
    let text = cast(column, &DataType::Utf8).ok()?;
    let back = cast(&text, dt).ok()?;
    if back.as_ref() != column.as_ref() {
        return None;
    }
    Some(text.as_string::<i32>().clone())
}

fn ipc_encode(field: &Field, column: &ArrayRef) -> Result<Vec<Option<Vec<u8>>>> {
    let schema = Arc::new(Schema::new(vec![field.clone()]));
    let nulls = column.logical_nulls();
    (0..column.len())
        .map(|row| {
            if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                return Ok(None);
            }
            let batch = RecordBatch::try_new(schema.clone(), vec![column.slice(row, 1)])?;
            let mut writer = StreamWriter::try_new(Vec::new(), &schema)?;
            writer.write(&batch)?;
            writer.finish()?;
            Ok(Some(writer.into_inner()?))
        })
        .collect::<std::result::Result<_, datafusion::arrow::error::ArrowError>>()
        .map_err(|e| {
            FStoreError::new(
                ErrorKind::Internal,
                format!("cannot encode column {} for Redis: {e}", field.name()),
            )
        })
}

fn ipc_decode(bytes: &[u8], field: &Field) -> std::result::Result<ArrayRef, String> {
    let mut reader = StreamReader::try_new(Cursor::new(bytes), None).map_err(|e| e.to_string())?;
    let batch = reader
        .next()
        .ok_or("no batch")?
        .map_err(|e| e.to_string())?;
    if batch.num_columns() != 1 || batch.num_rows() != 1 {
        return Err(format!(
            "{} columns, {} rows",
            batch.num_columns(),
            batch.num_rows()
        ));
    }
    let column = batch.column(0).clone();
    if column.data_type() != field.data_type() {
        return Err(format!(
            "type {} instead of {}",
            column.data_type(),
            field.data_type()
        ));
    }
    Ok(column)
}

/// `Utf8` texts → the column type (an unparsable text is an error, not a NULL).
fn from_text(texts: StringArray, dt: &DataType) -> std::result::Result<ArrayRef, String> {
    let texts: ArrayRef = Arc::new(texts);
    if dt == &DataType::Utf8 {
        return Ok(texts);
    }
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(&texts, dt, &options).map_err(|e| e.to_string())
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

/// How long opening a connection may take (each attempt).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a command or pipeline may wait for its replies.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts to reconnect after the first one failed, before commands fail (the next
/// command starts over).
const RECONNECT_RETRIES: usize = 1;

/// Whether a command may be sent again when the connection dropped under it (the manager
/// reconnects; the command may or may not have run): only for commands whose second run
/// changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Once,
    Never,
}

/// Checks a `redis://` or `rediss://` URL and makes a client for it; also returns the
/// `host:port` shown in messages.
fn open_client(url: &str) -> Result<(redis::Client, String)> {
    let bad = |why: &str| {
        FStoreError::invalid(format!(
            "bad Redis URL {:?}: {why} (expected redis[s]://[[user]:password@]host[:port][/db])",
            redact(url)
        ))
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
    if !matches!(parsed.scheme(), "redis" | "rediss") {
        return Err(bad("the scheme must be redis:// (or rediss:// for TLS)"));
    }
    let host = parsed
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("no host"))?;
    if !parsed.username().is_empty() && parsed.password().is_none() {
        return Err(bad(
            "a user name needs a password (redis://user:password@host)",
        ));
    }
    let path = parsed.path().trim_matches('/');
    if !path.is_empty() && path.parse::<u32>().is_err() {
        return Err(bad("the path must be a database number"));
    }
    let addr = format!("{host}:{}", parsed.port().unwrap_or(6379));
    let client = redis::Client::open(url).map_err(|e| bad(&e.to_string()))?;
    Ok((client, addr))
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(200) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Short description of a reply for error messages (never the whole payload).
fn describe(value: &Value) -> String {
    match value {
        Value::Nil => "nil".into(),
        Value::Int(i) => format!("integer {i}"),
        Value::BulkString(b) => format!("a {}-byte string", b.len()),
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::SimpleString(s) => format!("+{}", truncate(s)),
        Value::Okay => "+OK".into(),
        Value::ServerError(e) => format!("error {}", truncate(&e.to_string())),
        other => truncate(&format!("{other:?}")).to_string(),
    }
}

/// The text of the first error reply in `e` (`CODE detail`, as Redis sent it), if `e` is
/// one.
fn server_error_text(e: &RedisError) -> Option<String> {
    let errors = e.clone().into_server_errors()?;
    let (_, first) = errors.first()?;
    Some(match first.details() {
        Some(detail) => format!("{} {detail}", first.code()),
        None => first.code().to_string(),
    })
}

/// The online store in Redis (see the module documentation for the layout).
///
/// Two multiplexed connections, each a [`ConnectionManager`] (cheap to clone, reconnects by
/// itself after a failure): one for lookups and pointer reads, one for publishing and
/// removing, so the large write pipelines of a publication do not queue in front of
/// lookups. The pointer cache is an [`ArcSwap`]ped map: lookups take no lock.
pub struct RedisStore {
    reads: ConnectionManager,
    writes: ConnectionManager,
    /// `host:port`, for messages.
    addr: String,
    pointers: ArcSwap<HashMap<String, (Instant, Arc<Loaded>)>>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("addr", &self.addr)
            .finish()
    }
}

impl RedisStore {
    /// Connects to `redis://[[user]:password@]host[:port][/db]` (`rediss://` for TLS) and
    /// checks the server answers PING. The connection for publishing opens on first use.
    pub async fn connect(url: &str) -> Result<RedisStore> {
        let (client, addr) = open_client(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(Duration::from_millis(100))
            .set_max_delay(Duration::from_secs(1));
        let unreachable =
            |e: RedisError| FStoreError::unavailable(format!("cannot reach Redis at {addr}: {e}"));
        let first = ConnectionManager::new_with_config(client.clone(), config.clone());
        let reads = match tokio::time::timeout(CONNECT_TIMEOUT, first).await {
            Ok(connected) => connected.map_err(unreachable)?,
            Err(_) => {
                return Err(FStoreError::unavailable(format!(
                    "cannot reach Redis at {addr}: no connection within {} s",
                    CONNECT_TIMEOUT.as_secs_f64()
                )));
            }
        };
        let writes =
            ConnectionManager::new_lazy_with_config(client, config).map_err(unreachable)?;
        let store = RedisStore {
            reads,
            writes,
            addr,
            pointers: ArcSwap::from_pointee(HashMap::new()),
        };
        match redis::cmd("PING")
            .query_async::<Value>(&mut store.reads.clone())
            .await
        {
            Ok(Value::SimpleString(s)) if s == "PONG" => Ok(store),
            Ok(other) => Err(FStoreError::unavailable(format!(
                "the server at {} does not speak Redis: PING answered {}",
                store.addr,
                describe(&other)
            ))),
            Err(e) => Err(match server_error_text(&e) {
                Some(text) => FStoreError::unavailable(format!(
                    "Redis at {} refused PING: {text}",
                    store.addr
                )),
                None => store.redis_error("answer PING", e),
            }),
        }
    }

    /// Runs one command on `conn`.
    async fn command(
        &self,
        conn: &ConnectionManager,
        what: &str,
        cmd: &Cmd,
        retry: Retry,
    ) -> Result<Value> {
        let mut conn = conn.clone();
        let mut result = cmd.query_async::<Value>(&mut conn).await;
        if retry == Retry::Once
            && result
                .as_ref()
                .is_err_and(RedisError::is_unrecoverable_error)
        {
            result = cmd.query_async::<Value>(&mut conn).await;
        }
        result.map_err(|e| self.redis_error(what, e))
    }

    /// Sends the commands of `pipe` in one write and returns their replies, in order.
    async fn pipeline(
        &self,
        conn: &ConnectionManager,
        what: &str,
        pipe: &Pipeline,
        retry: Retry,
    ) -> Result<Vec<Value>> {
        if pipe.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = conn.clone();
        let mut result = pipe.query_async::<Vec<Value>>(&mut conn).await;
        if retry == Retry::Once
            && result
                .as_ref()
                .is_err_and(RedisError::is_unrecoverable_error)
        {
            result = pipe.query_async::<Vec<Value>>(&mut conn).await;
        }
        let replies = result.map_err(|e| self.redis_error(what, e))?;
        if replies.len() != pipe.len() {
            return Err(FStoreError::new(
                ErrorKind::Internal,
                format!(
                    "Redis at {} answered {} commands to {what} with {} replies",
                    self.addr,
                    pipe.len(),
                    replies.len()
                ),
            ));
        }
        Ok(replies)
    }

    /// A failure of the client: an error reply, or the server could not be talked to.
    fn redis_error(&self, what: &str, e: RedisError) -> FStoreError {
        let addr = &self.addr;
        if let Some(text) = server_error_text(&e) {
            return self.failed(what, &text);
        }
        if e.is_timeout() {
            return FStoreError::unavailable(format!(
                "Redis at {addr} did not answer in time ({} s to connect, {} s per command): {e}",
                CONNECT_TIMEOUT.as_secs_f64(),
                RESPONSE_TIMEOUT.as_secs_f64()
            ));
        }
        match e.kind() {
            redis::ErrorKind::Io | redis::ErrorKind::AuthenticationFailed => {
                FStoreError::unavailable(format!("Redis at {addr}: {e}"))
            }
            redis::ErrorKind::Parse => {
                FStoreError::unavailable(format!("Redis at {addr}: protocol error: {e}"))
            }
            _ => FStoreError::new(
                ErrorKind::Internal,
                format!("Redis at {addr} failed to {what}: {e}"),
            ),
        }
    }

    /// An error reply, classified.
    fn failed(&self, what: &str, error: &str) -> FStoreError {
        const UNAVAILABLE: &[&str] = &[
            "LOADING",
            "READONLY",
            "MASTERDOWN",
            "BUSY",
            "NOAUTH",
            "WRONGPASS",
            "NOPERM",
            "CLUSTERDOWN",
            "TRYAGAIN",
            "MISCONF",
            "MOVED",
            "ASK",
        ];
        let kind = if error.starts_with("OOM") {
            ErrorKind::ResourceExhausted
        } else if UNAVAILABLE.iter().any(|p| error.starts_with(p)) {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Internal
        };
        FStoreError::new(
            kind,
            format!("Redis at {} failed to {what}: {error}", self.addr),
        )
    }

    fn unexpected(&self, what: &str, reply: &Value) -> FStoreError {
        FStoreError::new(
            ErrorKind::Internal,
            format!(
                "Redis at {} answered {what} with {}",
                self.addr,
                describe(reply)
            ),
        )
    }

    fn corrupt(&self, set: &str, why: impl std::fmt::Display) -> FStoreError {
        FStoreError::new(
            ErrorKind::Internal,
            format!(
                "the online copy of feature set {set} in Redis at {} is corrupt: {why}",
                self.addr
            ),
        )
    }

    fn parse_pointer(&self, set: &str, bytes: &[u8]) -> Result<Arc<Loaded>> {
        let pointer: Pointer = serde_json::from_slice(bytes).map_err(|e| self.corrupt(set, e))?;
        Loaded::new(pointer)
            .map(Arc::new)
            .map_err(|e| self.corrupt(set, e))
    }

    fn cache(&self, set: &str, loaded: Option<Arc<Loaded>>) {
        let now = Instant::now();
        self.pointers.rcu(|pointers| {
            let mut pointers = HashMap::clone(pointers);
            match &loaded {
                Some(l) => {
                    pointers.insert(set.to_string(), (now, Arc::clone(l)));
                }
                None => {
                    pointers.remove(set);
                }
            }
            pointers
        });
    }

    /// The set's pointer: from the cache when younger than [`POINTER_CACHE_TTL`] (unless
    /// `fresh`), else read from Redis.
    async fn pointer(&self, set: &str, fresh: bool) -> Result<Option<Arc<Loaded>>> {
        if !fresh
            && let Some((at, loaded)) = self.pointers.load().get(set)
            && at.elapsed() < POINTER_CACHE_TTL
        {
            return Ok(Some(Arc::clone(loaded)));
        }
        let what = format!("read the pointer of feature set {set}");
        let get = redis::cmd("GET").arg(Keys::new(set).pointer()).clone();
        let loaded = match self.command(&self.reads, &what, &get, Retry::Once).await? {
            Value::Nil => None,
            Value::BulkString(bytes) => Some(self.parse_pointer(set, &bytes)?),
            other => return Err(self.unexpected(&what, &other)),
        };
        self.cache(set, loaded.clone());
        Ok(loaded)
    }

    /// The generations listed in the set's `gens` hash.
    async fn live_generations(&self, keys: &Keys) -> Result<HashSet<u64>> {
        let what = "list generations";
        let hkeys = redis::cmd("HKEYS").arg(keys.generations()).clone();
        match self
            .command(&self.writes, what, &hkeys, Retry::Once)
            .await?
        {
            Value::Array(items) | Value::Set(items) => Ok(items
                .iter()
                .filter_map(|i| match i {
                    Value::BulkString(b) => std::str::from_utf8(b).ok()?.parse().ok(),
                    Value::SimpleString(s) => s.parse().ok(),
                    _ => None,
                })
                .collect()),
            other => Err(self.unexpected(what, &other)),
        }
    }

    /// Claims a generation number for a new publication, starting at `wanted`.
    async fn claim_generation(&self, set: &str, keys: &Keys, wanted: u64) -> Result<u64> {
        let what = format!("claim a generation of feature set {set}");
        for _ in 0..16 {
            let taken = self.live_generations(keys).await?;
            let candidate = if taken.contains(&wanted) {
                taken.iter().max().copied().unwrap_or(wanted).max(wanted) + 1
            } else {
                wanted
            };
            let hsetnx = redis::cmd("HSETNX")
                .arg(keys.generations())
                .arg(candidate)
                .arg(now_micros())
                .clone();
            // Not retried: a claim that did run would be seen as taken by another publication.
            match self
                .command(&self.writes, &what, &hsetnx, Retry::Never)
                .await?
            {
                Value::Int(1) => return Ok(candidate),
                Value::Int(0) => continue,
                other => return Err(self.unexpected(&what, &other)),
            }
        }
        Err(FStoreError::new(
            ErrorKind::Conflict,
            format!(
                "cannot claim a generation of feature set {set}: other publications keep taking them"
            ),
        ))
    }

    /// UNLINKs every entity hash of the set whose generation satisfies `doomed` (a `SCAN`
    /// cursor loop; each batch of keys found is unlinked before the next `SCAN`).
    async fn unlink_generations(&self, keys: &Keys, doomed: impl Fn(u64) -> bool) -> Result<u64> {
        let pattern = keys.entity_pattern();
        let mut cursor = b"0".to_vec();
        let mut unlinked = 0;
        loop {
            let scan = redis::cmd("SCAN")
                .arg(&cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .clone();
            let reply = self
                .command(&self.writes, "SCAN", &scan, Retry::Once)
                .await?;
            let (next, found) = match reply {
                Value::Array(mut parts) if parts.len() == 2 => {
                    let found = parts.pop().expect("two parts");
                    let next = parts.pop().expect("two parts");
                    match (next, found) {
                        (Value::BulkString(next), Value::Array(found)) => (next, found),
                        (next, _) => return Err(self.unexpected("SCAN", &next)),
                    }
                }
                other => return Err(self.unexpected("SCAN", &other)),
            };
            let mut unlink = redis::cmd("UNLINK");
            let mut n = 0u64;
            for key in found {
                if let Value::BulkString(key) = key
                    && keys.generation_of(&key).is_some_and(&doomed)
                {
                    unlink.arg(key);
                    n += 1;
                }
            }
            if n > 0 {
                let what = "UNLINK old generations";
                match self
                    .command(&self.writes, what, &unlink, Retry::Once)
                    .await?
                {
                    Value::Int(_) => unlinked += n,
                    other => return Err(self.unexpected(what, &other)),
                }
            }
            if next == b"0" {
                return Ok(unlinked);
            }
            cursor = next;
        }
    }

    /// After a swap to `current`: retires generations other than `current` and `previous`
    /// that are older than the newer of the two.
    async fn retire(
        &self,
        set: &str,
        keys: &Keys,
        current: u64,
        previous: Option<u64>,
    ) -> Result<()> {
        let newest_kept = previous.map_or(current, |p| p.max(current));
        let old: Vec<u64> = self
            .live_generations(keys)
            .await?
            .into_iter()
            .filter(|&g| g != current && Some(g) != previous && g < newest_kept)
            .collect();
        if old.is_empty() {
            return Ok(());
        }
        let what = "retire old generations";
        let hdel = redis::cmd("HDEL").arg(keys.generations()).arg(&old).clone();
        let reply = self.command(&self.writes, what, &hdel, Retry::Once).await?;
        if !matches!(reply, Value::Int(_)) {
            return Err(self.unexpected(what, &reply));
        }
        // Anything older not in `gens` now is retired (or an orphan of a failed publication);
        // newer generations may be being written by another publication.
        let live = self.live_generations(keys).await?;
        let n = self
            .unlink_generations(keys, |g| g < newest_kept && !live.contains(&g))
            .await?;
        tracing::debug!(set, generations = ?old, hashes = n, "retired old online generations");
        Ok(())
    }

    /// Writes the rows of a snapshot as generation `generation`: one pipeline of `HSET`s per
    /// [`WRITE_CHUNK`] entities, [`WRITE_CONCURRENCY`] pipelines in flight.
    async fn write_rows(
        &self,
        set: &str,
        keys: &Keys,
        generation: u64,
        entity_keys: &[Option<String>],
        stored: &[(String, Encoded)],
    ) -> Result<()> {
        let what = format!("write the online rows of feature set {set}");
        let rows: Vec<usize> = (0..entity_keys.len())
            .filter(|&r| entity_keys[r].is_some())
            .collect();
        futures::stream::iter((0..rows.len()).step_by(WRITE_CHUNK))
            .map(|start| {
                let end = (start + WRITE_CHUNK).min(rows.len());
                let mut pipe = Pipeline::with_capacity(end - start);
                for &row in &rows[start..end] {
                    let key = entity_keys[row].as_deref().expect("rows with keys");
                    pipe.cmd("HSET")
                        .arg(keys.entity(generation, key))
                        .arg(KEY_FIELD)
                        .arg(key);
                    for (name, encoded) in stored {
                        if let Some(v) = encoded.value(row) {
                            pipe.arg(name.as_str()).arg(v);
                        }
                    }
                }
                let what = &what;
                async move {
                    // HSET of the same values again changes nothing: retried.
                    let replies = self
                        .pipeline(&self.writes, what, &pipe, Retry::Once)
                        .await?;
                    match replies.iter().find(|r| !matches!(r, Value::Int(_))) {
                        Some(bad) => Err(self.unexpected(what, bad)),
                        None => Ok(()),
                    }
                }
            })
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    /// Removes what a failed publication wrote (best effort).
    async fn abandon(&self, set: &str, keys: &Keys, generation: u64) {
        let hdel = redis::cmd("HDEL")
            .arg(keys.generations())
            .arg(generation)
            .clone();
        let result = match self
            .command(&self.writes, "abandon a publication", &hdel, Retry::Once)
            .await
        {
            Ok(_) => self
                .unlink_generations(keys, |g| g == generation)
                .await
                .map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            tracing::warn!(
                set,
                generation,
                "cannot remove a failed online publication: {e}"
            );
        }
    }
}

#[async_trait]
impl OnlineStore for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn publish(&self, snapshot: Snapshot) -> Result<()> {
        let Snapshot { info, batch } = snapshot;
        let set = info.set.clone();
        let schema = batch.schema();
        let key_columns: Vec<usize> = info
            .key_columns
            .iter()
            .map(|k| {
                schema.index_of(k).map_err(|_| {
                    FStoreError::invalid(format!(
                        "the snapshot of feature set {set} has no key column {k}"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        if key_columns.is_empty() {
            return Err(FStoreError::invalid(format!(
                "the snapshot of feature set {set} has no key columns"
            )));
        }

        // Entity keys (rows with a NULL key can never be looked up: skipped).
        let key_arrays: Vec<_> = key_columns
            .iter()
            .map(|&c| Arc::clone(batch.column(c)))
            .collect();
        let entity_keys: Vec<Option<String>> = (0..batch.num_rows())
            .map(|row| row_key(&key_arrays, row))
            .collect();
        let mut seen = HashSet::with_capacity(entity_keys.len());
        for key in entity_keys.iter().flatten() {
            if !seen.insert(key.as_str()) {
                return Err(FStoreError::invalid(format!(
                    "the snapshot of feature set {set} has the key {:?} twice",
                    key.replace(super::key::KEY_SEPARATOR, ", ")
                )));
            }
        }
        drop(seen);

        // Stored columns: non-key columns, and key columns whose key text does not cast
        // back to the same values.
        let mut stored: Vec<(String, Encoded)> = Vec::new();
        for (c, field) in schema.fields().iter().enumerate() {
            let column = batch.column(c);
            if let Some(part) = key_columns.iter().position(|&k| k == c) {
                let texts: StringArray = entity_keys
                    .iter()
                    .map(|k| {
                        k.as_deref()
                            .map(|k| k.split(super::key::KEY_SEPARATOR).nth(part).unwrap_or(""))
                    })
                    .collect();
                let exact = from_text(texts, field.data_type())
                    .is_ok_and(|back| back.as_ref() == column.as_ref());
                if exact {
                    continue;
                }
            }
            if field.name() == KEY_FIELD {
                return Err(FStoreError::invalid(format!(
                    "feature set {set} has a column named {KEY_FIELD}, which the Redis online store reserves"
                )));
            }
            if stored.iter().any(|(n, _)| n == field.name()) {
                return Err(FStoreError::invalid(format!(
                    "the snapshot of feature set {set} has two columns named {}",
                    field.name()
                )));
            }
            let encoded = match text_encode(column) {
                Some(text) => Encoded::Text(text),
                None => Encoded::Ipc(ipc_encode(field, column)?),
            };
            stored.push((field.name().clone(), encoded));
        }

        let keys = Keys::new(&set);
        let generation = self.claim_generation(&set, &keys, info.generation).await?;
        let pointer = Pointer {
            info: info.clone(),
            schema: schema.as_ref().clone(),
            key_generation: generation,
            fields: stored
                .iter()
                .map(|(name, e)| StoredField {
                    name: name.clone(),
                    encoding: e.encoding(),
                })
                .collect(),
        };
        let json = serde_json::to_vec(&pointer).map_err(|e| {
            FStoreError::new(
                ErrorKind::Internal,
                format!("cannot serialise the online pointer of feature set {set}: {e}"),
            )
        })?;
        let loaded = Arc::new(Loaded::new(pointer).map_err(|e| {
            FStoreError::new(ErrorKind::Internal, format!("online pointer of {set}: {e}"))
        })?);

        if let Err(e) = self
            .write_rows(&set, &keys, generation, &entity_keys, &stored)
            .await
        {
            self.abandon(&set, &keys, generation).await;
            return Err(e);
        }

        // The swap.
        let what = format!("publish feature set {set}");
        let getset = redis::cmd("GETSET").arg(keys.pointer()).arg(json).clone();
        // Not retried: a swap that did run would make our own pointer look like the previous.
        let swapped = getset.query_async::<Value>(&mut self.writes.clone()).await;
        let previous = match swapped {
            Ok(Value::Nil) => None,
            Ok(Value::BulkString(old)) => match serde_json::from_slice::<Pointer>(&old) {
                Ok(p) => Some(p.key_generation),
                Err(e) => {
                    tracing::warn!(set, "the previous online pointer was unreadable: {e}");
                    None
                }
            },
            Ok(other) => {
                self.abandon(&set, &keys, generation).await;
                return Err(self.unexpected(&what, &other));
            }
            Err(e) if server_error_text(&e).is_some() => {
                // An error reply: the swap did not happen.
                self.abandon(&set, &keys, generation).await;
                return Err(self.redis_error(&what, e));
            }
            Err(e) => {
                // Unknown whether the swap happened: leave the generation in place (a later
                // publication retires it if it is not live).
                return Err(self.redis_error(&what, e));
            }
        };
        self.cache(&set, Some(loaded));
        tracing::debug!(
            set,
            generation,
            ?previous,
            rows = batch.num_rows(),
            "published online snapshot to Redis"
        );

        if let Err(e) = self.retire(&set, &keys, generation, previous).await {
            tracing::warn!(set, "cannot delete old online generations from Redis: {e}");
        }
        Ok(())
    }

    async fn lookup(&self, set: &str, keys: &[EntityKey]) -> Result<Option<Lookup>> {
        let names = Keys::new(set);
        let mut fresh = false;
        for _ in 0..LOOKUP_ATTEMPTS {
            let Some(loaded) = self.pointer(set, fresh).await? else {
                return Ok(None);
            };
            let n_parts = loaded.info.key_columns.len();
            if let Some(bad) = keys.iter().find(|k| k.0.len() != n_parts) {
                return Err(FStoreError::invalid(format!(
                    "feature set {set} is keyed by {} ({n_parts} values), got a key of {} values",
                    loaded.info.key_columns.join(", "),
                    bad.0.len()
                )));
            }
            let generation = loaded.key_generation;
            let mut pipe = Pipeline::with_capacity(keys.len() + 1);
            for key in keys {
                pipe.cmd("HMGET")
                    .arg(names.entity(generation, &key.encoded()))
                    .arg(&loaded.hmget_fields);
            }
            pipe.cmd("HEXISTS").arg(names.generations()).arg(generation);
            let mut replies = self
                .pipeline(&self.reads, "HMGET", &pipe, Retry::Once)
                .await?;
            let live = replies.pop().expect("one reply per command");
            match live {
                Value::Int(1) => {}
                Value::Int(_) => {
                    // The generation was retired (or the set removed) under us.
                    fresh = true;
                    continue;
                }
                other => return Err(self.unexpected("check the generation", &other)),
            }
            return self.build(set, &loaded, keys, replies).map(Some);
        }
        Err(FStoreError::unavailable(format!(
            "feature set {set} changed in Redis at {} during every attempt to look it up",
            self.addr
        )))
    }

    async fn describe(&self, set: &str) -> Result<Option<(SnapshotInfo, SchemaRef)>> {
        Ok(self
            .pointer(set, true)
            .await?
            .map(|l| (l.info.clone(), l.schema.clone())))
    }

    async fn remove(&self, set: &str) -> Result<()> {
        let keys = Keys::new(set);
        let what = format!("remove feature set {set}");
        let mut pipe = Pipeline::with_capacity(2);
        pipe.cmd("DEL")
            .arg(keys.pointer())
            .cmd("DEL")
            .arg(keys.generations());
        let replies = self.pipeline(&self.writes, &what, &pipe, Retry::Once).await;
        self.cache(set, None);
        if let Some(bad) = replies?.iter().find(|r| !matches!(r, Value::Int(_))) {
            return Err(self.unexpected(&what, bad));
        }
        self.unlink_generations(&keys, |_| true).await?;
        Ok(())
    }
}

impl RedisStore {
    /// The lookup result from the HMGET replies.
    fn build(
        &self,
        set: &str,
        loaded: &Loaded,
        keys: &[EntityKey],
        replies: Vec<Value>,
    ) -> Result<Lookup> {
        let width = loaded.hmget_fields.len();
        let rows: Vec<Option<Vec<Value>>> = replies
            .into_iter()
            .map(|r| match r {
                Value::Array(values) if values.len() == width => {
                    Ok((!matches!(values[0], Value::Nil)).then_some(values))
                }
                other => Err(self.unexpected("HMGET", &other)),
            })
            .collect::<Result<_>>()?;
        let found: Vec<bool> = rows.iter().map(Option::is_some).collect();
        let corrupt =
            |column: &str, why: String| self.corrupt(set, format!("column {column}: {why}"));

        let mut columns: Vec<ArrayRef> = Vec::with_capacity(loaded.sources.len());
        for (field, source) in loaded.schema.fields().iter().zip(&loaded.sources) {
            let dt = field.data_type();
            let column = match *source {
                Source::KeyText(part) => {
                    let texts: StringArray = keys
                        .iter()
                        .zip(&found)
                        .map(|(k, &f)| f.then(|| k.0[part].as_str()))
                        .collect();
                    from_text(texts, dt).map_err(|e| corrupt(field.name(), e))?
                }
                Source::Field(n, Encoding::Text) => {
                    let texts = rows
                        .iter()
                        .map(|row| match row.as_ref().map(|v| &v[1 + n]) {
                            None | Some(Value::Nil) => Ok(None),
                            Some(Value::BulkString(b)) => std::str::from_utf8(b)
                                .map(Some)
                                .map_err(|_| "a value is not UTF-8".to_string()),
                            Some(other) => Err(format!("a value is {}", describe(other))),
                        })
                        .collect::<std::result::Result<StringArray, String>>()
                        .map_err(|e| corrupt(field.name(), e))?;
                    from_text(texts, dt).map_err(|e| corrupt(field.name(), e))?
                }
                Source::Field(n, Encoding::Ipc) => {
                    let cells = rows
                        .iter()
                        .map(|row| match row.as_ref().map(|v| &v[1 + n]) {
                            None | Some(Value::Nil) => Ok(new_null_array(dt, 1)),
                            Some(Value::BulkString(b)) => ipc_decode(b, field),
                            Some(other) => Err(format!("a value is {}", describe(other))),
                        })
                        .collect::<std::result::Result<Vec<ArrayRef>, String>>()
                        .map_err(|e| corrupt(field.name(), e))?;
                    if cells.is_empty() {
                        new_null_array(dt, 0)
                    } else {
                        let refs: Vec<&dyn Array> = cells.iter().map(|c| c.as_ref()).collect();
                        concat(&refs).map_err(|e| corrupt(field.name(), e.to_string()))?
                    }
                }
            };
            columns.push(column);
        }
        let batch = RecordBatch::try_new_with_options(
            loaded.out_schema.clone(),
            columns,
            &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(keys.len())),
        )
        .map_err(|e| self.corrupt(set, e))?;
        Ok(Lookup {
            info: loaded.info.clone(),
            batch,
            found,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        BooleanArray, Decimal128Array, Float64Array, Int32Array, Int64Array, ListArray,
        TimestampMicrosecondArray,
    };
    use datafusion::arrow::datatypes::Int32Type;

    #[test]
    fn parses_urls() {
        let (_, addr) = open_client("redis://127.0.0.1:6380").unwrap();
        assert_eq!(addr, "127.0.0.1:6380");
        let (client, addr) = open_client("redis://:s%40cret@cache/3").unwrap();
        assert_eq!(addr, "cache:6379");
        let info = client.get_connection_info();
        assert_eq!(info.redis_settings().password(), Some("s@cret"));
        assert_eq!(info.redis_settings().db(), 3);
        let (_, addr) = open_client("redis://app:pw@[::1]:7000/").unwrap();
        assert_eq!(addr, "[::1]:7000");
        // TLS is compiled in.
        let (client, addr) = open_client("rediss://cache.example:6380/1").unwrap();
        assert_eq!(addr, "cache.example:6380");
        assert!(matches!(
            client.get_connection_info().addr(),
            redis::ConnectionAddr::TcpTls { .. }
        ));
        for bad in [
            "http://h:1",
            "redis://h:1/x",
            "redis://user@h",
            "redis://",
            "nope",
        ] {
            let e = open_client(bad).unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidArgument, "{bad}");
        }
        let e = open_client("redis://:hunter2@h:1/x").unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }

    #[test]
    fn set_names_are_encoded_and_escaped() {
        let k = Keys::new("a:b%c*");
        assert_eq!(k.pointer(), "fstore:online:a%3Ab%25c*");
        assert_eq!(k.generations(), "fstore:online:a%3Ab%25c*:gens");
        assert_eq!(k.entity_pattern(), "fstore:online:a%3Ab%25c\\*:g*:*");
        assert_eq!(glob_escape("x?[y]\\"), "x\\?\\[y\\]\\\\");
        let key = k.entity(42, "7\u{1f}x:y");
        assert_eq!(k.generation_of(&key), Some(42));
        assert_eq!(k.generation_of(b"fstore:online:a%3Ab%25c*:gens"), None);
        assert_eq!(k.generation_of(b"fstore:online:a%3Ab%25c*:g:x"), None);
        assert_eq!(k.generation_of(b"fstore:online:other:g1:x"), None);
    }

    #[test]
    fn text_encoding_round_trips_or_falls_back_to_ipc() {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(1), None, Some(i64::MIN)])),
            Arc::new(Float64Array::from(vec![
                Some(0.1),
                Some(-0.0),
                Some(1e300 / 7.0),
            ])),
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            Arc::new(
                TimestampMicrosecondArray::from(vec![Some(1_700_000_000_123_456), None, Some(0)])
                    .with_timezone("UTC"),
            ),
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(-1),
                None,
                Some(5),
            ])),
            Arc::new(
                Decimal128Array::from(vec![Some(12345), None, Some(-1)])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
        ];
        for column in columns {
            let text = text_encode(&column)
                .unwrap_or_else(|| panic!("{} should be text", column.data_type()));
            let back = from_text(text, column.data_type()).unwrap();
            assert_eq!(back.as_ref(), column.as_ref());
        }
        let list: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
            Some(vec![Some(1), None]),
            None,
            Some(vec![]),
        ]));
        assert!(text_encode(&list).is_none());
        let field = Field::new("l", list.data_type().clone(), true);
        let cells = ipc_encode(&field, &list).unwrap();
        assert!(cells[1].is_none());
        let decoded: Vec<ArrayRef> = cells
            .iter()
            .map(|c| match c {
                Some(b) => ipc_decode(b, &field).unwrap(),
                None => new_null_array(field.data_type(), 1),
            })
            .collect();
        let refs: Vec<&dyn Array> = decoded.iter().map(|c| c.as_ref()).collect();
        assert_eq!(concat(&refs).unwrap().as_ref(), list.as_ref());
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![1]));
        assert!(from_text(StringArray::from(vec!["x"]), ints.data_type()).is_err());
    }
}
