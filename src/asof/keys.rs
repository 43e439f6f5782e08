//! Join keys → dense group numbers, for one partition of an AS-OF join.
//!
//! The right side assigns a number to every distinct key ([`KeyGroups::assign`]); the left side
//! looks its keys up ([`KeyGroups::find`]). A row with a NULL key gets no number: it never
//! matches. Three paths, fastest first: one integer column (its values, as `i64`), one string
//! or binary column (its bytes, no copy), anything else (arrow's row format, which encodes any
//! number and type of columns into comparable bytes).

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::HashMap;
use datafusion::error::Result;

/// How keys are turned into hash map keys.
#[derive(Debug)]
enum Encoding {
    /// No keys: every row is in group 0.
    Nothing,
    /// One integer column that fits `i64`.
    Integer,
    /// One string or binary column.
    Bytes,
    /// Anything else.
    Rows(RowConverter),
}

/// A key as the hash maps see it.
enum Key<'a> {
    Integer(i64),
    Bytes(&'a [u8]),
}

/// The rows of `keys` where every key is non-NULL (None: all are).
fn keys_valid(keys: &[ArrayRef]) -> Option<NullBuffer> {
    keys.iter().fold(None, |acc, k| {
        NullBuffer::union(acc.as_ref(), k.logical_nulls().as_ref())
    })
}

/// Byte slices of a string or binary array (None for NULL).
fn byte_values(a: &dyn Array) -> Vec<Option<&[u8]>> {
    match a.data_type() {
        DataType::Utf8 => a
            .as_string::<i32>()
            .iter()
            .map(|v| v.map(str::as_bytes))
            .collect(),
        DataType::LargeUtf8 => a
            .as_string::<i64>()
            .iter()
            .map(|v| v.map(str::as_bytes))
            .collect(),
        DataType::Utf8View => a
            .as_string_view()
            .iter()
            .map(|v| v.map(str::as_bytes))
            .collect(),
        DataType::Binary => a.as_binary::<i32>().iter().collect(),
        DataType::LargeBinary => a.as_binary::<i64>().iter().collect(),
        DataType::BinaryView => a.as_binary_view().iter().collect(),
        other => unreachable!("{other} is not a byte type"),
    }
}

fn is_bytes(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Binary
            | DataType::LargeBinary
            | DataType::BinaryView
    )
}

/// A key of at most 31 bytes, stored in the hash map itself: comparing two of them touches no
/// other memory (a `Vec<u8>` key costs a cache miss per probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct InlineKey {
    len: u8,
    bytes: [u8; 31],
}

impl InlineKey {
    fn new(b: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; 31];
        bytes.get_mut(..b.len())?.copy_from_slice(b);
        Some(Self {
            len: b.len() as u8,
            bytes,
        })
    }
}

/// Dense numbers for the distinct keys of one partition's right side.
#[derive(Debug)]
pub struct KeyGroups {
    encoding: Encoding,
    integers: HashMap<i64, u32>,
    short: HashMap<InlineKey, u32>,
    bytes: HashMap<Vec<u8>, u32>,
    /// The number of distinct keys (groups are `0..len`).
    len: u32,
    key_bytes: usize,
}

impl KeyGroups {
    /// For keys of these types (the same on both sides).
    pub fn new(types: &[DataType]) -> Result<Self> {
        let encoding = match types {
            [] => Encoding::Nothing,
            [t] if t.is_integer() && *t != DataType::UInt64 => Encoding::Integer,
            [t] if is_bytes(t) => Encoding::Bytes,
            _ => Encoding::Rows(RowConverter::new(
                types.iter().map(|t| SortField::new(t.clone())).collect(),
            )?),
        };
        Ok(Self {
            encoding,
            integers: HashMap::default(),
            short: HashMap::default(),
            bytes: HashMap::default(),
            len: 0,
            key_bytes: 0,
        })
    }

    /// The number of groups.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held (for memory accounting).
    pub fn memory_bytes(&self) -> usize {
        self.integers.capacity() * 16
            + self.short.capacity() * 40
            + self.bytes.capacity() * 32
            + self.key_bytes
    }

