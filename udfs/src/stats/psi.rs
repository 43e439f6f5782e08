//! `psi(expected, actual)`: the population stability index of `actual` against `expected`.
//!
//! PSI is the drift number monitoring thresholds are written in (< 0.1 stable, > 0.25
//! significant), and its value depends on binning details — the quantile method, which side
//! of an edge a tie falls on, the proportion given to an empty bin. This module pins each of
//! them to NumPy's conventions, so a PSI computed here equals the one computed in a notebook;
//! FStore's drift checks call [`psi_of_sorted`] too.

use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Documentation, Signature};
use datafusion_macros::user_doc;

use super::samples::{self, SampleAccumulator, Split, TwoSamples};
use crate::arguments::check_numbers;

const NAME: &str = "psi";

/// Number of quantile bins of the expected sample.
pub const BINS: usize = 10;
/// The proportion used for a bin that holds no value of a sample.
pub const EMPTY_BIN: f64 = 1e-4;

/// numpy's default ('linear') quantile of a sorted, non-empty sample.
pub fn quantile_linear(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let virtual_index = (n - 1) as f64 * q;
    if virtual_index >= (n - 1) as f64 {
        return sorted[n - 1];
    }
    let previous = virtual_index.floor();
    let gamma = virtual_index - previous;
    let (a, b) = (sorted[previous as usize], sorted[previous as usize + 1]);
    let diff = b - a;
    if gamma >= 0.5 {
        b - diff * (1.0 - gamma)
    } else {
        a + diff * gamma
    }
}

/// The PSI bins of a sorted baseline: the edges of its deciles (`quantile_linear` at 0.1 …
/// 0.9, equal edges merged); the bins are (−∞, e1], (e1, e2], …, (e_last, ∞).
pub fn bin_edges(expected: &[f64]) -> Vec<f64> {
    let mut edges: Vec<f64> = (1..BINS)
        .map(|k| quantile_linear(expected, k as f64 / BINS as f64))
        .collect();
    edges.dedup();
    edges
}

/// How many values of a sorted sample fall in each bin of `edges` (`edges.len() + 1` bins).
pub fn bin_counts(sorted: &[f64], edges: &[f64]) -> Vec<usize> {
    let mut out = Vec::with_capacity(edges.len() + 1);
    let mut prev = 0;
    for e in edges {
        let upto = sorted.partition_point(|v| v <= e);
        out.push(upto - prev);
        prev = upto;
    }
    out.push(sorted.len() - prev);
    out
}

/// PSI of two sorted samples without NaN (both non-empty).
pub fn psi_of_sorted(expected: &[f64], actual: &[f64]) -> f64 {
    let edges = bin_edges(expected);
    let (ce, ca) = (bin_counts(expected, &edges), bin_counts(actual, &edges));
    let proportion = |count: usize, n: usize| {
        if count == 0 {
            EMPTY_BIN
        } else {
            count as f64 / n as f64
        }
    };
    let mut psi = 0.0;
    for (e, a) in ce.into_iter().zip(ca) {
        let pe = proportion(e, expected.len());
        let pa = proportion(a, actual.len());
        psi += (pa - pe) * (pa / pe).ln();
    }
    psi
}

fn finish(samples: &mut TwoSamples) -> Result<Option<f64>> {
    if samples.first.is_empty() || samples.second.is_empty() {
        return Ok(None);
    }
    if !samples.sort() {
        return Ok(Some(f64::NAN));
    }
    Ok(Some(psi_of_sorted(&samples.first, &samples.second)))
}

/// `psi(expected, actual)`.
#[user_doc(
    doc_section(label = "FStore Statistics Functions"),
    description = "Aggregate: the population stability index of the non-NULL values of `actual` \
         against those of `expected` over the rows of the group: PSI = Σ (a_i - e_i) · ln(a_i / \
         e_i) over bins i, where e_i and a_i are the proportions of each sample in bin i. Bins: \
         the 9 interior edges are the 10%, 20%, …, 90% quantiles of the expected sample, computed \
         as numpy.quantile(expected, [0.1, …, 0.9]) (numpy's default 'linear' method: position \
         (n-1)·q, linear interpolation between the neighbouring sorted values); duplicate edges \
         (from ties) are merged, so heavily tied data has fewer than 10 bins (a constant expected \
         sample c has two: (-inf, c] and (c, +inf)). Bins are closed on the right: (-inf, q10], \
         (q10, q20], …, (q90, +inf), so a value equal to an edge belongs to the lower bin. A bin \
         with no value of a sample gets proportion 1e-4 instead of 0 in that sample (the other \
         bins keep count / n). Rules of thumb: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 \
         significant shift. NULL if either sample is empty; NaN if either contains NaN.",
    syntax_example = "psi(expected, actual)",
    sql_example = r#"```sql
