//! The evaluator's view of columns: input batches normalised once on arrival
//! ([`ValueArray`], [`normalize_time`]), one entity's events gathered contiguously in time
//! order ([`GroupEvents`]), and the feature columns being built ([`OutputColumn`]).
//!
//! Floats are read as f64, integers and every date/time type as i64, Decimal128 and UInt64
//! as i128, and anything else (strings, binary, booleans, …) in arrow's row format, whose
//! bytes compare in value order. Min/max/last results are converted back to the exact input
//! type on output.

use std::cmp::Ordering;
use std::sync::Arc;

use arrow_schema::DataType;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array, new_null_array,
};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::compute::{CastOptions, cast, cast_with_options};
use datafusion::arrow::datatypes::{Decimal128Type, Float64Type, Int64Type};
use datafusion::arrow::row::{RowConverter, RowParser, Rows, SortField};
use datafusion::arrow::util::display::FormatOptions;
use datafusion::common::{exec_err, internal_err};
use datafusion::error::Result;

use super::spec::ValueKind;

/// One input column of one batch, normalised for the evaluator.
#[derive(Debug)]
pub(crate) enum ValueArray {
    Validity(Option<NullBuffer>),
    F64(ScalarBuffer<f64>, Option<NullBuffer>),
    I64(ScalarBuffer<i64>, Option<NullBuffer>),
    I128(ScalarBuffer<i128>, Option<NullBuffer>),
    Rows(Rows, Option<NullBuffer>),
}

fn strict() -> CastOptions<'static> {
    CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    }
}

impl ValueArray {
    pub fn try_new(
        array: &ArrayRef,
        kind: ValueKind,
        converter: Option<&RowConverter>,
    ) -> Result<Self> {
        let nulls = array.logical_nulls();
        Ok(match kind {
            ValueKind::Validity => ValueArray::Validity(nulls),
            ValueKind::F64 => {
                let a = cast(array, &DataType::Float64)?;
                ValueArray::F64(a.as_primitive::<Float64Type>().values().clone(), nulls)
            }
            ValueKind::I64 => {
                let a = cast_with_options(array, &DataType::Int64, &strict())?;
                ValueArray::I64(a.as_primitive::<Int64Type>().values().clone(), nulls)
            }
            ValueKind::I128 => {
                let a = match array.data_type() {
                    DataType::Decimal128(..) => Arc::clone(array),
                    _ => cast_with_options(array, &DataType::Decimal128(38, 0), &strict())?,
                };
                ValueArray::I128(a.as_primitive::<Decimal128Type>().values().clone(), nulls)
            }
            ValueKind::Rows => {
                let Some(conv) = converter else {
                    return internal_err!("window: no row converter for a row-format column");
                };
                ValueArray::Rows(conv.convert_columns(std::slice::from_ref(array))?, nulls)
            }
        })
    }

    fn nulls(&self) -> Option<&NullBuffer> {
        match self {
            ValueArray::Validity(n)
            | ValueArray::F64(_, n)
            | ValueArray::I64(_, n)
            | ValueArray::I128(_, n)
            | ValueArray::Rows(_, n) => n.as_ref(),
        }
    }

    #[inline]
    pub fn is_valid(&self, r: usize) -> bool {
        self.nulls().is_none_or(|n| n.is_valid(r))
    }

    /// Bytes held beyond what the source batch holds (row encodings, converted copies).
    pub fn extra_size(&self) -> usize {
        match self {
            ValueArray::Rows(rows, _) => rows.size(),
            // Zero-copy views of the batch's own buffers when the type already matches.
            ValueArray::F64(..) | ValueArray::I64(..) | ValueArray::Validity(_) => 0,
            ValueArray::I128(v, _) => v.len() * 16,
        }
    }
}

