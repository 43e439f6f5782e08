//! datafusion-proto codecs for the AS-OF join, so plans that contain it can be shipped (to
//! Ballista executors, between FStore servers). Expressions travel as DataFusion's own protobuf
//! messages; the node's fields around them are one small prost message per plan level. The
//! look-back bound travels as a literal expression.

use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::{ScalarValue, TableReference};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan};
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::logical_plan::from_proto::parse_expr;
use datafusion_proto::logical_plan::to_proto::serialize_expr;
use datafusion_proto::physical_plan::{
    PhysicalExtensionCodec, PhysicalPlanDecodeContext, PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf::{LogicalExprNode, PhysicalExprNode};
use prost::Message;

use super::exec::{AsOfJoinExec, PhysicalExprRef};
use super::logical::AsOfJoin;
use super::{AsOfKind, AsOfOp, LookBack};

#[derive(Clone, PartialEq, Message)]
struct AsOfJoinNode {
    #[prost(message, repeated, tag = "1")]
    left_keys: Vec<LogicalExprNode>,
    #[prost(message, repeated, tag = "2")]
    right_keys: Vec<LogicalExprNode>,
    #[prost(message, optional, tag = "3")]
    left_time: Option<LogicalExprNode>,
    #[prost(message, optional, tag = "4")]
    right_time: Option<LogicalExprNode>,
    #[prost(string, tag = "5")]
    op: String,
    #[prost(message, optional, tag = "6")]
    created: Option<LogicalExprNode>,
    #[prost(message, optional, tag = "7")]
    lookback_bound: Option<LogicalExprNode>,
    #[prost(bool, tag = "8")]
    lookback_inclusive: bool,
    #[prost(string, tag = "9")]
    kind: String,
}

#[derive(Clone, PartialEq, Message)]
struct AsOfJoinExecNode {
    #[prost(message, repeated, tag = "1")]
    left_keys: Vec<PhysicalExprNode>,
    #[prost(message, repeated, tag = "2")]
    right_keys: Vec<PhysicalExprNode>,
    #[prost(message, optional, tag = "3")]
    left_time: Option<PhysicalExprNode>,
    #[prost(message, optional, tag = "4")]
    right_time: Option<PhysicalExprNode>,
    #[prost(string, tag = "5")]
    op: String,
    #[prost(message, optional, tag = "6")]
    created: Option<PhysicalExprNode>,
    #[prost(message, optional, tag = "7")]
    lookback_bound: Option<PhysicalExprNode>,
    #[prost(bool, tag = "8")]
    lookback_inclusive: bool,
    #[prost(string, tag = "9")]
    kind: String,
}

fn decode_error(what: &str) -> DataFusionError {
    DataFusionError::Internal(format!("cannot decode AS-OF join: {what}"))
}

fn op_of(s: &str) -> Result<AsOfOp> {
    AsOfOp::parse(s).ok_or_else(|| decode_error(&format!("operator {s:?}")))
}

fn kind_of(s: &str) -> Result<AsOfKind> {
    match s {
        "left" => Ok(AsOfKind::Left),
        "inner" => Ok(AsOfKind::Inner),
        other => Err(decode_error(&format!("join type {other:?}"))),
    }
}

fn required<T>(v: Option<T>, what: &str) -> Result<T> {
    v.ok_or_else(|| decode_error(&format!("missing {what}")))
}

/// Encodes and decodes [`AsOfJoin`] logical nodes.
#[derive(Debug, Default)]
pub struct AsOfLogicalCodec;

impl LogicalExtensionCodec for AsOfLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        let node = AsOfJoinNode::decode(buf).map_err(|e| decode_error(&e.to_string()))?;
        let [left, right] = inputs else {
            return Err(decode_error("an AS-OF join has two inputs"));
        };
        let expr = |e: &LogicalExprNode| -> Result<Expr> { Ok(parse_expr(e, ctx, self)?) };
        let on = node
            .left_keys
            .iter()
            .zip(&node.right_keys)
            .map(|(l, r)| Ok((expr(l)?, expr(r)?)))
            .collect::<Result<Vec<_>>>()?;
        let lookback = match &node.lookback_bound {
            Some(b) => match expr(b)? {
                Expr::Literal(bound, _) => Some(LookBack {
                    bound,
                    inclusive: node.lookback_inclusive,
                }),
                other => return Err(decode_error(&format!("look-back bound {other}"))),
            },
            None => None,
        };
        let join = AsOfJoin::try_new(
            Arc::new(left.clone()),
            Arc::new(right.clone()),
            on,
            expr(required(node.left_time.as_ref(), "left time")?)?,
            expr(required(node.right_time.as_ref(), "right time")?)?,
            op_of(&node.op)?,
            node.created.as_ref().map(expr).transpose()?,
            lookback,
            kind_of(&node.kind)?,
        )?;
        Ok(Extension {
            node: Arc::new(join),
        })
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        let Some(join) = node.node.as_any().downcast_ref::<AsOfJoin>() else {
            return Err(DataFusionError::NotImplemented(format!(
                "no codec for logical node {}",
                node.node.name()
            )));
        };
        let expr = |e: &Expr| -> Result<LogicalExprNode> { Ok(serialize_expr(e, self)?) };
        let msg = AsOfJoinNode {
            left_keys: join
                .on
                .iter()
                .map(|(l, _)| expr(l))
                .collect::<Result<_>>()?,
            right_keys: join
                .on
                .iter()
                .map(|(_, r)| expr(r))
                .collect::<Result<_>>()?,
            left_time: Some(expr(&join.left_time)?),
            right_time: Some(expr(&join.right_time)?),
            op: join.op.as_str().to_string(),
            created: join.created.as_ref().map(expr).transpose()?,
            lookback_bound: join
                .lookback
                .as_ref()
                .map(|lb| expr(&Expr::Literal(lb.bound.clone(), None)))
                .transpose()?,
            lookback_inclusive: join.lookback.as_ref().is_some_and(|lb| lb.inclusive),
            kind: join.kind.as_str().to_string(),
        };
        msg.encode(buf)
            .map_err(|e| DataFusionError::Internal(format!("cannot encode AS-OF join: {e}")))
    }

    fn try_decode_table_provider(
        &self,
        _buf: &[u8],
        table_ref: &TableReference,
        _schema: datafusion::arrow::datatypes::SchemaRef,
        _ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        Err(DataFusionError::NotImplemented(format!(
            "the AS-OF codec does not decode table providers ({table_ref})"
        )))
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        _node: Arc<dyn TableProvider>,
        _buf: &mut Vec<u8>,
    ) -> Result<()> {
        Err(DataFusionError::NotImplemented(format!(
            "the AS-OF codec does not encode table providers ({table_ref})"
        )))
    }
}

