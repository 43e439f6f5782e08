//! Table providers FStore adds to DataFusion: the `fstore.*` system tables (and, as later
//! issues add them, feature groups and the online store).

pub mod system;
