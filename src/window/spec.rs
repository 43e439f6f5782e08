//! What a window feature is ([`WindowAgg`], [`WindowSpec`]), its text form
//! (`'mean(amount) 30 days AS amount_mean_30d'`), and how a list of specs is checked and
//! resolved against an input schema into the plain data the evaluator runs on ([`Layout`]).
//!
//! Every user mistake (unknown column, unsupported type, window <= 0, duplicate output name)
//! is found here, at planning time, with a message naming the feature.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::plan_err;
use datafusion::error::Result;

use super::duration::{format_duration, parse_duration};

/// The aggregate of a window feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowAgg {
    /// Mean of the non-NULL values (Float64).
    Mean,
    /// Sum of the non-NULL values: Int64 for integers, Float64 for floats,
    /// Decimal128(38, s) for Decimal128(p, s).
    Sum,
    /// Number of non-NULL values (Int64, 0 for an empty window).
    Count,
    /// Number of rows (Int64, 0 for an empty window); takes no input column.
    CountStar,
    /// Smallest non-NULL value (input type; NaN sorts above every number).
    Min,
    /// Largest non-NULL value (input type; NaN sorts above every number).
    Max,
    /// Sample standard deviation (Float64; NULL for fewer than two values).
    Stddev,
    /// Number of distinct non-NULL values (Int64).
    CountDistinct,
    /// Value of the latest event in the window whose value is not NULL (input type). Among
    /// events at the same time, the last one in input order wins.
    Last,
}

impl WindowAgg {
    pub const ALL: [WindowAgg; 9] = [
        WindowAgg::Mean,
        WindowAgg::Sum,
        WindowAgg::Count,
        WindowAgg::CountStar,
        WindowAgg::Min,
        WindowAgg::Max,
        WindowAgg::Stddev,
        WindowAgg::CountDistinct,
        WindowAgg::Last,
    ];

    /// The name used in spec text and default output names.
    pub fn name(self) -> &'static str {
        match self {
            WindowAgg::Mean => "mean",
            WindowAgg::Sum => "sum",
            WindowAgg::Count | WindowAgg::CountStar => "count",
            WindowAgg::Min => "min",
            WindowAgg::Max => "max",
            WindowAgg::Stddev => "stddev",
            WindowAgg::CountDistinct => "count_distinct",
            WindowAgg::Last => "last",
        }
    }

    /// Looks an aggregate up by name (case-insensitive; `avg`, `stddev_samp`, `last_value` are
    /// accepted as aliases). `count` is [`WindowAgg::Count`]; `count(*)` is decided by its
    /// argument.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "mean" | "avg" => WindowAgg::Mean,
            "sum" => WindowAgg::Sum,
            "count" => WindowAgg::Count,
            "count_star" => WindowAgg::CountStar,
            "min" => WindowAgg::Min,
            "max" => WindowAgg::Max,
            "stddev" | "stddev_samp" => WindowAgg::Stddev,
            "count_distinct" => WindowAgg::CountDistinct,
            "last" | "last_value" => WindowAgg::Last,
            _ => return None,
        })
    }

    fn is_numeric_only(self) -> bool {
        matches!(self, WindowAgg::Mean | WindowAgg::Sum | WindowAgg::Stddev)
    }
}

/// One window feature: `agg(input)` over the window `(t - window, t]`, named `output`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WindowSpec {
    pub agg: WindowAgg,
    /// The value column; `None` for [`WindowAgg::CountStar`].
    pub input: Option<String>,
    pub window: Duration,
    pub output: String,
}

impl WindowSpec {
    pub fn new(
        agg: WindowAgg,
        input: Option<&str>,
        window: Duration,
        output: impl Into<String>,
    ) -> Self {
        Self {
            agg,
            input: input.map(str::to_string),
            window,
            output: output.into(),
        }
    }

