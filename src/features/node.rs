//! The logical node of a feature group's windowed aggregates, and the optimizer rule that
//! lets time filters prune the source safely.
//!
//! `FeatureWindow` takes the group's projected source rows and adds one column per window
//! feature (the aggregate over the entity's events in (t − w, t] at each row's time t). It
//! stops every predicate except those on entity keys from being pushed below it: dropping a
//! source row by its time or value would change other rows' windows. [`TimeBoundsRule`] then
//! adds what *is* safe below it: an upper time bound as is, and a lower bound widened by the
//! longest window (rows at t ≥ L only need events after L − w), so a time range in a query
//! still prunes Parquet row groups of the source.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use arrow_schema::{DataType, Field};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, DFSchemaRef, ScalarValue};
use datafusion::error::Result;
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{
    BinaryExpr, Expr, Extension, Filter, LogicalPlan, Operator, Projection,
    UserDefinedLogicalNodeCore,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

use crate::registry::FeatureGroup;

/// One window feature of the node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct WindowFeature {
    /// `mean`, `sum`, `count`, `count_star`, `min`, `max`, `stddev`, `count_distinct`, `last`.
    pub agg: String,
    /// The input column (None for `count_star`).
    pub input: Option<String>,
    pub window_micros: i64,
    pub output: String,
}

/// Per-entity sliding-window aggregates over time-ordered events.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeatureWindowNode {
    pub input: LogicalPlan,
    pub keys: Vec<String>,
    pub time: String,
    /// Breaks ties between events at the same time (for `last`).
    pub created: Option<String>,
    pub features: Vec<WindowFeature>,
    /// The time bounds [`TimeBoundsRule`] already pushed below this node.
    pub pushed_bounds: Option<Expr>,
    schema: DFSchemaRef,
}

impl PartialOrd for FeatureWindowNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (&self.keys, &self.time, &self.features)
            .partial_cmp(&(&other.keys, &other.time, &other.features))
            .filter(|o| *o != Ordering::Equal || self == other)
    }
}

impl FeatureWindowNode {
    pub fn try_new(
        input: LogicalPlan,
        keys: Vec<String>,
        time: String,
        created: Option<String>,
        features: Vec<WindowFeature>,
    ) -> Result<Self> {
        let in_schema = input.schema();
        let mut fields: Vec<(Option<datafusion::common::TableReference>, Arc<Field>)> = in_schema
            .iter()
            .map(|(q, f)| (q.cloned(), Arc::clone(f)))
            .collect();
        for f in &features {
            let input_type = match &f.input {
                Some(c) => Some(
                    in_schema
                        .field_with_unqualified_name(c)?
                        .data_type()
                        .clone(),
                ),
                None => None,
            };
            let t = super::window_output_type(&f.agg, input_type.as_ref()).map_err(|m| {
                crate::error::FStoreError::invalid(format!("window feature '{}': {m}", f.output))
            })?;
            fields.push((None, Arc::new(Field::new(&f.output, t, true))));
        }
        let schema = Arc::new(DFSchema::new_with_metadata(
            fields,
            in_schema.metadata().clone(),
        )?);
        Ok(Self {
            input,
            keys,
            time,
            created,
            features,
            pushed_bounds: None,
            schema,
        })
    }

    /// `input` → `FeatureWindow(input)` for a group's window features.
    pub fn plan(
        input: LogicalPlan,
        group: &FeatureGroup,
        features: Vec<WindowFeature>,
    ) -> Result<LogicalPlan> {
        let node = Self::try_new(
            input,
            group.entity.clone(),
            group.timestamp.clone(),
            group.created.clone(),
            features,
        )?;
        Ok(LogicalPlan::Extension(Extension {
            node: Arc::new(node),
        }))
    }

    /// The longest window, in microseconds.
    pub fn max_window_micros(&self) -> i64 {
        self.features
            .iter()
            .map(|f| f.window_micros)
            .max()
            .unwrap_or(0)
    }
}

impl UserDefinedLogicalNodeCore for FeatureWindowNode {
    fn name(&self) -> &str {
        "FeatureWindow"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn prevent_predicate_push_down_columns(&self) -> HashSet<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .filter(|n| !self.keys.contains(n))
            .collect()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "FeatureWindow: keys=[{}], time={}",
            self.keys.join(", "),
            self.time
        )?;
        for w in &self.features {
            let secs = w.window_micros / 1_000_000;
            write!(
                f,
                ", {}={}({}) over {}s",
                w.output,
                w.agg,
                w.input.as_deref().unwrap_or("*"),
                secs
            )?;
        }
        Ok(())
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let input = inputs.swap_remove(0);
        let mut node = Self::try_new(
            input,
            self.keys.clone(),
            self.time.clone(),
            self.created.clone(),
            self.features.clone(),
        )?;
        node.pushed_bounds = self.pushed_bounds.clone();
        Ok(node)
    }

    fn supports_limit_pushdown(&self) -> bool {
        false
    }
}