> SELECT psi(CASE WHEN period = 'baseline' THEN amount END,
>            CASE WHEN period = 'current' THEN amount END) AS psi
> FROM (SELECT 'baseline' AS period, CAST(v AS DOUBLE) AS amount FROM generate_series(1, 100) g(v)
>       UNION ALL
>       SELECT 'current', CAST(v AS DOUBLE) + 20 FROM generate_series(1, 100) g(v)) tx;
+-------------------+
| psi               |
+-------------------+
| 1.599891962474253 |
+-------------------+
```"#,
    argument(
        name = "expected",
        description = "The reference sample (numeric; NULLs are skipped)."
    ),
    argument(
        name = "actual",
        description = "The sample compared with it (numeric; NULLs are skipped)."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Psi {
    signature: Signature,
}

impl Default for Psi {
    fn default() -> Self {
        Self::new()
    }
}

impl Psi {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[&[DataType::Float64, DataType::Float64]]),
        }
    }
}

impl AggregateUDFImpl for Psi {
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
        check_numbers(NAME, &["expected", "actual"], arg_types)?;
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(SampleAccumulator::new(Split::Columns, finish)))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(samples::state_fields(args.name))
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_match_numpy() {
        // numpy.quantile([1, 2, 3, 4], [0.1, 0.5, 0.9]) == [1.3, 2.5, 3.7]
        let s = [1.0, 2.0, 3.0, 4.0];
        assert!((quantile_linear(&s, 0.1) - 1.3).abs() < 1e-15);
        assert_eq!(quantile_linear(&s, 0.5), 2.5);
        assert!((quantile_linear(&s, 0.9) - 3.7).abs() < 1e-15);
        assert_eq!(quantile_linear(&[5.0], 0.3), 5.0);
    }

    #[test]
    fn identical_samples_are_stable() {
        let s: Vec<f64> = (0..1000).map(f64::from).collect();
        assert_eq!(psi_of_sorted(&s, &s), 0.0);
        assert_eq!(psi_of_sorted(&[1.0; 10], &[1.0; 3]), 0.0);
    }

    #[test]
    fn a_shift_is_unstable_and_empty_bins_use_the_epsilon() {
        let e: Vec<f64> = (0..100).map(f64::from).collect();
        let a: Vec<f64> = (0..100).map(|v| f64::from(v) + 1000.0).collect();
        // Every actual value lands in the last bin: nine bins with 1e-4 vs 0.1, one with 1 vs 0.1.
        let want = 9.0 * (1e-4 - 0.1) * (1e-4f64 / 0.1).ln() + (1.0 - 0.1) * (1.0f64 / 0.1).ln();
        assert!((psi_of_sorted(&e, &a) - want).abs() < 1e-12);
    }

    #[test]
    fn values_on_an_edge_go_to_the_lower_bin() {
        // Expected 0..=10: edges 1, 2, …, 9. Actual all equal to 1: all in (-inf, 1].
        let e: Vec<f64> = (0..=10).map(f64::from).collect();
        let a = vec![1.0; 5];
        // (-inf, 1] holds 0 and 1 of expected (2/11) and all of actual.
        let pe0: f64 = 2.0 / 11.0;
        // The nine other bins hold one expected value each and no actual value.
        let rest: f64 = (0..9)
            .map(|_| (1e-4 - 1.0 / 11.0) * (1e-4f64 * 11.0).ln())
            .sum();
        let want = (1.0 - pe0) * (1.0 / pe0).ln() + rest;
        assert!((psi_of_sorted(&e, &a) - want).abs() < 1e-12);
    }
}
