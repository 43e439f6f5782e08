//! `feature_correlation(source [, method])`: the correlation of every pair of numeric features.
//!
//! Long format, one row per unordered pair `(feature_a, feature_b)` with `feature_a` before
//! `feature_b` in column order (no diagonal, no mirrored pair): `p` numeric features give
//! `p (p − 1) / 2` rows, in column order. Numeric means integers, floats, decimals and
//! booleans (0/1); other columns are left out. For a feature group the features are the
//! group's features (not its entity keys, timestamp or CREATED column).
//!
//! - NULLs: pairwise deletion — a row counts for a pair when both values are present.
//! - `correlation` is NULL when, over the counted rows, either feature is constant (or there
//!   are fewer than two rows). NaN in the data gives NaN, as in NumPy.
//! - `pearson` (default): one streaming pass; per pair only counts, means and co-moments
//!   (see `moments`), so memory does not grow with the rows.
//! - `spearman`: Pearson's r of the average ranks (ties get their midrank, as
//!   `scipy.stats.spearmanr`). Ranking needs every value: the numeric columns are held in
//!   memory, 16 bytes per value (the value and its rank, charged to the memory pool), plus
//!   8 bytes per row of scratch while one column is ranked. A pair whose NULLs differ from a
//!   column's is re-ranked over its own rows (pairwise deletion, as pandas'
//!   `DataFrame.corr(method='spearman')`).

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::compute::concat;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::error::Result;

use super::exec::{Accumulate, Analysis};
use super::moments::{CoMoments, Moments};
use super::rank::average_ranks;
use super::source::{Source, SourceArg};
use super::{Selection, SelectionTable, as_f64, is_numeric};
use crate::args::string_arg;
use crate::args::{at_most, identify_call};
use crate::error::FStoreError;
use crate::registry::Registry;

pub const FUNCTION: &str = "feature_correlation";
const METHODS: &str = "pearson, spearman";

/// Pearson's or Spearman's correlation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Pearson,
    Spearman,
}

impl Method {
    pub(super) fn parse(text: &str) -> Result<Method> {
        match text.trim().to_ascii_lowercase().as_str() {
            "pearson" => Ok(Method::Pearson),
            "spearman" => Ok(Method::Spearman),
            _ => Err(FStoreError::invalid(format!(
                "{FUNCTION}: unknown method '{text}'; valid methods: {METHODS}"
            ))
            .into()),
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Method::Pearson => "pearson",
            Method::Spearman => "spearman",
        }
    }
}

/// The result columns.
pub fn schema() -> Schema {
    Schema::new(vec![
        Field::new("feature_a", DataType::Utf8, false),
        Field::new("feature_b", DataType::Utf8, false),
        Field::new("correlation", DataType::Float64, true),
    ])
}

/// `feature_correlation(source [, method])`
#[derive(Debug)]
pub struct FeatureCorrelation {
    registry: Arc<Registry>,
}

impl FeatureCorrelation {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self { registry }
    }
}

impl TableFunctionImpl for FeatureCorrelation {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        at_most(exprs, 2, FUNCTION, "table [, method]")?;
        let source = SourceArg::parse(exprs, FUNCTION)?;
        let method = match string_arg(exprs, 1, FUNCTION, "method")? {
            Some(m) => Method::parse(&m)?,
            None => Method::Pearson,
        };
        Ok(Arc::new(SelectionTable::new(
            identify_call(&schema(), FUNCTION, exprs),
            Arc::clone(&self.registry),
            Arc::new(CorrelationCall { source, method }),
            exprs,
        )))
    }
}

#[derive(Debug)]
struct CorrelationCall {
    source: SourceArg,
    method: Method,
}

