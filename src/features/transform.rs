//! `ALTER FEATURE GROUP … ADD TRANSFORMATION`: fitting encoders and scalers over a group's
//! rows, and turning the fitted parameters into expressions of the group's plan.
//!
//! Fitted parameters (categories, frequencies, mean/std, min/max) are computed once, when the
//! transformation is added, and stored in the registry: every later read — offline or
//! online — uses the same numbers. Target encoding is the exception by design: it is
//! point-in-time (a row at t uses only labels observed before t, via the `target_encode`
//! window function ordered by event time), so its "fitted state" is its definition (target
//! column and smoothing), and the value at any time is reproducible from the data.

use arrow_schema::DataType;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::ExprFunctionExt;
use datafusion::prelude::{Expr, cast, ident, lit, when};

use crate::error::FStoreError;
use crate::features::statements::{AddTransformation, literal_text};
use crate::registry::{Encoder, FeatureGroup, Transformation};

/// Most categories a fitted one-hot or label encoder may have.
pub const MAX_CATEGORIES: usize = 1000;

/// Hidden column carrying a target-encoding target that is not a feature.
pub fn target_column(target: &str) -> String {
    format!("__fstore_target_{target}")
}

fn hidden_te(output: &str) -> String {
    format!("__fstore_te_{output}")
}

fn udf(
    state: &SessionState,
    name: &str,
) -> Result<std::sync::Arc<datafusion::logical_expr::ScalarUDF>> {
    state.scalar_functions().get(name).cloned().ok_or_else(|| {
        FStoreError::new(
            crate::error::ErrorKind::Internal,
            format!("function {name} is not registered"),
        )
        .into()
    })
}

fn string_array(values: &[String]) -> Expr {
    datafusion::functions_nested::expr_fn::make_array(
        values.iter().map(|v| lit(v.as_str())).collect(),
    )
}

/// Window expressions (target encodings) to add before the output projection.
pub fn window_exprs(group: &FeatureGroup, state: &SessionState) -> Result<Vec<Expr>> {
    let mut out = Vec::new();
    for t in &group.transformations {
        if let Encoder::TargetEncoding { target, smoothing } = &t.encoder {
            let udwf = state
                .window_functions()
                .get("target_encode")
                .cloned()
                .ok_or_else(|| {
                    FStoreError::new(
                        crate::error::ErrorKind::Internal,
                        "target_encode is not registered",
                    )
                })?;
            let target_expr = if group.schema.field_with_name(target).is_ok() {
                ident(target)
            } else {
                ident(target_column(target))
            };
            let mut order = vec![ident(&group.timestamp).sort(true, false)];
            if let Some(c) = &group.created {
                order.push(ident(c).sort(true, false));
            }
            let e = udwf
                .call(vec![ident(&t.feature), target_expr, lit(*smoothing)])
                .order_by(order)
                .build()?
                .alias(hidden_te(&t.output));
            out.push(e);
        }
    }
    Ok(out)
}

/// The expression computing a transformation's output column.
pub fn output_expr(
    t: &Transformation,
    _group: &FeatureGroup,
    state: &SessionState,
) -> Result<Expr> {
    let x = ident(&t.feature);
    let as_text = cast(x.clone(), DataType::Utf8);
    let as_f64 = cast(x.clone(), DataType::Float64);
    Ok(match &t.encoder {
        Encoder::TargetEncoding { .. } => ident(hidden_te(&t.output)),
        Encoder::OneHot { categories } => {
            udf(state, "one_hot")?.call(vec![as_text, string_array(categories)])
        }
        Encoder::Label { categories } => {
            udf(state, "label_encode")?.call(vec![as_text, string_array(categories)])
        }
        Encoder::Frequency {
            categories,
            frequencies,
        } => {
            if categories.is_empty() {
                lit(0.0f64)
            } else {
                let mut case = when(
                    as_text.clone().eq(lit(categories[0].as_str())),
                    lit(frequencies[0]),
                );
                for (c, f) in categories.iter().zip(frequencies).skip(1) {
                    case = case.when(as_text.clone().eq(lit(c.as_str())), lit(*f));
                }
                case.otherwise(lit(0.0f64))?
            }
        }
        Encoder::Hash { buckets } => udf(state, "hash_bucket")?.call(vec![x, lit(*buckets)]),
        Encoder::Standard { mean, std } => {
            udf(state, "standard_scale")?.call(vec![as_f64, lit(*mean), lit(*std)])
        }
        Encoder::MinMax { min, max } => {
            udf(state, "min_max_scale")?.call(vec![as_f64, lit(*min), lit(*max)])
        }
    })
}

