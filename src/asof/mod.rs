//! The AS-OF join: for every row of the left table, the right row with equal keys whose time is
//! the nearest one on the allowed side of the left row's time — the point-in-time join of a
//! feature store. It is an operator, never a rewrite into join + window + filter.
//!
//! # SQL
//!
//! Snowflake's spelling, with Snowflake's semantics (every left row is kept):
//!
//! ```sql
//! SELECT e.*, f.amount
//! FROM events e
//! ASOF JOIN features f
//!   MATCH_CONDITION (e.ts >= f.ts [AND CREATED(f.created_ts)])
//!   [ON e.k = f.k [AND e.k2 = f.k2 …] [AND e.ts - f.ts <= INTERVAL '7 days']]
//! ```
//!
//! DuckDB's spelling, with DuckDB's semantics (`ASOF JOIN` is an inner join: left rows without a
//! match are dropped; `ASOF LEFT JOIN` keeps them). Snowflake's `ASOF JOIN` is always
//! left-preserving; that is the one difference between the two spellings:
//!
//! ```sql
//! FROM events e ASOF [LEFT [OUTER] | INNER] JOIN features f
//!   ON e.k = f.k AND e.ts >= f.ts [AND CREATED(f.created_ts)] [AND e.ts - f.ts <= INTERVAL '7 days']
//! ```
//!
//! - The time condition is one of `>=`, `>`, `<=`, `<` between an expression of the left table
//!   and one of the right table (either may be written first). `>=`/`>` look backward (the
//!   latest right row at or before the left time), `<=`/`<` look forward (the earliest one at or
//!   after it).
//! - Keys are equalities between the two tables, any number of them (none: match on time only).
//!   A NULL key never matches; neither does a NULL time on either side.
//! - Times may be timestamps of any unit and time zone, dates, or integers; the two sides are
//!   compared in their common (finest) unit, timestamps by instant whatever their zone. Dates
//!   compare with timestamps as midnight UTC. Integers compare only with integers.
//! - The optional look-back bound `later - earlier <= bound` (or `<`), where later/earlier are
//!   the two times of the condition (`e.ts - f.ts` for `>=`, `f.ts - e.ts` for `<=`), drops a
//!   match that is too far away: the left row then has no match (it does not fall back to an
//!   older row, which would be even further away). The bound is an interval literal (days, hours,
//!   … — not months, whose length varies) or, for integer and date times, an integer literal.
//! - Ties: several right rows with equal keys and equal time are one candidate. When the query
//!   names the right side's CREATED column with `CREATED(col)` (in `MATCH_CONDITION`, or in `ON`
//!   for DuckDB's spelling), the row with the greatest CREATED value wins (NULL ranks lowest),
//!   in either direction — CREATED is the time a value was written or corrected, and the latest
//!   correction is the truth. Rows still tied are ordered by their values in the right columns
//!   the query reads (in the right input's column order; arrow's row format: NULLs first,
//!   strings by bytes, floats by total order) and the greatest wins, so the answer never
//!   depends on how the input was split into partitions or batches. (Columns the query does
//!   not read are pruned before the join and take no part; a query that reads more right
//!   columns may therefore pick another of several rows that tie on key, time and CREATED.)
//! - Left rows are never merged: duplicates are all kept, each with its match.
//!
//! # From SQL to the operator
//!
//! 1. [`sql`] parses statements (DuckDB's spelling is made parseable at token level) and rewrites
//!    each `ASOF JOIN` into a plain `LEFT JOIN` (or `JOIN`) whose ON carries the marker
//!    [`marker::ASOF_MATCH`]`(left_time, 'op', right_time [, created [, 'op', bound]])`. The
//!    rewritten statement is ordinary SQL: views store it, and it re-plans after a restart.
//! 2. [`logical::AsOfJoinRule`] (an analyzer rule, so that no optimizer rule ever sees the marker)
//!    replaces such a join by the [`logical::AsOfJoin`] node, checking sides, keys and types.
//!    [`logical::AsOfFilterPushdown`] moves filters on left columns below it; filters on right
//!    columns stay above (below, they would change which row matches).
//! 3. [`planner::AsOfJoinPlanner`] turns the node into [`exec::AsOfJoinExec`]: both inputs
//!    hash-partitioned on the keys; per partition the right side is indexed (grouped by key,
//!    sorted by time, ties resolved) and the left side streams through it with a binary search.
//! 4. [`codec`] serialises the node and the operator (datafusion-proto extension codecs, which
//!    the extension contributes to the engine's composed codecs, `crate::engine::codec`).

pub mod codec;
pub mod exec;
pub mod index;
pub mod keys;
pub mod logical;
pub mod marker;
pub mod planner;
pub mod time;

