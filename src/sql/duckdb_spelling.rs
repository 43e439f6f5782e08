//! DuckDB's spelling of the AS-OF join at token level.
//!
//! sqlparser requires `MATCH_CONDITION` after an `ASOF JOIN`'s table, so DuckDB's
//! `ASOF [LEFT [OUTER] | INNER] JOIN t ON …` does not parse. [`duckdb_spelling_edits`] finds
//! such joins in the token stream and turns each into Snowflake's spelling with a marker
//! `MATCH_CONDITION` that records the spelling (`"__fstore_duckdb_asof_left"` or `…_inner`);
//! [`OffsetMap`] maps statement texts, positions and parse errors of the edited text back to
//! the text as written. Text without `ASOF` is never edited.

use datafusion::error::{DataFusionError, Result};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use super::ParsedStatement;
use crate::error::{FStoreError, invalid};

/// The `MATCH_CONDITION` that stands for DuckDB's `ASOF LEFT JOIN … ON …`.
pub const DUCKDB_LEFT: &str = "__fstore_duckdb_asof_left";
/// The `MATCH_CONDITION` that stands for DuckDB's `ASOF JOIN … ON …` (an inner join).
pub const DUCKDB_INNER: &str = "__fstore_duckdb_asof_inner";

/// One change of the SQL text: `original[at..at + remove]` becomes `insert`.
#[derive(Debug)]
pub struct Edit {
    at: usize,
    remove: usize,
    insert: String,
}

fn is_word(t: &TokenWithSpan, word: &str) -> bool {
    matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

fn at_position(loc: Location) -> String {
    format!(" at Line: {}, Column: {}", loc.line, loc.column)
}

/// The edits that turn every DuckDB-spelled AS-OF join of `sql` into the Snowflake spelling.
/// Empty when there is none (or when the text does not tokenize: the parser then reports).
pub fn duckdb_spelling_edits(sql: &str) -> Result<Vec<Edit>> {
    if !sql.to_ascii_uppercase().contains("ASOF") {
        return Ok(vec![]);
    }
    let Ok(tokens) = Tokenizer::new(&GenericDialect {}, sql).tokenize_with_location() else {
        return Ok(vec![]);
    };
    let tokens: Vec<TokenWithSpan> = tokens
        .into_iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    let lines = LineIndex::new(sql);
    let mut edits = Vec::new();
    for i in 0..tokens.len() {
        if !is_word(&tokens[i], "ASOF") {
            continue;
        }
        let mut j = i + 1;
        let mut left = None;
        if j < tokens.len() && is_word(&tokens[j], "LEFT") {
            left = Some(true);
            j += 1;
            if j < tokens.len() && is_word(&tokens[j], "OUTER") {
                j += 1;
            }
        } else if j < tokens.len() && is_word(&tokens[j], "INNER") {
            left = Some(false);
            j += 1;
        } else if let Some(w) = ["RIGHT", "FULL"]
            .into_iter()
            .find(|w| j < tokens.len() && is_word(&tokens[j], w))
        {
            return Err(invalid(format!(
                "ASOF {w} JOIN is not supported: put the table whose rows are all kept on the left and use ASOF LEFT JOIN{}",
                at_position(tokens[j].span.start)
            )));
        }
        if j >= tokens.len() || !is_word(&tokens[j], "JOIN") {
            continue;
        }
        // The join's own ON or MATCH_CONDITION is the first one outside parentheses.
        let mut depth = 0i32;
        let mut on = None;
        for (k, t) in tokens.iter().enumerate().skip(j + 1) {
            match &t.token {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth < 0 {
                        break;
                    }
                }
                Token::SemiColon | Token::EOF => break,
                _ if depth == 0 && is_word(t, "MATCH_CONDITION") => {
                    if left.is_some() {
                        return Err(invalid(format!(
                            "ASOF {} JOIN is DuckDB's spelling, which has no MATCH_CONDITION: write ASOF JOIN … MATCH_CONDITION (…) ON … (Snowflake) or ASOF {} JOIN … ON a.k = b.k AND a.ts >= b.ts (DuckDB){}",
                            if left == Some(true) { "LEFT" } else { "INNER" },
                            if left == Some(true) { "LEFT" } else { "INNER" },
                            at_position(t.span.start)
                        )));
                    }
                    break;
                }
                _ if depth == 0 && is_word(t, "USING") => {
                    return Err(invalid(format!(
                        "ASOF JOIN supports ON conditions only, not USING: write ON a.k = b.k AND a.ts >= b.ts{}",
                        at_position(t.span.start)
                    )));
                }
                _ if depth == 0 && is_word(t, "ON") => {
                    on = Some(k);
                    break;
                }
                _ => {}
            }
        }
        let Some(on) = on else { continue };
        if left.is_some() {
            let from = lines.offset(tokens[i + 1].span.start);
            let to = lines.offset(tokens[j].span.start);
            edits.push(Edit {
                at: from,
                remove: to - from,
                insert: String::new(),
            });
        }
        let marker = if left == Some(true) {
            DUCKDB_LEFT
        } else {
            DUCKDB_INNER
        };
        edits.push(Edit {
            at: lines.offset(tokens[on].span.start),
            remove: 0,
            insert: format!("MATCH_CONDITION (\"{marker}\") "),
        });
    }
    Ok(edits)
}

