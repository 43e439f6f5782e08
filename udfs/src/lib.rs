//! Feature-engineering and statistics functions for Apache DataFusion.
//!
//! One function per file, grouped by category (`window/`, `encoding/`, `stats/`); each
//! category's `mod.rs` lists its functions. This crate knows nothing of FStore's registry or
//! server: it depends on DataFusion and statrs only, so the functions can be used in any
//! DataFusion `SessionContext`.

use datafusion::error::Result;
use datafusion::prelude::SessionContext;

/// Registers every function of this crate with `ctx`.
pub fn register_all(ctx: &SessionContext) -> Result<()> {
    let _ = ctx;
    Ok(())
}