/// Encodes and decodes [`AsOfJoinExec`].
#[derive(Debug, Default)]
pub struct AsOfPhysicalCodec;

impl PhysicalExtensionCodec for AsOfPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let node = AsOfJoinExecNode::decode(buf).map_err(|e| decode_error(&e.to_string()))?;
        let [left, right] = inputs else {
            return Err(decode_error("an AS-OF join has two inputs"));
        };
        let (ls, rs) = (left.schema(), right.schema());
        let decode_ctx = PhysicalPlanDecodeContext::new(ctx, self);
        let expr = |e: &PhysicalExprNode, schema: &datafusion::arrow::datatypes::Schema| {
            proto_converter.proto_to_physical_expr(e, schema, &decode_ctx)
        };
        let on = node
            .left_keys
            .iter()
            .zip(&node.right_keys)
            .map(|(l, r)| Ok((expr(l, &ls)?, expr(r, &rs)?)))
            .collect::<Result<Vec<_>>>()?;
        let lookback = match &node.lookback_bound {
            Some(b) => {
                let e = expr(b, &ls)?;
                let Some(lit) = e.downcast_ref::<Literal>() else {
                    return Err(decode_error("look-back bound is not a literal"));
                };
                Some(LookBack {
                    bound: lit.value().clone(),
                    inclusive: node.lookback_inclusive,
                })
            }
            None => None,
        };
        let exec = AsOfJoinExec::try_new(
            Arc::clone(left),
            Arc::clone(right),
            on,
            expr(required(node.left_time.as_ref(), "left time")?, &ls)?,
            expr(required(node.right_time.as_ref(), "right time")?, &rs)?,
            op_of(&node.op)?,
            node.created.as_ref().map(|c| expr(c, &rs)).transpose()?,
            lookback,
            kind_of(&node.kind)?,
        )?;
        Ok(Arc::new(exec))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let Some(join) = node.downcast_ref::<AsOfJoinExec>() else {
            return Err(DataFusionError::NotImplemented(format!(
                "no codec for execution plan {}",
                node.name()
            )));
        };
        let expr = |e: &PhysicalExprRef| proto_converter.physical_expr_to_proto(e, self);
        let bound = |b: &ScalarValue| -> PhysicalExprRef { Arc::new(Literal::new(b.clone())) };
        let msg = AsOfJoinExecNode {
            left_keys: join
                .on()
                .iter()
                .map(|(l, _)| expr(l))
                .collect::<Result<_>>()?,
            right_keys: join
                .on()
                .iter()
                .map(|(_, r)| expr(r))
                .collect::<Result<_>>()?,
            left_time: Some(expr(join.left_time())?),
            right_time: Some(expr(join.right_time())?),
            op: join.op().as_str().to_string(),
            created: join.created().map(expr).transpose()?,
            lookback_bound: join
                .lookback()
                .map(|lb| expr(&bound(&lb.bound)))
                .transpose()?,
            lookback_inclusive: join.lookback().is_some_and(|lb| lb.inclusive),
            kind: join.kind().as_str().to_string(),
        };
        msg.encode(buf)
            .map_err(|e| DataFusionError::Internal(format!("cannot encode AsOfJoinExec: {e}")))
    }
}
