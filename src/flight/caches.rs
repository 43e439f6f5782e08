//! The server's bounded caches, on `moka` (concurrent, size-bounded, with time limits).
//!
//! Nothing in them is needed for correctness: tickets and prepared handles are
//! self-contained, so a miss only costs a re-plan.
//! - `planned`: the plan made for a `GetFlightInfo`, waiting for its `DoGet` (taken once);
//! - `looked_up`: the answer of an online lookup made for a `GetFlightInfo` (taken once);
//! - `prepared`: prepared statements' plans, by SQL text (checked against the registry
//!   version on use);
//! - `shapes`: plain statements' shapes (literals made parameters) and their lookups.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::dataframe::DataFrame;
use moka::sync::Cache;

use super::prepared::{LiteralShape, Prepared};

/// How long a plan made for `GetFlightInfo` waits for its `DoGet`.
const PLAN_TTL: Duration = Duration::from_secs(30);
/// Planned queries waiting for their `DoGet`.
const PLAN_CACHE: u64 = 256;
/// Prepared statements (and plain statement shapes) whose plans are kept.
const PREPARED_CACHE: u64 = 1024;

/// Results waiting for their `DoGet`, keyed by (principal, statement handle): one principal
/// never receives another's plan.
pub type TicketKey = (String, Bytes);

pub struct Caches {
    pub planned: Cache<TicketKey, DataFrame>,
    pub looked_up: Cache<TicketKey, RecordBatch>,
    pub prepared: Cache<String, Arc<Prepared>>,
    pub shapes: Cache<String, Arc<LiteralShape>>,
}

impl Default for Caches {
    fn default() -> Self {
        Self {
            planned: waiting(),
            looked_up: waiting(),
            prepared: Cache::new(PREPARED_CACHE),
            shapes: Cache::new(PREPARED_CACHE),
        }
    }
}

/// A cache of results waiting (a short while) for their `DoGet`.
fn waiting<V: Clone + Send + Sync + 'static>() -> Cache<TicketKey, V> {
    Cache::builder()
        .max_capacity(PLAN_CACHE)
        .time_to_live(PLAN_TTL)
        .build()
}
