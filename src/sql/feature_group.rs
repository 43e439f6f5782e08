//! Grammar of the feature-group statements (docs/sql-reference.md):
//!
//! ```sql
//! CREATE [OR REPLACE] FEATURE GROUP [IF NOT EXISTS] name
//!   ENTITY (col [, col…]) TIMESTAMP col [CREATED col]
//!   { FROM relation | FROM (query) } FEATURES (feature [, feature…]) [options]
//!   | [options] AS query
//! feature  := name = agg(expr) WINDOW 'duration'   -- windowed aggregate
//!           | name = expr                          -- per-row expression
//!           | column                               -- a source column as is
//! options  := TTL 'duration' | DESCRIPTION 'text' | TAGS ('tag', …) | OWNER 'name'
//! ALTER FEATURE GROUP g ADD TRANSFORMATION feature USING encoder([name =>] value, …) [AS output]
//! DROP FEATURE GROUP [IF EXISTS] g;  DESCRIBE FEATURE GROUP g;  SHOW FEATURE GROUPS;
//! COMMENT ON FEATURE g.feature IS 'text' | NULL
//! ```
//!
//! This module only parses; meaning (columns exist, types fit) is checked by `features`.

use datafusion::error::Result;
use datafusion::sql::sqlparser::ast::{
    DuplicateTreatment, Expr, FunctionArg, FunctionArgExpr, FunctionArguments,
};
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::parser::{expected, sql_error};
use crate::error::FStoreError;
use crate::features::statements::{
    AddTransformation, CreateFeatureGroup, FeatureClause, FeatureDefinition, GroupOptions,
    SourceClause,
};

/// The window aggregates a feature can use, by the names SQL users write.
pub fn window_aggregate(name: &str, distinct: bool, star: bool) -> Option<&'static str> {
    Some(match (name.to_ascii_lowercase().as_str(), distinct, star) {
        ("count", false, true) => "count_star",
        ("count", true, false) | ("count_distinct", false, false) => "count_distinct",
        ("count", false, false) => "count",
        ("mean" | "avg", false, false) => "mean",
        ("sum", false, false) => "sum",
        ("min", false, false) => "min",
        ("max", false, false) => "max",
        ("stddev" | "stddev_samp" | "std", false, false) => "stddev",
        ("last" | "last_value", false, false) => "last",
        _ => return None,
    })
}

const WINDOW_AGGREGATES: &str =
    "mean, sum, count, count(*), min, max, stddev, count_distinct, last";

/// A small cursor over sqlparser's parser with FStore's word-level helpers.
pub struct Words<'p, 'a> {
    pub parser: &'p mut Parser<'a>,
}