    /// Parses `agg(column) duration [AS name]`, e.g. `mean(amount) 30 days AS m30`,
    /// `count(*) 7d`, `count(DISTINCT product_id) 1 week AS products_7d`. Without `AS`, the
    /// name is `<agg>_<column>_<duration>` (`count_rows_7d` for `count(*)`).
    pub fn parse(text: &str) -> Result<Self> {
        let usage = || {
            format!(
                "cannot parse window feature '{text}': expected 'agg(column) duration [AS name]', e.g. 'mean(amount) 30 days AS amount_mean_30d'"
            )
        };
        let t = text.trim();
        let (Some(open), Some(close)) = (t.find('('), t.find(')')) else {
            return plan_err!("{}", usage());
        };
        if close < open {
            return plan_err!("{}", usage());
        }
        let name = t[..open].trim();
        let arg = t[open + 1..close].trim();
        let rest = t[close + 1..].trim();
        let mut agg = match WindowAgg::from_name(name) {
            Some(a) => a,
            None => {
                return plan_err!(
                    "unknown window aggregate '{name}' in '{text}'; expected one of mean, sum, count, min, max, stddev, count_distinct, last"
                );
            }
        };
        let mut column = arg;
        if let Some(c) = strip_keyword(arg, "distinct") {
            if agg != WindowAgg::Count {
                return plan_err!("{}", usage());
            }
            agg = WindowAgg::CountDistinct;
            column = c;
        }
        let input = if column == "*" {
            if agg != WindowAgg::Count {
                return plan_err!("{}(*) is not an aggregate; only count(*) takes *", name);
            }
            agg = WindowAgg::CountStar;
            None
        } else if column.is_empty() {
            return plan_err!("{}", usage());
        } else {
            Some(unquote(column))
        };
        // Split "duration AS name" at the last standalone AS.
        let lower = rest.to_ascii_lowercase();
        let (dur_text, output) = match lower.rfind(" as ") {
            Some(i) => (&rest[..i], Some(unquote(rest[i + 4..].trim()))),
            None => (rest, None),
        };
        if dur_text.trim().is_empty() {
            return plan_err!("{}", usage());
        }
        let window = parse_duration(dur_text)?;
        let output = match output {
            Some(o) if !o.is_empty() => o,
            Some(_) => return plan_err!("{}", usage()),
            None => format!(
                "{}_{}_{}",
                agg.name(),
                input.as_deref().unwrap_or("rows"),
                format_duration(window)
            ),
        };
        Ok(Self {
            agg,
            input,
            window,
            output,
        })
    }
}

impl fmt::Display for WindowSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arg = match (&self.input, self.agg) {
            (_, WindowAgg::CountStar) => "*".to_string(),
            (Some(c), WindowAgg::CountDistinct) => format!("DISTINCT {c}"),
            (Some(c), _) => c.clone(),
            (None, _) => String::new(),
        };
        write!(
            f,
            "{}({arg}) {} AS {}",
            self.agg.name(),
            format_duration(self.window),
            self.output
        )
    }
}

fn strip_keyword<'a>(s: &'a str, kw: &str) -> Option<&'a str> {
    let head = s.get(..kw.len())?;
    let rest = &s[kw.len()..];
    (head.eq_ignore_ascii_case(kw) && rest.starts_with(char::is_whitespace)).then(|| rest.trim())
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s[1..s.len() - 1].replace("\"\"", "\"")
    } else {
        s.to_string()
    }
}

/// How the evaluator holds a value column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueKind {
    /// Only NULL-ness is needed (the column is used by `count` alone).
    Validity,
    /// Floats, as f64.
    F64,
    /// Integers that fit i64, and every date/time type (by its integer value).
    I64,
    /// Decimal128 (unscaled) and UInt64, as i128.
    I128,
    /// Anything else (strings, binary, booleans, …), in arrow's row format, whose byte order
    /// is the value order.
    Rows,
}

/// A distinct value column the specs read.
#[derive(Debug, Clone)]
pub(crate) struct InputColumn {
    pub index: usize,
    pub data_type: DataType,
    pub kind: ValueKind,
}