fn arg<'a>(
    a: &'a AddTransformation,
    name: &str,
    position: usize,
) -> Option<&'a datafusion::sql::sqlparser::ast::Expr> {
    a.args
        .iter()
        .find(|(n, _)| n.as_deref() == Some(name))
        .or_else(|| a.args.iter().filter(|(n, _)| n.is_none()).nth(position))
        .map(|(_, e)| e)
}

/// Runs a one-row fitting query and returns its values.
async fn fit_row(state: &SessionState, sql: &str) -> Result<Vec<ScalarValue>> {
    let plan = state.create_logical_plan(sql).await?;
    let batches = datafusion::dataframe::DataFrame::new(state.clone(), plan)
        .collect()
        .await?;
    let batch = batches.iter().find(|b| b.num_rows() > 0).ok_or_else(|| {
        FStoreError::invalid("the feature group has no rows to fit the transformation on")
    })?;
    (0..batch.num_columns())
        .map(|c| ScalarValue::try_from_array(batch.column(c), 0))
        .collect()
}

async fn fit_categories(
    state: &SessionState,
    group: &str,
    feature: &str,
) -> Result<(Vec<String>, Vec<f64>)> {
    let q = crate::registry::quote_ident;
    let sql = format!(
        "SELECT CAST({f} AS VARCHAR) AS v, CAST(count(*) AS DOUBLE) / CAST(sum(count(*)) OVER () AS DOUBLE) AS freq \
         FROM {g} WHERE {f} IS NOT NULL GROUP BY 1 ORDER BY 1 LIMIT {}",
        MAX_CATEGORIES + 1,
        f = q(feature),
        g = q(group),
    );
    let plan = state.create_logical_plan(&sql).await?;
    let batches = datafusion::dataframe::DataFrame::new(state.clone(), plan)
        .collect()
        .await?;
    let mut cats = Vec::new();
    let mut freqs = Vec::new();
    for b in &batches {
        for r in 0..b.num_rows() {
            if let ScalarValue::Utf8(Some(v))
            | ScalarValue::Utf8View(Some(v))
            | ScalarValue::LargeUtf8(Some(v)) = ScalarValue::try_from_array(b.column(0), r)?
            {
                cats.push(v);
                freqs.push(match ScalarValue::try_from_array(b.column(1), r)? {
                    ScalarValue::Float64(Some(f)) => f,
                    _ => 0.0,
                });
            }
        }
    }
    if cats.len() > MAX_CATEGORIES {
        return Err(FStoreError::invalid(format!(
            "feature '{feature}' has more than {MAX_CATEGORIES} categories; use hash(buckets => n) instead"
        ))
        .into());
    }
    Ok((cats, freqs))
}

fn as_f64(v: &ScalarValue) -> Option<f64> {
    match v.cast_to(&DataType::Float64).ok()? {
        ScalarValue::Float64(Some(f)) => Some(f),
        _ => None,
    }
}