/// Adds the safe part of a time filter below a [`FeatureWindowNode`] (see the module header).
#[derive(Debug, Default)]
pub struct TimeBoundsRule;

impl OptimizerRule for TimeBoundsRule {
    fn name(&self) -> &str {
        "fstore_feature_window_time_bounds"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn supports_rewrite(&self) -> bool {
        true
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Filter(filter) = &plan else {
            return Ok(Transformed::no(plan));
        };
        // The node is right below the filter, or below a projection that only selects
        // columns (what projection pruning leaves above it).
        let (projection, ext) = match filter.input.as_ref() {
            LogicalPlan::Extension(ext) => (None, ext),
            LogicalPlan::Projection(p) if p.expr.iter().all(|e| matches!(e, Expr::Column(_))) => {
                match p.input.as_ref() {
                    LogicalPlan::Extension(ext) => (Some(p), ext),
                    _ => return Ok(Transformed::no(plan)),
                }
            }
            _ => return Ok(Transformed::no(plan)),
        };
        let Some(node) = ext.node.as_any().downcast_ref::<FeatureWindowNode>() else {
            return Ok(Transformed::no(plan));
        };
        let Some(bounds) = safe_bounds(&filter.predicate, node)? else {
            return Ok(Transformed::no(plan));
        };
        if node.pushed_bounds.as_ref() == Some(&bounds) {
            return Ok(Transformed::no(plan));
        }
        let mut new_node = node.clone();
        new_node.input = LogicalPlan::Filter(Filter::try_new(
            bounds.clone(),
            Arc::new(node.input.clone()),
        )?);
        new_node.pushed_bounds = Some(bounds);
        let mut below = LogicalPlan::Extension(Extension {
            node: Arc::new(new_node),
        });
        if let Some(p) = projection {
            below = LogicalPlan::Projection(Projection::try_new(p.expr.clone(), Arc::new(below))?);
        }
        let new_filter = Filter::try_new(filter.predicate.clone(), Arc::new(below))?;
        Ok(Transformed::yes(LogicalPlan::Filter(new_filter)))
    }
}

/// The predicates on the node's time column that can go below it: upper bounds as is, lower
/// bounds moved back by the longest window.
fn safe_bounds(predicate: &Expr, node: &FeatureWindowNode) -> Result<Option<Expr>> {
    let width = node.max_window_micros();
    let time_type = node
        .input
        .schema()
        .field_with_unqualified_name(&node.time)?
        .data_type()
        .clone();
    let mut out = Vec::new();
    for conjunct in split_conjunction(predicate) {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = conjunct else {
            continue;
        };
        // Normalise to `time <op> literal`.
        let (op, value) = match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) if c.name == node.time => (*op, v),
            (Expr::Literal(v, _), Expr::Column(c)) if c.name == node.time => match op.swap() {
                Some(o) => (o, v),
                None => continue,
            },
            _ => continue,
        };
        let time_col = Expr::Column(datafusion::common::Column::new_unqualified(&node.time));
        match op {
            Operator::Lt | Operator::LtEq => out.push(Expr::BinaryExpr(BinaryExpr::new(
                Box::new(time_col),
                op,
                Box::new(Expr::Literal(value.clone(), None)),
            ))),
            Operator::Gt | Operator::GtEq | Operator::Eq => {
                if let Some(lower) = shift_back(value, width, &time_type) {
                    out.push(Expr::BinaryExpr(BinaryExpr::new(
                        Box::new(time_col.clone()),
                        Operator::Gt,
                        Box::new(Expr::Literal(lower, None)),
                    )));
                }
                if op == Operator::Eq {
                    out.push(Expr::BinaryExpr(BinaryExpr::new(
                        Box::new(time_col),
                        Operator::LtEq,
                        Box::new(Expr::Literal(value.clone(), None)),
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(conjunction(out))
}

/// `value - width` for a timestamp or date literal (None when the literal is not a time).
fn shift_back(value: &ScalarValue, width_micros: i64, time_type: &DataType) -> Option<ScalarValue> {
    let micros = match value
        .cast_to(&DataType::Timestamp(
            arrow_schema::TimeUnit::Microsecond,
            None,
        ))
        .ok()?
    {
        ScalarValue::TimestampMicrosecond(Some(v), _) => v,
        _ => return None,
    };
    let shifted = ScalarValue::TimestampMicrosecond(Some(micros.checked_sub(width_micros)?), None);
    shifted.cast_to(time_type).ok()
}
