//! `frequency_encode(value) OVER ([PARTITION BY …])`: the share of the partition's rows that
//! have the same value.
//!
//! A categorical encoding that needs no label and no stored categories, so it works for
//! high-cardinality columns and categories never seen before. As a window function the
//! partition is the population the frequencies are taken over (one hash pass per partition).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::error::Result;
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{Documentation, PartitionEvaluator, Signature, WindowUDFImpl};
use datafusion_macros::user_doc;

use crate::arguments::check_arity;

const NAME: &str = "frequency_encode";

/// `frequency_encode(value) OVER (...)`.
#[user_doc(
    doc_section(label = "FStore Encoding Functions"),
    description = "Window function: frequency (count) encoding. The fraction, as Float64 in (0, \
         1], of the rows of the window partition whose `value` equals this row's value. NULL is a \
         value of its own: a NULL row gets the fraction of NULL rows (like category_encoders' \
         CountEncoder with normalize=True). The denominator is every row of the partition. ORDER \
         BY and the window frame are ignored: the count always covers the partition.",
    syntax_example = "frequency_encode(value) OVER ([PARTITION BY ...])",
    sql_example = r#"```sql
> SELECT c, frequency_encode(c) OVER () AS frequency
> FROM (VALUES ('a'), ('a'), ('b'), ('a')) t(c) ORDER BY c;
+---+-----------+
| c | frequency |
+---+-----------+
| a | 0.75      |
| a | 0.75      |
| a | 0.75      |
| b | 0.25      |
+---+-----------+
```"#,
    argument(
        name = "value",
        description = "The categorical value (any comparable type)."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FrequencyEncode {
    signature: Signature,
}

impl Default for FrequencyEncode {
    fn default() -> Self {
        Self::new()
    }
}

impl FrequencyEncode {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[&[DataType::Utf8]]),
        }
    }
}

impl WindowUDFImpl for FrequencyEncode {
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
        check_arity(NAME, "value", field_args.input_fields().len(), 1, 1)?;
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Float64,
            true,
        )))
    }

    fn partition_evaluator(
        &self,
        _args: PartitionEvaluatorArgs,
    ) -> Result<Box<dyn PartitionEvaluator>> {
        Ok(Box::new(FrequencyEvaluator))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[derive(Debug)]
struct FrequencyEvaluator;

impl PartitionEvaluator for FrequencyEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> Result<ArrayRef> {
        let value = &values[0];
        let converter = RowConverter::new(vec![SortField::new(value.data_type().clone())])?;
        let keys = converter.convert_columns(std::slice::from_ref(value))?;
        let mut counts: HashMap<&[u8], u64> = HashMap::new();
        for i in 0..value.len() {
            *counts.entry(keys.row(i).data()).or_default() += 1;
        }
        let total = num_rows as f64;
        let out: Float64Array = (0..value.len())
            .map(|i| counts[keys.row(i).as_ref()] as f64 / total)
            .collect();
        Ok(Arc::new(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{AsArray, StringArray};
    use datafusion::arrow::datatypes::Float64Type;

    #[test]
    fn counts_every_row_of_the_partition_including_nulls() {
        let v: ArrayRef = Arc::new(StringArray::from(vec![
            Some("a"),
            Some("a"),
            None,
            Some("b"),
        ]));
        let out = FrequencyEvaluator.evaluate_all(&[v], 4).unwrap();
        let out: Vec<f64> = out.as_primitive::<Float64Type>().values().to_vec();
        assert_eq!(out, vec![0.5, 0.5, 0.25, 0.25]);
    }
}
