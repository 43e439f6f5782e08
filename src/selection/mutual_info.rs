//! The `mutual_info` method of `select_features`: I(feature; target) in nats for a discrete
//! target, as scikit-learn's `mutual_info_classif` computes it.
//!
//! - Discrete features (strings, booleans, dates and other non-numeric types; integers with at
//!   most `DISCRETE_MAX_DISTINCT` distinct values): the plug-in estimate from the contingency
//!   table — the `mutual_info` aggregate of `fstore-udfs`, whose accumulator is fed directly
//!   (scikit-learn: `mutual_info_score`, used for features marked discrete). Memory: one
//!   counter per distinct (value, class) pair.
//! - Continuous features (floats, decimals, integers with more distinct values): the k-NN
//!   estimator (`knn`, scikit-learn's `_compute_mi_cd` with 3 neighbours). The (value, class)
//!   pairs are held, 16 bytes a row; NaN and infinite values are skipped like NULLs. An integer
//!   feature is held both ways until it shows more than `DISCRETE_MAX_DISTINCT` values.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::arrow::array::{Array, ArrayRef, Float64Array, RecordBatch};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::AccumulatorArgs;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use fstore_udfs::stats::MutualInfo;

use super::as_f64;
use super::exec::Accumulate;
use super::knn;
use super::select::{ClassIndex, DISCRETE_MAX_DISTINCT, Scoring};

/// What is kept per feature.
enum FeatureState {
    /// The `mutual_info` aggregate over (feature, target).
    Discrete(Box<dyn Accumulator>),
    /// (value, class) pairs for the k-NN estimator.
    Continuous(Vec<(f64, u32)>),
    /// An integer feature: discrete (`discrete` is kept) until it has too many distinct values.
    Integer {
        distinct: HashSet<u64>,
        discrete: Option<Box<dyn Accumulator>>,
        points: Vec<(f64, u32)>,
    },
}

/// A fresh `mutual_info(x, y)` accumulator for these types.
fn discrete_accumulator(feature: &DataType, target: &DataType) -> Result<Box<dyn Accumulator>> {
    let fields: Vec<FieldRef> = vec![
        Arc::new(Field::new("x", feature.clone(), true)),
        Arc::new(Field::new("y", target.clone(), true)),
    ];
    let schema = Schema::new(fields.clone());
    let exprs: Vec<Arc<dyn PhysicalExpr>> =
        vec![Arc::new(Column::new("x", 0)), Arc::new(Column::new("y", 1))];
    MutualInfo::new().accumulator(AccumulatorArgs {
        return_field: Arc::new(Field::new("mutual_info", DataType::Float64, true)),
        schema: &schema,
        ignore_nulls: false,
        order_bys: &[],
        is_reversed: false,
        name: "mutual_info(x, y)",
        is_distinct: false,
        exprs: &exprs,
        expr_fields: &fields,
    })
}

/// Adds the finite values of rows with a class; returns the bytes added.
fn push_points(
    points: &mut Vec<(f64, u32)>,
    values: &Float64Array,
    classes: &[Option<u32>],
) -> usize {
    let before = points.len();
    for (i, class) in classes.iter().enumerate() {
        if let Some(c) = class
            && values.is_valid(i)
            && values.value(i).is_finite()
        {
            points.push((values.value(i), *c));
        }
    }
    (points.len() - before) * size_of::<(f64, u32)>()
}

fn evaluate(acc: &mut Box<dyn Accumulator>) -> Result<Option<f64>> {
    Ok(match acc.evaluate()? {
        ScalarValue::Float64(v) => v,
        _ => None,
    })
}

/// Running state of the `mutual_info` method.
pub(super) struct MutualInfoScores {
    scoring: Scoring,
    classes: ClassIndex,
    features: Vec<FeatureState>,
}

impl MutualInfoScores {
    pub fn try_new(scoring: Scoring, classes: ClassIndex) -> Result<Self> {
        let target = scoring
            .target
            .as_ref()
            .map(|t| t.1.clone())
            .unwrap_or(DataType::Null);
        let features = scoring
            .features
            .iter()
            .map(|(_, t)| {
                Ok(if t.is_integer() {
                    FeatureState::Integer {
                        distinct: HashSet::new(),
                        discrete: Some(discrete_accumulator(t, &target)?),
                        points: Vec::new(),
                    }
                } else if t.is_numeric() {
                    FeatureState::Continuous(Vec::new())
                } else {
                    FeatureState::Discrete(discrete_accumulator(t, &target)?)
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            scoring,
            classes,
            features,
        })
    }
}

impl Accumulate for MutualInfoScores {
    fn update(&mut self, batch: &RecordBatch) -> Result<usize> {
        let p = self.features.len();
        let target: &ArrayRef = batch.column(p);
        let classes = self.classes.classes(target)?;
        let mut kept = 0;
        for (state, column) in self.features.iter_mut().zip(batch.columns()) {
            match state {
                FeatureState::Discrete(acc) => {
                    acc.update_batch(&[Arc::clone(column), Arc::clone(target)])?
                }
                FeatureState::Continuous(points) => {
                    kept += push_points(points, &as_f64(column)?, &classes)
                }
                FeatureState::Integer {
                    distinct,
                    discrete,
                    points,
                } => {
                    let values = as_f64(column)?;
                    kept += push_points(points, &values, &classes);
                    if let Some(acc) = discrete {
                        for v in values.iter().flatten() {
                            distinct.insert(v.to_bits());
                            if distinct.len() > DISCRETE_MAX_DISTINCT {
                                break;
                            }
                        }
                        if distinct.len() > DISCRETE_MAX_DISTINCT {
                            *discrete = None;
                            distinct.clear();
                        } else {
                            acc.update_batch(&[Arc::clone(column), Arc::clone(target)])?;
                        }
                    }
                }
            }
        }
        Ok(kept)
    }

    fn finish(self: Box<Self>, schema: SchemaRef) -> Result<RecordBatch> {
        let this = *self;
        this.scoring.check_classes(this.classes.len())?;
        let classes = this.classes.len();
        let continuous = |mut points: Vec<(f64, u32)>| {
            (!points.is_empty()).then(|| knn::mutual_info(&mut points, classes))
        };
        let mut scores = Vec::with_capacity(this.features.len());
        for ((name, _), state) in this.scoring.features.iter().zip(this.features) {
            let score = match state {
                FeatureState::Discrete(mut acc) => evaluate(&mut acc)?,
                FeatureState::Continuous(points) => continuous(points),
                FeatureState::Integer {
                    discrete: Some(mut acc),
                    ..
                } => evaluate(&mut acc)?,
                FeatureState::Integer { points, .. } => continuous(points),
            };
            scores.push((name.clone(), score));
        }
        this.scoring.ranked(schema, scores)
    }
}
