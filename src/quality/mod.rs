//! Validation and drift (docs/sql-reference.md): expectations on features, `validate(feature_set
//! [, start, end])`, drift baselines and `check_drift(feature_set, current, method,
//! threshold)`, and the `fstore.expectations` system table.
//!
//! - Expectations are registry definitions on `group.feature` (see `registry::quality`);
//!   this module turns the statement's `name = value` pairs into them.
//! - `validate` computes every expectation of every feature of a set in one pass per
//!   feature group (one aggregate over the group's pinned plan) — see [`validate`].
//! - A drift baseline stores an exact summary of the baseline window (see [`drift`]), so
//!   `check_drift` reads only the current data.
//!
//! These functions only read; the statements that define things go through the registry.

pub mod codec;
pub mod drift;
pub mod statements;
pub mod validate;

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::error::Result;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;

use crate::engine::codec::{CallCodec, CodecSession};
use crate::engine::{EngineExtension, Setup};
use crate::error::FStoreError;
use crate::providers::system::SystemTable;
use crate::quality::statements::ExpectationValue;
use crate::registry::{EXPECTATION_NAMES, Expectation, RegistryState};

/// Registers `validate`, `check_drift` and `fstore.expectations`.
pub struct QualityExtension;

#[async_trait::async_trait]
impl EngineExtension for QualityExtension {
    fn name(&self) -> &'static str {
        "quality"
    }
    fn logical_codec(&self, session: &CodecSession) -> Option<Arc<dyn LogicalExtensionCodec>> {
        Some(Arc::new(CallCodec::new(session, "quality", codec::call_of)))
    }
    fn physical_codec(&self, _: &CodecSession) -> Option<Arc<dyn PhysicalExtensionCodec>> {
        Some(Arc::new(codec::QualityPhysicalCodec))
    }
    async fn register(&self, setup: &mut Setup<'_>) -> Result<()> {
        let (ctx, registry, system) = (setup.ctx, setup.registry, setup.system);
        system.register(Arc::new(ExpectationsTable));
        system.register(Arc::new(drift::DriftBaselinesTable));
        ctx.register_udtf(
            validate::FUNCTION,
            Arc::new(validate::Validate {
                registry: Arc::clone(registry),
            }),
        );
        ctx.register_udtf(
            drift::FUNCTION,
            Arc::new(drift::CheckDrift {
                registry: Arc::clone(registry),
            }),
        );
        Ok(())
    }
}

/// `feature` or `group.feature` → (group, feature). A bare name must belong to exactly one
/// feature group.
pub fn resolve_feature(state: &RegistryState, parts: &[String]) -> Result<(String, String)> {
    match parts {
        [group, feature] => {
            let g = state.group(group)?;
            if !g.feature_names().contains(&feature.as_str()) {
                return Err(FStoreError::not_found(format!(
                    "feature '{feature}' not found in feature group '{group}'"
                ))
                .into());
            }
            Ok((group.clone(), feature.clone()))
        }
        [feature] => {
            let owners: Vec<&str> = state
                .feature_groups
                .values()
                .filter(|g| g.def.feature_names().contains(&feature.as_str()))
                .map(|g| g.def.name.as_str())
                .collect();
            match owners.as_slice() {
                [one] => Ok((one.to_string(), feature.clone())),
                [] => Err(FStoreError::not_found(format!(
                    "no feature group has a feature '{feature}'"
                ))
                .into()),
                many => Err(FStoreError::invalid(format!(
                    "feature '{feature}' is ambiguous: it is in feature groups {}; write group.feature",
                    many.join(", ")
                ))
                .into()),
            }
        }
        _ => Err(FStoreError::invalid(format!(
            "'{}' is not a feature: write feature or group.feature",
            parts.join(".")
        ))
        .into()),
    }
}

