//! `ks_statistic(a, b)`: the two-sample Kolmogorov–Smirnov statistic D.

use std::sync::LazyLock;

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Documentation, Signature};

use super::kolmogorov::{self, TwoSampleKs};
use super::samples::{self, SampleAccumulator, Split, TwoSamples};
use crate::arguments::check_numbers;
use crate::docs;

const NAME: &str = "ks_statistic";

static DOCUMENTATION: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        docs::STATISTICS,
        "Aggregate: the two-sample Kolmogorov–Smirnov statistic D = max |F_a(x) - F_b(x)| \
         between the empirical distributions of the non-NULL values of `a` (sample 1) and of `b` \
         (sample 2) over the rows of the group, so one column split by a condition compares two \
         populations: ks_statistic(CASE WHEN s = 'base' THEN x END, CASE WHEN s = 'cur' THEN x END). \
         Exact (both samples sorted and merged; ties handled as in \
         scipy.stats.ks_2samp), and equal to SciPy's statistic: when max(n1, n2) <= 10000 it is \
         reported as h / lcm(n1, n2) like SciPy's exact method. NULL if either sample is empty; \
         NaN if either contains NaN. Sort-based: O((n1 + n2) log(n1 + n2)) time, 8 bytes per \
         value of memory.",
        "ks_statistic(a, b)",
    )
    .with_sql_example(
        "```sql\n\
         > SELECT ks_statistic(CASE WHEN period = 'baseline' THEN amount END,\n\
         >                     CASE WHEN period = 'current' THEN amount END) FROM tx;\n\
         ```",
    )
    .with_argument("a", "Sample 1: a numeric expression; NULLs are not part of the sample.")
    .with_argument("b", "Sample 2: a numeric expression; NULLs are not part of the sample.")
    .with_related_udf("ks_pvalue")
    .build()
});

/// The KS test of the collected samples: `None` if a sample is empty, NaN if one holds a NaN.
pub(crate) fn ks_of(samples: &mut TwoSamples) -> Option<TwoSampleKs> {
    if !samples.sort() {
        return (!samples.first.is_empty() && !samples.second.is_empty()).then_some(TwoSampleKs {
            statistic: f64::NAN,
            p_value: f64::NAN,
            method: kolmogorov::Method::Exact,
        });
    }
    kolmogorov::two_sample(&samples.first, &samples.second)
}

/// `ks_statistic(a, b)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct KsStatistic {
    signature: Signature,
}

impl Default for KsStatistic {
    fn default() -> Self {
        Self::new()
    }
}

impl KsStatistic {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[&[DataType::Float64, DataType::Float64]]),
        }
    }
}

impl AggregateUDFImpl for KsStatistic {
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
            Ok(ks_of(s).map(|r| r.statistic))
        })))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(samples::state_fields(args.name))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOCUMENTATION)
    }
}