/// A time column converted to i64 in the common unit (`factor` units per source unit).
/// NULL slots are 0 and marked in the returned null buffer.
pub(crate) fn normalize_time(
    array: &ArrayRef,
    factor: i64,
) -> Result<(ScalarBuffer<i64>, Option<NullBuffer>)> {
    let nulls = array.logical_nulls();
    let a = cast_with_options(array, &DataType::Int64, &strict())?;
    let values = a.as_primitive::<Int64Type>().values().clone();
    if factor == 1 {
        return Ok((values, nulls));
    }
    let mut out = Vec::with_capacity(values.len());
    for (i, v) in values.iter().enumerate() {
        if nulls.as_ref().is_some_and(|n| n.is_null(i)) {
            out.push(0);
            continue;
        }
        match v.checked_mul(factor) {
            Some(x) => out.push(x),
            None => {
                return exec_err!(
                    "window: time value {v} is out of range when converted to a finer unit (×{factor})"
                );
            }
        }
    }
    Ok((ScalarBuffer::from(out), nulls))
}

/// One value column of one entity's events, contiguous in time order.
#[derive(Debug)]
pub(crate) enum Gathered {
    Validity {
        valid: Vec<bool>,
    },
    F64 {
        v: Vec<f64>,
        valid: Vec<bool>,
    },
    I64 {
        v: Vec<i64>,
        valid: Vec<bool>,
    },
    I128 {
        v: Vec<i128>,
        valid: Vec<bool>,
    },
    Rows {
        data: Vec<u8>,
        ends: Vec<usize>,
        valid: Vec<bool>,
    },
}

