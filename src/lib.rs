//! FStore: a feature store that is a SQL engine.
//!
//! Every feature-store workflow is a SQL statement planned and executed by Apache DataFusion
//! with FStore's extensions, served over Arrow Flight SQL. See `DESIGN.md` for the map:
//! `sql` (statement front) → `registry` (durable definitions) → `engine` (the one
//! `SessionContext`) → `providers` (tables FStore adds).

pub mod asof;
pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod features;
pub mod flight;
pub mod functions;
pub mod jobs;
pub mod online;
pub mod principal;
pub mod providers;
pub mod registry;
pub mod sample;
pub mod sql;
pub mod window;

pub use config::Config;
pub use engine::Engine;
pub use principal::Principal;
