//! datafusion-proto codecs of validation and drift: `validate(…)` and `check_drift(…)`
//! providers travel as their call; the `SelectionExec` they run on (framed by the selection
//! area's codec) carries their analysis as data — `validate`'s pinned groups and expectations
//! as the registry writes them (JSON), `check_drift`'s method, threshold and the baseline of
//! every feature it compares (read from the warehouse when the scan was planned).

use std::any::Any;
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::{internal_err, not_impl_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use prost::{Message, Oneof};

use super::drift::{self, Check, Drift, DriftTable, Reference};
use super::validate::{self, Checks, ValidateTable};
use crate::engine::codec::decode_message;
use crate::selection::codec::{decode_selection, encode_selection};
use crate::selection::exec::{Analysis, SelectionExec};

#[derive(Clone, PartialEq, Message)]
struct DriftCheckMsg {
    #[prost(string, tag = "1")]
    feature: String,
    #[prost(bool, tag = "2")]
    categorical: bool,
    /// Numeric baselines: the values (sorted), with `counts`.
    #[prost(double, repeated, tag = "3")]
    values: Vec<f64>,
    /// Categorical baselines: the categories, with `counts`.
    #[prost(string, repeated, tag = "4")]
    categories: Vec<String>,
    #[prost(uint64, repeated, tag = "5")]
    counts: Vec<u64>,
    /// Why the feature is not compared, when it is not.
    #[prost(string, optional, tag = "6")]
    skipped: Option<String>,
}

#[derive(Clone, PartialEq, Message)]
struct DriftMsg {
    #[prost(string, tag = "1")]
    method: String,
    #[prost(double, tag = "2")]
    threshold: f64,
    #[prost(message, repeated, tag = "3")]
    checks: Vec<DriftCheckMsg>,
}

#[derive(Clone, PartialEq, Message)]
struct AnalysisMsg {
    #[prost(oneof = "AnalysisKind", tags = "1, 2")]
    analysis: Option<AnalysisKind>,
}

#[derive(Clone, PartialEq, Oneof)]
enum AnalysisKind {
    /// `validate`: its groups and their expectations, as JSON.
    #[prost(string, tag = "1")]
    Validate(String),
    #[prost(message, tag = "2")]
    Drift(DriftMsg),
}

fn drift_msg(d: &Drift) -> DriftMsg {
    let checks = d
        .checks
        .iter()
        .map(|c| {
            let mut m = DriftCheckMsg {
                feature: c.feature.clone(),
                ..Default::default()
            };
            match &c.reference {
                Reference::Numeric(v) => {
                    (m.values, m.counts) = v.iter().copied().unzip();
                }
                Reference::Categorical(v) => {
                    m.categorical = true;
                    (m.categories, m.counts) = v.iter().cloned().unzip();
                }
                Reference::Skipped(why) => m.skipped = Some(why.clone()),
            }
            m
        })
        .collect();
    DriftMsg {
        method: d.method.name().to_string(),
        threshold: d.threshold,
        checks,
    }
}

fn drift_of(m: DriftMsg) -> Result<Drift> {
    let checks = m
        .checks
        .into_iter()
        .map(|c| Check {
            feature: c.feature,
            reference: if let Some(why) = c.skipped {
                Reference::Skipped(why)
            } else if c.categorical {
                Reference::Categorical(c.categories.into_iter().zip(c.counts).collect())
            } else {
                Reference::Numeric(c.values.into_iter().zip(c.counts).collect())
            },
        })
        .collect();
    Ok(Drift {
        method: drift::Method::parse(&m.method)?,
        threshold: m.threshold,
        checks: Arc::new(checks),
    })
}

fn json_error(e: serde_json::Error) -> DataFusionError {
    DataFusionError::Internal(format!("cannot carry validate's checks: {e}"))
}

fn decode_analysis(buf: &[u8]) -> Result<Arc<dyn Analysis>> {
    let msg: AnalysisMsg = decode_message(buf, "a quality analysis")?;
    Ok(match msg.analysis {
        Some(AnalysisKind::Validate(json)) => Arc::new(Checks {
            groups: serde_json::from_str(&json).map_err(json_error)?,
        }),
        Some(AnalysisKind::Drift(m)) => Arc::new(drift_of(m)?),
        None => return internal_err!("cannot decode a quality analysis: none given"),
    })
}

/// `validate` / `check_drift` providers travel as their calls (see `CallCodec`).
pub fn call_of(node: &dyn TableProvider) -> Option<(&'static str, &[Expr])> {
    if let Some(t) = node.downcast_ref::<DriftTable>() {
        Some((drift::FUNCTION, &t.args))
    } else {
        node.downcast_ref::<ValidateTable>()
            .map(|t| (validate::FUNCTION, t.args.as_slice()))
    }
}

/// Encodes and decodes [`SelectionExec`] running `validate` or `check_drift`.
#[derive(Debug, Default)]
pub struct QualityPhysicalCodec;

impl PhysicalExtensionCodec for QualityPhysicalCodec {
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
            return not_impl_err!("not a quality operator: {}", node.name());
        };
        let analysis: &dyn Any = exec.analysis().as_ref();
        let analysis = if let Some(c) = analysis.downcast_ref::<Checks>() {
            AnalysisKind::Validate(serde_json::to_string(&c.groups).map_err(json_error)?)
        } else if let Some(d) = analysis.downcast_ref::<Drift>() {
            AnalysisKind::Drift(drift_msg(d))
        } else {
            return not_impl_err!("not a quality analysis: {}", exec.analysis().describe());
        };
        let msg = AnalysisMsg {
            analysis: Some(analysis),
        };
        encode_selection(exec, msg.encode_to_vec(), buf)
    }
}
