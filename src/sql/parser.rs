//! Parses a SQL text into FStore statements.
//!
//! FStore statements are recognised by their leading words and parsed here with sqlparser's
//! token API; anything else is parsed by DataFusion's `DFParser`, so every DataFusion
//! statement keeps working unchanged. Errors name the statement, the position (line and
//! column) and what was expected.

use datafusion::error::{DataFusionError, Result};
use datafusion::sql::parser::{DFParser, DFParserBuilder};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::ParserError;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use super::FStoreStatement;
use crate::error::FStoreError;

/// A statement, its text as written, and where it starts in the SQL text.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedStatement {
    pub statement: FStoreStatement,
    /// The statement exactly as written (without the `;`): what the registry records and
    /// what a restart re-plans, so nothing the user wrote is lost in re-printing.
    pub text: String,
    /// Line and column (1-based) of the statement's first token.
    pub line: u64,
    pub column: u64,
}

impl ParsedStatement {
    /// The statement's SQL text as written.
    pub fn sql(&self) -> &str {
        &self.text
    }
}

/// Byte offsets of line starts, to turn token locations (line, column in characters) into
/// slices of the source.
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
        if loc.line == 0 {
            return self.sql.len();
        }
        let Some(&start) = self.starts.get(loc.line as usize - 1) else {
            return self.sql.len();
        };
        self.sql[start..]
            .char_indices()
            .nth(loc.column.saturating_sub(1) as usize)
            .map(|(i, _)| start + i)
            .unwrap_or(self.sql.len())
    }
}

/// FStore's parser: a `DFParser` plus FStore's statements.
pub struct FStoreParser<'a> {
    df: DFParser<'a>,
}

/// Words that, after the first word of a statement, still belong to its name
/// (`CREATE OR REPLACE EXTERNAL TABLE`, `SHOW FEATURE GROUPS`, …).
const STATEMENT_WORDS: &[&str] = &[
    "OR",
    "REPLACE",
    "EXTERNAL",
    "TEMPORARY",
    "UNBOUNDED",
    "TABLE",
    "VIEW",
    "FEATURE",
    "GROUP",
    "GROUPS",
    "SET",
    "SETS",
    "EXPECTATION",
    "MONITOR",
    "ALERT",
    "CHANNEL",
    "AB",
    "TEST",
    "USER",
    "ROLE",
    "SCHEMA",
    "FUNCTION",
    "GRANTS",
    "ONLINE",
    "DRIFT",
    "BASELINE",
    "INTO",
    "IF",
    "EXISTS",
];

impl<'a> FStoreParser<'a> {
    /// Parses every statement of `sql` (separated by `;`).
    pub fn parse_sql(sql: &str) -> Result<Vec<ParsedStatement>> {
        let dialect = GenericDialect {};
        let tokens = Tokenizer::new(&dialect, sql)
            .tokenize_with_location()
            .map_err(|e| syntax_error(ParserError::from(e).into()))?;
        let mut parser = FStoreParser {
            df: DFParserBuilder::new(number_placeholders(tokens))
                .build()
                .map_err(syntax_error)?,
        };
        parser.parse_statements(&LineIndex::new(sql))
    }

    fn parse_statements(&mut self, lines: &LineIndex) -> Result<Vec<ParsedStatement>> {
        let mut out = Vec::new();
        loop {
            while self.df.parser.consume_token(&Token::SemiColon) {}
            let start = self.df.parser.peek_token_ref().clone();
            if start.token == Token::EOF {
                return Ok(out);
            }
            let name = self.statement_name();
            let statement = self.parse_statement().map_err(|e| in_statement(&name, e))?;
            let next = self.df.parser.peek_token_ref();
            let text = match &statement {
                // Passwords never travel further than the parser (history, logs, audit).
                FStoreStatement::Access(a) => a.to_string(),
                // Alert channels' URLs and headers are secrets, like passwords.
                FStoreStatement::Monitor(m)
                    if matches!(
                        **m,
                        crate::monitor::statements::MonitorStatement::CreateChannel(_)
                    ) =>
                {
                    m.to_string()
                }
                _ => lines.sql[lines.offset(start.span.start)..lines.offset(next.span.start)]
                    .trim()
                    .to_string(),
            };
            out.push(ParsedStatement {
                statement,
                text,
                line: start.span.start.line,
                column: start.span.start.column,
            });
            let next = self.df.parser.peek_token_ref();
            if next.token != Token::SemiColon && next.token != Token::EOF {
                let found = next.clone();
                return Err(in_statement(&name, expected("';' or end of input", &found)));
            }
        }
    }

