//! `target_encode(category, target [, smoothing]) OVER ([PARTITION BY …] ORDER BY ts)`:
//! smoothed, leak-free target encoding.
//!
//! A training row must not see its own label, nor any label observed at the same time or
//! later: that is the leak that makes target encodings look great offline and fail online. So
//! the value of a row is computed from the rows strictly before its peer group (the rows tied
//! with it on the ORDER BY key), in one pass over the sorted partition with running sums per
//! category — O(n) per partition, never O(n²).
//!
//! DataFusion passes the ORDER BY values only to evaluators that use the window frame, so this
//! evaluator declares `uses_window_frame` and computes the whole partition on the first call of
//! `evaluate` (it ignores the frame itself: "before" always means all earlier rows).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::compute::partition;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{Documentation, PartitionEvaluator, Signature, WindowUDFImpl};
use datafusion_macros::user_doc;

use crate::arguments::{check_arity, is_numeric, require_numeric, to_f64};

const NAME: &str = "target_encode";
const USAGE: &str = "category, target [, smoothing]";

/// The smoothing strength when none is given.
pub const DEFAULT_SMOOTHING: f64 = 10.0;

/// `target_encode(category, target [, smoothing]) OVER (...)`.
#[user_doc(
    doc_section(label = "FStore Encoding Functions"),
    description = "Window function: smoothed, leak-free target encoding of `category`. The value \
         for a row uses only the rows of its window partition that come strictly before it in the \
         ORDER BY order: rows tied with it on the ORDER BY key are not visible (a label observed \
         at the same time t is not \"before t\"), nor is the row itself or anything later. With n \
         = the number of such earlier rows of the same category that have a non-NULL target, sum_y \
         = the sum of their targets, prior = the mean target of all earlier rows of the partition \
         with a non-NULL target, and m = smoothing (default 10), the value is (sum_y + m * prior) \
         / (n + m): the category mean shrunk towards the prior, which is the prior itself for a \
         category not seen before. NULL when no earlier row has a non-NULL target (no prior yet), \
         and when n + m = 0 (smoothing 0 and an unseen category). A NULL category is a category of \
         its own; rows with a NULL target are encoded but never counted. Booleans count as 0/1. \
         The window frame is ignored (always all earlier rows); ORDER BY is required. One pass \
         over the sorted partition with running sums per category: O(n).",
    syntax_example = "target_encode(category, target [, smoothing]) OVER ([PARTITION BY ...] ORDER \
         BY ts)",
    sql_example = r#"```sql
