//! Grammar of the feature-set statements (docs/sql-reference.md):
//!
//! ```sql
//! CREATE FEATURE SET name
//!   { FEATURES (group.* | group.feature | group:feature, …) | FEATURES FROM (query) }
//!   [WITH (key = 'value', …)] [TAGS ('tag', …)] [DESCRIPTION 'text']
//! DESCRIBE FEATURE SET name [VERSION n]
//! ```
//!
//! `FEATURES FROM (query)` takes the features from the query's rows: a column `feature`
//! holding `group.feature` (or a bare feature name found in exactly one group), or two
//! columns `feature_group` and `feature`.

use std::collections::BTreeMap;

use datafusion::error::Result;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::feature_group::Words;
use super::parser::{expected, sql_error};
use crate::features::statements::{CreateFeatureSet, ExportFeatureSet, FeatureList};
use crate::online::statements::{AlterFeatureSet, RefreshOnline};

/// After `CREATE FEATURE SET`.
pub fn parse_create(w: &mut Words) -> Result<CreateFeatureSet> {
    let name = w.ident("a feature set name")?;
    w.expect("FEATURES")?;
    let features = if w.accept("FROM") {
        w.expect_token(Token::LParen, "(")?;
        let q = w.parser.parse_query().map_err(sql_error)?;
        w.expect_token(Token::RParen, ")")?;
        FeatureList::Query(q.to_string())
    } else {
        w.expect_token(Token::LParen, "( or FROM")?;
        let mut list = vec![];
        loop {
            let group = w.ident("group.feature")?;
            if !w.parser.consume_token(&Token::Period) && !w.parser.consume_token(&Token::Colon) {
                return Err(expected(
                    "'.' or ':' after the feature group name",
                    w.parser.peek_token_ref(),
                ));
            }
            let feature = if w.parser.consume_token(&Token::Mul) {
                "*".to_string()
            } else {
                w.ident("a feature name or *")?
            };
            list.push((group, feature));
            if w.parser.consume_token(&Token::Comma) {
                continue;
            }
            w.expect_token(Token::RParen, "',' or ')'")?;
            break;
        }
        FeatureList::Listed(list)
    };
    let mut metadata = BTreeMap::new();
    let mut tags = vec![];
    let mut description = None;
    loop {
        if w.accept("WITH") {
            w.expect_token(Token::LParen, "(")?;
            let pairs = key_values(w, "a metadata key", "a metadata value", |t| match t {
                Token::SingleQuotedString(s) => Some(s.clone()),
                Token::Number(n, _) => Some(n.clone()),
                Token::Word(word) => Some(word.value.clone()),
                _ => None,
            })?;
            metadata.extend(pairs);
        } else if w.accept("TAGS") {
            w.expect_token(Token::LParen, "(")?;
            tags.push(w.string("a tag string")?);
            while w.parser.consume_token(&Token::Comma) {
                tags.push(w.string("a tag string")?);
            }
            w.expect_token(Token::RParen, ")")?;
        } else if w.accept("DESCRIPTION") {
            description = Some(w.string("a description string")?);
        } else {
            break;
        }
    }
    Ok(CreateFeatureSet {
        name,
        features,
        metadata,
        tags,
        description,
    })
}

/// `key = value, …)` (after the opening parenthesis): the pairs in order, each value read
/// by `value` from its token.
fn key_values(
    w: &mut Words,
    key_what: &str,
    value_what: &str,
    value: impl Fn(&Token) -> Option<String>,
) -> Result<Vec<(String, String)>> {
    let mut out = vec![];
    loop {
        let key = w.ident(key_what)?;
        w.expect_token(Token::Eq, "=")?;
        let t = w.parser.peek_token_ref().clone();
        let Some(v) = value(&t.token) else {
            return Err(expected(value_what, &t));
        };
        w.parser.next_token();
        out.push((key, v));
        if w.parser.consume_token(&Token::Comma) {
            continue;
        }
        w.expect_token(Token::RParen, "',' or ')'")?;
        return Ok(out);
    }
}

/// After `DESCRIBE FEATURE SET`: `name [VERSION n]`, as a set reference (`name@n`).
pub fn parse_describe(w: &mut Words) -> Result<String> {
    let name = w.ident("a feature set name")?;
    if w.accept("VERSION") {
        let v = w.parser.parse_literal_uint().map_err(sql_error)?;
        return Ok(format!("{name}@{v}"));
    }
    Ok(name)
}

pub fn parse_export(w: &mut Words) -> Result<ExportFeatureSet> {
    let reference = parse_describe(w)?;
    w.expect("TO")?;
    let path = w.string("the export path ('s3://bucket/prefix/' or a directory)")?;
    if w.accept("FORMAT") {
        let format = w.ident("a format")?;
        if !format.eq_ignore_ascii_case("parquet") {
            return Err(crate::error::FStoreError::invalid(format!(
                "EXPORT FEATURE SET: format '{format}' is not supported; use FORMAT parquet"
            ))
            .into());
        }
    }
    let entities = if w.accept_seq(&["FOR", "ENTITIES"]) {
        let table = w.string("the entity table (a name or a query, as a string)")?;
        w.expect("TIMESTAMP")?;
        let ts = w.string("the entity table's timestamp column, as a string")?;
        Some((table, ts))
    } else {
        None
    };
    Ok(ExportFeatureSet {
        reference,
        path,
        entities,
    })
}

/// After `ALTER FEATURE SET`.
pub fn parse_alter(w: &mut Words) -> Result<AlterFeatureSet> {
    let reference = parse_describe(w)?;
    w.expect("SET")?;
    if w.accept("OFFLINE") {
        if reference.contains('@') {
            return Err(crate::error::FStoreError::invalid(
                "ALTER FEATURE SET … SET OFFLINE takes the set's name, without VERSION",
            )
            .into());
        }
        return Ok(AlterFeatureSet::SetOffline { name: reference });
    }
    w.expect("ONLINE")?;
    let mut options = vec![];
    if w.parser.consume_token(&Token::LParen) {
        options = key_values(
            w,
            "an option name (update_frequency, cache_ttl)",
            "a duration string such as '1h'",
            |t| match t {
                Token::SingleQuotedString(s) => Some(s.clone()),
                Token::Word(word) if word.value.eq_ignore_ascii_case("NULL") => Some(String::new()),
                _ => None,
            },
        )?
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    }
    Ok(AlterFeatureSet::SetOnline { reference, options })
}

/// After `REFRESH ONLINE FEATURE SET`.
pub fn parse_refresh(w: &mut Words) -> Result<RefreshOnline> {
    let name = w.ident("a feature set name")?;
    let as_of = if w.accept_seq(&["AS", "OF"]) {
        Some(w.string("a timestamp string such as '2024-06-30T00:00:00'")?)
    } else {
        None
    };
    Ok(RefreshOnline { name, as_of })
}
