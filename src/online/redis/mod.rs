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

mod connection;
mod encoding;
mod lookup;
mod store;
#[cfg(test)]
mod tests;

use connection::*;
use encoding::*;

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