> SELECT ts, city, converted,
>        target_encode(city, converted, 1) OVER (ORDER BY ts) AS city_te
> FROM (VALUES (1, 'paris', 1), (2, 'rome', 0), (3, 'paris', 1), (4, 'paris', 0))
>      events(ts, city, converted)
> ORDER BY ts;
+----+-------+-----------+--------------------+
| ts | city  | converted | city_te            |
+----+-------+-----------+--------------------+
| 1  | paris | 1         |                    |
| 2  | rome  | 0         | 1.0                |
| 3  | paris | 1         | 0.75               |
| 4  | paris | 0         | 0.8888888888888888 |
+----+-------+-----------+--------------------+
```"#,
    argument(
        name = "category",
        description = "The categorical value to encode (any comparable type)."
    ),
    argument(name = "target", description = "The label: a number or a boolean."),
    argument(
        name = "smoothing",
        description = "Optional. m >= 0, the weight of the prior in rows (default 10); 0 gives the \
         plain category mean of earlier rows."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TargetEncode {
    signature: Signature,
}

impl Default for TargetEncode {
    fn default() -> Self {
        Self::new()
    }
}

impl TargetEncode {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[
                &[DataType::Utf8, DataType::Float64],
                &[DataType::Utf8, DataType::Boolean],
                &[DataType::Utf8, DataType::Float64, DataType::Float64],
            ]),
        }
    }
}

impl WindowUDFImpl for TargetEncode {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(arg_types.to_vec())
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> Result<FieldRef> {
        let types: Vec<&DataType> = field_args
            .input_fields()
            .iter()
            .map(|f| f.data_type())
            .collect();
        check_arity(NAME, USAGE, types.len(), 2, 3)?;
        if !(is_numeric(types[1]) || types[1] == &DataType::Boolean) {
            return plan_err!(
                "{NAME}: target must be a number or a boolean, got {}",
                types[1]
            );
        }
        if let Some(t) = types.get(2) {
            require_numeric(NAME, "smoothing", t)?;
        }
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Float64,
            true,
        )))
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(TargetEncodeEvaluator {
            arguments: args.input_exprs().len(),
            encoded: None,
            next: 0,
        }))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[derive(Debug)]
struct TargetEncodeEvaluator {
    /// How many of the `values` passed to `evaluate` are arguments (the rest are ORDER BY keys).
    arguments: usize,
    /// The encoding of every row of the partition, computed on the first call.
    encoded: Option<Vec<Option<f64>>>,
    /// The row the next call of `evaluate` is for (DataFusion calls it once per row, in order).
    next: usize,
}

impl PartitionEvaluator for TargetEncodeEvaluator {
    fn uses_window_frame(&self) -> bool {
        true
    }

    fn evaluate(
        &mut self,
        values: &[ArrayRef],
        _range: &std::ops::Range<usize>,
    ) -> Result<ScalarValue> {
        if self.encoded.is_none() {
            let (arguments, order_by) = values.split_at(self.arguments.min(values.len()));
            self.encoded = Some(encode_partition(arguments, order_by)?);
        }
        let encoded = self.encoded.as_deref().unwrap_or_default();
        let value = encoded.get(self.next).copied().flatten();
        self.next += 1;
        Ok(ScalarValue::Float64(value))
    }
}

/// Running sum and count of the targets of one category.
#[derive(Debug, Default, Clone, Copy)]
struct Sums {
    sum: f64,
    n: u64,
}

/// Encodes one partition, sorted by `order_by`.
fn encode_partition(arguments: &[ArrayRef], order_by: &[ArrayRef]) -> Result<Vec<Option<f64>>> {
    if order_by.is_empty() {
        return exec_err!(
            "{NAME} needs ORDER BY in its OVER clause (a row is encoded with the labels observed \
             before it), e.g. {NAME}(category, target) OVER (PARTITION BY ... ORDER BY ts)"
        );
    }
    let category = &arguments[0];
    let target = to_f64(&arguments[1])?;
    let smoothing = arguments.get(2).map(to_f64).transpose()?;
    if let Some(m) = &smoothing
        && let Some(bad) = m.iter().flatten().find(|m| m.is_nan() || *m < 0.0)
    {
        return exec_err!("{NAME}: smoothing must be >= 0, got {bad}");
    }

    let converter = RowConverter::new(vec![SortField::new(category.data_type().clone())])?;
    let keys = converter.convert_columns(std::slice::from_ref(category))?;
    let mut by_category: HashMap<&[u8], Sums> = HashMap::new();
    let mut all = Sums::default();
    let mut encoded = vec![None; category.len()];

    for peers in partition(order_by)?.ranges() {
        // Every row of a peer group sees the same past: the rows before the group.
        for i in peers.clone() {
            if all.n == 0 {
                continue;
            }
            let m = match &smoothing {
                None => DEFAULT_SMOOTHING,
                Some(m) if m.is_valid(i) => m.value(i),
                Some(_) => continue,
            };
            let prior = all.sum / all.n as f64;
            let seen = by_category
                .get(keys.row(i).as_ref())
                .copied()
                .unwrap_or_default();
            let weight = seen.n as f64 + m;
            if weight > 0.0 {
                encoded[i] = Some((seen.sum + m * prior) / weight);
            }
        }
        // Then the group's labels become part of the past.
        for i in peers {
            if target.is_valid(i) {
                let y = target.value(i);
                let s = by_category.entry(keys.row(i).data()).or_default();
                s.sum += y;
                s.n += 1;
                all.sum += y;
                all.n += 1;
            }
        }
    }
    Ok(encoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};

    fn encode(
        cats: Vec<Option<&str>>,
        y: Vec<Option<f64>>,
        ts: Vec<i64>,
        m: Option<f64>,
    ) -> Vec<Option<f64>> {
        let mut args: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(cats)),
            Arc::new(Float64Array::from(y)),
        ];
        if let Some(m) = m {
            args.push(Arc::new(Float64Array::from(vec![m; ts.len()])));
        }
        let order: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(ts))];
        encode_partition(&args, &order).unwrap()
    }

    #[test]
    fn the_first_rows_have_no_prior() {
        let out = encode(vec![Some("a")], vec![Some(1.0)], vec![1], None);
        assert_eq!(out, vec![None]);
    }

    #[test]
    fn shrinks_the_category_mean_towards_the_prior() {
        // Rows: a=1 @1, b=0 @2, a=1 @3, a=? @4
        let out = encode(
            vec![Some("a"), Some("b"), Some("a"), Some("a")],
            vec![Some(1.0), Some(0.0), Some(1.0), Some(0.0)],
            vec![1, 2, 3, 4],
            Some(1.0),
        );
        assert_eq!(out[0], None);
        // Row 2 (b): prior = 1, b unseen → prior.
        assert_eq!(out[1], Some(1.0));
        // Row 3 (a): prior = 0.5, a seen once with 1 → (1 + 0.5) / 2.
        assert_eq!(out[2], Some(0.75));
        // Row 4 (a): prior = 2/3, a seen twice with sum 2 → (2 + 2/3) / 3.
        assert!((out[3].unwrap() - 8.0 / 9.0).abs() < 1e-15);
    }

    #[test]
    fn tied_rows_do_not_see_each_other() {
        let out = encode(
            vec![Some("a"), Some("a"), Some("a")],
            vec![Some(1.0), Some(0.0), Some(1.0)],
            vec![5, 5, 6],
            Some(0.0),
        );
        assert_eq!(out[0], None);
        assert_eq!(out[1], None);
        assert_eq!(out[2], Some(0.5));
    }

    #[test]
    fn null_is_a_category_and_null_targets_are_not_counted() {
        let out = encode(
            vec![None, Some("a"), None, None],
            vec![Some(1.0), None, Some(0.0), Some(1.0)],
            vec![1, 2, 3, 4],
            Some(0.0),
        );
        // Row 2's target is NULL: it is encoded (prior 1) but not counted.
        assert_eq!(out[1], None); // 'a' unseen with smoothing 0: 0/0 → NULL
        assert_eq!(out[2], Some(1.0)); // NULL category seen once with 1
        assert_eq!(out[3], Some(0.5));
    }

    #[test]
    fn later_labels_do_not_change_earlier_encodings() {
        let cats = vec![Some("a"), Some("b"), Some("a"), Some("b"), Some("a")];
        let ts = vec![1, 2, 3, 4, 5];
        let y1 = vec![Some(1.0), Some(0.0), Some(1.0), Some(1.0), Some(0.0)];
        let mut y2 = y1.clone();
        y2[3] = Some(0.0);
        y2[4] = Some(1.0);
        let a = encode(cats.clone(), y1, ts.clone(), None);
        let b = encode(cats, y2, ts, None);
        assert_eq!(a[..4], b[..4]);
    }

    #[test]
    fn order_by_is_required() {
        let args: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(Float64Array::from(vec![1.0])),
        ];
        let e = encode_partition(&args, &[]).unwrap_err();
        assert!(e.to_string().contains("needs ORDER BY"), "{e}");
    }

    #[test]
    fn negative_smoothing_is_an_error() {
        let args: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec!["a"])),
            Arc::new(Float64Array::from(vec![1.0])),
            Arc::new(Float64Array::from(vec![-1.0])),
        ];
        let order: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![1]))];
        let e = encode_partition(&args, &order).unwrap_err();
        assert!(
            e.to_string().contains("smoothing must be >= 0, got -1"),
            "{e}"
        );
    }

    #[test]
    fn is_linear_in_the_partition_size() {
        let n = 200_000;
        let cats: Vec<Option<String>> = (0..n).map(|i| Some(format!("c{}", i % 1000))).collect();
        let args: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(cats)),
            Arc::new(Float64Array::from(
                (0..n).map(|i| (i % 2) as f64).collect::<Vec<_>>(),
            )),
        ];
        let order: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(
            (0..n as i64).collect::<Vec<_>>(),
        ))];
        let started = std::time::Instant::now();
        let out = encode_partition(&args, &order).unwrap();
        assert_eq!(out.len(), n);
        assert!(started.elapsed().as_secs() < 10);
    }
}
