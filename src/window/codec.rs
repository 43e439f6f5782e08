//! datafusion-proto codecs of the window evaluator: [`FeatureWindowExec`], [`WindowAtExec`] and
//! [`RowSequenceExec`] travel as one prost message each (column names, [`WindowSpec`]s with
//! the aggregate by name and the window as seconds + nanoseconds, the output projection, the
//! numbering order as DataFusion's sort-expression messages); `window_features(…)` and
//! `window_features_at(…)` providers travel as their call.
//!
//! Decoding rebuilds each operator from its decoded children: the [`RowSequenceExec`] the
//! window operators put below themselves is a child like any other, so it is not added twice.

use std::sync::Arc;
use std::time::Duration;

use datafusion::catalog::TableProvider;
use datafusion::common::{internal_err, not_impl_err};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::LexOrdering;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::from_proto::parse_physical_sort_exprs;
use datafusion_proto::physical_plan::to_proto::serialize_physical_sort_exprs;
use datafusion_proto::physical_plan::{
    PhysicalExtensionCodec, PhysicalPlanDecodeContext, PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf::PhysicalSortExprNode;
use prost::{Message, Oneof};

use super::table_function::{FEATURES, FEATURES_AT, WindowFeaturesAtTable, WindowFeaturesTable};
use super::{FeatureWindowExec, RowSequenceExec, WindowAgg, WindowAtExec, WindowSpec};
use crate::engine::codec::{Indices, decode_message, encode_message};

#[derive(Clone, PartialEq, Message)]
struct SpecMsg {
    /// [`WindowAgg`] by name (`count_star` for `count(*)`).
    #[prost(string, tag = "1")]
    agg: String,
    #[prost(string, optional, tag = "2")]
    input: Option<String>,
    #[prost(uint64, tag = "3")]
    window_secs: u64,
    #[prost(uint32, tag = "4")]
    window_nanos: u32,
    #[prost(string, tag = "5")]
    output: String,
}

#[derive(Clone, PartialEq, Message)]
struct FeatureWindowExecMsg {
    #[prost(string, repeated, tag = "1")]
    keys: Vec<String>,
    #[prost(string, tag = "2")]
    time: String,
    #[prost(message, repeated, tag = "3")]
    specs: Vec<SpecMsg>,
    #[prost(message, optional, tag = "4")]
    projection: Option<Indices>,
}

#[derive(Clone, PartialEq, Message)]
struct WindowAtExecMsg {
    #[prost(string, repeated, tag = "1")]
    event_keys: Vec<String>,
    #[prost(string, tag = "2")]
    event_time: String,
    #[prost(string, repeated, tag = "3")]
    spine_keys: Vec<String>,
    #[prost(string, tag = "4")]
    spine_time: String,
    #[prost(message, repeated, tag = "5")]
    specs: Vec<SpecMsg>,
}

#[derive(Clone, PartialEq, Message)]
struct RowSequenceExecMsg {
    /// Empty: input order.
    #[prost(message, repeated, tag = "1")]
    order: Vec<PhysicalSortExprNode>,
}

#[derive(Clone, PartialEq, Message)]
struct OperatorMsg {
    #[prost(oneof = "Operator", tags = "1, 2, 3")]
    operator: Option<Operator>,
}

#[derive(Clone, PartialEq, Oneof)]
enum Operator {
    #[prost(message, tag = "1")]
    FeatureWindow(FeatureWindowExecMsg),
    #[prost(message, tag = "2")]
    WindowAt(WindowAtExecMsg),
    #[prost(message, tag = "3")]
    RowSequence(RowSequenceExecMsg),
}

fn specs_msg(specs: &[WindowSpec]) -> Vec<SpecMsg> {
    specs
        .iter()
        .map(|s| SpecMsg {
            agg: match s.agg {
                WindowAgg::CountStar => "count_star".to_string(),
                agg => agg.name().to_string(),
            },
            input: s.input.clone(),
            window_secs: s.window.as_secs(),
            window_nanos: s.window.subsec_nanos(),
            output: s.output.clone(),
        })
        .collect()
}

fn specs_of(specs: Vec<SpecMsg>) -> Result<Vec<WindowSpec>> {
    specs
        .into_iter()
        .map(|s| {
            let Some(agg) = WindowAgg::from_name(&s.agg) else {
                return internal_err!("cannot decode a window spec: aggregate {:?}", s.agg);
            };
            Ok(WindowSpec {
                agg,
                input: s.input,
                window: Duration::new(s.window_secs, s.window_nanos),
                output: s.output,
            })
        })
        .collect()
}

/// `window_features` / `window_features_at` providers travel as their calls (see
/// `CallCodec`).
pub fn call_of(node: &dyn TableProvider) -> Option<(&'static str, &[Expr])> {
    if let Some(t) = node.downcast_ref::<WindowFeaturesTable>() {
        Some((FEATURES, &t.args))
    } else {
        node.downcast_ref::<WindowFeaturesAtTable>()
            .map(|t| (FEATURES_AT, t.args.as_slice()))
    }
}

/// Encodes and decodes [`FeatureWindowExec`], [`WindowAtExec`] and [`RowSequenceExec`].
#[derive(Debug, Default)]
pub struct WindowPhysicalCodec;

impl PhysicalExtensionCodec for WindowPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let msg: OperatorMsg = decode_message(buf, "a window operator")?;
        Ok(match (msg.operator, inputs) {
            (Some(Operator::FeatureWindow(m)), [input]) => {
                let exec = FeatureWindowExec::try_new(
                    Arc::clone(input),
                    m.keys,
                    m.time,
                    specs_of(m.specs)?,
                )?;
                match Indices::to_projection(m.projection.as_ref()) {
                    Some(p) => Arc::new(exec.with_projection(Some(p))?),
                    None => Arc::new(exec),
                }
            }
            (Some(Operator::WindowAt(m)), [events, spine]) => Arc::new(WindowAtExec::try_new(
                Arc::clone(events),
                m.event_keys,
                m.event_time,
                Arc::clone(spine),
                m.spine_keys,
                m.spine_time,
                specs_of(m.specs)?,
            )?),
            (Some(Operator::RowSequence(m)), [input]) => {
                let decode_ctx = PhysicalPlanDecodeContext::new(ctx, self);
                let order = parse_physical_sort_exprs(
                    &m.order,
                    &decode_ctx,
                    &input.schema(),
                    proto_converter,
                )?;
                Arc::new(RowSequenceExec::try_new_ordered(
                    Arc::clone(input),
                    LexOrdering::new(order),
                )?)
            }
            (operator, _) => {
                return internal_err!(
                    "cannot decode a window operator ({operator:?}) with {} inputs",
                    inputs.len()
                );
            }
        })
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let operator = if let Some(e) = node.downcast_ref::<FeatureWindowExec>() {
            Operator::FeatureWindow(FeatureWindowExecMsg {
                keys: e.keys().to_vec(),
                time: e.time().to_string(),
                specs: specs_msg(e.specs()),
                projection: Indices::of(e.projection()),
            })
        } else if let Some(e) = node.downcast_ref::<WindowAtExec>() {
            let ((event_keys, event_time), (spine_keys, spine_time)) =
                (e.event_columns(), e.spine_columns());
            Operator::WindowAt(WindowAtExecMsg {
                event_keys: event_keys.to_vec(),
                event_time: event_time.to_string(),
                spine_keys: spine_keys.to_vec(),
                spine_time: spine_time.to_string(),
                specs: specs_msg(e.specs()),
            })
        } else if let Some(e) = node.downcast_ref::<RowSequenceExec>() {
            let order = e.order().map(|o| o.iter().cloned().collect::<Vec<_>>());
            Operator::RowSequence(RowSequenceExecMsg {
                order: serialize_physical_sort_exprs(
                    order.unwrap_or_default(),
                    self,
                    proto_converter,
                )?,
            })
        } else {
            return not_impl_err!("not a window operator: {}", node.name());
        };
        let msg = OperatorMsg {
            operator: Some(operator),
        };
        encode_message(&msg, buf, "a window operator")
    }
}
