//! The `AsOfJoin` logical node, the analyzer rule that creates it from a marked join, and the
//! optimizer rule that pushes filters through it.
//!
//! The node's schema is the left input's columns then the right input's, the right ones
//! nullable for a left-preserving join — exactly the schema of the join it replaces, so nothing
//! above it changes. Generic filter pushdown is disabled for the node (every column is in
//! `prevent_predicate_push_down_columns`): DataFusion would push a predicate into every input,
//! and a predicate on right columns pushed into the right input changes which right row is
//! the nearest one. [`AsOfFilterPushdown`] moves only predicates on left columns, which select
//! left rows and leave every other left row's match as it was.

use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, DFSchemaRef, ScalarValue};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::expr::Cast;
use datafusion::logical_expr::logical_plan::builder::build_join_schema;
use datafusion::logical_expr::type_coercion::binary::comparison_coercion;
use datafusion::logical_expr::utils::{conjunction, split_conjunction_owned};
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, Extension, Filter, Join, JoinType, LogicalPlan, Operator,
    UserDefinedLogicalNodeCore,
};
use datafusion::optimizer::analyzer::AnalyzerRule;
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use super::marker::{ASOF_MATCH, contains_marker, marker_args};
use super::time::{TimePlan, check_created_type};
use super::{AsOfKind, AsOfOp, LookBack};
use crate::error::invalid;

/// `left ASOF JOIN right`: see the `asof` module documentation for the semantics.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsOfJoin {
    pub left: Arc<LogicalPlan>,
    pub right: Arc<LogicalPlan>,
    /// Key equalities `(left expression, right expression)`, of equal types.
    pub on: Vec<(Expr, Expr)>,
    /// The time condition is `left_time op right_time`.
    pub left_time: Expr,
    pub right_time: Expr,
    pub op: AsOfOp,
    /// The right side's CREATED column, which breaks ties on time.
    pub created: Option<Expr>,
    pub lookback: Option<LookBack>,
    pub kind: AsOfKind,
    schema: DFSchemaRef,
}

impl AsOfJoin {
    /// A checked node: sides, key types, time types, CREATED type and look-back bound.
    #[allow(clippy::too_many_arguments)]
    pub fn try_new(
        left: Arc<LogicalPlan>,
        right: Arc<LogicalPlan>,
        on: Vec<(Expr, Expr)>,
        left_time: Expr,
        right_time: Expr,
        op: AsOfOp,
        created: Option<Expr>,
        lookback: Option<LookBack>,
        kind: AsOfKind,
    ) -> Result<Self> {
        let (ls, rs) = (left.schema(), right.schema());
        let mut keys = Vec::with_capacity(on.len());
        for (l, r) in on {
            let (lt, rt) = (l.get_type(ls)?, r.get_type(rs)?);
            if lt == rt {
                keys.push((l, r));
                continue;
            }
            let Some(common) = comparison_coercion(&lt, &rt) else {
                return Err(invalid(format!(
                    "ASOF JOIN cannot compare key {l} ({lt}) with {r} ({rt})"
                )));
            };
            let cast = |e: Expr| Expr::Cast(Cast::new(Box::new(e), common.clone()));
            let l = if lt == common { l } else { cast(l) };
            let r = if rt == common { r } else { cast(r) };
            keys.push((l, r));
        }
        let plan = TimePlan::new(&left_time.get_type(ls)?, &right_time.get_type(rs)?)?;
        if let Some(lb) = &lookback {
            plan.max_difference(lb)?;
        }
        if let Some(c) = &created {
            check_created_type(&c.get_type(rs)?)?;
        }
        let join_type = match kind {
            AsOfKind::Left => JoinType::Left,
            AsOfKind::Inner => JoinType::Inner,
        };
        let schema = Arc::new(build_join_schema(ls, rs, &join_type)?);
        Ok(Self {
            left,
            right,
            on: keys,
            left_time,
            right_time,
            op,
            created,
            lookback,
            kind,
            schema,
        })
    }