/// Total order on floats used by min/max: NaN above every number, -0.0 == 0.0.
#[inline]
pub(crate) fn cmp_f64(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

impl Gathered {
    pub fn new(kind: ValueKind) -> Self {
        match kind {
            ValueKind::Validity => Gathered::Validity { valid: Vec::new() },
            ValueKind::F64 => Gathered::F64 {
                v: Vec::new(),
                valid: Vec::new(),
            },
            ValueKind::I64 => Gathered::I64 {
                v: Vec::new(),
                valid: Vec::new(),
            },
            ValueKind::I128 => Gathered::I128 {
                v: Vec::new(),
                valid: Vec::new(),
            },
            ValueKind::Rows => Gathered::Rows {
                data: Vec::new(),
                ends: Vec::new(),
                valid: Vec::new(),
            },
        }
    }

    pub fn clear(&mut self) {
        match self {
            Gathered::Validity { valid } => valid.clear(),
            Gathered::F64 { v, valid } => {
                v.clear();
                valid.clear();
            }
            Gathered::I64 { v, valid } => {
                v.clear();
                valid.clear();
            }
            Gathered::I128 { v, valid } => {
                v.clear();
                valid.clear();
            }
            Gathered::Rows { data, ends, valid } => {
                data.clear();
                ends.clear();
                valid.clear();
            }
        }
    }

    /// Appends row `r` of `src` (which must be of the same kind).
    #[inline]
    pub fn push(&mut self, src: &ValueArray, r: usize) {
        let ok = src.is_valid(r);
        match (self, src) {
            (Gathered::Validity { valid }, _) => valid.push(ok),
            (Gathered::F64 { v, valid }, ValueArray::F64(s, _)) => {
                v.push(s[r]);
                valid.push(ok);
            }
            (Gathered::I64 { v, valid }, ValueArray::I64(s, _)) => {
                v.push(s[r]);
                valid.push(ok);
            }
            (Gathered::I128 { v, valid }, ValueArray::I128(s, _)) => {
                v.push(s[r]);
                valid.push(ok);
            }
            (Gathered::Rows { data, ends, valid }, ValueArray::Rows(rows, _)) => {
                data.extend_from_slice(rows.row(r).data());
                ends.push(data.len());
                valid.push(ok);
            }
            // Kinds are fixed per column at planning time; a mismatch is a bug, and reads as
            // NULL rather than a panic.
            (Gathered::F64 { v, valid }, _) => {
                v.push(0.0);
                valid.push(false);
            }
            (Gathered::I64 { v, valid }, _) => {
                v.push(0);
                valid.push(false);
            }
            (Gathered::I128 { v, valid }, _) => {
                v.push(0);
                valid.push(false);
            }
            (Gathered::Rows { data, ends, valid }, _) => {
                ends.push(data.len());
                valid.push(false);
            }
        }
    }

    #[inline]
    pub fn valid(&self, p: usize) -> bool {
        match self {
            Gathered::Validity { valid }
            | Gathered::F64 { valid, .. }
            | Gathered::I64 { valid, .. }
            | Gathered::I128 { valid, .. }
            | Gathered::Rows { valid, .. } => valid[p],
        }
    }

    /// The value at `p` as f64 (decimals unscaled).
    #[inline]
    pub fn f64_at(&self, p: usize) -> f64 {
        match self {
            Gathered::F64 { v, .. } => v[p],
            Gathered::I64 { v, .. } => v[p] as f64,
            Gathered::I128 { v, .. } => v[p] as f64,
            _ => f64::NAN,
        }
    }

    /// The value at `p` as an exact integer, for integer and decimal columns.
    #[inline]
    pub fn i128_at(&self, p: usize) -> i128 {
        match self {
            Gathered::I64 { v, .. } => v[p] as i128,
            Gathered::I128 { v, .. } => v[p],
            _ => 0,
        }
    }

    #[inline]
    pub fn bytes_at(&self, p: usize) -> &[u8] {
        match self {
            Gathered::Rows { data, ends, .. } => {
                let start = if p == 0 { 0 } else { ends[p - 1] };
                &data[start..ends[p]]
            }
            _ => &[],
        }
    }

    /// Compares the values at `a` and `b`.
    #[inline]
    pub fn cmp(&self, a: usize, b: usize) -> Ordering {
        match self {
            Gathered::F64 { v, .. } => cmp_f64(v[a], v[b]),
            Gathered::I64 { v, .. } => v[a].cmp(&v[b]),
            Gathered::I128 { v, .. } => v[a].cmp(&v[b]),
            Gathered::Rows { .. } => self.bytes_at(a).cmp(self.bytes_at(b)),
            Gathered::Validity { .. } => Ordering::Equal,
        }
    }

    pub fn size(&self) -> usize {
        match self {
            Gathered::Validity { valid } => valid.capacity(),
            Gathered::F64 { v, valid } => v.capacity() * 8 + valid.capacity(),
            Gathered::I64 { v, valid } => v.capacity() * 8 + valid.capacity(),
            Gathered::I128 { v, valid } => v.capacity() * 16 + valid.capacity(),
            Gathered::Rows { data, ends, valid } => {
                data.capacity() + ends.capacity() * 8 + valid.capacity()
            }
        }
    }
}

/// One entity's events in time order: times and one [`Gathered`] per input column.
#[derive(Debug)]
pub(crate) struct GroupEvents {
    pub times: Vec<i64>,
    pub cols: Vec<Gathered>,
}

impl GroupEvents {
    pub fn new(kinds: impl Iterator<Item = ValueKind>) -> Self {
        Self {
            times: Vec::new(),
            cols: kinds.map(Gathered::new).collect(),
        }
    }

    pub fn clear(&mut self) {
        self.times.clear();
        for c in &mut self.cols {
            c.clear();
        }
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn size(&self) -> usize {
        self.times.capacity() * 8 + self.cols.iter().map(Gathered::size).sum::<usize>()
    }
}

/// A feature column being built, in the evaluator's representation.
pub(crate) enum OutputColumn {
    F64(Vec<f64>, Vec<bool>),
    I64(Vec<i64>, Vec<bool>),
    I128(Vec<i128>, Vec<bool>),
    Rows {
        rows: Rows,
        parser: RowParser,
        null_row: Vec<u8>,
        converter: Arc<RowConverter>,
    },
}

impl std::fmt::Debug for OutputColumn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputColumn")
    }
}

/// Which representation a feature column is built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OutputKind {
    F64,
    I64,
    I128,
    Rows,
}

