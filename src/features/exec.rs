//! Physical planning of [`FeatureWindowNode`] and [`WindowAtNode`]: the sliding-window
//! evaluator of [`crate::window`] ([`FeatureWindowExec`] per event, [`WindowAtExec`] at spine
//! times), one pass over each entity's events.
//!
//! When the group has a CREATED column and a `last` feature, events are ordered by CREATED
//! before the evaluator numbers them, so among events at the same time the one recorded last
//! wins (the evaluator breaks `last` ties by the row numbers of [`RowSequenceExec`], which numbers
//! rows in CREATED order here).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::plan_err;
use datafusion::error::Result;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};

use super::at::WindowAtNode;
use super::node::{FeatureWindowNode, WindowFeature};
use crate::window::{FeatureWindowExec, RowSequenceExec, WindowAgg, WindowAtExec, WindowSpec};

/// Plans [`FeatureWindowNode`] as [`FeatureWindowExec`].
#[derive(Debug, Default)]
pub struct FeatureWindowPlanner;

/// The evaluator's spec of a node's feature.
pub fn window_spec(f: &WindowFeature) -> Result<WindowSpec> {
    let agg = match super::window_agg(&f.agg) {
        Ok(a) => a,
        Err(m) => return plan_err!("window feature '{}': {m}", f.output),
    };
    if f.window_micros <= 0 {
        return plan_err!("window feature '{}': the window must be positive", f.output);
    }
    Ok(WindowSpec::new(
        agg,
        f.input.as_deref(),
        Duration::from_micros(f.window_micros as u64),
        f.output.clone(),
    ))
}

#[async_trait]
impl ExtensionPlanner for FeatureWindowPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        if let Some(at) = node.as_any().downcast_ref::<WindowAtNode>() {
            return plan_at(at, physical_inputs).map(Some);
        }
        let Some(node) = node.as_any().downcast_ref::<FeatureWindowNode>() else {
            return Ok(None);
        };
        let specs = node
            .features
            .iter()
            .map(window_spec)
            .collect::<Result<Vec<_>>>()?;
        let input = created_order(Arc::clone(&physical_inputs[0]), &specs, &node.created)?;
        let exec = FeatureWindowExec::try_new(input, node.keys.clone(), node.time.clone(), specs)?;
        Ok(Some(Arc::new(exec)))
    }
}

/// Numbers the events in CREATED order when a `last` feature needs the tie-break.
fn created_order(
    input: Arc<dyn ExecutionPlan>,
    specs: &[WindowSpec],
    created: &Option<String>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let has_last = specs.iter().any(|s| s.agg == WindowAgg::Last);
    let (true, Some(created)) = (has_last, created) else {
        return Ok(input);
    };
    let index = input.schema().index_of(created)?;
    let ordering =
        LexOrdering::new([
            PhysicalSortExpr::new_default(Arc::new(Column::new(created, index)))
                .asc()
                .nulls_first(),
        ])
        .expect("one sort expression");
    Ok(Arc::new(RowSequenceExec::try_new_ordered(
        input,
        Some(ordering),
    )?))
}

fn plan_at(
    node: &WindowAtNode,
    physical_inputs: &[Arc<dyn ExecutionPlan>],
) -> Result<Arc<dyn ExecutionPlan>> {
    let specs = node
        .features
        .iter()
        .map(window_spec)
        .collect::<Result<Vec<_>>>()?;
    let events = created_order(Arc::clone(&physical_inputs[1]), &specs, &node.created)?;
    Ok(Arc::new(WindowAtExec::try_new(
        events,
        node.event_keys.clone(),
        node.event_time.clone(),
        Arc::clone(&physical_inputs[0]),
        node.spine_keys.clone(),
        node.spine_time.clone(),
        specs,
    )?))
}
