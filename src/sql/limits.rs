//! Bounds on the shape of a statement, checked before anything plans it.
//!
//! sqlparser parses a chain such as `a OR b OR c …` or `1 + 1 + …` in a loop, so its
//! recursion limit never stops it, and the result is a left-deep tree as deep as the chain
//! is long. Everything after the parser (DataFusion's planner, optimizer rules, FStore's
//! rewrites, even dropping the tree) recurses over that tree, and a few thousand levels
//! overflow a thread's stack: that ends the process, not the query. Generated SQL from BI
//! tools and pipelines looks exactly like this, so the front refuses it cleanly:
//!
//! - **size** (before parsing, so no deep tree is ever built): a statement with more binary
//!   operators than [`MAX_OPERATORS`] is refused as `expression too large`;
//! - **depth** (after parsing): an expression nested deeper than the configured
//!   `max_expression_depth` (default
//!   [`crate::config::DEFAULT_MAX_EXPRESSION_DEPTH`], DuckDB's default too) is refused as `expression too deep: N > limit`.
//!
//! Both are `InvalidArgument`. Worker threads run with a stack that fits these limits
//! ([`WORKER_STACK_BYTES`]). This module must stay cheap on short statements: below
//! `2 × limit` bytes no expression can be deeper than the limit, and nothing is checked.

use std::ops::ControlFlow;

use datafusion::error::Result;
use datafusion::sql::parser::{CopyToSource, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{Expr, Visit, Visitor};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::{FStoreStatement, ParsedStatement};
use crate::error::FStoreError;

/// Bound on the binary operators of one SQL text, whatever the configured depth.
pub const MAX_OPERATORS: usize = 50_000;
/// Stack of every runtime thread that parses, plans or executes statements. Virtual memory:
/// only the pages a deep statement touches become resident.
pub const WORKER_STACK_BYTES: usize = 64 << 20;

/// Refuses a SQL text with more binary operators than [`MAX_OPERATORS`]. Runs before
/// parsing.
pub fn check_size(sql: &str) -> Result<()> {
    // Every operator costs at least two bytes (`1+1+…`).
    if sql.len() < 2 * MAX_OPERATORS {
        return Ok(());
    }
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize() else {
        // The parser reports the syntax error with its position.
        return Ok(());
    };
    let operators = tokens.iter().filter(|t| is_binary_operator(t)).count();
    if operators > MAX_OPERATORS {
        return Err(FStoreError::invalid(format!(
            "expression too large: {operators} operators > {MAX_OPERATORS}"
        ))
        .into());
    }
    Ok(())
}

/// Refuses a parsed statement whose expressions nest deeper than `max_depth`.
pub fn check_depth(sql: &str, statement: &ParsedStatement, max_depth: usize) -> Result<()> {
    if sql.len() < 2 * max_depth {
        return Ok(());
    }
    let depth = match &statement.statement {
        FStoreStatement::DataFusion(s) => statement_depth(s),
        // FStore's own statements: every operator of the text may be one level.
        _ => Tokenizer::new(&GenericDialect {}, sql)
            .tokenize()
            .map(|t| t.iter().filter(|t| is_binary_operator(t)).count())
            .unwrap_or(0),
    };
    if depth > max_depth {
        return Err(FStoreError::invalid(format!(
            "expression too deep: {depth} > {max_depth} (max_expression_depth; write long \
             OR chains of equalities as IN (…))"
        ))
        .into());
    }
    Ok(())
}

fn statement_depth(stmt: &DFStatement) -> usize {
    let mut v = DepthVisitor::default();
    match stmt {
        DFStatement::Statement(s) => {
            let _ = s.visit(&mut v);
        }
        DFStatement::Explain(e) => return statement_depth(&e.statement),
        DFStatement::CopyTo(c) => {
            if let CopyToSource::Query(q) = &c.source {
                let _ = q.visit(&mut v);
            }
        }
        DFStatement::CreateExternalTable(_) | DFStatement::Reset(_) => {}
    }
    v.max
}

#[derive(Default)]
struct DepthVisitor {
    depth: usize,
    max: usize,
}

impl Visitor for DepthVisitor {
    type Break = ();
    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.depth += 1;
        self.max = self.max.max(self.depth);
        ControlFlow::Continue(())
    }
    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

fn is_binary_operator(t: &Token) -> bool {
    match t {
        Token::Plus
        | Token::Minus
        | Token::Mul
        | Token::Div
        | Token::Mod
        | Token::StringConcat
        | Token::Eq
        | Token::DoubleEq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq
        | Token::Spaceship
        | Token::Caret
        | Token::Pipe
        | Token::Ampersand
        | Token::ShiftLeft
        | Token::ShiftRight => true,
        Token::Word(w) => matches!(w.keyword, Keyword::AND | Keyword::OR),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a thread with the workers' stack, as the server does.
    fn on_worker_stack(f: impl FnOnce() + Send + 'static) {
        std::thread::Builder::new()
            .stack_size(WORKER_STACK_BYTES)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap();
    }

    fn parsed(sql: &str) -> ParsedStatement {
        super::super::parser::FStoreParser::parse_sql(sql)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn a_deep_chain_is_refused_with_its_depth() {
        on_worker_stack(|| {
            let sql = format!("SELECT {}", vec!["1"; 1501].join(" + "));
            check_size(&sql).unwrap();
            let err = check_depth(&sql, &parsed(&sql), 1000)
                .unwrap_err()
                .to_string();
            assert!(err.contains("expression too deep: 1501 > 1000"), "{err}");
        });
    }

    #[test]
    fn the_largest_accepted_chain_fits_the_worker_stack() {
        on_worker_stack(|| {
            let sql = format!("SELECT {}", vec!["1"; MAX_OPERATORS].join("+"));
            check_size(&sql).unwrap();
            let err = check_depth(&sql, &parsed(&sql), 1000)
                .unwrap_err()
                .to_string();
            assert!(err.contains("expression too deep: 50000 > 1000"), "{err}");
        });
    }

    #[test]
    fn a_wide_but_shallow_statement_passes() {
        let cols: Vec<String> = (0..3000).map(|i| format!("{i} + 1 AS c{i}")).collect();
        let sql = format!("SELECT {}", cols.join(", "));
        check_size(&sql).unwrap();
        check_depth(&sql, &parsed(&sql), 1000).unwrap();
    }

    #[test]
    fn a_huge_chain_is_refused_before_parsing() {
        let sql = format!("SELECT {}", vec!["1"; 60_000].join("+"));
        let err = check_size(&sql).unwrap_err().to_string();
        assert!(
            err.contains("expression too large: 59999 operators > 50000"),
            "{err}"
        );
    }

    #[test]
    fn short_statements_are_not_checked() {
        let sql = "SELECT 1 + 2 + 3";
        // Below 2 × limit bytes nothing is checked, even with a tiny limit.
        check_depth(sql, &parsed(sql), 100).unwrap();
    }
}
