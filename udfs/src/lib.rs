//! Feature-engineering and statistics functions for Apache DataFusion.
//!
//! The functions are grouped by category (`window/`, `encoding/`, `stats/`); each category's
//! `mod.rs` lists its functions. A family of functions that differ only in a formula — the two
//! scalers, precision and recall, the KS statistic and p-value, one-hot and label encoding — is
//! one implementation parametrised by an enum of its variants, so the variants cannot drift
//! apart. This crate knows nothing of FStore's registry or server: it depends on DataFusion
//! (and statrs) only, so the functions can be used in any DataFusion `SessionContext`.
//!
//! Every function carries its documentation, written with DataFusion's `#[user_doc]`
//! attribute, so `SHOW FUNCTIONS` and `information_schema.routines` describe it, and
//! [`documentation_markdown`] renders all of it (that is `docs/functions.md`).

mod arguments;
mod docs;
pub mod duration;
pub mod encoding;
pub mod stats;
#[cfg(test)]
mod test_support;
pub mod window;

use std::sync::Arc;

use datafusion::error::Result;
use datafusion::logical_expr::{AggregateUDF, Documentation, ScalarUDF, WindowUDF};
use datafusion::prelude::SessionContext;

pub use docs::documentation_markdown;

/// Registers every function of this crate with `ctx`.
pub fn register_all(ctx: &SessionContext) -> Result<()> {
    for (_, function) in functions() {
        match function {
            Function::Scalar(f) => ctx.register_udf(f.as_ref().clone()),
            Function::Aggregate(f) => ctx.register_udaf(f.as_ref().clone()),
            Function::Window(f) => ctx.register_udwf(f.as_ref().clone()),
        }
    }
    Ok(())
}

/// The categories the functions are documented under, in the order of the documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Category {
    Time,
    Encoding,
    Statistics,
}

/// A function of this crate, of any kind.
#[derive(Debug, Clone)]
pub(crate) enum Function {
    Scalar(Arc<ScalarUDF>),
    Aggregate(Arc<AggregateUDF>),
    Window(Arc<WindowUDF>),
}

impl Function {
    pub(crate) fn name(&self) -> &str {
        match self {
            Function::Scalar(f) => f.name(),
            Function::Aggregate(f) => f.name(),
            Function::Window(f) => f.name(),
        }
    }

    pub(crate) fn documentation(&self) -> Option<&Documentation> {
        match self {
            Function::Scalar(f) => f.documentation(),
            Function::Aggregate(f) => f.documentation(),
            Function::Window(f) => f.documentation(),
        }
    }
}

/// Every function of this crate with its category: what [`register_all`] registers and
/// [`documentation_markdown`] documents.
pub(crate) fn functions() -> Vec<(Category, Function)> {
    let mut all = Vec::new();
    all.extend(
        window::scalar_functions()
            .into_iter()
            .map(|f| (Category::Time, Function::Scalar(f))),
    );
    all.extend(
        encoding::scalar_functions()
            .into_iter()
            .map(|f| (Category::Encoding, Function::Scalar(f))),
    );
    all.extend(
        encoding::window_functions()
            .into_iter()
            .map(|f| (Category::Encoding, Function::Window(f))),
    );
    all.extend(
        stats::aggregate_functions()
            .into_iter()
            .map(|f| (Category::Statistics, Function::Aggregate(f))),
    );
    all
}
