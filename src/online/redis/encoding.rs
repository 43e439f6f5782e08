//! How stored cells are encoded in the hashes: text when a cast round-trips, Arrow IPC
//! otherwise.

use super::*;

impl Encoded {
    pub(super) fn encoding(&self) -> Encoding {
        match self {
            Encoded::Text(_) => Encoding::Text,
            Encoded::Ipc(_) => Encoding::Ipc,
        }
    }

    pub(super) fn value(&self, row: usize) -> Option<&[u8]> {
        match self {
            Encoded::Text(a) => (!a.is_null(row)).then(|| a.value(row).as_bytes()),
            Encoded::Ipc(v) => v[row].as_deref(),
        }
    }
}

/// Types whose text form is tried (and kept when it round-trips exactly).
pub(super) fn text_candidate(dt: &DataType) -> bool {
    use DataType::*;
    matches!(
        dt,
        Boolean
            | Int8
            | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
            | Float16
            | Float32
            | Float64
            | Utf8
            | LargeUtf8
            | Utf8View
            | Date32
            | Date64
            | Time32(_)
            | Time64(_)
            | Timestamp(..)
            | Decimal32(..)
            | Decimal64(..)
            | Decimal128(..)
            | Decimal256(..)
    )
}

/// The column as text, if casting it to Utf8 and back gives exactly the column.
pub(super) fn text_encode(column: &ArrayRef) -> Option<StringArray> {
    let dt = column.data_type();
    if !text_candidate(dt)
        || !can_cast_types(dt, &DataType::Utf8)
        || !can_cast_types(&DataType::Utf8, dt)
    {
        return None;
    }
    let text = cast(column, &DataType::Utf8).ok()?;
    let back = cast(&text, dt).ok()?;
    if back.as_ref() != column.as_ref() {
        return None;
    }
    Some(text.as_string::<i32>().clone())
}

pub(super) fn ipc_encode(field: &Field, column: &ArrayRef) -> Result<Vec<Option<Vec<u8>>>> {
    let schema = Arc::new(Schema::new(vec![field.clone()]));
    let nulls = column.logical_nulls();
    (0..column.len())
        .map(|row| {
            if nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                return Ok(None);
            }
            let batch = RecordBatch::try_new(schema.clone(), vec![column.slice(row, 1)])?;
            let mut writer = StreamWriter::try_new(Vec::new(), &schema)?;
            writer.write(&batch)?;
            writer.finish()?;
            Ok(Some(writer.into_inner()?))
        })
        .collect::<std::result::Result<_, datafusion::arrow::error::ArrowError>>()
        .map_err(|e| {
            FStoreError::new(
                ErrorKind::Internal,
                format!("cannot encode column {} for Redis: {e}", field.name()),
            )
        })
}

pub(super) fn ipc_decode(bytes: &[u8], field: &Field) -> std::result::Result<ArrayRef, String> {
    let mut reader = StreamReader::try_new(Cursor::new(bytes), None).map_err(|e| e.to_string())?;
    let batch = reader
        .next()
        .ok_or("no batch")?
        .map_err(|e| e.to_string())?;
    if batch.num_columns() != 1 || batch.num_rows() != 1 {
        return Err(format!(
            "{} columns, {} rows",
            batch.num_columns(),
            batch.num_rows()
        ));
    }
    let column = batch.column(0).clone();
    if column.data_type() != field.data_type() {
        return Err(format!(
            "type {} instead of {}",
            column.data_type(),
            field.data_type()
        ));
    }
    Ok(column)
}

/// `Utf8` texts → the column type (an unparsable text is an error, not a NULL).
pub(super) fn from_text(
    texts: StringArray,
    dt: &DataType,
) -> std::result::Result<ArrayRef, String> {
    let texts: ArrayRef = Arc::new(texts);
    if dt == &DataType::Utf8 {
        return Ok(texts);
    }
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(&texts, dt, &options).map_err(|e| e.to_string())
}

pub(super) fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}
