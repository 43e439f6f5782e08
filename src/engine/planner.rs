//! The query planner: DataFusion's default physical planner with every extension's
//! [`ExtensionPlanner`]s (the AS-OF join, the feature-window nodes, …), in the order the
//! extensions were listed.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::error::Result;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};

/// DataFusion's default physical planner with FStore's extension planners.
#[derive(Default)]
pub struct FStoreQueryPlanner {
    planners: Vec<Arc<dyn ExtensionPlanner + Send + Sync>>,
}

impl FStoreQueryPlanner {
    pub fn new(planners: Vec<Arc<dyn ExtensionPlanner + Send + Sync>>) -> Self {
        Self { planners }
    }
}

impl std::fmt::Debug for FStoreQueryPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FStoreQueryPlanner")
            .field("planners", &self.planners.len())
            .finish()
    }
}

#[async_trait]
impl QueryPlanner for FStoreQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(self.planners.clone())
            .create_physical_plan(logical_plan, session)
            .await
    }
}
