//! FStore: a feature store that is a SQL engine.
//!
//! Every feature-store workflow is a SQL statement planned and executed by Apache DataFusion
//! with FStore's extensions, served over Arrow Flight SQL. `docs/architecture.md` is the map:
//! fronts (`flight`, `cli`) → `compose` (the composition root, [`open`]) → `sql` (parser
//! front and statement executor) → the areas (`features`, `window`, `asof`, `online`,
//! `quality`, `selection`, `sample`, `jobs`), each an [`engine::EngineExtension`] → the
//! foundation (`engine`, `registry`, `warehouse`, `providers`, `args`, `error`, `config`).

pub mod args;
pub mod asof;
pub mod cli;
pub mod compose;
pub mod config;
pub mod engine;
pub mod error;
pub mod features;
pub mod flight;
pub mod governance;
pub mod jobs;
pub mod monitor;
pub mod online;
pub mod principal;
pub mod providers;
pub mod quality;
pub mod registry;
pub mod sample;
pub mod sandbox;
pub mod selection;
pub mod sql;
pub mod warehouse;
pub mod window;

pub use compose::open;
pub use config::Config;
pub use engine::Engine;
pub use principal::Principal;
