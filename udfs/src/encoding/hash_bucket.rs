//! `hash_bucket(value, n)`: the hashing trick — a stable bucket in `[0, n)` for any value.
//!
//! The hash is part of the contract: a model trained on buckets computed today must see the
//! same buckets when served next year, from another machine, or from Python. So it is defined
//! here byte by byte and never delegated to a library whose hash may change.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type, UInt64Type};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature,
};
use datafusion_macros::user_doc;

use crate::arguments::check_arity;

const NAME: &str = "hash_bucket";

/// FStore's stable 64-bit hash: FNV-1a 64 followed by MurmurHash3's fmix64 finalizer.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// `hash_bucket(value, n)`.
#[user_doc(
    doc_section(label = "FStore Encoding Functions"),
    description = "Hashes `value` into one of `n` buckets: an Int64 in [0, n). The hash is \
         FStore's own and never changes across platforms or versions: FNV-1a 64 over the value's \
         bytes, then MurmurHash3's 64-bit finalizer (fmix64) so that every bit of the input \
         reaches the low bits, then the remainder modulo `n`. The bytes are the UTF-8 bytes of a \
         string, the bytes of a binary value, and the 8 little-endian bytes of an integer widened \
         to 64 bits (signed integers as i64, unsigned as u64, so 7 hashes the same in every \
         integer type; booleans as the integers 0 and 1). In Python: `h = 0xcbf29ce484222325; for \
         b in data: h = ((h ^ b) * 0x100000001b3) % 2**64`, then `h ^= h >> 33; h = h * \
         0xff51afd7ed558ccd % 2**64; h ^= h >> 33; h = h * 0xc4ceb9fe1a85ec53 % 2**64; h ^= h >> \
         33; bucket = h % n`. NULL `value` or `n` gives NULL; `n` <= 0 is an error. Other types \
         (floats, dates, decimals) must be cast to a string or an integer first.",
    syntax_example = "hash_bucket(value, n)",
    sql_example = r#"```sql
