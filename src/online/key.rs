//! Entity keys as lookups give them and stores index them.

use datafusion::common::ScalarValue;

/// One entity: one value per key column. Keys are compared by their canonical text (see
/// [`EntityKey::encoded`]) so that a lookup written `'42'` finds an integer key 42, and a
/// key found in Redis (text) matches one found in memory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntityKey(pub Vec<String>);

/// Separates the parts of a composite key in [`EntityKey::encoded`] (ASCII unit separator,
/// which never appears in a key value's text form written by users).
pub const KEY_SEPARATOR: char = '\u{1f}';

impl EntityKey {
    /// The key of the given values; None if one is NULL (a NULL key matches nothing).
    pub fn from_scalars(values: &[ScalarValue]) -> Option<EntityKey> {
        values
            .iter()
            .map(|v| {
                if v.is_null() {
                    None
                } else {
                    Some(scalar_text(v))
                }
            })
            .collect::<Option<Vec<_>>>()
            .map(EntityKey)
    }

    /// One string for the whole tuple (index keys, Redis key suffixes).
    pub fn encoded(&self) -> String {
        let mut s = String::new();
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                s.push(KEY_SEPARATOR);
            }
            s.push_str(p);
        }
        s
    }
}

/// The canonical text of a key value: strings as they are, other values as Arrow displays
/// them (integers in decimal, dates `YYYY-MM-DD`).
pub fn scalar_text(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        ScalarValue::Dictionary(_, inner) => scalar_text(inner),
        other => other.to_string(),
    }
}

/// The encoded key (see [`EntityKey::encoded`]) of row `row` of the key columns `columns`;
/// None when a part is NULL (such a row can never be looked up).
pub fn row_key(columns: &[datafusion::arrow::array::ArrayRef], row: usize) -> Option<String> {
    columns
        .iter()
        .map(|c| array_text(c.as_ref(), row))
        .collect::<Option<Vec<_>>>()
        .map(|parts| EntityKey(parts).encoded())
}

/// The canonical text of row `row` of an Arrow array (see [`scalar_text`]); None for NULL.
pub fn array_text(array: &dyn datafusion::arrow::array::Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    ScalarValue::try_from_array(array, row)
        .ok()
        .map(|v| scalar_text(&v))
}
