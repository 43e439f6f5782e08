//! Time functions for feature windows: the one definition of "the bucket of a timestamp" that
//! feature groups, reports and ad-hoc SQL share.

pub mod time_bucket;

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;

pub use time_bucket::TimeBucket;

/// The scalar functions of this category.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![Arc::new(ScalarUDF::new_from_impl(TimeBucket::new()))]
}