> SELECT hash_bucket('customer_123', 1000) AS bucket;
+--------+
| bucket |
+--------+
| 462    |
+--------+
```"#,
    argument(
        name = "value",
        description = "A string, binary, integer or boolean value."
    ),
    argument(name = "n", description = "The number of buckets, a positive integer.")
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HashBucket {
    signature: Signature,
}

impl Default for HashBucket {
    fn default() -> Self {
        Self::new()
    }
}

impl HashBucket {
    pub fn new() -> Self {
        Self {
            signature: crate::arguments::signature(&[
                &[DataType::Utf8, DataType::Int64],
                &[DataType::Int64, DataType::Int64],
            ]),
        }
    }
}

fn is_hashable(t: &DataType) -> bool {
    t.is_integer()
        || matches!(
            t,
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::FixedSizeBinary(_)
                | DataType::Boolean
                | DataType::Null
        )
}

/// The hash of every row of `values` (NULL rows give `None`).
fn hashes(values: &ArrayRef) -> Result<Vec<Option<u64>>> {
    let of = |valid: bool, h: u64| valid.then_some(h);
    let n = values.len();
    let out: Vec<Option<u64>> = match values.data_type() {
        DataType::Utf8 => values
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(|s| stable_hash(s.as_bytes())))
            .collect(),
        DataType::LargeUtf8 => values
            .as_string::<i64>()
            .iter()
            .map(|v| v.map(|s| stable_hash(s.as_bytes())))
            .collect(),
        DataType::Utf8View => values
            .as_string_view()
            .iter()
            .map(|v| v.map(|s| stable_hash(s.as_bytes())))
            .collect(),
        DataType::Binary => values
            .as_binary::<i32>()
            .iter()
            .map(|v| v.map(stable_hash))
            .collect(),
        DataType::LargeBinary => values
            .as_binary::<i64>()
            .iter()
            .map(|v| v.map(stable_hash))
            .collect(),
        DataType::BinaryView => values
            .as_binary_view()
            .iter()
            .map(|v| v.map(stable_hash))
            .collect(),
        DataType::FixedSizeBinary(_) => {
            let a = values.as_fixed_size_binary();
            (0..n)
                .map(|i| of(a.is_valid(i), stable_hash(a.value(i))))
                .collect()
        }
        DataType::Boolean => values
            .as_boolean()
            .iter()
            .map(|v| v.map(|b| stable_hash(&i64::from(b).to_le_bytes())))
            .collect(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            let wide = cast(values, &DataType::UInt64)?;
            wide.as_primitive::<UInt64Type>()
                .iter()
                .map(|v| v.map(|v| stable_hash(&v.to_le_bytes())))
                .collect()
        }
        t if t.is_integer() => {
            let wide = cast(values, &DataType::Int64)?;
            wide.as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(|v| stable_hash(&v.to_le_bytes())))
                .collect()
        }
        DataType::Null => vec![None; n],
        t => return exec_err!("{NAME}: cannot hash {t}"),
    };
    Ok(out)
}

fn check_buckets(n: i64) -> Result<u64> {
    if n <= 0 {
        return exec_err!("{NAME}: n must be positive, got {n}");
    }
    Ok(n as u64)
}

impl ScalarUDFImpl for HashBucket {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(arg_types.to_vec())
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        check_arity(NAME, "value, n", arg_types.len(), 2, 2)?;
        let value = match &arg_types[0] {
            DataType::Dictionary(_, value) => value.as_ref(),
            value => value,
        };
        if !is_hashable(value) {
            return plan_err!(
                "{NAME}: value must be a string, binary, integer or boolean, got {} (cast it first, e.g. CAST(x AS VARCHAR))",
                arg_types[0]
            );
        }
        if !(arg_types[1].is_integer() || arg_types[1].is_null()) {
            return plan_err!("{NAME}: n must be an integer, got {}", arg_types[1]);
        }
        Ok(DataType::Int64)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let t = self.return_type(&types)?;
        if let Some(Some(n)) = args.scalar_arguments.get(1)
            && let ScalarValue::Int64(Some(n)) = n.cast_to(&DataType::Int64)?
            && n <= 0
        {
            return plan_err!("{NAME}: n must be positive, got {n}");
        }
        Ok(Arc::new(Field::new(self.name(), t, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let all_scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let rows = if all_scalar { 1 } else { args.number_rows };
        let values = args.args[0].to_array(rows)?;
        let values = match values.data_type() {
            DataType::Dictionary(_, value_type) => cast(&values, value_type)?,
            _ => values,
        };
        let hashes = hashes(&values)?;
        let n = match &args.args[1] {
            ColumnarValue::Scalar(n) => ColumnarValue::Scalar(n.cast_to(&DataType::Int64)?),
            ColumnarValue::Array(n) => ColumnarValue::Array(cast(n, &DataType::Int64)?),
        };
        let buckets: Int64Array = match &n {
            ColumnarValue::Scalar(ScalarValue::Int64(None)) => Int64Array::new_null(rows),
            ColumnarValue::Scalar(ScalarValue::Int64(Some(n))) => {
                let n = check_buckets(*n)?;
                hashes.iter().map(|h| h.map(|h| (h % n) as i64)).collect()
            }
            ColumnarValue::Scalar(other) => {
                return exec_err!("{NAME}: n must be an integer, got {}", other.data_type());
            }
            ColumnarValue::Array(n) => {
                let n = n.as_primitive::<Int64Type>();
                hashes
                    .iter()
                    .zip(n.iter())
                    .map(|(h, n)| match (h, n) {
                        (Some(h), Some(n)) => Ok(Some((h % check_buckets(n)?) as i64)),
                        _ => Ok(None),
                    })
                    .collect::<Result<_>>()?
            }
        };
        let buckets: ArrayRef = Arc::new(buckets);
        if all_scalar {
            Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &buckets, 0,
            )?))
        } else {
            Ok(ColumnarValue::Array(buckets))
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{invoke, strings};
    use datafusion::arrow::array::{Int32Array, UInt8Array};

    fn bucket(out: ColumnarValue) -> Vec<Option<i64>> {
        match out {
            ColumnarValue::Array(a) => a.as_primitive::<Int64Type>().iter().collect(),
            ColumnarValue::Scalar(ScalarValue::Int64(v)) => vec![v],
            other => panic!("unexpected {other:?}"),
        }
    }

    fn n(v: i64) -> ColumnarValue {
        ColumnarValue::Scalar(ScalarValue::Int64(Some(v)))
    }

    #[test]
    fn the_hash_is_pinned() {
        // FNV-1a 64 of "" is its offset basis, of "a" the published test vector.
        let fnv_a: u64 = 0xaf63_dc4c_8601_ec8c;
        let mut h = fnv_a;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        assert_eq!(stable_hash(b"a"), h);
        // Values pinned forever: changing them breaks every model trained on buckets.
        assert_eq!(stable_hash(b"customer_123"), 0x64eb_4fda_f261_7f5e);
        assert_eq!(stable_hash(&7i64.to_le_bytes()), 0xc211_2d51_b876_518d);
    }

    #[test]
    fn buckets_are_in_range_and_null_stays_null() {
        let out = invoke(
            &HashBucket::new(),
            vec![strings(&[Some("a"), Some("b"), None, Some("")]), n(10)],
        )
        .unwrap();
        let b = bucket(out);
        assert!(b[2].is_none());
        for v in [b[0], b[1], b[3]] {
            let v = v.unwrap();
            assert!((0..10).contains(&v));
        }
    }

    #[test]
    fn an_integer_hashes_the_same_in_every_integer_type() {
        let a = invoke(
            &HashBucket::new(),
            vec![
                ColumnarValue::Array(Arc::new(Int32Array::from(vec![7]))),
                n(1000),
            ],
        )
        .unwrap();
        let b = invoke(
            &HashBucket::new(),
            vec![
                ColumnarValue::Array(Arc::new(UInt8Array::from(vec![7]))),
                n(1000),
            ],
        )
        .unwrap();
        assert_eq!(bucket(a), bucket(b));
    }

    #[test]
    fn buckets_spread_evenly() {
        let keys: Vec<String> = (0..20_000).map(|i| format!("customer_{i}")).collect();
        let mut counts = [0usize; 8];
        for k in &keys {
            counts[(stable_hash(k.as_bytes()) % 8) as usize] += 1;
        }
        for c in counts {
            assert!((2_300..2_700).contains(&c), "{counts:?}");
        }
    }

    #[test]
    fn non_positive_n_is_an_error() {
        let e = invoke(&HashBucket::new(), vec![strings(&[Some("a")]), n(0)]).unwrap_err();
        assert!(e.to_string().contains("n must be positive, got 0"), "{e}");
    }
}