impl Words<'_, '_> {
    pub fn peek_is(&self, word: &str) -> bool {
        matches!(&self.parser.peek_token_ref().token,
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
    }

    pub fn peek_seq(&self, words: &[&str]) -> bool {
        words.iter().enumerate().all(|(i, w)| {
            matches!(&self.parser.peek_nth_token_ref(i).token,
                Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
        })
    }

    pub fn accept(&mut self, word: &str) -> bool {
        if self.peek_is(word) {
            self.parser.next_token();
            true
        } else {
            false
        }
    }

    pub fn accept_seq(&mut self, words: &[&str]) -> bool {
        if self.peek_seq(words) {
            for _ in words {
                self.parser.next_token();
            }
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, word: &str) -> Result<()> {
        if self.accept(word) {
            Ok(())
        } else {
            Err(expected(word, self.parser.peek_token_ref()))
        }
    }

    pub fn expect_token(&mut self, token: Token, what: &str) -> Result<()> {
        if self.parser.consume_token(&token) {
            Ok(())
        } else {
            Err(expected(what, self.parser.peek_token_ref()))
        }
    }

    /// An identifier, normalised like DataFusion does (lower case unless quoted).
    pub fn ident(&mut self, what: &str) -> Result<String> {
        let t = self.parser.peek_token_ref().clone();
        match &t.token {
            Token::Word(w) => {
                self.parser.next_token();
                Ok(if w.quote_style.is_some() {
                    w.value.clone()
                } else {
                    w.value.to_ascii_lowercase()
                })
            }
            _ => Err(expected(what, &t)),
        }
    }

    /// A single-quoted string.
    pub fn string(&mut self, what: &str) -> Result<String> {
        let t = self.parser.peek_token_ref().clone();
        match &t.token {
            Token::SingleQuotedString(s) => {
                self.parser.next_token();
                Ok(s.clone())
            }
            _ => Err(expected(what, &t)),
        }
    }

    /// `( ident [, ident]* )`
    pub fn ident_list(&mut self, what: &str) -> Result<Vec<String>> {
        self.expect_token(Token::LParen, "(")?;
        let mut out = vec![self.ident(what)?];
        while self.parser.consume_token(&Token::Comma) {
            out.push(self.ident(what)?);
        }
        self.expect_token(Token::RParen, ")")?;
        Ok(out)
    }

    /// `name` or `name.name`, normalised.
    pub fn dotted(&mut self, what: &str) -> Result<Vec<String>> {
        let mut parts = vec![self.ident(what)?];
        while self.parser.consume_token(&Token::Period) {
            parts.push(self.ident(what)?);
        }
        Ok(parts)
    }
}

/// After `CREATE [OR REPLACE] FEATURE GROUP`.
pub fn parse_create(w: &mut Words, or_replace: bool) -> Result<CreateFeatureGroup> {
    let if_not_exists = w.accept_seq(&["IF", "NOT", "EXISTS"]);
    let name = w.ident("a feature group name")?;
    w.expect("ENTITY")?;
    let entity = w.ident_list("an entity key column")?;
    w.expect("TIMESTAMP")?;
    let timestamp = w.ident("the event-time column")?;
    let created = if w.accept("CREATED") {
        Some(w.ident("the CREATED column")?)
    } else {
        None
    };
    let mut options = GroupOptions::default();
    parse_options(w, &mut options)?;
    let (source, features) = if w.accept("FROM") {
        let source = if w.parser.consume_token(&Token::LParen) {
            let q = w.parser.parse_query().map_err(sql_error)?;
            w.expect_token(Token::RParen, ")")?;
            SourceClause::Query(q.to_string())
        } else {
            SourceClause::Relation(w.dotted("a table or view")?.join("."))
        };
        parse_options(w, &mut options)?;
        w.expect("FEATURES")?;
        let features = parse_features(w)?;
        parse_options(w, &mut options)?;
        (source, Some(features))
    } else if w.accept("AS") {
        let q = w.parser.parse_query().map_err(sql_error)?;
        (SourceClause::Query(q.to_string()), None)
    } else {
        return Err(expected("FROM or AS", w.parser.peek_token_ref()));
    };
    Ok(CreateFeatureGroup {
        name,
        or_replace,
        if_not_exists,
        entity,
        timestamp,
        created,
        source,
        features,
        options,
    })
}

fn parse_options(w: &mut Words, o: &mut GroupOptions) -> Result<()> {
    loop {
        if w.accept("TTL") {
            o.ttl = Some(w.string("a duration such as '90 days'")?);
        } else if w.accept("DESCRIPTION") {
            o.description = Some(w.string("a description string")?);
        } else if w.accept("OWNER") {
            o.owner = Some(w.string("an owner string")?);
        } else if w.accept("TAGS") {
            w.expect_token(Token::LParen, "(")?;
            o.tags.push(w.string("a tag string")?);
            while w.parser.consume_token(&Token::Comma) {
                o.tags.push(w.string("a tag string")?);
            }
            w.expect_token(Token::RParen, ")")?;
        } else {
            return Ok(());
        }
    }
}

fn parse_features(w: &mut Words) -> Result<Vec<FeatureClause>> {
    w.expect_token(Token::LParen, "(")?;
    let mut out = vec![];
    loop {
        let name = w.ident("a feature name or column")?;
        let definition = if w.parser.consume_token(&Token::Eq) {
            let expr = w.parser.parse_expr().map_err(sql_error)?;
            if w.accept("WINDOW") {
                let window = w.string("a window length such as '30 days'")?;
                window_definition(&name, &expr, window)?
            } else {
                FeatureDefinition::Expression(expr.to_string())
            }
        } else {
            FeatureDefinition::Column
        };
        out.push(FeatureClause { name, definition });
        if w.parser.consume_token(&Token::Comma) {
            continue;
        }
        w.expect_token(Token::RParen, "',' or ')'")?;
        return Ok(out);
    }
}

fn window_definition(feature: &str, expr: &Expr, window: String) -> Result<FeatureDefinition> {
    let not_agg = || -> datafusion::error::DataFusionError {
        FStoreError::invalid(format!(
            "feature '{feature}': WINDOW needs an aggregate of one expression ({WINDOW_AGGREGATES}), got {expr}"
        ))
        .into()
    };
    let Expr::Function(f) = expr else {
        return Err(not_agg());
    };
    let fname = f.name.to_string();
    let FunctionArguments::List(list) = &f.args else {
        return Err(not_agg());
    };
    let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
    let (star, input) = match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] => (true, None),
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => (false, Some(e.to_string())),
        _ => return Err(not_agg()),
    };
    let agg = window_aggregate(&fname, distinct, star).ok_or_else(|| {
        FStoreError::invalid(format!(
            "feature '{feature}': unsupported window aggregate '{fname}{}'; use one of {WINDOW_AGGREGATES}",
            if distinct { " DISTINCT" } else { "" }
        ))
    })?;
    Ok(FeatureDefinition::Window {
        agg: agg.to_string(),
        input,
        window,
    })
}

/// After `ALTER FEATURE GROUP`.
pub fn parse_alter(w: &mut Words) -> Result<AddTransformation> {
    let group = w.ident("a feature group name")?;
    w.expect("ADD")?;
    w.expect("TRANSFORMATION")?;
    let feature = w.ident("the feature to transform")?;
    w.expect("USING")?;
    let encoder = w.ident(
        "an encoder (target_encoding, one_hot, label, frequency, hash, standard, min_max)",
    )?;
    let mut args = vec![];
    if w.parser.consume_token(&Token::LParen) && !w.parser.consume_token(&Token::RParen) {
        loop {
            let named = matches!(w.parser.peek_nth_token_ref(1).token, Token::RArrow);
            let name = if named {
                let n = w.ident("an argument name")?;
                w.parser.next_token();
                Some(n)
            } else {
                None
            };
            args.push((name, w.parser.parse_expr().map_err(sql_error)?));
            if w.parser.consume_token(&Token::Comma) {
                continue;
            }
            w.expect_token(Token::RParen, "',' or ')'")?;
            break;
        }
    }
    let output = if w.accept("AS") {
        Some(w.ident("the output column name")?)
    } else {
        None
    };
    Ok(AddTransformation {
        group,
        feature,
        encoder,
        args,
        output,
    })
}

/// After `COMMENT ON FEATURE`: `group.feature IS 'text' | NULL`.
pub fn parse_comment(w: &mut Words) -> Result<(String, String, Option<String>)> {
    let parts = w.dotted("group.feature")?;
    let [group, feature] = parts.as_slice() else {
        return Err(FStoreError::invalid(format!(
            "COMMENT ON FEATURE takes group.feature, got '{}'",
            parts.join(".")
        ))
        .into());
    };
    w.expect("IS")?;
    let comment = if w.accept("NULL") {
        None
    } else {
        Some(w.string("a comment string or NULL")?)
    };
    Ok((group.clone(), feature.clone(), comment))
}