/// Fits `ALTER FEATURE GROUP … ADD TRANSFORMATION` over the group's current rows.
pub async fn fit(
    a: &AddTransformation,
    group: &FeatureGroup,
    state: &SessionState,
) -> Result<Transformation> {
    let g = group.name.as_str();
    let feature = group.feature(&a.feature).ok_or_else(|| {
        FStoreError::not_found(format!(
            "feature '{}' not found in feature group '{g}'",
            a.feature
        ))
    })?;
    let q = crate::registry::quote_ident;
    let (encoder, suffix) = match a.encoder.as_str() {
        "target_encoding" | "target" => {
            let target = arg(a, "target", 0).and_then(literal_text).ok_or_else(|| {
                FStoreError::invalid(
                    "target_encoding needs the label column: target_encoding(target => column)",
                )
            })?;
            let smoothing = match arg(a, "smoothing", 1) {
                Some(e) => literal_text(e)
                    .and_then(|t| t.parse::<f64>().ok())
                    .filter(|m| *m >= 0.0)
                    .ok_or_else(|| {
                        FStoreError::invalid(format!(
                            "target_encoding: smoothing must be a non-negative number, got {e}"
                        ))
                    })?,
                None => 10.0,
            };
            // The target must be readable: a feature of the group or a column of its source.
            let check = format!(
                "SELECT {} FROM {} LIMIT 0",
                q(&target),
                group.source.as_from()
            );
            if group.schema.field_with_name(&target).is_err()
                && state.create_logical_plan(&check).await.is_err()
            {
                return Err(FStoreError::invalid(format!(
                    "target_encoding: target column '{target}' is neither a feature of '{g}' nor a column of its source"
                ))
                .into());
            }
            (Encoder::TargetEncoding { target, smoothing }, "te")
        }
        "one_hot" => (
            Encoder::OneHot {
                categories: fit_categories(state, g, &feature.name).await?.0,
            },
            "onehot",
        ),
        "label" => (
            Encoder::Label {
                categories: fit_categories(state, g, &feature.name).await?.0,
            },
            "label",
        ),
        "frequency" => {
            let (categories, frequencies) = fit_categories(state, g, &feature.name).await?;
            (
                Encoder::Frequency {
                    categories,
                    frequencies,
                },
                "freq",
            )
        }
        "hash" => {
            let buckets = arg(a, "buckets", 0)
                .and_then(literal_text)
                .and_then(|t| t.parse::<i64>().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    FStoreError::invalid(
                        "hash needs a positive number of buckets: hash(buckets => 1024)",
                    )
                })?;
            (Encoder::Hash { buckets }, "hash")
        }
        "standard" => {
            let row = fit_row(
                state,
                &format!(
                    "SELECT avg(CAST({f} AS DOUBLE)), stddev_pop(CAST({f} AS DOUBLE)) FROM {}",
                    q(g),
                    f = q(&feature.name)
                ),
            )
            .await?;
            let mean = row.first().and_then(as_f64).ok_or_else(|| {
                FStoreError::invalid(format!(
                    "standard: feature '{}' has no numeric values",
                    feature.name
                ))
            })?;
            let std = row.get(1).and_then(as_f64).unwrap_or(0.0);
            (Encoder::Standard { mean, std }, "std")
        }
        "min_max" => {
            let row = fit_row(
                state,
                &format!(
                    "SELECT min(CAST({f} AS DOUBLE)), max(CAST({f} AS DOUBLE)) FROM {}",
                    q(g),
                    f = q(&feature.name)
                ),
            )
            .await?;
            let (Some(min), Some(max)) =
                (row.first().and_then(as_f64), row.get(1).and_then(as_f64))
            else {
                return Err(FStoreError::invalid(format!(
                    "min_max: feature '{}' has no numeric values",
                    feature.name
                ))
                .into());
            };
            (Encoder::MinMax { min, max }, "minmax")
        }
        other => {
            return Err(FStoreError::invalid(format!(
                "unknown transformation '{other}': use target_encoding, one_hot, label, frequency, hash, standard or min_max"
            ))
            .into());
        }
    };
    Ok(Transformation {
        feature: feature.name.clone(),
        output: a
            .output
            .clone()
            .unwrap_or_else(|| format!("{}_{suffix}", feature.name)),
        encoder,
    })
}
