//! From `ASOF JOIN` in SQL to SQL that DataFusion plans.
//!
//! DataFusion's SQL planner rejects sqlparser's `JoinOperator::AsOf`, so every AS-OF join is
//! rewritten in the AST, before planning, into a plain join whose ON holds the
//! [`ASOF_MATCH`](crate::asof::marker::ASOF_MATCH) marker:
//!
//! ```text
//! ASOF JOIN f MATCH_CONDITION (e.ts >= f.ts AND CREATED(f.c)) ON e.k = f.k AND e.ts - f.ts <= INTERVAL '7 days'
//!   → LEFT JOIN f ON e.k = f.k AND asof_match(e.ts, '>=', f.ts, f.c, '<=', INTERVAL '7 days')
//! ```
//!
//! The rewrite is syntactic: it finds the time condition, the CREATED term and the look-back
//! bound, and leaves every other condition of ON in place; which side is which, key equalities
//! and types are checked by the analyzer rule that builds the `AsOfJoin` node, with the schemas
//! at hand.
//!
//! DuckDB's spelling (`ASOF [LEFT] JOIN f ON e.k = f.k AND e.ts >= f.ts`) does not parse with
//! sqlparser; [`parse_sql`] first makes it parseable at token level
//! ([`super::duckdb_spelling`]). This module must never change a statement that has no `ASOF`
//! in it.

use std::ops::ControlFlow;

use datafusion::error::{DataFusionError, Result};
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Join, JoinConstraint,
    JoinOperator, Select, TableFactor, TableWithJoins, VisitMut, VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::duckdb_spelling::{
    DUCKDB_INNER, DUCKDB_LEFT, OffsetMap, apply_edits, duckdb_spelling_edits,
};
use super::{FStoreParser, FStoreStatement, ParsedStatement};
use crate::asof::marker::ASOF_MATCH;
use crate::error::{FStoreError, invalid};

/// Parses `sql` with FStore's parser, accepting both spellings of the AS-OF join, and rewrites
/// every `ASOF JOIN` into a join DataFusion can plan (see the module documentation).
pub fn parse_sql(sql: &str) -> Result<Vec<ParsedStatement>> {
    let edits = duckdb_spelling_edits(sql)?;
    let statements = if edits.is_empty() {
        FStoreParser::parse_sql(sql)?
    } else {
        let rewritten = apply_edits(sql, &edits);
        let map = OffsetMap {
            original: sql,
            rewritten: &rewritten,
            edits: &edits,
        };
        let mut statements = FStoreParser::parse_sql(&rewritten).map_err(|e| map.error(e))?;
        for s in &mut statements {
            map.restore(s);
        }
        statements
    };
    statements.into_iter().map(rewrite_parsed).collect()
}

fn rewrite_parsed(mut parsed: ParsedStatement) -> Result<ParsedStatement> {
    if let FStoreStatement::DataFusion(stmt) = &mut parsed.statement {
        rewrite_statement(stmt)?;
    }
    Ok(parsed)
}

/// Rewrites every `ASOF JOIN` of a DataFusion statement in place.
pub fn rewrite_statement(stmt: &mut DFStatement) -> Result<()> {
    let mut rewriter = Rewriter;
    let flow = match stmt {
        DFStatement::Statement(s) => s.visit(&mut rewriter),
        DFStatement::Explain(e) => return rewrite_statement(&mut e.statement),
        DFStatement::CopyTo(c) => match &mut c.source {
            CopyToSource::Query(q) => q.visit(&mut rewriter),
            CopyToSource::Relation(_) => ControlFlow::Continue(()),
        },
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => ControlFlow::Continue(()),
    };
    match flow {
        ControlFlow::Break(e) => Err(e),
        ControlFlow::Continue(()) => Ok(()),
    }
}

struct Rewriter;

