//! `mutual_info(x, y)`: the mutual information, in nats, between two discrete variables.
//!
//! It measures how much a feature tells about a target (or another feature) whatever the shape
//! of the dependence, and is what feature selection ranks discrete features by — FStore's
//! `select_features` feeds this same accumulator — so it equals scikit-learn's
//! `mutual_info_score` on the same data.
//!
//! Values of any type are compared through Arrow's row format (so strings, integers, dates and
//! booleans all work, and equal values have equal bytes). The accumulator interns the distinct
//! x and y values and counts each (x, y) pair; its partial state is the list of pairs with
//! their counts, so partial aggregates merge by adding counts.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, ListArray, UInt64Array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Float32Type, Float64Type, UInt64Type,
};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::utils::format_state_name;
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Documentation, Signature};
use datafusion_macros::user_doc;

use crate::arguments::check_arity;

const NAME: &str = "mutual_info";

/// `mutual_info(x, y)`.
#[user_doc(
    doc_section(label = "FStore Statistics Functions"),
    description = "Aggregate: the mutual information I(X; Y), in nats, between the discrete \
         variables `x` and `y` over the rows of the group, from the empirical joint distribution: \
         I = Σ p(x, y) · ln(p(x, y) / (p(x) · p(y))), with p the fraction of counted rows. Rows \
         where `x` or `y` is NULL are skipped. Values are compared by value, of any type (0.0 and \
         -0.0 are the same value; so are all NaNs). 0 when x and y are independent in the sample \
         (and whenever either is constant); at most min(H(X), H(Y)). Equals \
         sklearn.metrics.mutual_info_score(x, y). NULL for a group with no counted rows. \
         Continuous values should be bucketed first (e.g. with width_bucket or time_bucket).",
    syntax_example = "mutual_info(x, y)",
    sql_example = r#"```sql