/// The statement's `name = value` pairs as expectations (names and value kinds checked; the
/// feature's type is checked by the registry).
pub fn expectations_of(pairs: &[(String, ExpectationValue)]) -> Result<Vec<Expectation>> {
    let mut out: Vec<Expectation> = Vec::new();
    for (name, value) in pairs {
        let number = || -> Result<f64> {
            match value {
                ExpectationValue::Number(n) => n.parse::<f64>().map_err(|_| {
                    FStoreError::invalid(format!("{name} must be a number, got {value}")).into()
                }),
                _ => Err(
                    FStoreError::invalid(format!("{name} must be a number, got {value}")).into(),
                ),
            }
        };
        let e = match name.as_str() {
            "min_value" => Expectation::MinValue { value: number()? },
            "max_value" => Expectation::MaxValue { value: number()? },
            "null_percentage" => Expectation::NullPercentage { value: number()? },
            "allowed_values" => match value {
                ExpectationValue::List(l) => Expectation::AllowedValues { values: l.clone() },
                ExpectationValue::Text(t) => Expectation::AllowedValues {
                    values: vec![t.clone()],
                },
                _ => {
                    return Err(FStoreError::invalid(format!(
                        "allowed_values must be a list of values ('a', 'b', …), got {value}"
                    ))
                    .into());
                }
            },
            "unique" => match value {
                ExpectationValue::Bool(b) => Expectation::Unique { value: *b },
                _ => {
                    return Err(FStoreError::invalid(format!(
                        "unique must be TRUE or FALSE, got {value}"
                    ))
                    .into());
                }
            },
            other => {
                return Err(FStoreError::invalid(format!(
                    "unknown expectation '{other}'; expectations: {}",
                    EXPECTATION_NAMES.join(", ")
                ))
                .into());
            }
        };
        if out.iter().any(|x| x.name() == e.name()) {
            return Err(
                FStoreError::invalid(format!("expectation '{name}' is given twice")).into(),
            );
        }
        out.push(e);
    }
    Ok(out)
}

/// `fstore.expectations`: one row per expectation of every feature.
#[derive(Debug)]
pub struct ExpectationsTable;

impl SystemTable for ExpectationsTable {
    fn name(&self) -> &'static str {
        "expectations"
    }

    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("feature_group", DataType::Utf8, false),
            Field::new("feature", DataType::Utf8, false),
            Field::new("expectation", DataType::Utf8, false),
            Field::new("expected", DataType::Utf8, false),
        ]))
    }

    fn rows(&self, state: &RegistryState) -> Result<RecordBatch> {
        let rows: Vec<(&str, &str, &Expectation)> = state
            .expectations
            .values()
            .flat_map(|f| {
                f.expectations
                    .iter()
                    .map(move |e| (f.group.as_str(), f.feature.as_str(), e))
            })
            .collect();
        Ok(RecordBatch::try_new(
            self.schema(),
            vec![
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.2.name()),
                )),
                Arc::new(StringArray::from_iter_values(
                    rows.iter().map(|r| r.2.expected_text()),
                )),
            ],
        )?)
    }
}

/// The rows of a (pinned) feature group with its TIMESTAMP in [start, end).
pub async fn group_rows(
    def: &crate::registry::FeatureGroup,
    state: &datafusion::execution::context::SessionState,
    function: &str,
    start: Option<&str>,
    end: Option<&str>,
) -> Result<datafusion::logical_expr::LogicalPlan> {
    use datafusion::logical_expr::LogicalPlanBuilder;
    let plan = crate::features::plan(def, state).await?;
    let time = crate::features::feature_col(&def.timestamp);
    let time_type = plan
        .schema()
        .field_with_unqualified_name(&def.timestamp)?
        .data_type()
        .clone();
    let mut builder = LogicalPlanBuilder::from(plan);
    if let Some(s) = start {
        let bound = crate::features::training::time_bound(function, s, &time_type, "start")?;
        builder = builder.filter(time.clone().gt_eq(bound))?;
    }
    if let Some(e) = end {
        let bound = crate::features::training::time_bound(function, e, &time_type, "end")?;
        builder = builder.filter(time.lt(bound))?;
    }
    builder.build()
}