/// One spec, resolved.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedSpec {
    pub agg: WindowAgg,
    /// Index into [`Layout::columns`].
    pub column: Option<usize>,
    /// Index into [`Layout::windows`].
    pub window: usize,
    pub field: FieldRef,
}

/// The specs resolved against an input schema: plain data for the evaluator.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub columns: Vec<InputColumn>,
    /// Distinct window lengths, in time units (see [`TimeScale`]).
    pub windows: Vec<i64>,
    pub specs: Vec<ResolvedSpec>,
}

impl Layout {
    pub fn fields(&self) -> impl Iterator<Item = FieldRef> + '_ {
        self.specs.iter().map(|s| Arc::clone(&s.field))
    }
}

/// Finds a column by exact name, or else by a unique case-insensitive match.
pub(crate) fn find_column(what: &str, schema: &Schema, name: &str) -> Result<usize> {
    if let Ok(i) = schema.index_of(name) {
        return Ok(i);
    }
    let matches: Vec<usize> = schema
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| f.name().eq_ignore_ascii_case(name))
        .map(|(i, _)| i)
        .collect();
    if matches.len() == 1 {
        return Ok(matches[0]);
    }
    let names: Vec<&str> = schema
        .fields()
        .iter()
        .filter(|f| !f.name().starts_with("__fstore"))
        .map(|f| f.name().as_str())
        .collect();
    plan_err!(
        "{what}: unknown column '{name}' (columns: {})",
        names.join(", ")
    )
}

fn value_kind(dt: &DataType) -> Option<ValueKind> {
    use DataType::*;
    Some(match dt {
        Float16 | Float32 | Float64 => ValueKind::F64,
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 => ValueKind::I64,
        Date32 | Date64 | Timestamp(..) | Time32(_) | Time64(_) | Duration(_) => ValueKind::I64,
        UInt64 | Decimal128(..) => ValueKind::I128,
        other => {
            if RowConverter::supports_fields(&[SortField::new(other.clone())]) {
                ValueKind::Rows
            } else {
                return None;
            }
        }
    })
}

fn is_summable(dt: &DataType) -> bool {
    dt.is_floating() || dt.is_integer() || matches!(dt, DataType::Decimal128(..))
}

/// The output type of `agg` over a column of type `input` (`None` for `count(*)`), or why the
/// evaluator cannot compute it — the checks [`resolve`] makes, for callers that define
/// features before any plan exists (feature groups).
pub fn feature_type(
    agg: WindowAgg,
    input: Option<&DataType>,
) -> std::result::Result<DataType, String> {
    match (agg, input) {
        (WindowAgg::CountStar, None) => {}
        (WindowAgg::CountStar, Some(_)) => return Err("count(*) takes no input column".into()),
        (a, None) => return Err(format!("{}() needs an input column", a.name())),
        (a, Some(dt)) => {
            if a.is_numeric_only() && !is_summable(dt) {
                return Err(format!("{}() needs a numeric column, got {dt}", a.name()));
            }
            if a != WindowAgg::Count && value_kind(dt).is_none() {
                return Err(format!("{}() is not supported for type {dt}", a.name()));
            }
        }
    }
    Ok(output_type(agg, input))
}

fn output_type(agg: WindowAgg, input: Option<&DataType>) -> DataType {
    match (agg, input) {
        (WindowAgg::Mean | WindowAgg::Stddev, _) => DataType::Float64,
        (WindowAgg::Count | WindowAgg::CountStar | WindowAgg::CountDistinct, _) => DataType::Int64,
        (WindowAgg::Sum, Some(DataType::Decimal128(_, s))) => DataType::Decimal128(38, *s),
        (WindowAgg::Sum, Some(t)) if t.is_floating() => DataType::Float64,
        (WindowAgg::Sum, _) => DataType::Int64,
        (WindowAgg::Min | WindowAgg::Max | WindowAgg::Last, Some(t)) => t.clone(),
        (WindowAgg::Min | WindowAgg::Max | WindowAgg::Last, None) => DataType::Null,
    }
}

