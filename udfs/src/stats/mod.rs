//! Statistics as aggregates: drift (KS, PSI), dependence (mutual information), model quality
//! (AUC, precision, recall) and data quality (null fraction).
//!
//! Every aggregate works with GROUP BY and in multi-partition plans (partial state, merge);
//! `null_fraction`, `precision_at` and `recall_at` also have a grouped (vectorised) form for
//! millions of groups. NULLs are missing values (skipped); NaN is a value and makes a
//! statistic over sorted samples NaN, as in NumPy and SciPy.

mod confusion;
mod counts;
mod samples;

pub mod auc;
pub mod kolmogorov;
pub mod ks_pvalue;
pub mod ks_statistic;
pub mod mutual_info;
pub mod null_fraction;
pub mod precision_at;
pub mod psi;
pub mod recall_at;

use std::sync::Arc;

use datafusion::logical_expr::AggregateUDF;

pub use auc::Auc;
pub use ks_pvalue::KsPvalue;
pub use ks_statistic::KsStatistic;
pub use mutual_info::MutualInfo;
pub use null_fraction::NullFraction;
pub use precision_at::PrecisionAt;
pub use psi::Psi;
pub use recall_at::RecallAt;

/// The aggregate functions of this category.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    vec![
        Arc::new(AggregateUDF::new_from_impl(KsStatistic::new())),
        Arc::new(AggregateUDF::new_from_impl(KsPvalue::new())),
        Arc::new(AggregateUDF::new_from_impl(Psi::new())),
        Arc::new(AggregateUDF::new_from_impl(MutualInfo::new())),
        Arc::new(AggregateUDF::new_from_impl(Auc::new())),
        Arc::new(AggregateUDF::new_from_impl(PrecisionAt::new())),
        Arc::new(AggregateUDF::new_from_impl(RecallAt::new())),
        Arc::new(AggregateUDF::new_from_impl(NullFraction::new())),
    ]
}
