//! Physical planning of the `AsOfJoin` node: the extension planner, and the query planner that
//! gives DataFusion's default physical planner FStore's extension planners (this one and the
//! feature-group window node's).

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::error::Result;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};

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

/// DataFusion's default physical planner with FStore's extension planners: the AS-OF join
/// and the feature-group window node.
#[derive(Debug, Default)]
pub struct FStoreQueryPlanner;

#[async_trait]
impl QueryPlanner for FStoreQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![
            Arc::new(AsOfJoinPlanner),
            Arc::new(crate::features::exec::FeatureWindowPlanner),
        ])
        .create_physical_plan(logical_plan, session)
        .await
    }
}