use crate::engine::codec::CodecSession;
use crate::engine::planner::FStoreQueryPlanner;
use crate::engine::{EngineExtension, Setup};
use datafusion::physical_planner::ExtensionPlanner;
use std::sync::Arc;

use datafusion::error::Result;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::ScalarUDF;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;

pub use exec::AsOfJoinExec;
pub use logical::AsOfJoin;

/// The time condition `left_time OP right_time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum AsOfOp {
    /// `>=`: the latest right row at or before the left time.
    GtEq,
    /// `>`: the latest right row strictly before the left time.
    Gt,
    /// `<=`: the earliest right row at or after the left time.
    LtEq,
    /// `<`: the earliest right row strictly after the left time.
    Lt,
}

impl AsOfOp {
    pub fn parse(s: &str) -> Option<AsOfOp> {
        match s {
            ">=" => Some(AsOfOp::GtEq),
            ">" => Some(AsOfOp::Gt),
            "<=" => Some(AsOfOp::LtEq),
            "<" => Some(AsOfOp::Lt),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AsOfOp::GtEq => ">=",
            AsOfOp::Gt => ">",
            AsOfOp::LtEq => "<=",
            AsOfOp::Lt => "<",
        }
    }

    /// The same condition with its operands swapped (`a >= b` is `b <= a`).
    pub fn flip(self) -> AsOfOp {
        match self {
            AsOfOp::GtEq => AsOfOp::LtEq,
            AsOfOp::Gt => AsOfOp::Lt,
            AsOfOp::LtEq => AsOfOp::GtEq,
            AsOfOp::Lt => AsOfOp::Gt,
        }
    }

    /// True when the match is at or before the left time.
    pub fn is_backward(self) -> bool {
        matches!(self, AsOfOp::GtEq | AsOfOp::Gt)
    }

    /// True when equal times match.
    pub fn is_inclusive(self) -> bool {
        matches!(self, AsOfOp::GtEq | AsOfOp::LtEq)
    }
}

impl std::fmt::Display for AsOfOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which left rows the join returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd)]
pub enum AsOfKind {
    /// Every left row (Snowflake's `ASOF JOIN`, DuckDB's `ASOF LEFT JOIN`).
    Left,
    /// Only left rows with a match (DuckDB's `ASOF JOIN`).
    Inner,
}

impl AsOfKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AsOfKind::Left => "left",
            AsOfKind::Inner => "inner",
        }
    }
}

/// The look-back bound: `later - earlier <= bound` (inclusive) or `< bound`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct LookBack {
    pub bound: datafusion::common::ScalarValue,
    pub inclusive: bool,
}

impl std::fmt::Display for LookBack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = if self.inclusive { "<=" } else { "<" };
        write!(f, "{op} {}", self.bound)
    }
}

/// The marker function DataFusion must know to plan a rewritten `ASOF JOIN`.
pub fn marker_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(marker::AsOfMatch::new()))
}

/// The AS-OF join as an engine extension: the marker function, the analyzer rule that turns
/// marked joins into [`AsOfJoin`] nodes, the filter pushdown rule, and the planner of
/// [`AsOfJoinExec`].
pub struct AsOfExtension;

#[async_trait::async_trait]
impl EngineExtension for AsOfExtension {
    fn name(&self) -> &'static str {
        "asof-join"
    }
    fn configure(&self, mut builder: SessionStateBuilder) -> Result<SessionStateBuilder> {
        builder
            .scalar_functions()
            .get_or_insert_with(Vec::new)
            .push(marker_udf());
        Ok(builder
            .with_analyzer_rule(Arc::new(logical::AsOfJoinRule))
            .with_optimizer_rule(Arc::new(logical::AsOfFilterPushdown)))
    }
    fn extension_planners(&self) -> Vec<Arc<dyn ExtensionPlanner + Send + Sync>> {
        vec![Arc::new(planner::AsOfJoinPlanner)]
    }
    fn logical_codec(&self, _: &CodecSession) -> Option<Arc<dyn LogicalExtensionCodec>> {
        Some(Arc::new(codec::AsOfLogicalCodec))
    }
    fn physical_codec(&self, _: &CodecSession) -> Option<Arc<dyn PhysicalExtensionCodec>> {
        Some(Arc::new(codec::AsOfPhysicalCodec))
    }
    async fn register(&self, _: &mut Setup<'_>) -> Result<()> {
        Ok(())
    }
}

/// Adds only the AS-OF join to a session (tests and benchmarks of the operator on its own).
/// Call after `with_default_features`.
pub fn register(builder: SessionStateBuilder) -> Result<SessionStateBuilder> {
    let ext = AsOfExtension;
    Ok(ext
        .configure(builder)?
        .with_query_planner(Arc::new(FStoreQueryPlanner::new(ext.extension_planners()))))
}
