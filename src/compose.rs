//! The composition root: the one place that lists every feature area and builds the engine
//! from them. `main.rs`, the tests and the benchmarks open engines through [`open`]; the
//! engine itself (a foundation) never names an area.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::error::Result;

use crate::config::Config;
use crate::engine::{Engine, EngineExtension, Setup};

/// Every area's extension, in registration order (the order of extension planners too).
pub fn extensions() -> Vec<Box<dyn EngineExtension>> {
    vec![
        Box::new(UdfExtension),
        Box::new(crate::sample::SampleDataExtension),
        Box::new(crate::asof::AsOfExtension),
        Box::new(crate::features::FeaturesExtension),
        Box::new(crate::window::WindowExtension),
        Box::new(crate::selection::SelectionExtension),
        Box::new(crate::quality::QualityExtension),
        Box::new(crate::online::OnlineExtension),
        Box::new(crate::monitor::MonitorExtension),
        Box::new(crate::governance::GovernanceExtension::default()),
    ]
}

/// Opens the warehouse named by `config` and builds the engine with every area.
pub async fn open(config: &Config) -> Result<Arc<Engine>> {
    Engine::open_with(config, extensions()).await
}

/// The functions of the `fstore-udfs` crate (which knows nothing of the engine).
struct UdfExtension;

#[async_trait]
impl EngineExtension for UdfExtension {
    fn name(&self) -> &'static str {
        "fstore-udfs"
    }
    async fn register(&self, setup: &mut Setup<'_>) -> Result<()> {
        fstore_udfs::register_all(setup.ctx)
    }
}
