//! The online hot path: statements that are one point lookup of `online_features`, answered
//! straight from the online store, without optimizing or executing a DataFusion plan.
//!
//! - [`recognize`] finds `SELECT <columns> FROM online_features('set')
//!   WHERE key = ? [AND key2 = …]` in an unoptimized plan, each key compared with a
//!   parameter or a literal;
//! - [`run`] answers it from the store;
//! - [`parameterize`] turns the literals of a plain statement's `key = <literal>` filters
//!   into parameters, so that a plain statement is planned once per shape (not once per
//!   key) and then served like a prepared one.
//!
//! Every front takes this path through the statement executor (`fstore sql`, the `.slt`
//! suite, plain and prepared statements over Flight SQL), so it is tested like any other
//! statement, and equal to the general plan's answer by test.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::LogicalPlan;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr as SqlExpr, SetExpr, Statement as SqlStatement, Value,
};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow_schema::SchemaRef;
use datafusion::arrow::array::RecordBatch;
use datafusion::error::Result;

use crate::engine::Engine;
use crate::error::FStoreError;
use crate::online::EntityKey;
use crate::online::table_function::{OnlineFeaturesTable, OnlineTarget};

/// Lookups answered by [`run`] since the process started (`fstore_online_direct_lookups_total`).
static DIRECT_LOOKUPS: AtomicU64 = AtomicU64::new(0);

/// How many lookups [`run`] answered in this process.
pub fn direct_lookups() -> u64 {
    DIRECT_LOOKUPS.load(Ordering::Relaxed)
}

/// Whether `sql` may be a plain lookup at all (names `online_features`, has no placeholders
/// of its own): a test cheap enough for every statement.
pub fn may_be_literal_lookup(sql: &str) -> bool {
    let function = crate::online::table_function::F;
    !sql.contains(['?', '$'])
        && sql
            .as_bytes()
            .windows(function.len())
            .any(|w| w.eq_ignore_ascii_case(function.as_bytes()))
}

/// Answers `lookup` from the online store, once per bound parameter row of `rows` (one row,
/// empty when the statement has no parameters; a client binding a whole column of keys gets
/// every entity in one round trip): the rows of the entities found, in the order their keys
/// were bound (each entity once). The result has the statement's `schema`.
pub async fn run(
    engine: &Engine,
    lookup: &DirectLookup,
    rows: &[Vec<ScalarValue>],
    schema: &SchemaRef,
) -> Result<RecordBatch> {
    let mut keys: Vec<EntityKey> = Vec::with_capacity(rows.len());
    let mut seen =
        std::collections::HashSet::with_capacity(if rows.len() > 1 { rows.len() } else { 0 });
    for params in rows {
        if let Some(key) = lookup.key(params)?
            && (rows.len() == 1 || seen.insert(key.clone()))
        {
            keys.push(key);
        }
    }
    let online = crate::online::service_of(engine)?;
    let rows = crate::online::table_function::lookup(
        &online,
        &lookup.target,
        &keys,
        false,
        Some(&lookup.projection),
        schema,
    )
    .await?;
    DIRECT_LOOKUPS.fetch_add(1, Ordering::Relaxed);
    Ok(rows)
}

/// `SELECT <columns> FROM online_features('set') WHERE key = ? [AND key2 = ?]` (each key
/// compared with a parameter or a literal): executed as a direct store lookup, without
/// optimizing or executing a DataFusion plan (the hot path of online serving).
#[derive(Debug)]
pub struct DirectLookup {
    pub target: OnlineTarget,
    /// For each key column, where its value comes from.
    pub keys: Vec<KeyValue>,
    /// The selected columns, as indexes of the target's schema.
    pub projection: Vec<usize>,
}

/// The value a fast-path lookup compares a key column with.
#[derive(Debug)]
pub enum KeyValue {
    /// The parameter at this index (`$1` is 0).
    Param(usize),
    /// A literal written in the statement.
    Literal(ScalarValue),
}

impl DirectLookup {
    /// The entity the statement asks for, given the bound parameter values; None when a key
    /// is NULL (which matches nothing).
    pub fn key(&self, params: &[ScalarValue]) -> Result<Option<EntityKey>> {
        let values = self
            .keys
            .iter()
            .map(|k| match k {
                KeyValue::Literal(v) => Ok(v.clone()),
                KeyValue::Param(i) => params.get(*i).cloned().ok_or_else(|| {
                    FStoreError::invalid(
                        "the statement has parameters: bind values before executing it",
                    )
                    .into()
                }),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EntityKey::from_scalars(&values))
    }
}

/// Recognises an [`DirectLookup`] in an (unoptimized) prepared plan.
pub fn recognize(plan: &LogicalPlan) -> Option<DirectLookup> {
    use datafusion::logical_expr::{BinaryExpr, Expr, Operator, utils::split_conjunction};
    let LogicalPlan::Projection(p) = plan else {
        return None;
    };
    let LogicalPlan::Filter(f) = p.input.as_ref() else {
        return None;
    };
    let scan = match f.input.as_ref() {
        LogicalPlan::TableScan(s) => s,
        LogicalPlan::SubqueryAlias(a) => match a.input.as_ref() {
            LogicalPlan::TableScan(s) => s,
            _ => return None,
        },
        _ => return None,
    };
    if !scan.filters.is_empty() || scan.fetch.is_some() {
        return None;
    }
    let provider = datafusion::datasource::source_as_provider(&scan.source).ok()?;
    let table = provider.downcast_ref::<OnlineFeaturesTable>()?;
    if table.fixed.is_some() {
        return None;
    }
    let target = &table.target;
    let mut keys: Vec<Option<KeyValue>> = (0..target.key_columns.len()).map(|_| None).collect();
    for c in split_conjunction(&f.predicate) {
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = c else {
            return None;
        };
        if *op != Operator::Eq {
            return None;
        }
        let (column, value) = match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), v) | (v, Expr::Column(c)) => (c, v),
            _ => return None,
        };
        let k = target.key_columns.iter().position(|k| *k == column.name)?;
        let value = match value {
            Expr::Placeholder(p) => KeyValue::Param(
                p.id.strip_prefix('$')?
                    .parse::<usize>()
                    .ok()?
                    .checked_sub(1)?,
            ),
            // A NULL literal (which matches nothing) is left to the general path.
            Expr::Literal(v, _) if !v.is_null() => KeyValue::Literal(v.clone()),
            _ => return None,
        };
        if keys[k].replace(value).is_some() {
            return None;
        }
    }
    let keys = keys.into_iter().collect::<Option<Vec<_>>>()?;
    let projection = p
        .expr
        .iter()
        .map(|e| match e {
            Expr::Column(c) => target.schema.index_of(&c.name).ok(),
            _ => None,
        })
        .collect::<Option<Vec<_>>>()?;
    Some(DirectLookup {
        target: target.clone(),
        keys,
        projection,
    })
}

