//! Table functions (`training_set`, `validate`, …) and the helpers they share.

pub mod args;
pub mod online;
pub mod quality;
pub mod selection;
