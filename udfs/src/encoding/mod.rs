//! Encoders and scalers: categorical encodings (target, one-hot, label, frequency, hashing)
//! and numeric scaling, as scalar and window functions.

pub mod categorical;
pub mod frequency_encode;
pub mod hash_bucket;
pub mod scaling;
pub mod target_encode;

use std::sync::Arc;

use datafusion::logical_expr::{ScalarUDF, WindowUDF};

pub use categorical::{CategoryEncoding, EncodeCategory};
pub use frequency_encode::FrequencyEncode;
pub use hash_bucket::{HashBucket, stable_hash};
pub use scaling::{Scale, ScaleWindow, Scaler};
pub use target_encode::TargetEncode;

/// The scalar functions of this category.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::new_from_impl(EncodeCategory::new(
            CategoryEncoding::OneHot,
        ))),
        Arc::new(ScalarUDF::new_from_impl(EncodeCategory::new(
            CategoryEncoding::Label,
        ))),
        Arc::new(ScalarUDF::new_from_impl(HashBucket::new())),
        Arc::new(ScalarUDF::new_from_impl(Scale::new(Scaler::Standard))),
        Arc::new(ScalarUDF::new_from_impl(Scale::new(Scaler::MinMax))),
    ]
}

/// The window functions of this category.
pub fn window_functions() -> Vec<Arc<WindowUDF>> {
    vec![
        Arc::new(WindowUDF::new_from_impl(TargetEncode::new())),
        Arc::new(WindowUDF::new_from_impl(FrequencyEncode::new())),
        Arc::new(WindowUDF::new_from_impl(ScaleWindow::new(Scaler::Standard))),
        Arc::new(WindowUDF::new_from_impl(ScaleWindow::new(Scaler::MinMax))),
    ]
}