impl Selection for CorrelationCall {
    fn function(&self) -> &'static str {
        FUNCTION
    }

    fn source(&self) -> &SourceArg {
        &self.source
    }

    fn prepare(&self, source: &Source) -> Result<(Vec<usize>, Arc<dyn Analysis>)> {
        let fields = source.plan.schema().fields();
        let columns: Vec<usize> = source
            .candidates
            .iter()
            .copied()
            .filter(|&i| is_numeric(fields[i].data_type()))
            .collect();
        if columns.len() < 2 {
            let found: Vec<&str> = columns.iter().map(|&i| fields[i].name().as_str()).collect();
            return Err(FStoreError::invalid(format!(
                "{FUNCTION}: no usable features in {}: it needs at least two numeric features, found {}{}",
                self.source.label(),
                found.len(),
                if found.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", found.join(", "))
                }
            ))
            .into());
        }
        let names = columns.iter().map(|&i| fields[i].name().clone()).collect();
        Ok((
            columns,
            Arc::new(Correlation {
                names,
                method: self.method,
            }),
        ))
    }
}

/// The analysis: the correlation of every pair of the input's columns.
#[derive(Debug)]
pub(super) struct Correlation {
    pub names: Vec<String>,
    pub method: Method,
}

impl Analysis for Correlation {
    fn describe(&self) -> String {
        format!(
            "{FUNCTION}(method={}, features=[{}])",
            self.method.name(),
            self.names.join(", ")
        )
    }

    fn start(&self) -> Result<Box<dyn Accumulate>> {
        let p = self.names.len();
        Ok(match self.method {
            Method::Pearson => Box::new(PearsonPairs {
                names: self.names.clone(),
                pairs: vec![CoMoments::default(); p * (p - 1) / 2],
            }),
            Method::Spearman => Box::new(SpearmanPairs {
                names: self.names.clone(),
                columns: vec![Vec::new(); p],
            }),
        })
    }
}

/// The pairs `(i, j)`, `i < j`, in row-major order.
fn pairs(p: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..p).flat_map(move |i| (i + 1..p).map(move |j| (i, j)))
}

fn result(
    schema: SchemaRef,
    names: &[String],
    correlations: impl Iterator<Item = Option<f64>>,
) -> Result<RecordBatch> {
    let p = names.len();
    let a = StringArray::from(pairs(p).map(|(i, _)| names[i].as_str()).collect::<Vec<_>>());
    let b = StringArray::from(pairs(p).map(|(_, j)| names[j].as_str()).collect::<Vec<_>>());
    let r: Float64Array = correlations.collect();
    Ok(RecordBatch::try_new(
        schema,
        vec![Arc::new(a), Arc::new(b), Arc::new(r)],
    )?)
}

struct PearsonPairs {
    names: Vec<String>,
    pairs: Vec<CoMoments>,
}

impl Accumulate for PearsonPairs {
    fn update(&mut self, batch: &RecordBatch) -> Result<usize> {
        let columns = batch
            .columns()
            .iter()
            .map(as_f64)
            .collect::<Result<Vec<_>>>()?;
        // Columns without NULLs: their moments serve every pair of two such columns.
        let moments: Vec<Option<Moments>> = columns
            .iter()
            .map(|c| (c.null_count() == 0).then(|| Moments::of(c)))
            .collect();
        for (k, (i, j)) in pairs(columns.len()).enumerate() {
            let known = match (&moments[i], &moments[j]) {
                (Some(a), Some(b)) => Some((a, b)),
                _ => None,
            };
            self.pairs[k].merge(&CoMoments::of(&columns[i], &columns[j], known));
        }
        Ok(0)
    }

    fn finish(self: Box<Self>, schema: SchemaRef) -> Result<RecordBatch> {
        result(
            schema,
            &self.names,
            self.pairs.iter().map(CoMoments::pearson),
        )
    }
}

struct SpearmanPairs {
    names: Vec<String>,
    /// Every batch of every column, as Float64.
    columns: Vec<Vec<ArrayRef>>,
}

impl Accumulate for SpearmanPairs {
    fn update(&mut self, batch: &RecordBatch) -> Result<usize> {
        for (kept, column) in self.columns.iter_mut().zip(batch.columns()) {
            kept.push(Arc::new(as_f64(column)?) as ArrayRef);
        }
        // The values, and the ranks they will get.
        Ok(batch.num_rows() * batch.num_columns() * 16)
    }