/// Checks `specs` against `schema` and resolves them; `scale` converts window lengths into
/// time units. `reserved` are names the outputs must not take (the input's columns).
pub(crate) fn resolve(
    what: &str,
    schema: &Schema,
    specs: &[WindowSpec],
    scale: &TimeScale,
    reserved: &[&str],
) -> Result<Layout> {
    if specs.is_empty() {
        return plan_err!("{what}: at least one window feature is required");
    }
    let mut columns: Vec<InputColumn> = Vec::new();
    let mut windows: Vec<i64> = Vec::new();
    let mut resolved = Vec::with_capacity(specs.len());
    let mut names: Vec<&str> = Vec::new();
    for spec in specs {
        if spec.output.is_empty() {
            return plan_err!("{what}: window feature '{spec}' has an empty output name");
        }
        if reserved.contains(&spec.output.as_str()) || names.contains(&spec.output.as_str()) {
            return plan_err!(
                "{what}: duplicate output column '{}'; give each window feature its own name (AS …)",
                spec.output
            );
        }
        names.push(&spec.output);
        if spec.window.is_zero() {
            return plan_err!(
                "{what}: the window of '{}' must be positive, got {}",
                spec.output,
                format_duration(spec.window)
            );
        }
        let column = match (spec.agg, &spec.input) {
            (WindowAgg::CountStar, None) => None,
            (WindowAgg::CountStar, Some(_)) => {
                return plan_err!(
                    "{what}: count(*) takes no input column (feature '{}')",
                    spec.output
                );
            }
            (agg, None) => {
                return plan_err!(
                    "{what}: {}() needs an input column (feature '{}')",
                    agg.name(),
                    spec.output
                );
            }
            (agg, Some(name)) => {
                let index = find_column(what, schema, name)?;
                let field = schema.field(index);
                let dt = field.data_type();
                if agg.is_numeric_only() && !is_summable(dt) {
                    return plan_err!(
                        "{what}: {}({}) needs a numeric column, but '{}' is {dt}",
                        agg.name(),
                        field.name(),
                        field.name()
                    );
                }
                let kind = if agg == WindowAgg::Count {
                    ValueKind::Validity
                } else {
                    match value_kind(dt) {
                        Some(k) => k,
                        None => {
                            return plan_err!(
                                "{what}: {}({}) is not supported for type {dt}",
                                agg.name(),
                                field.name()
                            );
                        }
                    }
                };
                match columns.iter_mut().position(|c| c.index == index) {
                    Some(i) => {
                        if columns[i].kind == ValueKind::Validity {
                            columns[i].kind = kind;
                        }
                        Some(i)
                    }
                    None => {
                        columns.push(InputColumn {
                            index,
                            data_type: dt.clone(),
                            kind,
                        });
                        Some(columns.len() - 1)
                    }
                }
            }
        };
        let units = scale.window_units(spec.window);
        let window = match windows.iter().position(|w| *w == units) {
            Some(i) => i,
            None => {
                windows.push(units);
                windows.len() - 1
            }
        };
        let input_type = column.map(|c| &columns[c].data_type);
        let field = Arc::new(Field::new(
            &spec.output,
            output_type(spec.agg, input_type),
            true,
        ));
        resolved.push(ResolvedSpec {
            agg: spec.agg,
            column,
            window,
            field,
        });
    }
    Ok(Layout {
        columns,
        windows,
        specs: resolved,
    })
}

/// `schema`'s first `n` fields followed by `extra`.
pub(crate) fn extend_schema(
    schema: &Schema,
    n: usize,
    extra: impl Iterator<Item = FieldRef>,
) -> SchemaRef {
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .take(n)
        .cloned()
        .chain(extra)
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// The kind of a time column: its unit in nanoseconds, or integer (whose unit is a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeKind {
    pub unit_ns: i64,
    pub integer: bool,
}