impl OutputColumn {
    pub fn new(
        kind: OutputKind,
        converter: Option<&Arc<RowConverter>>,
        input_type: Option<&DataType>,
    ) -> Result<Self> {
        Ok(match kind {
            OutputKind::F64 => OutputColumn::F64(Vec::new(), Vec::new()),
            OutputKind::I64 => OutputColumn::I64(Vec::new(), Vec::new()),
            OutputKind::I128 => OutputColumn::I128(Vec::new(), Vec::new()),
            OutputKind::Rows => {
                let (Some(conv), Some(dt)) = (converter, input_type) else {
                    return internal_err!("window: row-format output without a converter");
                };
                let null = conv.convert_columns(&[new_null_array(dt, 1)])?;
                OutputColumn::Rows {
                    rows: conv.empty_rows(0, 0),
                    parser: conv.parser(),
                    null_row: null.row(0).data().to_vec(),
                    converter: Arc::clone(conv),
                }
            }
        })
    }

    pub fn push_f64(&mut self, v: Option<f64>, k: usize) {
        if let OutputColumn::F64(vals, valid) = self {
            vals.extend(std::iter::repeat_n(v.unwrap_or(0.0), k));
            valid.extend(std::iter::repeat_n(v.is_some(), k));
        }
    }

    pub fn push_i64(&mut self, v: Option<i64>, k: usize) {
        if let OutputColumn::I64(vals, valid) = self {
            vals.extend(std::iter::repeat_n(v.unwrap_or(0), k));
            valid.extend(std::iter::repeat_n(v.is_some(), k));
        }
    }

    pub fn push_i128(&mut self, v: Option<i128>, k: usize) {
        if let OutputColumn::I128(vals, valid) = self {
            vals.extend(std::iter::repeat_n(v.unwrap_or(0), k));
            valid.extend(std::iter::repeat_n(v.is_some(), k));
        }
    }

    /// Appends `k` NULLs, whatever the representation.
    pub fn push_null(&mut self, k: usize) {
        match self {
            OutputColumn::F64(..) => self.push_f64(None, k),
            OutputColumn::I64(..) => self.push_i64(None, k),
            OutputColumn::I128(..) => self.push_i128(None, k),
            OutputColumn::Rows {
                rows,
                parser,
                null_row,
                ..
            } => {
                for _ in 0..k {
                    rows.push(parser.parse(null_row));
                }
            }
        }
    }

    /// Appends the value at `p` of `g` (an input column of the same kind), `k` times.
    pub fn push_value(&mut self, g: &Gathered, p: usize, k: usize) {
        match (&mut *self, g) {
            (OutputColumn::F64(..), Gathered::F64 { v, .. }) => self.push_f64(Some(v[p]), k),
            (OutputColumn::I64(..), Gathered::I64 { v, .. }) => self.push_i64(Some(v[p]), k),
            (OutputColumn::I128(..), Gathered::I128 { v, .. }) => self.push_i128(Some(v[p]), k),
            (OutputColumn::Rows { rows, parser, .. }, Gathered::Rows { .. }) => {
                let bytes = g.bytes_at(p);
                for _ in 0..k {
                    rows.push(parser.parse(bytes));
                }
            }
            _ => self.push_null(k),
        }
    }

    /// The finished array, of type `target`.
    pub fn finish(self, target: &DataType) -> Result<ArrayRef> {
        let array: ArrayRef = match self {
            OutputColumn::F64(v, valid) => Arc::new(Float64Array::new(
                ScalarBuffer::from(v),
                Some(NullBuffer::from(valid)),
            )),
            OutputColumn::I64(v, valid) => Arc::new(Int64Array::new(
                ScalarBuffer::from(v),
                Some(NullBuffer::from(valid)),
            )),
            OutputColumn::I128(v, valid) => {
                let a = Decimal128Array::new(ScalarBuffer::from(v), Some(NullBuffer::from(valid)));
                match target {
                    DataType::Decimal128(p, s) => Arc::new(a.with_precision_and_scale(*p, *s)?),
                    _ => Arc::new(a.with_precision_and_scale(38, 0)?),
                }
            }
            OutputColumn::Rows {
                rows, converter, ..
            } => {
                let mut arrays = converter.convert_rows(rows.iter())?;
                match arrays.pop() {
                    Some(a) => a,
                    None => return internal_err!("window: row conversion returned no column"),
                }
            }
        };
        if array.data_type() == target {
            Ok(array)
        } else {
            Ok(cast_with_options(&array, target, &strict())?)
        }
    }
}