    fn parse_statement(&mut self) -> Result<FStoreStatement> {
        use super::feature_group as fg;
        let create_group = if self.peek_words(&["CREATE", "FEATURE", "GROUP"]) {
            Some(false)
        } else if self.peek_words(&["CREATE", "OR", "REPLACE", "FEATURE", "GROUP"]) {
            Some(true)
        } else {
            None
        };
        if let Some(or_replace) = create_group {
            self.advance(if or_replace { 5 } else { 3 });
            let mut w = fg::Words {
                parser: &mut self.df.parser,
            };
            return Ok(FStoreStatement::CreateFeatureGroup(Box::new(
                fg::parse_create(&mut w, or_replace)?,
            )));
        }
        if self.peek_words(&["ALTER", "FEATURE", "GROUP"]) {
            self.advance(3);
            let mut w = fg::Words {
                parser: &mut self.df.parser,
            };
            return Ok(FStoreStatement::AddTransformation(Box::new(
                fg::parse_alter(&mut w)?,
            )));
        }
        if self.peek_words(&["DROP", "FEATURE", "GROUP"]) {
            self.advance(3);
            let mut w = fg::Words {
                parser: &mut self.df.parser,
            };
            let if_exists = w.accept_seq(&["IF", "EXISTS"]);
            let name = w.ident("a feature group name")?;
            return Ok(FStoreStatement::DropFeatureGroup { name, if_exists });
        }
        if self.peek_words(&["DESCRIBE", "FEATURE", "GROUP"]) {
            self.advance(3);
            let mut w = fg::Words {
                parser: &mut self.df.parser,
            };
            let name = w.ident("a feature group name")?;
            return Ok(FStoreStatement::DescribeFeatureGroup { name });
        }
        if self.peek_words(&["COMMENT", "ON", "FEATURE"]) {
            self.advance(3);
            let mut w = fg::Words {
                parser: &mut self.df.parser,
            };
            let (group, feature, comment) = fg::parse_comment(&mut w)?;
            return Ok(FStoreStatement::CommentOnFeature {
                group,
                feature,
                comment,
            });
        }
        if self.peek_words(&["CREATE", "FEATURE", "SET"]) {
            self.advance(3);
            let mut w = fg::Words {
                parser: &mut self.df.parser,
            };
            return Ok(FStoreStatement::CreateFeatureSet(Box::new(
                super::feature_set::parse_create(&mut w)?,
            )));
        }
        if self.peek_words(&["EXPORT", "FEATURE", "SET"]) {
            self.advance(3);
            let mut w = fg::Words {
                parser: &mut self.df.parser,
            };
            return Ok(FStoreStatement::ExportFeatureSet(Box::new(
                super::feature_set::parse_export(&mut w)?,
            )));
        }
        if self.peek_words(&["ALTER", "FEATURE", "SET"]) {
            self.advance(3);
            let mut w = fg::Words {
                parser: &mut self.df.parser,
            };
            return Ok(FStoreStatement::AlterFeatureSet(Box::new(
                super::feature_set::parse_alter(&mut w)?,
            )));
        }
        if self.peek_words(&["REFRESH", "ONLINE", "FEATURE", "SET"]) {
            self.advance(4);
            let mut w = fg::Words {
                parser: &mut self.df.parser,
            };
            return Ok(FStoreStatement::RefreshOnline(Box::new(
                super::feature_set::parse_refresh(&mut w)?,
            )));
        }
        if self.peek_words(&["DESCRIBE", "FEATURE", "SET"]) {
            self.advance(3);
            let mut w = fg::Words {
                parser: &mut self.df.parser,
            };
            let reference = super::feature_set::parse_describe(&mut w)?;
            return Ok(FStoreStatement::DescribeFeatureSet { reference });
        }
        if self.peek_words(&["CREATE", "EXPECTATION"]) {
            self.advance(2);
            let mut w = fg::Words {
                parser: &mut self.df.parser,
            };
            return Ok(FStoreStatement::CreateExpectation(Box::new(
                super::quality::parse_create(&mut w)?,
            )));
        }
        if self.peek_words(&["DROP", "EXPECTATION"]) {
            self.advance(2);
            let mut w = fg::Words {
                parser: &mut self.df.parser,
            };
            return Ok(FStoreStatement::DropExpectation(Box::new(
                super::quality::parse_drop(&mut w)?,
            )));
        }
        if self.peek_words(&["SET", "DRIFT", "BASELINE"]) {
            self.advance(3);
            let mut w = fg::Words {
                parser: &mut self.df.parser,
            };
            return Ok(FStoreStatement::SetDriftBaseline(Box::new(
                super::quality::parse_set_baseline(&mut w)?,
            )));
        }
        if let Some(form) = super::monitor::FORMS.iter().find(|f| self.peek_words(f)) {
            self.advance(form.len());
            let mut w = fg::Words {
                parser: &mut self.df.parser,
            };
            return Ok(FStoreStatement::Monitor(Box::new(super::monitor::parse(
                &mut w, form,
            )?)));
        }
        if let Some(access) = self.parse_access()? {
            return Ok(FStoreStatement::Access(Box::new(access)));
        }
        if self.peek_words(&["SHOW", "FEATURE"]) {
            self.advance(2);
            if self.consume_word("GROUPS") {
                return Ok(FStoreStatement::ShowFeatureGroups);
            }
            if self.consume_word("SETS") {
                return Ok(FStoreStatement::ShowFeatureSets);
            }
            let found = self.df.parser.peek_token_ref().clone();
            return Err(expected("GROUPS or SETS", &found));
        }
        let stmt = self.df.parse_statement()?;
        Ok(FStoreStatement::DataFusion(Box::new(stmt)))
    }