    /// Calls `f(row, key)` for every row; `key` is None when a key is NULL.
    fn each_key(&self, keys: &[ArrayRef], mut f: impl FnMut(usize, Option<Key<'_>>)) -> Result<()> {
        let n = keys.first().map_or(0, |k| k.len());
        match &self.encoding {
            Encoding::Nothing => {}
            Encoding::Integer => {
                let values = cast(&keys[0], &DataType::Int64)?;
                let values = values.as_primitive::<Int64Type>();
                for (i, v) in values.iter().enumerate() {
                    f(i, v.map(Key::Integer));
                }
            }
            Encoding::Bytes => {
                for (i, v) in byte_values(keys[0].as_ref()).into_iter().enumerate() {
                    f(i, v.map(Key::Bytes));
                }
            }
            Encoding::Rows(converter) => {
                let valid = keys_valid(keys);
                let rows = converter.convert_columns(keys)?;
                for i in 0..n {
                    let usable = valid.as_ref().is_none_or(|v| v.is_valid(i));
                    f(i, usable.then(|| Key::Bytes(rows.row(i).data())));
                }
            }
        }
        Ok(())
    }

    /// The group of every row of `keys` (`n` rows), numbering keys not seen before.
    pub fn assign(&mut self, keys: &[ArrayRef], n: usize) -> Result<Vec<Option<u32>>> {
        if matches!(self.encoding, Encoding::Nothing) {
            if n > 0 {
                self.len = 1;
            }
            return Ok(vec![Some(0); n]);
        }
        let mut out = vec![None; n];
        let (mut integers, mut short, mut bytes) = (
            std::mem::take(&mut self.integers),
            std::mem::take(&mut self.short),
            std::mem::take(&mut self.bytes),
        );
        let (mut len, mut key_bytes) = (self.len, self.key_bytes);
        self.each_key(keys, |i, key| {
            out[i] = key.map(|key| match key {
                Key::Integer(v) => *integers.entry(v).or_insert_with(|| {
                    len += 1;
                    len - 1
                }),
                Key::Bytes(b) => match InlineKey::new(b) {
                    Some(k) => *short.entry(k).or_insert_with(|| {
                        len += 1;
                        len - 1
                    }),
                    None => *bytes.entry_ref(b).or_insert_with(|| {
                        len += 1;
                        key_bytes += b.len();
                        len - 1
                    }),
                },
            })
        })?;
        self.integers = integers;
        self.short = short;
        self.bytes = bytes;
        self.len = len;
        self.key_bytes = key_bytes;
        Ok(out)
    }

    /// The group of every row of `keys` (`n` rows); None for NULL or unknown keys.
    pub fn find(&self, keys: &[ArrayRef], n: usize) -> Result<Vec<Option<u32>>> {
        if matches!(self.encoding, Encoding::Nothing) {
            return Ok(vec![(self.len > 0).then_some(0); n]);
        }
        let mut out = vec![None; n];
        self.each_key(keys, |i, key| {
            out[i] = key.and_then(|key| match key {
                Key::Integer(v) => self.integers.get(&v).copied(),
                Key::Bytes(b) => match InlineKey::new(b) {
                    Some(k) => self.short.get(&k).copied(),
                    None => self.bytes.get(b).copied(),
                },
            })
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int32Array, Int64Array, StringArray};

    use super::*;

    #[test]
    fn every_path_numbers_keys_and_skips_nulls() {
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![Some(7), None, Some(3), Some(7)]));
        let strings: ArrayRef = Arc::new(StringArray::from(vec![
            Some("a"),
            Some("b"),
            None,
            Some("a"),
        ]));
        let other: ArrayRef = Arc::new(Int64Array::from(vec![1, 1, 2, 1]));
        for keys in [vec![ints], vec![Arc::clone(&strings)], vec![strings, other]] {
            let types: Vec<DataType> = keys.iter().map(|k| k.data_type().clone()).collect();
            let mut groups = KeyGroups::new(&types).unwrap();
            let assigned = groups.assign(&keys, 4).unwrap();
            assert_eq!(assigned.iter().filter(|g| g.is_none()).count(), 1);
            assert_eq!(assigned[0], assigned[3]);
            assert_eq!(groups.len(), 2);
            assert_eq!(groups.find(&keys, 4).unwrap(), assigned);
        }
    }

    #[test]
    fn long_and_short_byte_keys_are_told_apart() {
        let long = "x".repeat(40);
        let a: ArrayRef = Arc::new(StringArray::from(vec![
            long.as_str(),
            "x",
            long.as_str(),
            "",
        ]));
        let mut groups = KeyGroups::new(&[DataType::Utf8]).unwrap();
        let g = groups.assign(std::slice::from_ref(&a), 4).unwrap();
        assert_eq!(g, vec![Some(0), Some(1), Some(0), Some(2)]);
        assert_eq!(groups.find(&[a], 4).unwrap(), g);
    }

    #[test]
    fn no_keys_is_one_group() {
        let mut groups = KeyGroups::new(&[]).unwrap();
        assert_eq!(groups.find(&[], 2).unwrap(), vec![None, None]);
        assert_eq!(groups.assign(&[], 2).unwrap(), vec![Some(0), Some(0)]);
        assert_eq!(groups.find(&[], 1).unwrap(), vec![Some(0)]);
    }
}