pub(crate) fn time_kind(what: &str, name: &str, dt: &DataType) -> Result<TimeKind> {
    let unit_ns = match dt {
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1_000,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => 1,
        DataType::Date32 => 86_400_000_000_000,
        DataType::Date64 => 1_000_000,
        t if t.is_integer() => {
            return Ok(TimeKind {
                unit_ns: 1_000_000_000,
                integer: true,
            });
        }
        other => {
            return plan_err!(
                "{what}: time column '{name}' has type {other}; expected a timestamp, date or integer column"
            );
        }
    };
    Ok(TimeKind {
        unit_ns,
        integer: false,
    })
}

/// How times are compared: every time column is converted to one common unit (the finest of
/// the columns involved) by an integer factor, and window lengths are rounded *up* to whole
/// units — exact, because all times are whole units: `s > t - w` ⇔ `s > t - ceil(w)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeScale {
    pub unit_ns: i64,
}

impl TimeScale {
    pub fn of(kinds: &[TimeKind]) -> Self {
        let unit_ns = kinds.iter().map(|k| k.unit_ns).min().unwrap_or(1);
        Self { unit_ns }
    }

    /// The factor converting values of `kind` to this scale's unit.
    pub fn factor(&self, kind: TimeKind) -> i64 {
        kind.unit_ns / self.unit_ns
    }

    pub fn window_units(&self, window: Duration) -> i64 {
        let unit = self.unit_ns as u128;
        let units = window.as_nanos().div_ceil(unit);
        i64::try_from(units).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_text_parses() {
        let s = WindowSpec::parse("mean(amount) 30 days AS m30").unwrap();
        assert_eq!(
            s,
            WindowSpec::new(
                WindowAgg::Mean,
                Some("amount"),
                Duration::from_secs(30 * 86_400),
                "m30"
            )
        );
        let s = WindowSpec::parse("count(*) 7d").unwrap();
        assert_eq!(s.agg, WindowAgg::CountStar);
        assert_eq!(s.output, "count_rows_7d");
        let s = WindowSpec::parse("COUNT(distinct product_id) 1 week as p").unwrap();
        assert_eq!(s.agg, WindowAgg::CountDistinct);
        assert_eq!(s.input.as_deref(), Some("product_id"));
        assert_eq!(s.output, "p");
        let s = WindowSpec::parse("last(\"Odd Col\") 1h AS \"x y\"").unwrap();
        assert_eq!(s.input.as_deref(), Some("Odd Col"));
        assert_eq!(s.output, "x y");
        assert_eq!(
            WindowSpec::parse("avg(a) 2h").unwrap().to_string(),
            "mean(a) 2h AS mean_a_2h"
        );
    }

    #[test]
    fn bad_spec_text_is_explained() {
        let e = WindowSpec::parse("median(a) 1d").unwrap_err().to_string();
        assert!(e.contains("unknown window aggregate 'median'"), "{e}");
        let e = WindowSpec::parse("mean a 1d").unwrap_err().to_string();
        assert!(e.contains("cannot parse window feature"), "{e}");
        let e = WindowSpec::parse("sum(*) 1d").unwrap_err().to_string();
        assert!(e.contains("only count(*) takes *"), "{e}");
        let e = WindowSpec::parse("mean(a)").unwrap_err().to_string();
        assert!(e.contains("cannot parse window feature"), "{e}");
    }

    #[test]
    fn windows_round_up_to_whole_units() {
        let s = TimeScale::of(&[TimeKind {
            unit_ns: 1_000_000_000,
            integer: false,
        }]);
        assert_eq!(s.window_units(Duration::from_millis(1_500)), 2);
        assert_eq!(s.window_units(Duration::from_secs(3)), 3);
        let us = TimeScale::of(&[
            TimeKind {
                unit_ns: 1_000,
                integer: false,
            },
            TimeKind {
                unit_ns: 86_400_000_000_000,
                integer: false,
            },
        ]);
        assert_eq!(us.unit_ns, 1_000);
        assert_eq!(
            us.factor(TimeKind {
                unit_ns: 86_400_000_000_000,
                integer: false
            }),
            86_400_000_000
        );
    }
}