pub fn apply_edits(sql: &str, edits: &[Edit]) -> String {
    let mut out = String::with_capacity(sql.len() + 64 * edits.len());
    let mut pos = 0;
    for e in edits {
        out.push_str(&sql[pos..e.at]);
        out.push_str(&e.insert);
        pos = e.at + e.remove;
    }
    out.push_str(&sql[pos..]);
    out
}

/// Byte offsets of line starts, to turn token locations (line, column in characters) into
/// offsets and back.
struct LineIndex<'s> {
    sql: &'s str,
    starts: Vec<usize>,
}

impl<'s> LineIndex<'s> {
    fn new(sql: &'s str) -> Self {
        let mut starts = vec![0];
        starts.extend(sql.match_indices('\n').map(|(i, _)| i + 1));
        Self { sql, starts }
    }

    fn offset(&self, loc: Location) -> usize {
        let Some(&start) = self.starts.get((loc.line as usize).wrapping_sub(1)) else {
            return self.sql.len();
        };
        self.sql[start..]
            .char_indices()
            .nth(loc.column.saturating_sub(1) as usize)
            .map(|(i, _)| start + i)
            .unwrap_or(self.sql.len())
    }

    fn location(&self, offset: usize) -> (u64, u64) {
        let line = self.starts.partition_point(|&s| s <= offset);
        let start = self.starts[line - 1];
        let column = self.sql[start..offset.min(self.sql.len())].chars().count() + 1;
        (line as u64, column as u64)
    }
}

/// Maps positions in the rewritten text back to the text as written.
pub struct OffsetMap<'a> {
    pub original: &'a str,
    pub rewritten: &'a str,
    pub edits: &'a [Edit],
}

impl OffsetMap<'_> {
    fn to_original(&self, p: usize) -> usize {
        let mut delta: isize = 0;
        for e in self.edits {
            let start = (e.at as isize + delta) as usize;
            if p < start {
                break;
            }
            if p < start + e.insert.len() {
                return e.at;
            }
            delta += e.insert.len() as isize - e.remove as isize;
        }
        (p as isize - delta) as usize
    }

    pub fn restore(&self, s: &mut ParsedStatement) {
        let rewritten = LineIndex::new(self.rewritten);
        let start = rewritten.offset(Location::new(s.line, s.column));
        let end = start + s.text.len();
        let (o_start, o_end) = (self.to_original(start), self.to_original(end));
        s.text = self.original[o_start..o_end].trim().to_string();
        let (line, column) = LineIndex::new(self.original).location(o_start);
        s.line = line;
        s.column = column;
    }

    /// Rewrites "Line: l, Column: c" in a parse error to the position as written.
    pub fn error(&self, e: DataFusionError) -> DataFusionError {
        let msg = crate::error::user_message(&e);
        let Some(at) = msg.find("Line: ") else {
            return e;
        };
        let rest = &msg[at + 6..];
        let Some((line, rest)) = rest.split_once(", Column: ") else {
            return e;
        };
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let (Ok(line), Ok(column)) = (line.parse::<u64>(), digits.parse::<u64>()) else {
            return e;
        };
        let p = LineIndex::new(self.rewritten).offset(Location::new(line, column));
        let (line, column) = LineIndex::new(self.original).location(self.to_original(p));
        let fixed = format!(
            "{}Line: {line}, Column: {column}{}",
            &msg[..at],
            &rest[digits.len()..]
        );
        FStoreError::new(crate::error::ErrorKind::of(&e), fixed).into()
    }
}
