//! Physical planning of the `AsOfJoin` node: its extension planner (composed with the other
//! areas' by the engine's query planner).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::error::Result;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};

use super::exec::AsOfJoinExec;
use super::logical::AsOfJoin;

/// Plans [`AsOfJoin`] as [`AsOfJoinExec`].
#[derive(Debug, Default)]
pub struct AsOfJoinPlanner;

#[async_trait]
impl ExtensionPlanner for AsOfJoinPlanner {
    async fn plan_extension(
        &self,
        planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        session: &dyn Session,
        planning_ctx: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(join) = node.as_any().downcast_ref::<AsOfJoin>() else {
            return Ok(None);
        };
        let (ls, rs) = (logical_inputs[0].schema(), logical_inputs[1].schema());
        let left = |e| planner.create_physical_expr(e, ls, session, planning_ctx);
        let right = |e| planner.create_physical_expr(e, rs, session, planning_ctx);
        let on = join
            .on
            .iter()
            .map(|(l, r)| Ok((left(l)?, right(r)?)))
            .collect::<Result<Vec<_>>>()?;
        let exec = AsOfJoinExec::try_new(
            Arc::clone(&physical_inputs[0]),
            Arc::clone(&physical_inputs[1]),
            on,
            left(&join.left_time)?,
            right(&join.right_time)?,
            join.op,
            join.created.as_ref().map(right).transpose()?,
            join.lookback.clone(),
            join.kind,
        )?;
        Ok(Some(Arc::new(exec)))
    }
}