    /// Users, roles and privileges (see `sql::access`), or None for other statements.
    fn parse_access(&mut self) -> Result<Option<super::access::AccessStatement>> {
        use super::access as a;
        use super::feature_group::Words;
        let forms: [(&[&str], u8); 8] = [
            (&["CREATE", "USER"], 0),
            (&["ALTER", "USER"], 1),
            (&["DROP", "USER"], 2),
            (&["CREATE", "ROLE"], 3),
            (&["DROP", "ROLE"], 4),
            (&["GRANT"], 5),
            (&["REVOKE"], 6),
            (&["SHOW", "GRANTS"], 7),
        ];
        let Some((words, form)) = forms.iter().find(|(w, _)| self.peek_words(w)) else {
            return Ok(None);
        };
        self.advance(words.len());
        let mut w = Words {
            parser: &mut self.df.parser,
        };
        Ok(Some(match form {
            0 => a::parse_create_user(&mut w)?,
            1 => a::parse_alter_user(&mut w)?,
            2 => a::parse_drop(&mut w, false)?,
            3 => a::parse_create_role(&mut w)?,
            4 => a::parse_drop(&mut w, true)?,
            5 => a::parse_grant(&mut w, false)?,
            6 => a::parse_grant(&mut w, true)?,
            _ => a::parse_show_grants(&mut w)?,
        }))
    }

    /// The statement's name, from its leading words, for error messages.
    fn statement_name(&self) -> String {
        let mut words = Vec::new();
        for i in 0..6 {
            match &self.df.parser.peek_nth_token_ref(i).token {
                Token::Word(w) if w.quote_style.is_none() => {
                    let up = w.value.to_ascii_uppercase();
                    if i > 0 && !STATEMENT_WORDS.contains(&up.as_str()) {
                        break;
                    }
                    words.push(up);
                    if i == 0
                        && !matches!(
                            words[0].as_str(),
                            "CREATE"
                                | "DROP"
                                | "ALTER"
                                | "SHOW"
                                | "DESCRIBE"
                                | "INSERT"
                                | "REFRESH"
                                | "START"
                                | "STOP"
                                | "EXPORT"
                                | "SET"
                                | "GRANT"
                                | "REVOKE"
                                | "COMMENT"
                        )
                    {
                        break;
                    }
                }
                _ => break,
            }
        }
        if words.is_empty() {
            "SQL".to_string()
        } else {
            words.join(" ")
        }
    }