impl VisitorMut for Rewriter {
    type Break = DataFusionError;

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<DataFusionError> {
        for twj in &mut select.from {
            if let Err(e) = rewrite_joins(twj) {
                return ControlFlow::Break(e);
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<DataFusionError> {
        if let TableFactor::NestedJoin {
            table_with_joins, ..
        } = tf
            && let Err(e) = rewrite_joins(table_with_joins)
        {
            return ControlFlow::Break(e);
        }
        ControlFlow::Continue(())
    }
}

fn rewrite_joins(twj: &mut TableWithJoins) -> Result<()> {
    for join in &mut twj.joins {
        rewrite_join(join)?;
    }
    Ok(())
}

/// A look-back bound as written: `later - earlier <= bound` (or `<`).
struct LookBackTerm {
    later: Expr,
    earlier: Expr,
    inclusive: bool,
    bound: Expr,
    text: String,
}

/// What one condition of an AS-OF join is.
enum Term {
    /// `a op b` with op one of `>=`, `>`, `<=`, `<`.
    Time(Box<(Expr, BinaryOperator, Expr)>),
    /// `x - y <= bound` or `x - y < bound`.
    LookBack(Box<LookBackTerm>),
    /// `CREATED(col)`.
    Created(Expr),
    /// Anything else (key equalities; the analyzer rule checks them).
    Other(Expr),
}

fn strip(e: &Expr) -> &Expr {
    match e {
        Expr::Nested(inner) => strip(inner),
        e => e,
    }
}

/// The AND-ed conditions of `e`.
fn conjuncts(e: &Expr, out: &mut Vec<Expr>) {
    match strip(e) {
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            conjuncts(left, out);
            conjuncts(right, out);
        }
        _ => out.push(e.clone()),
    }
}

fn classify(e: Expr) -> Term {
    let text = e.to_string();
    match strip(&e) {
        Expr::BinaryOp { left, op, right }
            if matches!(op, BinaryOperator::LtEq | BinaryOperator::Lt)
                && matches!(
                    strip(left),
                    Expr::BinaryOp {
                        op: BinaryOperator::Minus,
                        ..
                    }
                ) =>
        {
            let Expr::BinaryOp {
                left: later,
                right: earlier,
                ..
            } = strip(left)
            else {
                unreachable!("matched above")
            };
            Term::LookBack(Box::new(LookBackTerm {
                later: strip(later).clone(),
                earlier: strip(earlier).clone(),
                inclusive: *op == BinaryOperator::LtEq,
                bound: (**right).clone(),
                text,
            }))
        }
        Expr::BinaryOp { left, op, right }
            if matches!(
                op,
                BinaryOperator::GtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Lt
            ) =>
        {
            Term::Time(Box::new((
                strip(left).clone(),
                op.clone(),
                strip(right).clone(),
            )))
        }
        Expr::Function(f)
            if f.name.to_string().eq_ignore_ascii_case("created") && f.over.is_none() =>
        {
            match &f.args {
                FunctionArguments::List(list) if list.args.len() == 1 => match &list.args[0] {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(arg)) => Term::Created(arg.clone()),
                    _ => Term::Other(e),
                },
                _ => Term::Other(e),
            }
        }
        _ => Term::Other(e),
    }
}

/// How the join was spelled.
#[derive(Clone, Copy, PartialEq)]
enum Spelling {
    Snowflake,
    DuckDb { left: bool },
}

fn rewrite_join(join: &mut Join) -> Result<()> {
    let JoinOperator::AsOf {
        match_condition,
        constraint,
    } = &join.join_operator
    else {
        return Ok(());
    };
    let spelling = match strip(match_condition) {
        Expr::Identifier(id) if id.value == DUCKDB_LEFT => Spelling::DuckDb { left: true },
        Expr::Identifier(id) if id.value == DUCKDB_INNER => Spelling::DuckDb { left: false },
        _ => Spelling::Snowflake,
    };
    let mut on = Vec::new();
    match constraint {
        JoinConstraint::On(e) => conjuncts(e, &mut on),
        JoinConstraint::None => {}
        JoinConstraint::Using(_) | JoinConstraint::Natural => {
            return Err(invalid(
                "ASOF JOIN supports ON conditions only, not USING or NATURAL: write ON a.k = b.k",
            ));
        }
    }

    let mut times = Vec::new();
    let mut lookbacks = Vec::new();
    let mut created = Vec::new();
    let mut rest = Vec::new();
    if spelling == Spelling::Snowflake {
        let mut terms = Vec::new();
        conjuncts(match_condition, &mut terms);
        for t in terms {
            match classify(t) {
                Term::Time(t) => times.push(*t),
                Term::Created(c) => created.push(c),
                Term::LookBack(lb) => lookbacks.push(*lb),
                Term::Other(e) => {
                    return Err(invalid(format!(
                        "ASOF JOIN MATCH_CONDITION takes one comparison (>=, >, <= or <) between a time of each table, optionally AND CREATED(column); found: {e}"
                    )));
                }
            }
        }
    }
    for t in on {
        match classify(t) {
            Term::Time(t) if matches!(spelling, Spelling::DuckDb { .. }) => times.push(*t),
            Term::Time(t) => {
                let (a, op, b) = *t;
                return Err(invalid(format!(
                    "ASOF JOIN ON takes equality conditions only (and a look-back bound); the time condition belongs in MATCH_CONDITION: found {a} {op} {b}"
                )));
            }
            Term::Created(c) => created.push(c),
            Term::LookBack(lb) => lookbacks.push(*lb),
            Term::Other(e) => rest.push(e),
        }
    }

    let (a, op, b) = match times.len() {
        1 => times.remove(0),
        0 => {
            return Err(invalid(match spelling {
                Spelling::Snowflake => {
                    "ASOF JOIN needs a time condition: MATCH_CONDITION (a.ts >= b.ts), with >=, >, <= or <".to_string()
                }
                Spelling::DuckDb { .. } => {
                    "ASOF JOIN needs a time condition: ON a.k = b.k AND a.ts >= b.ts, with >=, >, <= or <".to_string()
                }
            }));
        }
        n => {
            let list: Vec<String> = times
                .iter()
                .map(|(a, op, b)| format!("{a} {op} {b}"))
                .collect();
            return Err(invalid(format!(
                "ASOF JOIN takes exactly one time condition, found {n}: {}",
                list.join(", ")
            )));
        }
    };
    if created.len() > 1 {
        return Err(invalid("ASOF JOIN takes at most one CREATED(column)"));
    }
    if lookbacks.len() > 1 {
        return Err(invalid("ASOF JOIN takes at most one look-back bound"));
    }
    let (later, earlier) = match op {
        BinaryOperator::GtEq | BinaryOperator::Gt => (&a, &b),
        _ => (&b, &a),
    };
    let mut marker = format!("{ASOF_MATCH}({a}, '{op}', {b}");
    match created.first() {
        Some(c) => marker.push_str(&format!(", {c}")),
        None if !lookbacks.is_empty() => marker.push_str(", NULL"),
        None => {}
    }
    if let Some(LookBackTerm {
        later: x,
        earlier: y,
        inclusive,
        bound,
        text,
    }) = lookbacks.first()
    {
        if x != later || y != earlier {
            return Err(invalid(format!(
                "ASOF JOIN look-back bound must subtract the earlier time of the time condition from the later one, as in {later} - {earlier} <= INTERVAL '7 days'; found: {text}"
            )));
        }
        let bop = if *inclusive { "<=" } else { "<" };
        marker.push_str(&format!(", '{bop}', {bound}"));
    }
    marker.push(')');
    let marker = Parser::new(&GenericDialect {})
        .try_with_sql(&marker)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| {
            FStoreError::new(
                crate::error::ErrorKind::Internal,
                format!("ASOF JOIN rewrite produced unparseable SQL {marker}: {e}"),
            )
        })?;
    let mut condition = marker;
    for e in rest.into_iter().rev() {
        let e = match e {
            e @ (Expr::Nested(_) | Expr::Identifier(_) | Expr::CompoundIdentifier(_)) => e,
            e @ Expr::BinaryOp {
                op: BinaryOperator::Eq,
                ..
            } => e,
            e => Expr::Nested(Box::new(e)),
        };
        condition = Expr::BinaryOp {
            left: Box::new(e),
            op: BinaryOperator::And,
            right: Box::new(condition),
        };
    }
    let constraint = JoinConstraint::On(condition);
    join.join_operator = match spelling {
        Spelling::Snowflake | Spelling::DuckDb { left: true } => JoinOperator::Left(constraint),
        Spelling::DuckDb { left: false } => JoinOperator::Inner(constraint),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(sql: &str) -> String {
        let mut v = parse_sql(sql).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0).statement.to_string()
    }