/// Replaces the literals of `key = <literal>` comparisons in the top-level AND chain of a
/// query's WHERE by parameters `$1`, `$2`, … (in order); returns their values, typed as
/// DataFusion types SQL literals (integers as Int64, then UInt64, other numbers as Float64,
/// strings as Utf8). None when there is no such literal, or the statement is not a simple
/// SELECT. The rewritten statement may still not be a lookup: the caller plans it and asks
/// [`recognize`].
pub fn parameterize(stmt: &mut DFStatement) -> Option<Vec<ScalarValue>> {
    let DFStatement::Statement(s) = stmt else {
        return None;
    };
    let SqlStatement::Query(query) = s.as_mut() else {
        return None;
    };
    let SetExpr::Select(select) = query.body.as_mut() else {
        return None;
    };
    let mut values = Vec::new();
    replace_literals(select.selection.as_mut()?, &mut values);
    (!values.is_empty()).then_some(values)
}

fn replace_literals(e: &mut SqlExpr, values: &mut Vec<ScalarValue>) {
    let SqlExpr::BinaryOp { left, op, right } = e else {
        return;
    };
    match op {
        BinaryOperator::And => {
            replace_literals(left, values);
            replace_literals(right, values);
        }
        BinaryOperator::Eq => {
            for side in [left, right] {
                if let SqlExpr::Value(v) = side.as_mut()
                    && let Some(scalar) = literal_value(&v.value)
                {
                    values.push(scalar);
                    v.value = Value::Placeholder(format!("${}", values.len()));
                }
            }
        }
        _ => {}
    }
}

/// A SQL literal as DataFusion's planner types it; None for other values (NULL, booleans,
/// placeholders, …), which stay in the statement.
fn literal_value(v: &Value) -> Option<ScalarValue> {
    match v {
        Value::Number(n, _) => {
            let n = n.to_string();
            if let Ok(i) = n.parse::<i64>() {
                Some(ScalarValue::Int64(Some(i)))
            } else if let Ok(u) = n.parse::<u64>() {
                Some(ScalarValue::UInt64(Some(u)))
            } else {
                n.parse::<f64>().ok().map(|f| ScalarValue::Float64(Some(f)))
            }
        }
        Value::SingleQuotedString(s) => Some(ScalarValue::Utf8(Some(s.clone()))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::parser::DFParser;

    fn rewrite(sql: &str) -> (String, Option<Vec<ScalarValue>>) {
        let mut stmt = DFParser::parse_sql(sql).unwrap().pop_front().unwrap();
        let values = parameterize(&mut stmt);
        (stmt.to_string(), values)
    }

    #[test]
    fn key_literals_become_parameters() {
        let (sql, values) =
            rewrite("SELECT * FROM online_features('s') WHERE customer_id = 42 AND 'x' = region");
        assert_eq!(
            sql,
            "SELECT * FROM online_features('s') WHERE customer_id = $1 AND $2 = region"
        );
        assert_eq!(
            values.unwrap(),
            vec![
                ScalarValue::Int64(Some(42)),
                ScalarValue::Utf8(Some("x".into()))
            ]
        );
        // The same shape for every key: one plan serves them all.
        assert_eq!(
            rewrite("SELECT * FROM online_features('s') WHERE customer_id = 7").0,
            rewrite("SELECT * FROM online_features('s') WHERE customer_id = 123456").0
        );
        let (_, values) = rewrite("SELECT * FROM t WHERE k = 18446744073709551615 AND f = 1.5");
        assert_eq!(
            values.unwrap(),
            vec![
                ScalarValue::UInt64(Some(u64::MAX)),
                ScalarValue::Float64(Some(1.5))
            ]
        );
    }

    #[test]
    fn other_statements_are_left_alone() {
        for sql in [
            "SELECT * FROM online_features('s')",
            "SELECT * FROM online_features('s') WHERE customer_id = NULL",
            "SELECT * FROM online_features('s') WHERE customer_id > 3",
            "SELECT * FROM online_features('s') WHERE customer_id IN (1, 2)",
            "SELECT * FROM online_features('s') WHERE customer_id = 1 OR customer_id = 2",
            "INSERT INTO t VALUES (1)",
        ] {
            let (rewritten, values) = rewrite(sql);
            assert_eq!(values, None, "{sql}");
            assert_eq!(rewritten, sql);
        }
    }
}
