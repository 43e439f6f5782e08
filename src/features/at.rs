//! The logical node of window features evaluated at the times of a spine (training sets):
//! `WindowAt(spine, events)` outputs every spine row once, in spine order, with each window
//! feature over the entity's events in (t − w, t] at the spine row's own time t — not at the
//! entity's last event before t. Planned as [`crate::window::WindowAtExec`], one pass over the
//! sorted events and spine of each partition.
//!
//! Nothing is pushed below it: a filter on the spine would be correct below, but a filter on
//! the events never is, and the node only appears inside `training_set`, whose own arguments
//! (start, end) already filter the spine.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use arrow_schema::Field;
use datafusion::common::{DFSchema, DFSchemaRef};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan, UserDefinedLogicalNodeCore};

use super::node::WindowFeature;

/// Window features of `events` at the times of `spine`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowAtNode {
    pub spine: LogicalPlan,
    pub events: LogicalPlan,
    pub spine_keys: Vec<String>,
    pub spine_time: String,
    pub event_keys: Vec<String>,
    pub event_time: String,
    /// Orders events at the same time for `last` (the group's CREATED column).
    pub created: Option<String>,
    pub features: Vec<WindowFeature>,
    schema: DFSchemaRef,
}

impl PartialOrd for WindowAtNode {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        (&self.spine_keys, &self.spine_time, &self.features)
            .partial_cmp(&(&other.spine_keys, &other.spine_time, &other.features))
            .filter(|o| *o != Ordering::Equal || self == other)
    }
}

impl WindowAtNode {
    #[allow(clippy::too_many_arguments)]
    pub fn try_new(
        spine: LogicalPlan,
        events: LogicalPlan,
        spine_keys: Vec<String>,
        spine_time: String,
        event_keys: Vec<String>,
        event_time: String,
        created: Option<String>,
        features: Vec<WindowFeature>,
    ) -> Result<Self> {
        let sp = spine.schema();
        let ev = events.schema();
        let mut fields: Vec<(Option<datafusion::common::TableReference>, Arc<Field>)> = sp
            .iter()
            .map(|(q, f)| (q.cloned(), Arc::clone(f)))
            .collect();
        for f in &features {
            let input_type = match &f.input {
                Some(c) => Some(ev.field_with_unqualified_name(c)?.data_type().clone()),
                None => None,
            };
            let t = super::window_output_type(&f.agg, input_type.as_ref()).map_err(|m| {
                crate::error::FStoreError::invalid(format!("window feature '{}': {m}", f.output))
            })?;
            fields.push((None, Arc::new(Field::new(&f.output, t, true))));
        }
        let schema = Arc::new(DFSchema::new_with_metadata(fields, sp.metadata().clone())?);
        Ok(Self {
            spine,
            events,
            spine_keys,
            spine_time,
            event_keys,
            event_time,
            created,
            features,
            schema,
        })
    }

    pub fn into_plan(self) -> LogicalPlan {
        LogicalPlan::Extension(Extension {
            node: Arc::new(self),
        })
    }
}

impl UserDefinedLogicalNodeCore for WindowAtNode {
    fn name(&self) -> &str {
        "WindowAt"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.spine, &self.events]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn prevent_predicate_push_down_columns(&self) -> std::collections::HashSet<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "WindowAt: spine keys=[{}], spine time={}, event keys=[{}], event time={}",
            self.spine_keys.join(", "),
            self.spine_time,
            self.event_keys.join(", "),
            self.event_time
        )?;
        for w in &self.features {
            write!(
                f,
                ", {}={}({}) over {}s",
                w.output,
                w.agg,
                w.input.as_deref().unwrap_or("*"),
                w.window_micros / 1_000_000
            )?;
        }
        Ok(())
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let events = inputs.swap_remove(1);
        let spine = inputs.swap_remove(0);
        Self::try_new(
            spine,
            events,
            self.spine_keys.clone(),
            self.spine_time.clone(),
            self.event_keys.clone(),
            self.event_time.clone(),
            self.created.clone(),
            self.features.clone(),
        )
    }

    fn supports_limit_pushdown(&self) -> bool {
        false
    }
}
