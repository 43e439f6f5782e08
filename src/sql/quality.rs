//! Grammar of the validation and drift statements (docs/sql-reference.md):
//!
//! ```sql
//! CREATE EXPECTATION ON FEATURE [group.]feature (name = value [, name = value …])
//!   value := number | -number | 'text' | TRUE | FALSE | ('text' | number [, …])
//! DROP EXPECTATION [IF EXISTS] ON FEATURE [group.]feature [(name [, name …])]
//! SET DRIFT BASELINE FOR FEATURE SET name [VERSION n] FROM 'start' TO 'end'
//! ```
//!
//! This module only parses; names and values are checked when the statement runs, so an
//! unknown expectation is an error about the expectation, not a syntax error.

use datafusion::error::Result;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::feature_group::Words;
use super::parser::expected;
use crate::quality::statements::{
    CreateExpectation, DropExpectation, ExpectationValue, SetDriftBaseline,
};

/// After `CREATE EXPECTATION`.
pub fn parse_create(w: &mut Words) -> Result<CreateExpectation> {
    w.expect("ON")?;
    w.expect("FEATURE")?;
    let feature = w.dotted("[group.]feature")?;
    w.expect_token(Token::LParen, "(")?;
    let mut expectations = vec![];
    loop {
        let name = w.ident("an expectation name")?;
        w.expect_token(Token::Eq, "=")?;
        let value = if w.parser.consume_token(&Token::LParen) {
            let mut list = vec![value_text(w)?];
            while w.parser.consume_token(&Token::Comma) {
                list.push(value_text(w)?);
            }
            w.expect_token(Token::RParen, "',' or ')'")?;
            ExpectationValue::List(list)
        } else {
            scalar(w)?
        };
        expectations.push((name, value));
        if w.parser.consume_token(&Token::Comma) {
            continue;
        }
        w.expect_token(Token::RParen, "',' or ')'")?;
        break;
    }
    Ok(CreateExpectation {
        feature,
        expectations,
    })
}

/// After `DROP EXPECTATION`.
pub fn parse_drop(w: &mut Words) -> Result<DropExpectation> {
    let if_exists = w.accept_seq(&["IF", "EXISTS"]);
    w.expect("ON")?;
    w.expect("FEATURE")?;
    let feature = w.dotted("[group.]feature")?;
    let names = if matches!(w.parser.peek_token_ref().token, Token::LParen) {
        w.ident_list("an expectation name")?
    } else {
        vec![]
    };
    Ok(DropExpectation {
        feature,
        names,
        if_exists,
    })
}

/// After `SET DRIFT BASELINE`.
pub fn parse_set_baseline(w: &mut Words) -> Result<SetDriftBaseline> {
    w.expect("FOR")?;
    w.expect("FEATURE")?;
    w.expect("SET")?;
    let set = super::feature_set::parse_describe(w)?;
    w.expect("FROM")?;
    let from = w.string("the start of the baseline window ('2024-01-01')")?;
    w.expect("TO")?;
    let to = w.string("the end of the baseline window ('2024-01-31')")?;
    Ok(SetDriftBaseline { set, from, to })
}

fn scalar(w: &mut Words) -> Result<ExpectationValue> {
    let t = w.parser.peek_token_ref().clone();
    let v = match &t.token {
        Token::Number(n, _) => ExpectationValue::Number(n.clone()),
        Token::Minus => {
            w.parser.next_token();
            let n = w.parser.peek_token_ref().clone();
            match &n.token {
                Token::Number(n, _) => ExpectationValue::Number(format!("-{n}")),
                _ => return Err(expected("a number after '-'", &n)),
            }
        }
        Token::SingleQuotedString(s) => ExpectationValue::Text(s.clone()),
        Token::Word(word) if word.value.eq_ignore_ascii_case("true") => {
            ExpectationValue::Bool(true)
        }
        Token::Word(word) if word.value.eq_ignore_ascii_case("false") => {
            ExpectationValue::Bool(false)
        }
        _ => return Err(expected("a number, a string, TRUE, FALSE or a list", &t)),
    };
    w.parser.next_token();
    Ok(v)
}

fn value_text(w: &mut Words) -> Result<String> {
    match scalar(w)? {
        ExpectationValue::Number(n) => Ok(n),
        ExpectationValue::Text(t) => Ok(t),
        ExpectationValue::Bool(b) => Ok(b.to_string()),
        ExpectationValue::List(_) => Err(expected("a value", w.parser.peek_token_ref())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{FStoreParser, FStoreStatement};

    fn one(sql: &str) -> FStoreStatement {
        let mut v = FStoreParser::parse_sql(sql).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0).statement
    }

    fn err(sql: &str) -> String {
        crate::error::user_message(&FStoreParser::parse_sql(sql).unwrap_err())
    }

    #[test]
    fn create_expectation_reads_numbers_strings_booleans_and_lists() {
        let FStoreStatement::CreateExpectation(c) = one(
            "create expectation on feature G.amount (min_value = -1.5, max_value = 10000, \
             allowed_values = ('a', 'b', 3), unique = TRUE, note = 'x')",
        ) else {
            panic!("not a CREATE EXPECTATION")
        };
        assert_eq!(c.feature, vec!["g", "amount"]);
        assert_eq!(
            c.expectations,
            vec![
                ("min_value".into(), ExpectationValue::Number("-1.5".into())),
                ("max_value".into(), ExpectationValue::Number("10000".into())),
                (
                    "allowed_values".into(),
                    ExpectationValue::List(vec!["a".into(), "b".into(), "3".into()])
                ),
                ("unique".into(), ExpectationValue::Bool(true)),
                ("note".into(), ExpectationValue::Text("x".into())),
            ]
        );
    }

    #[test]
    fn drop_expectation_and_set_baseline() {
        let FStoreStatement::DropExpectation(d) =
            one("DROP EXPECTATION IF EXISTS ON FEATURE amount (unique, min_value)")
        else {
            panic!("not a DROP EXPECTATION")
        };
        assert_eq!(d.feature, vec!["amount"]);
        assert_eq!(d.names, vec!["unique", "min_value"]);
        assert!(d.if_exists);
        let FStoreStatement::SetDriftBaseline(b) = one(
            "SET DRIFT BASELINE FOR FEATURE SET fs VERSION 2 FROM '2024-01-01' TO '2024-01-31'",
        ) else {
            panic!("not a SET DRIFT BASELINE")
        };
        assert_eq!(
            *b,
            SetDriftBaseline {
                set: "fs@2".into(),
                from: "2024-01-01".into(),
                to: "2024-01-31".into()
            }
        );
        // Plain SET still goes to DataFusion.
        assert!(matches!(
            one("SET datafusion.execution.batch_size = 1024"),
            FStoreStatement::DataFusion(_)
        ));
    }

    #[test]
    fn errors_name_the_statement() {
        assert_eq!(
            err("SET DRIFT BASELINE FOR FEATURE SET fs FROM 2024 TO '2024-01-31'"),
            "syntax error in SET DRIFT BASELINE statement: Expected: the start of the baseline window ('2024-01-01'), found: 2024 at Line: 1, Column: 44"
        );
        assert_eq!(
            err("CREATE EXPECTATION ON FEATURE amount ()"),
            "syntax error in CREATE EXPECTATION statement: Expected: an expectation name, found: ) at Line: 1, Column: 39"
        );
    }
}
