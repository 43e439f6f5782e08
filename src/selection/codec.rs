//! datafusion-proto codecs of feature selection: `select_features(…)` and
//! `feature_correlation(…)` providers travel as their call; [`SelectionExec`] travels as its
//! result schema, projection and analysis, the analysis as plain data (method, k, the scored
//! columns with their Arrow types).
//!
//! Other areas run their own analyses on [`SelectionExec`] (quality: `validate`,
//! `check_drift`); their codecs frame them with [`encode_selection`] / [`decode_selection`].

use std::any::Any;
use std::sync::Arc;

use arrow_schema::{DataType, Schema};
use datafusion::catalog::TableProvider;
use datafusion::common::{internal_err, not_impl_err};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use datafusion_proto::protobuf::{ArrowType, Schema as SchemaMsg};
use prost::{Message, Oneof};

use super::SelectionTable;
use super::correlation::{self, Correlation};
use super::exec::{Analysis, SelectionExec};
use super::select::{self, Scoring};
use crate::engine::codec::{Indices, decode_message, encode_message};

/// A [`SelectionExec`] around the bytes of its analysis.
#[derive(Clone, PartialEq, Message)]
struct SelectionFrame {
    #[prost(message, optional, tag = "1")]
    schema: Option<SchemaMsg>,
    #[prost(message, optional, tag = "2")]
    projection: Option<Indices>,
    #[prost(bytes = "vec", tag = "3")]
    analysis: Vec<u8>,
}

/// Encodes `exec`, whose analysis the caller encoded as `analysis`.
pub(crate) fn encode_selection(
    exec: &SelectionExec,
    analysis: Vec<u8>,
    buf: &mut Vec<u8>,
) -> Result<()> {
    let frame = SelectionFrame {
        schema: Some(exec.result_schema().as_ref().try_into()?),
        projection: Indices::of(exec.projection()),
        analysis,
    };
    encode_message(&frame, buf, "SelectionExec")
}

/// Decodes what [`encode_selection`] wrote; `analysis` decodes the analysis' bytes.
pub(crate) fn decode_selection(
    buf: &[u8],
    inputs: &[Arc<dyn ExecutionPlan>],
    analysis: impl FnOnce(&[u8]) -> Result<Arc<dyn Analysis>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let frame: SelectionFrame = decode_message(buf, "SelectionExec")?;
    let ([input], Some(schema)) = (inputs, &frame.schema) else {
        return internal_err!("cannot decode SelectionExec: one input and a schema expected");
    };
    Ok(Arc::new(SelectionExec::try_new(
        Arc::clone(input),
        analysis(&frame.analysis)?,
        Arc::new(Schema::try_from(schema)?),
        Indices::to_projection(frame.projection.as_ref()),
    )?))
}

#[derive(Clone, PartialEq, Message)]
struct ColumnMsg {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "2")]
    data_type: Option<ArrowType>,
}

#[derive(Clone, PartialEq, Message)]
struct ScoringMsg {
    #[prost(string, tag = "1")]
    method: String,
    #[prost(uint64, optional, tag = "2")]
    k: Option<u64>,
    #[prost(string, tag = "3")]
    label: String,
    #[prost(message, repeated, tag = "4")]
    features: Vec<ColumnMsg>,
    #[prost(message, optional, tag = "5")]
    target: Option<ColumnMsg>,
}

#[derive(Clone, PartialEq, Message)]
struct CorrelationMsg {
    #[prost(string, tag = "1")]
    method: String,
    #[prost(string, repeated, tag = "2")]
    names: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct AnalysisMsg {
    #[prost(oneof = "AnalysisKind", tags = "1, 2")]
    analysis: Option<AnalysisKind>,
}

#[derive(Clone, PartialEq, Oneof)]
enum AnalysisKind {
    #[prost(message, tag = "1")]
    Scoring(ScoringMsg),
    #[prost(message, tag = "2")]
    Correlation(CorrelationMsg),
}

fn column_msg((name, data_type): &(String, DataType)) -> Result<ColumnMsg> {
    Ok(ColumnMsg {
        name: name.clone(),
        data_type: Some(data_type.try_into()?),
    })
}

fn column_of(c: &ColumnMsg) -> Result<(String, DataType)> {
    let Some(t) = &c.data_type else {
        return internal_err!("cannot decode a selection column: '{}' has no type", c.name);
    };
    Ok((c.name.clone(), DataType::try_from(t)?))
}

fn decode_analysis(buf: &[u8]) -> Result<Arc<dyn Analysis>> {
    let msg: AnalysisMsg = decode_message(buf, "a selection analysis")?;
    Ok(match msg.analysis {
        Some(AnalysisKind::Scoring(m)) => Arc::new(Scoring {
            method: select::Method::parse(&m.method)?,
            k: m.k.map(|k| k as usize),
            label: m.label,
            features: m.features.iter().map(column_of).collect::<Result<_>>()?,
            target: m.target.as_ref().map(column_of).transpose()?,
        }),
        Some(AnalysisKind::Correlation(m)) => Arc::new(Correlation {
            names: m.names,
            method: correlation::Method::parse(&m.method)?,
        }),
        None => return internal_err!("cannot decode a selection analysis: none given"),
    })
}

/// `select_features` / `feature_correlation` providers travel as their calls (see
/// `CallCodec`).
pub fn call_of(node: &dyn TableProvider) -> Option<(&'static str, &[Expr])> {
    Some(node.downcast_ref::<SelectionTable>()?.call())
}

/// Encodes and decodes [`SelectionExec`] running `select_features` or `feature_correlation`.
#[derive(Debug, Default)]
pub struct SelectionPhysicalCodec;

impl PhysicalExtensionCodec for SelectionPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        decode_selection(buf, inputs, decode_analysis)
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let Some(exec) = node.downcast_ref::<SelectionExec>() else {
            return not_impl_err!("not a selection operator: {}", node.name());
        };
        let analysis: &dyn Any = exec.analysis().as_ref();
        let analysis = if let Some(s) = analysis.downcast_ref::<Scoring>() {
            AnalysisKind::Scoring(ScoringMsg {
                method: s.method.name().to_string(),
                k: s.k.map(|k| k as u64),
                label: s.label.clone(),
                features: s.features.iter().map(column_msg).collect::<Result<_>>()?,
                target: s.target.as_ref().map(column_msg).transpose()?,
            })
        } else if let Some(c) = analysis.downcast_ref::<Correlation>() {
            AnalysisKind::Correlation(CorrelationMsg {
                method: c.method.name().to_string(),
                names: c.names.clone(),
            })
        } else {
            return not_impl_err!("not a selection analysis: {}", exec.analysis().describe());
        };
        let msg = AnalysisMsg {
            analysis: Some(analysis),
        };
        encode_selection(exec, msg.encode_to_vec(), buf)
    }
}
