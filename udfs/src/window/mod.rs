//! Time functions for feature windows.

pub mod time_bucket;

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;

pub use time_bucket::TimeBucket;

/// The scalar functions of this category.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![Arc::new(ScalarUDF::new_from_impl(TimeBucket::new()))]
}