    /// Replaces a join whose ON holds the marker.
    fn from_join(join: Join) -> Result<Self> {
        let kind = match join.join_type {
            JoinType::Left => AsOfKind::Left,
            JoinType::Inner => AsOfKind::Inner,
            other => {
                return Err(invalid(format!(
                    "{ASOF_MATCH}() belongs to an ASOF JOIN (a left or inner join), not to a {other} join"
                )));
            }
        };
        let (ls, rs) = (join.left.schema(), join.right.schema());
        let side = |e: &Expr| -> Side {
            let cols = e.column_refs();
            if cols.is_empty() {
                Side::Neither
            } else if cols.iter().all(|c| ls.has_column(c)) {
                Side::Left
            } else if cols.iter().all(|c| rs.has_column(c)) {
                Side::Right
            } else {
                Side::Both
            }
        };
        let mut on = join.on;
        let mut marker = None;
        for c in join.filter.map(split_conjunction_owned).unwrap_or_default() {
            if let Some(args) = marker_args(&c) {
                if marker.is_some() {
                    return Err(invalid("ASOF JOIN takes exactly one time condition"));
                }
                marker = Some(args.to_vec());
                continue;
            }
            if contains_marker(&c) {
                return Err(invalid(format!(
                    "{ASOF_MATCH}() must be a condition of its own in ON, AND-ed with the others"
                )));
            }
            let non_equi = || {
                invalid(format!(
                    "ASOF JOIN ON takes only equalities between a column of each table (and a look-back bound); found: {c}"
                ))
            };
            match &c {
                Expr::BinaryExpr(BinaryExpr {
                    left,
                    op: Operator::Eq,
                    right,
                }) => match (side(left), side(right)) {
                    (Side::Left, Side::Right) => on.push((*left.clone(), *right.clone())),
                    (Side::Right, Side::Left) => on.push((*right.clone(), *left.clone())),
                    _ => return Err(non_equi()),
                },
                _ => return Err(non_equi()),
            }
        }
        let Some(args) = marker else {
            return Err(invalid("ASOF JOIN takes exactly one time condition"));
        };
        let text = |e: &Expr| match e {
            Expr::Literal(ScalarValue::Utf8(Some(s)), _) => Some(s.clone()),
            _ => None,
        };
        if !matches!(args.len(), 3 | 4 | 6) {
            return Err(invalid(format!(
                "{ASOF_MATCH}() takes 3, 4 or 6 arguments: (time, 'op', time [, created [, 'op', bound]])"
            )));
        }
        let Some(op) = text(&args[1]).as_deref().and_then(AsOfOp::parse) else {
            return Err(invalid(format!(
                "{ASOF_MATCH}(): the time condition's operator must be '>=', '>', '<=' or '<', not {}",
                args[1]
            )));
        };
        let (a, b) = (args[0].clone(), args[2].clone());
        let (left_time, right_time, op) = match (side(&a), side(&b)) {
            (Side::Left, Side::Right) => (a, b, op),
            (Side::Right, Side::Left) => (b, a, op.flip()),
            _ => {
                return Err(invalid(format!(
                    "ASOF JOIN time condition must compare a time of the left table with a time of the right table; found: {a} {op} {b}"
                )));
            }
        };
        let created = match args.get(3) {
            None | Some(Expr::Literal(ScalarValue::Null, _)) => None,
            Some(c) if side(c) == Side::Right => Some(c.clone()),
            Some(c) => {
                return Err(invalid(format!(
                    "ASOF JOIN CREATED(…) must name a column of the right table; found: {c}"
                )));
            }
        };
        let lookback = if args.len() == 6 {
            let inclusive = match text(&args[4]).as_deref() {
                Some("<=") => true,
                Some("<") => false,
                _ => {
                    return Err(invalid(format!(
                        "{ASOF_MATCH}(): the look-back operator must be '<=' or '<', not {}",
                        args[4]
                    )));
                }
            };
            match &args[5] {
                Expr::Literal(bound, _) => Some(LookBack {
                    bound: bound.clone(),
                    inclusive,
                }),
                other => {
                    return Err(invalid(format!(
                        "ASOF JOIN look-back bound must be a constant such as INTERVAL '7 days'; found: {other}"
                    )));
                }
            }
        } else {
            None
        };
        AsOfJoin::try_new(
            join.left, join.right, on, left_time, right_time, op, created, lookback, kind,
        )
    }

    /// The same join over new inputs (schemas recomputed).
    pub fn with_inputs(&self, left: Arc<LogicalPlan>, right: Arc<LogicalPlan>) -> Result<Self> {
        AsOfJoin::try_new(
            left,
            right,
            self.on.clone(),
            self.left_time.clone(),
            self.right_time.clone(),
            self.op,
            self.created.clone(),
            self.lookback.clone(),
            self.kind,
        )
    }

    fn comparable(&self) -> Comparable<'_> {
        (
            &self.left,
            &self.right,
            &self.on,
            (&self.left_time, &self.right_time, self.op),
            &self.created,
            &self.lookback,
            self.kind,
        )
    }
}

/// The fields that order two nodes (all but the derived schema).
type Comparable<'a> = (
    &'a Arc<LogicalPlan>,
    &'a Arc<LogicalPlan>,
    &'a Vec<(Expr, Expr)>,
    (&'a Expr, &'a Expr, AsOfOp),
    &'a Option<Expr>,
    &'a Option<LookBack>,
    AsOfKind,
);

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Left,
    Right,
    Both,
    Neither,
}

impl PartialOrd for AsOfJoin {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        self.comparable().partial_cmp(&other.comparable())
    }
}

