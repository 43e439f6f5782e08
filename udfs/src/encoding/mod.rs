//! Encoders and scalers: categorical encodings (target, one-hot, label, frequency, hashing)
//! and numeric scaling, as scalar and window functions.

mod categories;
mod scaling;

pub mod frequency_encode;
pub mod hash_bucket;
pub mod label_encode;
pub mod min_max_scale;
pub mod min_max_scale_window;
pub mod one_hot;
pub mod standard_scale;
pub mod standard_scale_window;
pub mod target_encode;

use std::sync::Arc;

use datafusion::logical_expr::{ScalarUDF, WindowUDF};

pub use frequency_encode::FrequencyEncode;
pub use hash_bucket::{HashBucket, stable_hash};
pub use label_encode::LabelEncode;
pub use min_max_scale::MinMaxScale;
pub use min_max_scale_window::MinMaxScaleWindow;
pub use one_hot::OneHot;
pub use standard_scale::StandardScale;
pub use standard_scale_window::StandardScaleWindow;
pub use target_encode::TargetEncode;

/// The scalar functions of this category.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::new_from_impl(OneHot::new())),
        Arc::new(ScalarUDF::new_from_impl(LabelEncode::new())),
        Arc::new(ScalarUDF::new_from_impl(HashBucket::new())),
        Arc::new(ScalarUDF::new_from_impl(StandardScale::new())),
        Arc::new(ScalarUDF::new_from_impl(MinMaxScale::new())),
    ]
}

/// The window functions of this category.
pub fn window_functions() -> Vec<Arc<WindowUDF>> {
    vec![
        Arc::new(WindowUDF::new_from_impl(TargetEncode::new())),
        Arc::new(WindowUDF::new_from_impl(FrequencyEncode::new())),
        Arc::new(WindowUDF::new_from_impl(StandardScaleWindow::new())),
        Arc::new(WindowUDF::new_from_impl(MinMaxScaleWindow::new())),
    ]
}
