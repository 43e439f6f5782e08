//! Background jobs of a server: the materialization scheduler.

pub mod scheduler;