    fn err(sql: &str) -> String {
        crate::error::user_message(&parse_sql(sql).unwrap_err())
    }

    #[test]
    fn snowflake_spelling_becomes_a_left_join_with_the_marker() {
        assert_eq!(
            rewritten(
                "SELECT * FROM e ASOF JOIN f MATCH_CONDITION (e.ts >= f.ts) ON e.k = f.k AND e.k2 = f.k2"
            ),
            "SELECT * FROM e LEFT JOIN f ON e.k = f.k AND e.k2 = f.k2 AND asof_match(e.ts, '>=', f.ts)"
        );
    }

    #[test]
    fn created_and_look_back_go_into_the_marker() {
        assert_eq!(
            rewritten(
                "SELECT * FROM e ASOF JOIN f MATCH_CONDITION (f.ts <= e.ts AND CREATED(f.c)) ON e.k = f.k AND e.ts - f.ts < INTERVAL '1 day'"
            ),
            "SELECT * FROM e LEFT JOIN f ON e.k = f.k AND asof_match(f.ts, '<=', e.ts, f.c, '<', INTERVAL '1 day')"
        );
        assert_eq!(
            rewritten(
                "SELECT * FROM e ASOF JOIN f MATCH_CONDITION (e.ts >= f.ts) ON e.ts - f.ts <= 3"
            ),
            "SELECT * FROM e LEFT JOIN f ON asof_match(e.ts, '>=', f.ts, NULL, '<=', 3)"
        );
    }

