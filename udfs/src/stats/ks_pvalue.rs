//! `ks_pvalue(a, b)`: the two-sided p-value of the two-sample Kolmogorov–Smirnov test.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Documentation, Signature};

use super::ks_statistic::ks_of;
use super::samples::{self, SampleAccumulator, Split};
use crate::arguments::check_numbers;
use crate::docs;

const NAME: &str = "ks_pvalue";

static DOCUMENTATION: LazyLock<Documentation> =
    LazyLock::new(|| {
        Documentation::builder(
        docs::STATISTICS,
        "Aggregate: the two-sided p-value of the two-sample Kolmogorov–Smirnov test between the \
         non-NULL values of `a` (sample 1) and of `b` (sample 2) over the rows of the group, as \
         scipy.stats.ks_2samp(a, b, alternative='two-sided', method='auto') computes it (SciPy \
         1.x). When max(n1, n2) <= 10000: the exact null distribution (SciPy's \
         _compute_prob_outside_square for n1 = n2, else the lattice-path 'inside' method), with \
         SciPy's fallback to the asymptotic method if the exact computation fails. Otherwise \
         the asymptotic distribution kstwo.sf(D, round(n1·n2 / (n1 + n2))), evaluated with \
         SciPy's own algorithm (Simard & L'Ecuyer; Durbin matrix, Pelz–Good, Smirnov's \
         formula). Tolerance against SciPy: 1e-9 absolute (measured differences are below \
         1e-12). NULL if either sample is empty; NaN if either contains NaN. Sorts the samples, \
         O(n log n): on 1M + 1M values sorting and testing take about 0.15 s in an optimised \
         build. The exact method costs up to O(n1 · n2) (about 1 s for 10000 vs 9999 values \
         that differ completely), as in SciPy.",
        "ks_pvalue(a, b)",
    )
    .with_sql_example(
        "```sql\n\
         > SELECT ks_pvalue(CASE WHEN period = 'baseline' THEN amount END,\n\
         >                  CASE WHEN period = 'current' THEN amount END) < 0.05 AS drifted\n\
         > FROM tx;\n\
         ```",
    )
    .with_argument("a", "Sample 1: a numeric expression; NULLs are not part of the sample.")
    .with_argument("b", "Sample 2: a numeric expression; NULLs are not part of the sample.")
    .with_related_udf("ks_statistic")
    .build()
    });

/// `ks_pvalue(a, b)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct KsPvalue {
    signature: Signature,
}

impl Default for KsPvalue {
    fn default() -> Self {
        Self::new()
    }
}

impl KsPvalue {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[&[DataType::Float64, DataType::Float64]]),
        }
    }
}

impl AggregateUDFImpl for KsPvalue {
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
        check_numbers(NAME, &["a", "b"], arg_types)?;
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SampleAccumulator::new(Split::Columns, |s| {
            Ok(ks_of(s).map(|r| r.p_value))
        })))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(samples::state_fields(args.name))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}