    fn finish(self: Box<Self>, schema: SchemaRef) -> Result<RecordBatch> {
        let SpearmanPairs { names, columns } = *self;
        let mut ranked = Vec::with_capacity(columns.len());
        // Column by column, so a column's batches are freed once it is one array.
        for chunks in columns {
            let refs: Vec<&dyn Array> = chunks.iter().map(|a| a.as_ref()).collect();
            let values = if refs.is_empty() {
                Float64Array::from(Vec::<f64>::new())
            } else {
                as_f64(&concat(&refs)?)?
            };
            ranked.push(Ranked::new(values));
        }
        let p = ranked.len();
        let correlations: Vec<Option<f64>> = pairs(p)
            .map(|(i, j)| spearman(&ranked[i], &ranked[j]))
            .collect();
        result(schema, &names, correlations.into_iter())
    }
}

/// A column with the average rank of each present value among the column's present values.
struct Ranked {
    values: Float64Array,
    ranks: Float64Array,
    present: usize,
    has_nan: bool,
}

impl Ranked {
    fn new(values: Float64Array) -> Self {
        let present_rows: Vec<usize> = (0..values.len()).filter(|&i| values.is_valid(i)).collect();
        let present_values: Vec<f64> = present_rows.iter().map(|&i| values.value(i)).collect();
        let has_nan = present_values.iter().any(|v| v.is_nan());
        let mut ranks = vec![0.0; values.len()];
        for (&row, rank) in present_rows.iter().zip(average_ranks(&present_values)) {
            ranks[row] = rank;
        }
        let ranks = Float64Array::new(ranks.into(), values.nulls().cloned());
        Self {
            present: present_rows.len(),
            values,
            ranks,
            has_nan,
        }
    }
}

/// Spearman's rho of two ranked columns over the rows where both are present.
fn spearman(a: &Ranked, b: &Ranked) -> Option<f64> {
    if a.values.null_count() == 0 && b.values.null_count() == 0 {
        if a.has_nan || b.has_nan {
            return (!a.values.is_empty()).then_some(f64::NAN);
        }
        return CoMoments::of(&a.ranks, &b.ranks, None).pearson();
    }
    let rows: Vec<usize> = (0..a.values.len())
        .filter(|&i| a.values.is_valid(i) && b.values.is_valid(i))
        .collect();
    let ranks_over = |c: &Ranked| -> Option<Float64Array> {
        let values: Vec<f64> = rows.iter().map(|&i| c.values.value(i)).collect();
        if values.iter().any(|v| v.is_nan()) {
            return None;
        }
        Some(if rows.len() == c.present {
            rows.iter().map(|&i| c.ranks.value(i)).collect()
        } else {
            Float64Array::from(average_ranks(&values))
        })
    };
    match (ranks_over(a), ranks_over(b)) {
        (Some(ra), Some(rb)) => CoMoments::of(&ra, &rb, None).pearson(),
        _ => Some(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranked(v: &[Option<f64>]) -> Ranked {
        Ranked::new(Float64Array::from(v.to_vec()))
    }

    #[test]
    fn spearman_is_one_for_a_monotone_relation_with_ties() {
        let a = ranked(&[Some(1.0), Some(2.0), Some(2.0), Some(10.0)]);
        let b = ranked(&[Some(1.0), Some(4.0), Some(4.0), Some(1000.0)]);
        assert!((spearman(&a, &b).unwrap() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn spearman_reranks_over_the_rows_both_have() {
        // Without the NULL row, a = (1, 2, 3) and b = (3, 2, 1): rho = -1, although the
        // dropped row would have changed a's ranks.
        let a = ranked(&[Some(1.0), Some(2.0), Some(-5.0), Some(3.0)]);
        let b = ranked(&[Some(3.0), Some(2.0), None, Some(1.0)]);
        assert!((spearman(&a, &b).unwrap() + 1.0).abs() < 1e-15);
    }

    #[test]
    fn pairs_are_in_column_order_without_diagonal() {
        assert_eq!(pairs(3).collect::<Vec<_>>(), vec![(0, 1), (0, 2), (1, 2)]);
        assert_eq!(pairs(1).count(), 0);
    }
}