    #[test]
    fn duckdb_spelling_keeps_its_join_type_and_text() {
        let v = parse_sql(
            "SELECT 1;\nSELECT * FROM e ASOF LEFT JOIN f ON e.k = f.k AND e.ts >= f.ts; SELECT * FROM e ASOF JOIN f ON e.ts > f.ts",
        )
        .unwrap();
        assert_eq!(
            v[1].statement.to_string(),
            "SELECT * FROM e LEFT JOIN f ON e.k = f.k AND asof_match(e.ts, '>=', f.ts)"
        );
        assert_eq!(
            v[1].text,
            "SELECT * FROM e ASOF LEFT JOIN f ON e.k = f.k AND e.ts >= f.ts"
        );
        assert_eq!((v[1].line, v[1].column), (2, 1));
        assert_eq!(
            v[2].statement.to_string(),
            "SELECT * FROM e INNER JOIN f ON asof_match(e.ts, '>', f.ts)"
        );
        assert_eq!(v[2].text, "SELECT * FROM e ASOF JOIN f ON e.ts > f.ts");
        assert_eq!((v[2].line, v[2].column), (2, 65));
    }

    #[test]
    fn nested_and_sub_queries_are_rewritten() {
        let s = rewritten(
            "EXPLAIN SELECT * FROM (SELECT * FROM e ASOF JOIN f MATCH_CONDITION (e.ts >= f.ts)) x WHERE x.k IN (SELECT k FROM g ASOF JOIN h ON g.t >= h.t)",
        );
        assert!(!s.contains("ASOF"), "{s}");
        assert_eq!(s.matches("asof_match").count(), 2, "{s}");
    }

    #[test]
    fn statements_without_asof_are_untouched() {
        let sql = "SELECT 'ASOF JOIN' AS asof FROM t";
        assert_eq!(rewritten(sql), sql);
    }

    #[test]
    fn or_conditions_keep_their_precedence() {
        assert_eq!(
            rewritten(
                "SELECT * FROM e ASOF JOIN f MATCH_CONDITION (e.ts >= f.ts) ON e.k = f.k OR e.k = 1"
            ),
            "SELECT * FROM e LEFT JOIN f ON (e.k = f.k OR e.k = 1) AND asof_match(e.ts, '>=', f.ts)"
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            err("SELECT * FROM e ASOF JOIN f ON e.k = f.k"),
            "ASOF JOIN needs a time condition: ON a.k = b.k AND a.ts >= b.ts, with >=, >, <= or <"
        );
        assert_eq!(
            err("SELECT * FROM e ASOF JOIN f ON e.ts >= f.ts AND e.u <= f.u"),
            "ASOF JOIN takes exactly one time condition, found 2: e.ts >= f.ts, e.u <= f.u"
        );
        assert_eq!(
            err("SELECT * FROM e ASOF JOIN f MATCH_CONDITION (e.ts = f.ts)"),
            "ASOF JOIN MATCH_CONDITION takes one comparison (>=, >, <= or <) between a time of each table, optionally AND CREATED(column); found: e.ts = f.ts"
        );
        assert_eq!(
            err("SELECT * FROM e ASOF RIGHT JOIN f ON e.ts >= f.ts"),
            "ASOF RIGHT JOIN is not supported: put the table whose rows are all kept on the left and use ASOF LEFT JOIN at Line: 1, Column: 22"
        );
        assert_eq!(
            err("SELECT * FROM e ASOF JOIN f MATCH_CONDITION (e.ts >= f.ts) ON f.ts - e.ts <= 1"),
            "ASOF JOIN look-back bound must subtract the earlier time of the time condition from the later one, as in e.ts - f.ts <= INTERVAL '7 days'; found: f.ts - e.ts <= 1"
        );
    }

    #[test]
    fn parse_errors_after_a_duckdb_join_point_at_the_text_as_written() {
        let e = err("SELECT * FROM e ASOF LEFT JOIN f ON e.ts >= f.ts GROUP x");
        assert!(e.contains("found: GROUP at Line: 1, Column: 50"), "{e}");
    }
}