> SELECT mutual_info(category, converted) AS mi
> FROM (VALUES ('a', 1), ('a', 1), ('b', 0), ('b', 0), ('c', 1), ('c', 0))
>      transactions(category, converted);
+---------------------+
| mi                  |
+---------------------+
| 0.46209812037329684 |
+---------------------+
```"#,
    argument(name = "x", description = "A discrete variable (any comparable type)."),
    argument(name = "y", description = "A discrete variable (any comparable type).")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MutualInfo {
    signature: Signature,
}

impl Default for MutualInfo {
    fn default() -> Self {
        Self::new()
    }
}

impl MutualInfo {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[&[DataType::Utf8, DataType::Int64]]),
        }
    }
}

impl AggregateUDFImpl for MutualInfo {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(arg_types.to_vec())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_arity(NAME, "x, y", arg_types.len(), 2, 2)?;
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(MutualInfoAccumulator::try_new(
            args.expr_fields[0].data_type(),
            args.expr_fields[1].data_type(),
        )?))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |s: &str, t: DataType| {
            Arc::new(Field::new_list(
                format_state_name(args.name, s),
                Field::new_list_field(t, true),
                true,
            ))
        };
        Ok(vec![
            list("x", DataType::Binary),
            list("y", DataType::Binary),
            list("count", DataType::UInt64),
        ])
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// Distinct values, each given a small integer id.
#[derive(Debug, Default)]
struct Interned {
    ids: HashMap<Box<[u8]>, u32>,
    values: Vec<Box<[u8]>>,
    bytes: usize,
}

impl Interned {
    fn id(&mut self, value: &[u8]) -> u32 {
        if let Some(id) = self.ids.get(value) {
            return *id;
        }
        let id = self.values.len() as u32;
        self.ids.insert(value.into(), id);
        self.values.push(value.into());
        self.bytes += 2 * value.len();
        id
    }
}

#[derive(Debug)]
struct MutualInfoAccumulator {
    converters: [RowConverter; 2],
    values: [Interned; 2],
    joint: HashMap<(u32, u32), u64>,
}

impl MutualInfoAccumulator {
    fn try_new(x: &DataType, y: &DataType) -> Result<Self> {
        Ok(Self {
            converters: [
                RowConverter::new(vec![SortField::new(x.clone())])?,
                RowConverter::new(vec![SortField::new(y.clone())])?,
            ],
            values: Default::default(),
            joint: HashMap::new(),
        })
    }
}

/// Makes floats that SQL calls equal byte-identical: -0.0 becomes 0.0, every NaN one NaN.
fn canonical(values: &ArrayRef) -> ArrayRef {
    match values.data_type() {
        DataType::Float64 => Arc::new(
            values
                .as_primitive::<Float64Type>()
                .unary::<_, Float64Type>(|v| {
                    if v == 0.0 {
                        0.0
                    } else if v.is_nan() {
                        f64::NAN
                    } else {
                        v
                    }
                }),
        ) as ArrayRef,
        DataType::Float32 => Arc::new(
            values
                .as_primitive::<Float32Type>()
                .unary::<_, Float32Type>(|v| {
                    if v == 0.0 {
                        0.0
                    } else if v.is_nan() {
                        f32::NAN
                    } else {
                        v
                    }
                }),
        ),
        _ => Arc::clone(values),
    }
}

impl Accumulator for MutualInfoAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (x, y) = (canonical(&values[0]), canonical(&values[1]));
        let rows_x = self.converters[0].convert_columns(std::slice::from_ref(&x))?;
        let rows_y = self.converters[1].convert_columns(std::slice::from_ref(&y))?;
        let (nulls_x, nulls_y) = (x.logical_nulls(), y.logical_nulls());
        let [xs, ys] = &mut self.values;
        for i in 0..x.len() {
            if nulls_x.as_ref().is_some_and(|n| n.is_null(i))
                || nulls_y.as_ref().is_some_and(|n| n.is_null(i))
            {
                continue;
            }
            let pair = (xs.id(rows_x.row(i).as_ref()), ys.id(rows_y.row(i).as_ref()));
            *self.joint.entry(pair).or_default() += 1;
        }
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        let total: u64 = self.joint.values().sum();
        if total == 0 {
            return Ok(ScalarValue::Float64(None));
        }
        let mut px = vec![0u64; self.values[0].values.len()];
        let mut py = vec![0u64; self.values[1].values.len()];
        for (&(x, y), &c) in &self.joint {
            px[x as usize] += c;
            py[y as usize] += c;
        }
        let n = total as f64;
        // Summed in the order of the values themselves (not of the hash map, nor of the ids,
        // which follow arrival order): the same bits however the rows were partitioned.
        let mut cells: Vec<(&[u8], &[u8], u64)> = self
            .joint
            .iter()
            .map(|(&(x, y), &c)| {
                (
                    &*self.values[0].values[x as usize],
                    &*self.values[1].values[y as usize],
                    c,
                )
            })
            .collect();
        cells.sort_unstable();
        let (ix, iy) = (&self.values[0].ids, &self.values[1].ids);
        let mi: f64 = cells
            .iter()
            .map(|&(vx, vy, c)| {
                let (x, y) = (ix[vx] as usize, iy[vy] as usize);
                let c = c as f64;
                c / n * (c * n / (px[x] as f64 * py[y] as f64)).ln()
            })
            .sum();
        Ok(ScalarValue::Float64(Some(mi.max(0.0))))
    }

    fn size(&self) -> usize {
        size_of_val(self)
            + self
                .values
                .iter()
                .map(|v| v.bytes + v.values.len() * 48)
                .sum::<usize>()
            + self.joint.len() * 32
            + self
                .converters
                .iter()
                .map(RowConverter::size)
                .sum::<usize>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let mut pairs: Vec<_> = self.joint.iter().collect();
        pairs.sort_unstable();
        let side = |k: usize| -> ArrayRef {
            Arc::new(BinaryArray::from_iter_values(pairs.iter().map(|(p, _)| {
                let id = if k == 0 { p.0 } else { p.1 };
                self.values[k].values[id as usize].as_ref()
            })))
        };
        let list = |values: ArrayRef| {
            ScalarValue::List(Arc::new(ListArray::new(
                Arc::new(Field::new_list_field(values.data_type().clone(), true)),
                OffsetBuffer::from_lengths([values.len()]),
                values,
                None,
            )))
        };
        let counts: ArrayRef = Arc::new(UInt64Array::from_iter_values(
            pairs.iter().map(|(_, c)| **c),
        ));
        Ok(vec![list(side(0)), list(side(1)), list(counts)])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (xs, ys, counts) = (
            states[0].as_list::<i32>(),
            states[1].as_list::<i32>(),
            states[2].as_list::<i32>(),
        );
        for row in 0..xs.len() {
            if xs.is_null(row) {
                continue;
            }
            let (x, y, c) = (xs.value(row), ys.value(row), counts.value(row));
            let (x, y, c) = (
                x.as_binary::<i32>(),
                y.as_binary::<i32>(),
                c.as_primitive::<UInt64Type>(),
            );
            for i in 0..x.len() {
                let pair = (self.values[0].id(x.value(i)), self.values[1].id(y.value(i)));
                *self.joint.entry(pair).or_default() += c.value(i);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::partial_then_final;
    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};

    fn make() -> Box<dyn Accumulator> {
        Box::new(MutualInfoAccumulator::try_new(&DataType::Utf8, &DataType::Int64).unwrap())
    }

    fn batch(x: Vec<Option<&str>>, y: Vec<Option<i64>>) -> Vec<ArrayRef> {
        vec![
            Arc::new(StringArray::from(x)),
            Arc::new(Int64Array::from(y)),
        ]
    }

    #[test]
    fn a_copy_has_the_entropy_and_independence_has_none() {
        // y determined by x, x uniform over 2 values → I = H(X) = ln 2.
        let out = partial_then_final(
            make,
            vec![
                batch(vec![Some("a"), Some("b")], vec![Some(1), Some(2)]),
                batch(
                    vec![Some("a"), Some("b"), None],
                    vec![Some(1), Some(2), Some(3)],
                ),
            ],
        )
        .unwrap();
        let ScalarValue::Float64(Some(mi)) = out else {
            panic!("{out:?}")
        };
        assert!((mi - std::f64::consts::LN_2).abs() < 1e-15);
        let out = partial_then_final(
            make,
            vec![batch(
                vec![Some("a"), Some("a"), Some("b"), Some("b")],
                vec![Some(1), Some(2), Some(1), Some(2)],
            )],
        )
        .unwrap();
        assert_eq!(out, ScalarValue::Float64(Some(0.0)));
    }

    #[test]
    fn matches_the_definition_on_an_uneven_table() {
        // Joint counts: (a,1)=3, (a,2)=1, (b,2)=2; n = 6.
        let x = vec![
            Some("a"),
            Some("a"),
            Some("a"),
            Some("a"),
            Some("b"),
            Some("b"),
        ];
        let y = vec![Some(1), Some(1), Some(1), Some(2), Some(2), Some(2)];
        let out = partial_then_final(make, vec![batch(x, y)]).unwrap();
        let want = 3.0 / 6.0 * (3.0f64 * 6.0 / (4.0 * 3.0)).ln()
            + 1.0 / 6.0 * (1.0f64 * 6.0 / (4.0 * 3.0)).ln()
            + 2.0 / 6.0 * (2.0f64 * 6.0 / (2.0 * 3.0)).ln();
        let ScalarValue::Float64(Some(mi)) = out else {
            panic!("{out:?}")
        };
        assert!((mi - want).abs() < 1e-15);
    }

    #[test]
    fn no_counted_rows_is_null() {
        let out = partial_then_final(make, vec![batch(vec![None], vec![Some(1)])]).unwrap();
        assert_eq!(out, ScalarValue::Float64(None));
    }

    #[test]
    fn zero_and_negative_zero_are_one_value() {
        let x: ArrayRef = Arc::new(Float64Array::from(vec![0.0, -0.0]));
        assert_eq!(
            canonical(&x)
                .as_primitive::<Float64Type>()
                .value(1)
                .to_bits(),
            0.0f64.to_bits()
        );
    }
}
