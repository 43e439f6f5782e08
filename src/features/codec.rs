//! datafusion-proto codec for the feature groups' logical nodes, [`FeatureWindowNode`] and
//! [`WindowAtNode`] (the operators they are planned as have theirs in `crate::window`). A node
//! travels as one prost message of its column names and window features; the time bounds
//! already pushed below a `FeatureWindow` as DataFusion's own expression message.
//!
//! The area's table functions need no codec: `training_set` and `temporal_split` return views,
//! which DataFusion inlines while planning. `feature_set_versions` returns an in-memory table
//! (a snapshot of the registry), which no codec carries.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::{TableReference, internal_err, not_impl_err};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan, UserDefinedLogicalNode};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::logical_plan::from_proto::parse_expr;
use datafusion_proto::logical_plan::to_proto::serialize_expr;
use datafusion_proto::protobuf::LogicalExprNode;
use prost::{Message, Oneof};

use super::at::WindowAtNode;
use super::node::{FeatureWindowNode, WindowFeature};
use crate::engine::codec::{decode_message, encode_message};

#[derive(Clone, PartialEq, Message)]
struct FeatureMsg {
    #[prost(string, tag = "1")]
    agg: String,
    #[prost(string, optional, tag = "2")]
    input: Option<String>,
    #[prost(int64, tag = "3")]
    window_micros: i64,
    #[prost(string, tag = "4")]
    output: String,
}

#[derive(Clone, PartialEq, Message)]
struct FeatureWindowMsg {
    #[prost(string, repeated, tag = "1")]
    keys: Vec<String>,
    #[prost(string, tag = "2")]
    time: String,
    #[prost(string, optional, tag = "3")]
    created: Option<String>,
    #[prost(message, repeated, tag = "4")]
    features: Vec<FeatureMsg>,
    #[prost(message, optional, tag = "5")]
    pushed_bounds: Option<LogicalExprNode>,
}

#[derive(Clone, PartialEq, Message)]
struct WindowAtMsg {
    #[prost(string, repeated, tag = "1")]
    spine_keys: Vec<String>,
    #[prost(string, tag = "2")]
    spine_time: String,
    #[prost(string, repeated, tag = "3")]
    event_keys: Vec<String>,
    #[prost(string, tag = "4")]
    event_time: String,
    #[prost(string, optional, tag = "5")]
    created: Option<String>,
    #[prost(message, repeated, tag = "6")]
    features: Vec<FeatureMsg>,
}

#[derive(Clone, PartialEq, Message)]
struct NodeMsg {
    #[prost(oneof = "Node", tags = "1, 2")]
    node: Option<Node>,
}

#[derive(Clone, PartialEq, Oneof)]
enum Node {
    #[prost(message, tag = "1")]
    FeatureWindow(FeatureWindowMsg),
    #[prost(message, tag = "2")]
    WindowAt(WindowAtMsg),
}

fn features_msg(features: &[WindowFeature]) -> Vec<FeatureMsg> {
    features
        .iter()
        .map(|f| FeatureMsg {
            agg: f.agg.clone(),
            input: f.input.clone(),
            window_micros: f.window_micros,
            output: f.output.clone(),
        })
        .collect()
}

fn features_of(features: Vec<FeatureMsg>) -> Vec<WindowFeature> {
    features
        .into_iter()
        .map(|f| WindowFeature {
            agg: f.agg,
            input: f.input,
            window_micros: f.window_micros,
            output: f.output,
        })
        .collect()
}

/// Encodes and decodes [`FeatureWindowNode`] and [`WindowAtNode`].
#[derive(Debug, Default)]
pub struct FeaturesLogicalCodec;

