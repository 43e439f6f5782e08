//! Feature-engineering and statistics functions for Apache DataFusion.
//!
//! One function per file, grouped by category (`window/`, `encoding/`, `stats/`); each
//! category's `mod.rs` lists its functions. This crate knows nothing of FStore's registry or
//! server: it depends on DataFusion and statrs only, so the functions can be used in any
//! DataFusion `SessionContext`. Every function carries its documentation, so `SHOW FUNCTIONS`
//! and `information_schema.routines` describe it.

mod arguments;
mod docs;
pub mod duration;
pub mod encoding;
pub mod stats;
#[cfg(test)]
mod test_support;
pub mod window;

use datafusion::error::Result;
use datafusion::prelude::SessionContext;

/// Registers every function of this crate with `ctx`.
pub fn register_all(ctx: &SessionContext) -> Result<()> {
    for f in window::scalar_functions()
        .into_iter()
        .chain(encoding::scalar_functions())
    {
        ctx.register_udf(f.as_ref().clone());
    }
    for f in encoding::window_functions() {
        ctx.register_udwf(f.as_ref().clone());
    }
    for f in stats::aggregate_functions() {
        ctx.register_udaf(f.as_ref().clone());
    }
    Ok(())
}