    fn peek_words(&self, words: &[&str]) -> bool {
        words.iter().enumerate().all(|(i, w)| {
            matches!(&self.df.parser.peek_nth_token_ref(i).token,
                Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
        })
    }

    fn consume_word(&mut self, word: &str) -> bool {
        if self.peek_words(&[word]) {
            self.df.parser.next_token();
            true
        } else {
            false
        }
    }

    fn advance(&mut self, n: usize) {
        for _ in 0..n {
            self.df.parser.next_token();
        }
    }
}

/// Numbers JDBC/ODBC-style `?` placeholders `$1`, `$2`, … in order (restarting after each
/// `;`), the form DataFusion binds. Explicit `$n` placeholders are left alone.
fn number_placeholders(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut n = 0;
    for t in &mut tokens {
        match &t.token {
            Token::SemiColon => n = 0,
            Token::Placeholder(p) if p == "?" => {
                n += 1;
                t.token = Token::Placeholder(format!("${n}"));
            }
            _ => {}
        }
    }
    tokens
}

/// "Expected: X, found: Y at Line: l, Column: c", the wording DataFusion's parser uses.
pub fn expected(what: &str, found: &TokenWithSpan) -> DataFusionError {
    FStoreError::invalid(format!(
        "Expected: {what}, found: {}{}",
        found.token,
        position(found.span.start)
    ))
    .into()
}

fn position(loc: Location) -> String {
    if loc.line == 0 {
        String::new()
    } else {
        format!(" at Line: {}, Column: {}", loc.line, loc.column)
    }
}

/// A sqlparser error as a DataFusion error (so it gets the statement name like the others).
pub fn sql_error(e: ParserError) -> DataFusionError {
    DataFusionError::SQL(Box::new(e), None)
}

fn syntax_error(e: DataFusionError) -> DataFusionError {
    in_statement("SQL", e)
}

/// Prefixes a parse error with the statement it happened in.
fn in_statement(name: &str, e: DataFusionError) -> DataFusionError {
    let msg = crate::error::user_message(&e);
    let msg = msg.strip_prefix("syntax error: ").unwrap_or(&msg);
    FStoreError::invalid(format!("syntax error in {name} statement: {msg}")).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> FStoreStatement {
        let mut v = FStoreParser::parse_sql(sql).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0).statement
    }

    fn err(sql: &str) -> String {
        crate::error::user_message(&FStoreParser::parse_sql(sql).unwrap_err())
    }

    #[test]
    fn fstore_statements_are_recognised_case_insensitively() {
        assert_eq!(
            one("show feature groups"),
            FStoreStatement::ShowFeatureGroups
        );
        assert_eq!(one("SHOW FEATURE SETS;"), FStoreStatement::ShowFeatureSets);
    }

    #[test]
    fn other_statements_go_to_datafusion() {
        assert!(matches!(one("SELECT 1"), FStoreStatement::DataFusion(_)));
        assert!(matches!(
            one("CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/tmp/x'"),
            FStoreStatement::DataFusion(_)
        ));
    }

    #[test]
    fn several_statements_keep_their_positions_and_text() {
        let v =
            FStoreParser::parse_sql("SELECT 1;\n  SHOW FEATURE GROUPS;\nSELECT 'é',\n  2").unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].text, "SELECT 1");
        assert_eq!(v[1].text, "SHOW FEATURE GROUPS");
        assert_eq!(v[2].text, "SELECT 'é',\n  2");
        assert_eq!((v[1].line, v[1].column), (2, 3));
        assert_eq!((v[2].line, v[2].column), (3, 1));
    }

    #[test]
    fn question_marks_become_numbered_placeholders() {
        let v = FStoreParser::parse_sql("SELECT ?, ? + 1; SELECT ?").unwrap();
        assert_eq!(v[0].statement.to_string(), "SELECT $1, $2 + 1");
        assert_eq!(v[1].statement.to_string(), "SELECT $1");
        // The recorded text is what the user wrote.
        assert_eq!(v[0].text, "SELECT ?, ? + 1");
    }

    #[test]
    fn errors_name_statement_position_and_expectation() {
        assert_eq!(
            err("SHOW FEATURE TABLES"),
            "syntax error in SHOW FEATURE statement: Expected: GROUPS or SETS, found: TABLES at Line: 1, Column: 14"
        );
        let e = err("SELECT 1;\nCREATE TABLE (a int)");
        assert!(
            e.starts_with("syntax error in CREATE TABLE statement: Expected"),
            "{e}"
        );
        assert!(e.contains("Line: 2"), "{e}");
        let e = err("SHOW FEATURE GROUPS extra");
        assert!(
            e.contains("Expected: ';' or end of input, found: extra"),
            "{e}"
        );
    }
}
