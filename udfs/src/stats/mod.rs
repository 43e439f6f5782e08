//! Statistics as aggregates: drift (KS, PSI), dependence (mutual information), model quality
//! (AUC, precision, recall) and data quality (null fraction).
//!
//! Every aggregate works with GROUP BY and in multi-partition plans (partial state, merge);
//! `null_fraction`, `precision_at` and `recall_at` also have a grouped (vectorised) form for
//! millions of groups. NULLs are missing values (skipped); NaN is a value and makes a
//! statistic over sorted samples NaN, as in NumPy and SciPy.

mod counts;
mod samples;

pub mod auc;
pub mod kolmogorov;
pub mod ks_test;
pub mod mutual_info;
pub mod null_fraction;
pub mod psi;
pub mod threshold_metric;

use std::sync::Arc;

use datafusion::logical_expr::AggregateUDF;

pub use auc::Auc;
pub use ks_test::{KsOutput, KsTest};
pub use mutual_info::MutualInfo;
pub use null_fraction::NullFraction;
pub use psi::Psi;
pub use threshold_metric::{AtThreshold, ThresholdMetric};

/// The aggregate functions of this category.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![
        Arc::new(AggregateUDF::new_from_impl(KsTest::new(
            KsOutput::Statistic,
        ))),
        Arc::new(AggregateUDF::new_from_impl(KsTest::new(KsOutput::PValue))),
        Arc::new(AggregateUDF::new_from_impl(Psi::new())),
        Arc::new(AggregateUDF::new_from_impl(MutualInfo::new())),
        Arc::new(AggregateUDF::new_from_impl(Auc::new())),
        Arc::new(AggregateUDF::new_from_impl(AtThreshold::new(
            ThresholdMetric::Precision,
        ))),
        Arc::new(AggregateUDF::new_from_impl(AtThreshold::new(
            ThresholdMetric::Recall,
        ))),
        Arc::new(AggregateUDF::new_from_impl(NullFraction::new())),
    ]
}
