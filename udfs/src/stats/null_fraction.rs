//! `null_fraction(x)`: the fraction of rows where `x` is NULL.
//!
//! The basic data-quality check, per column and per group. In plain SQL it needs casts
//! (`count` is an integer) and divides by zero on an empty group; as a counting aggregate
//! (`counts.rs`) it is one call, NULL for no rows, and fast on millions of groups.

use datafusion::arrow::array::{Array, ArrayRef};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, GroupsAccumulator, Signature,
};
use datafusion_macros::user_doc;

use super::counts::{self, CountingAccumulator, CountingGroups};
use crate::arguments::check_arity;

const NAME: &str = "null_fraction";
const NULLS: usize = 0;
const ROWS: usize = 1;

fn classify(values: &[ArrayRef]) -> Result<Vec<u8>> {
    let x = &values[0];
    let nulls = x.logical_nulls();
    Ok((0..x.len())
        .map(|i| {
            let null = nulls.as_ref().is_some_and(|n| n.is_null(i));
            (1 << ROWS) | (u8::from(null) << NULLS)
        })
        .collect())
}

fn finish(c: &[u64; 2]) -> Option<f64> {
    (c[ROWS] > 0).then(|| c[NULLS] as f64 / c[ROWS] as f64)
}

/// `null_fraction(x)`.
#[user_doc(
    doc_section(label = "FStore Statistics Functions"),
    description = "Aggregate: the fraction of the group's rows in which `x` is NULL, as Float64 in \
         [0, 1] (NaN is a value, not NULL). NULL for a group with no rows (an empty table, or \
         FILTER removing every row). Any type. Runs as a grouped (vectorised) aggregate, for many \
         groups.",
    syntax_example = "null_fraction(x)",
    sql_example = r#"```sql
> SELECT null_fraction(amount) AS nulls FROM (VALUES (1.0), (NULL), (3.0), (NULL)) t(amount);
+-------+
| nulls |
+-------+
| 0.5   |
+-------+
```"#,
    argument(name = "x", description = "An expression of any type.")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NullFraction {
    signature: Signature,
}

impl Default for NullFraction {
    fn default() -> Self {
        Self::new()
    }
}

impl NullFraction {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[&[DataType::Float64], &[DataType::Utf8]]),
        }
    }
}

impl AggregateUDFImpl for NullFraction {
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
        check_arity(NAME, "x", arg_types.len(), 1, 1)?;
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(CountingAccumulator::<2>::new(classify, finish)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(counts::state_fields(args.name, &["nulls", "rows"]))
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        _args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(CountingGroups::<2>::new(classify, finish)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::partial_then_final;
    use datafusion::arrow::array::{Float64Array, NullArray, StringArray};
    use datafusion::common::ScalarValue;
    use std::sync::Arc;

    fn make() -> Box<dyn Accumulator> {
        Box::new(CountingAccumulator::<2>::new(classify, finish))
    }

    #[test]
    fn counts_nulls_across_partials() {
        let out = partial_then_final(
            make,
            vec![
                vec![Arc::new(StringArray::from(vec![Some("a"), None])) as ArrayRef],
                vec![Arc::new(StringArray::from(vec![None::<&str>, None])) as ArrayRef],
            ],
        )
        .unwrap();
        assert_eq!(out, ScalarValue::Float64(Some(0.75)));
    }

    #[test]
    fn nan_is_not_null_and_the_null_type_is() {
        let mut acc = make();
        acc.update_batch(&[Arc::new(Float64Array::from(vec![f64::NAN])) as ArrayRef])
            .unwrap();
        acc.update_batch(&[Arc::new(NullArray::new(1)) as ArrayRef])
            .unwrap();
        assert_eq!(acc.evaluate().unwrap(), ScalarValue::Float64(Some(0.5)));
    }

    #[test]
    fn no_rows_is_null() {
        assert_eq!(make().evaluate().unwrap(), ScalarValue::Float64(None));
    }
}