impl UserDefinedLogicalNodeCore for AsOfJoin {
    fn name(&self) -> &str {
        "AsOfJoin"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.left, &self.right]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    /// Keys (left ones, then right ones), the two times, then CREATED.
    fn expressions(&self) -> Vec<Expr> {
        let mut exprs: Vec<Expr> = self.on.iter().map(|(l, _)| l.clone()).collect();
        exprs.extend(self.on.iter().map(|(_, r)| r.clone()));
        exprs.push(self.left_time.clone());
        exprs.push(self.right_time.clone());
        exprs.extend(self.created.clone());
        exprs
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "AsOfJoin: type={}", self.kind.as_str())?;
        let on: Vec<String> = self.on.iter().map(|(l, r)| format!("{l} = {r}")).collect();
        write!(
            f,
            ", on=[{}], match={} {} {}",
            on.join(", "),
            self.left_time,
            self.op,
            self.right_time
        )?;
        if let Some(c) = &self.created {
            write!(f, ", created={c}")?;
        }
        if let Some(lb) = &self.lookback {
            write!(f, ", lookback={lb}")?;
        }
        Ok(())
    }

    fn with_exprs_and_inputs(&self, exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        let n = self.on.len();
        let expected = 2 * n + 2 + usize::from(self.created.is_some());
        if exprs.len() != expected || inputs.len() != 2 {
            return Err(DataFusionError::Internal(format!(
                "AsOfJoin expects {expected} expressions and 2 inputs, got {} and {}",
                exprs.len(),
                inputs.len()
            )));
        }
        let mut exprs = exprs.into_iter();
        let lefts: Vec<Expr> = exprs.by_ref().take(n).collect();
        let rights: Vec<Expr> = exprs.by_ref().take(n).collect();
        let left_time = exprs.next().expect("counted");
        let right_time = exprs.next().expect("counted");
        let created = exprs.next();
        let mut inputs = inputs.into_iter();
        let left = Arc::new(inputs.next().expect("counted"));
        let right = Arc::new(inputs.next().expect("counted"));
        AsOfJoin::try_new(
            left,
            right,
            lefts.into_iter().zip(rights).collect(),
            left_time,
            right_time,
            self.op,
            created,
            self.lookback.clone(),
            self.kind,
        )
    }

    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let n_left = self.left.schema().fields().len();
        let (left, right): (Vec<usize>, Vec<usize>) =
            output_columns.iter().partition(|&&i| i < n_left);
        Some(vec![left, right.into_iter().map(|i| i - n_left).collect()])
    }
}

/// Analyzer rule: every join whose ON holds the marker becomes an [`AsOfJoin`]. It runs after
/// type coercion and before any optimizer rule, so no optimizer ever sees the marker; a marker
/// anywhere else is an error here rather than at execution.
#[derive(Debug, Default)]
pub struct AsOfJoinRule;

impl AnalyzerRule for AsOfJoinRule {
    fn name(&self) -> &str {
        "asof_join"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|p| match p {
            LogicalPlan::Join(join) if join.filter.as_ref().is_some_and(contains_marker) => {
                let node = AsOfJoin::from_join(join)?;
                Ok(Transformed::yes(LogicalPlan::Extension(Extension {
                    node: Arc::new(node),
                })))
            }
            p => {
                if p.expressions().iter().any(contains_marker) {
                    return Err(invalid(format!(
                        "{ASOF_MATCH}() only works in the ON clause of the join an ASOF JOIN was rewritten into"
                    )));
                }
                Ok(Transformed::no(p))
            }
        })
        .map(|t| t.data)
    }
}

/// Optimizer rule: `Filter(AsOfJoin)` → predicates on left columns only go below the join
/// (into its left input); everything else stays above.
#[derive(Debug, Default)]
pub struct AsOfFilterPushdown;

fn has_subquery(e: &Expr) -> bool {
    e.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_)
        ))
    })
    .unwrap_or(true)
}

impl OptimizerRule for AsOfFilterPushdown {
    fn name(&self) -> &str {
        "asof_filter_pushdown"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Filter(filter) = plan else {
            return Ok(Transformed::no(plan));
        };
        let join = match filter.input.as_ref() {
            LogicalPlan::Extension(ext) => ext.node.as_any().downcast_ref::<AsOfJoin>().cloned(),
            _ => None,
        };
        let Some(join) = join else {
            return Ok(Transformed::no(LogicalPlan::Filter(filter)));
        };
        let left_schema: &DFSchema = join.left.schema();
        let (push, keep): (Vec<Expr>, Vec<Expr>) =
            split_conjunction_owned(filter.predicate.clone())
                .into_iter()
                .partition(|p| {
                    let cols = p.column_refs();
                    !cols.is_empty()
                        && cols.iter().all(|c| left_schema.has_column(c))
                        && !p.is_volatile()
                        && !has_subquery(p)
                });
        let Some(pushed) = conjunction(push) else {
            return Ok(Transformed::no(LogicalPlan::Filter(filter)));
        };
        let left = LogicalPlan::Filter(Filter::try_new(pushed, Arc::clone(&join.left))?);
        let join = join.with_inputs(Arc::new(left), Arc::clone(&join.right))?;
        let node = LogicalPlan::Extension(Extension {
            node: Arc::new(join),
        });
        Ok(Transformed::yes(match conjunction(keep) {
            Some(rest) => LogicalPlan::Filter(Filter::try_new(rest, Arc::new(node))?),
            None => node,
        }))
    }
}