impl LogicalExtensionCodec for FeaturesLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        let msg: NodeMsg = decode_message(buf, "a feature-group node")?;
        let node: Arc<dyn UserDefinedLogicalNode> = match (msg.node, inputs) {
            (Some(Node::FeatureWindow(m)), [input]) => {
                let mut node = FeatureWindowNode::try_new(
                    input.clone(),
                    m.keys,
                    m.time,
                    m.created,
                    features_of(m.features),
                )?;
                node.pushed_bounds = m
                    .pushed_bounds
                    .map(|b| parse_expr(&b, ctx, self))
                    .transpose()?;
                Arc::new(node)
            }
            (Some(Node::WindowAt(m)), [spine, events]) => Arc::new(WindowAtNode::try_new(
                spine.clone(),
                events.clone(),
                m.spine_keys,
                m.spine_time,
                m.event_keys,
                m.event_time,
                m.created,
                features_of(m.features),
            )?),
            (node, _) => {
                return internal_err!(
                    "cannot decode a feature-group node ({node:?}) with {} inputs",
                    inputs.len()
                );
            }
        };
        Ok(Extension { node })
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        let any = node.node.as_any();
        let node = if let Some(n) = any.downcast_ref::<FeatureWindowNode>() {
            Node::FeatureWindow(FeatureWindowMsg {
                keys: n.keys.clone(),
                time: n.time.clone(),
                created: n.created.clone(),
                features: features_msg(&n.features),
                pushed_bounds: n
                    .pushed_bounds
                    .as_ref()
                    .map(|b| serialize_expr(b, self))
                    .transpose()?,
            })
        } else if let Some(n) = any.downcast_ref::<WindowAtNode>() {
            Node::WindowAt(WindowAtMsg {
                spine_keys: n.spine_keys.clone(),
                spine_time: n.spine_time.clone(),
                event_keys: n.event_keys.clone(),
                event_time: n.event_time.clone(),
                created: n.created.clone(),
                features: features_msg(&n.features),
            })
        } else {
            return not_impl_err!("not a feature-group node: {}", node.node.name());
        };
        encode_message(&NodeMsg { node: Some(node) }, buf, "a feature-group node")
    }

    fn try_decode_table_provider(
        &self,
        _buf: &[u8],
        table_ref: &TableReference,
        _schema: arrow_schema::SchemaRef,
        _ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        not_impl_err!("the feature-group codec has no table providers ({table_ref})")
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        _node: Arc<dyn TableProvider>,
        _buf: &mut Vec<u8>,
    ) -> Result<()> {
        not_impl_err!("the feature-group codec has no table providers ({table_ref})")
    }
}

#[cfg(test)]
mod tests {
    use arrow_schema::{DataType, Field, Schema, TimeUnit};
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::{col, lit, table_scan};

    use super::*;

    /// Every field survives, including the time bounds already pushed below a node, which no
    /// plan display shows.
    #[test]
    fn nodes_round_trip() -> Result<()> {
        let schema = Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("t", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("v", DataType::Float64, true),
        ]);
        let input = table_scan(Some("e"), &schema, None)?.build()?;
        let feature = |agg: &str, input: Option<&str>, output: &str| WindowFeature {
            agg: agg.to_string(),
            input: input.map(String::from),
            window_micros: 86_400_000_000,
            output: output.to_string(),
        };
        let features = vec![
            feature("mean", Some("v"), "m"),
            feature("count_star", None, "n"),
        ];
        let (k, t) = (vec!["k".to_string()], "t".to_string());
        let mut window = FeatureWindowNode::try_new(
            input.clone(),
            k.clone(),
            t.clone(),
            Some("t".to_string()),
            features.clone(),
        )?;
        window.pushed_bounds =
            Some(col("t").gt(lit(ScalarValue::TimestampMicrosecond(Some(7), None))));
        let at = WindowAtNode::try_new(
            input.clone(),
            input.clone(),
            k.clone(),
            t.clone(),
            k,
            t,
            None,
            features,
        )?;
        let cases: [(Arc<dyn UserDefinedLogicalNode>, Vec<LogicalPlan>); 2] = [
            (Arc::new(window), vec![input.clone()]),
            (Arc::new(at), vec![input.clone(), input]),
        ];
        for (node, inputs) in cases {
            let mut buf = Vec::new();
            let extension = Extension {
                node: Arc::clone(&node),
            };
            FeaturesLogicalCodec.try_encode(&extension, &mut buf)?;
            let decoded =
                FeaturesLogicalCodec.try_decode(&buf, &inputs, &TaskContext::default())?;
            assert!(decoded.node.dyn_eq(node.as_ref()), "{:?}", decoded.node);
        }
        Ok(())
    }
}