/// A row converter for a value column in row format.
pub(crate) fn row_converter(dt: &DataType) -> Result<Arc<RowConverter>> {
    Ok(Arc::new(RowConverter::new(vec![SortField::new(
        dt.clone(),
    )])?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::TimeUnit;
    use datafusion::arrow::array::{
        Date32Array, Float32Array, Int32Array, StringArray, TimestampSecondArray,
    };

    fn roundtrip(array: ArrayRef, kind: ValueKind, out: OutputKind) -> ArrayRef {
        let dt = array.data_type().clone();
        let conv = (kind == ValueKind::Rows).then(|| row_converter(&dt).unwrap());
        let va = ValueArray::try_new(&array, kind, conv.as_deref()).unwrap();
        let mut g = Gathered::new(kind);
        for r in 0..array.len() {
            g.push(&va, r);
        }
        let mut o = OutputColumn::new(out, conv.as_ref(), Some(&dt)).unwrap();
        for p in 0..array.len() {
            if g.valid(p) {
                o.push_value(&g, p, 1);
            } else {
                o.push_null(1);
            }
        }
        o.finish(&dt).unwrap()
    }

    #[test]
    fn values_come_back_as_their_exact_type() {
        let cases: Vec<(ArrayRef, ValueKind, OutputKind)> = vec![
            (
                Arc::new(Float32Array::from(vec![Some(1.5), None, Some(-2.0)])),
                ValueKind::F64,
                OutputKind::F64,
            ),
            (
                Arc::new(Int32Array::from(vec![Some(7), None, Some(i32::MIN)])),
                ValueKind::I64,
                OutputKind::I64,
            ),
            (
                Arc::new(Date32Array::from(vec![Some(19_000), None])),
                ValueKind::I64,
                OutputKind::I64,
            ),
            (
                Arc::new(
                    TimestampSecondArray::from(vec![Some(1_700_000_000), None])
                        .with_timezone("Europe/Paris"),
                ),
                ValueKind::I64,
                OutputKind::I64,
            ),
            (
                Arc::new(
                    Decimal128Array::from(vec![Some(12_345), None])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
                ValueKind::I128,
                OutputKind::I128,
            ),
            (
                Arc::new(datafusion::arrow::array::UInt64Array::from(vec![
                    Some(u64::MAX),
                    None,
                ])),
                ValueKind::I128,
                OutputKind::I128,
            ),
            (
                Arc::new(StringArray::from(vec![Some("b"), None, Some("a")])),
                ValueKind::Rows,
                OutputKind::Rows,
            ),
        ];
        for (array, kind, out) in cases {
            let back = roundtrip(Arc::clone(&array), kind, out);
            assert_eq!(&back, &array, "{:?}", array.data_type());
        }
    }

    #[test]
    fn times_scale_to_a_finer_unit_and_overflow_is_an_error() {
        let a: ArrayRef = Arc::new(TimestampSecondArray::from(vec![Some(2), None]));
        let (v, n) = normalize_time(&a, 1_000).unwrap();
        assert_eq!(v[0], 2_000);
        assert!(n.unwrap().is_null(1));
        let big: ArrayRef = Arc::new(TimestampSecondArray::from(vec![i64::MAX / 10]));
        assert!(normalize_time(&big, 1_000).is_err());
        let d: ArrayRef = Arc::new(Date32Array::from(vec![1]));
        assert_eq!(normalize_time(&d, 86_400).unwrap().0[0], 86_400);
        let _ = TimeUnit::Second;
    }
}
