//! `asof_match(…)`: the marker that carries an `ASOF JOIN`'s time condition through DataFusion's
//! SQL planner, which has no AS-OF join.
//!
//! `sql` rewrites `ASOF JOIN r MATCH_CONDITION (l.t >= r.t) ON l.k = r.k` into
//! `LEFT JOIN r ON l.k = r.k AND asof_match(l.t, '>=', r.t)`, and `logical::AsOfJoinRule` turns
//! every join whose ON holds the marker into an `AsOfJoin` node. The marker itself must never
//! run: evaluated anywhere else it fails with a message that says where it belongs.
//!
//! Arguments: `asof_match(a, 'op', b)`, `asof_match(a, 'op', b, created)`, or
//! `asof_match(a, 'op', b, created_or_NULL, 'bound_op', bound)`, where `a op b` is the time
//! condition as written (either side may be the left table's), `created` the right side's
//! CREATED column, and `later - earlier bound_op bound` the look-back bound (`<=` or `<`).

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::FStoreError;

/// The marker's name in SQL.
pub const ASOF_MATCH: &str = "asof_match";

/// The marker function (see the module documentation).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AsOfMatch {
    signature: Signature,
}

impl Default for AsOfMatch {
    fn default() -> Self {
        Self::new()
    }
}

impl AsOfMatch {
    pub fn new() -> Self {
        Self {
            // No coercion: the AS-OF rule compares the two times in their common unit itself.
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for AsOfMatch {
    fn name(&self) -> &str {
        ASOF_MATCH
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Err(FStoreError::invalid(format!(
            "{ASOF_MATCH}() marks the time condition of an ASOF JOIN and only works in the ON clause of the join it was written for"
        ))
        .into())
    }
}

/// The marker's arguments when `expr` is a call of the marker.
pub fn marker_args(expr: &Expr) -> Option<&[Expr]> {
    match expr {
        Expr::ScalarFunction(f) if f.func.name() == ASOF_MATCH => Some(&f.args),
        _ => None,
    }
}

/// True when `expr` holds a call of the marker anywhere.
pub fn contains_marker(expr: &Expr) -> bool {
    let mut found = false;
    expr.apply(|e| {
        if marker_args(e).is_some() {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .expect("the visitor never fails");
    found
}
