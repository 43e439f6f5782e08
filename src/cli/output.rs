//! Printing results: aligned tables for people, CSV and JSON lines for scripts.
//!
//! **Nested values.** CSV has no nested cells, so a list, large list, fixed-size list, struct
//! or map column is written as the JSON text of each value (`["team:ml","pii:no"]`,
//! `{"x":1,"y":"z"}`, `{"k":1}`), CSV-quoted like any other text; NULL stays an empty cell,
//! NULLs inside a value are `null`. Map keys that are not strings become their text
//! (`{"1":"a"}`), in CSV and in JSON lines alike. The only nested type without a JSON form,
//! a union, is written in CSV as the table format shows it. Other columns keep Arrow's CSV
//! formatting. JSON lines and tables show nested values natively.
//!
//! **No half results.** A statement's output is rendered in memory and reaches `out` only
//! once rendered: a statement that fails (while executing, or while its rows are being
//! formatted) writes nothing, and the caller reports the error. Tables are always complete
//! (they need every row to align columns). CSV and JSON lines are held until the statement
//! completes or its rendered output passes [`HOLD_BYTES`]; past that they stream, each batch
//! written only after all its columns were converted and formatted, so a larger result can
//! stop after a whole batch, never inside a row, and memory stays bounded for any size.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringBuilder};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::writer::{
    Encoder, EncoderFactory, EncoderOptions, LineDelimited, NullableEncoder, make_encoder,
};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::dataframe::DataFrame;
use datafusion::error::{DataFusionError, Result};
use futures::StreamExt;

/// Output format of `fstore sql`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned table with a row count.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON object per line.
    Json,
}

/// How much CSV or JSON output a statement may hold back before it starts streaming.
pub const HOLD_BYTES: usize = 16 << 20;

fn io(e: std::io::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// A statement's output: held in memory until [`HOLD_BYTES`], then written batch by batch.
/// Dropped without [`Pending::finish`] (the statement failed), it writes nothing more.
struct Pending<'a> {
    out: &'a mut dyn Write,
    buf: Vec<u8>,
}

impl Pending<'_> {
    /// Called after each fully rendered batch.
    fn batch_done(&mut self) -> Result<()> {
        if self.buf.len() >= HOLD_BYTES {
            self.out.write_all(&self.buf).map_err(io)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(self) -> Result<()> {
        self.out.write_all(&self.buf).map_err(io)?;
        self.out.flush().map_err(io)
    }
}

/// Prints a query result.
pub async fn print_query(df: DataFrame, format: Format, out: &mut dyn Write) -> Result<()> {
    let mut pending = Pending {
        out,
        buf: Vec::new(),
    };
    match format {
        Format::Table => {
            let schema = df.schema().as_arrow().clone();
            let batches = df.collect().await?;
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            let table = if batches.is_empty() {
                pretty_format_batches(&[RecordBatch::new_empty(Arc::new(schema))])?
            } else {
                pretty_format_batches(&batches)?
            };
            let buf = &mut pending.buf;
            writeln!(buf, "{table}").map_err(io)?;
            writeln!(buf, "({rows} row{})", if rows == 1 { "" } else { "s" }).map_err(io)?;
        }
        Format::Csv => {
            let mut stream = df.execute_stream().await?;
            let mut header = true;
            while let Some(batch) = stream.next().await {
                let batch = csv_batch(&batch?)?;
                write_csv(&batch, header, &mut pending.buf)?;
                header = false;
                pending.batch_done()?;
            }
            if header {
                // No batch at all: the header alone still names the columns.
                let schema = csv_schema(&stream.schema());
                write_csv(&RecordBatch::new_empty(schema), true, &mut pending.buf)?;
            }
        }
        Format::Json => {
            let mut stream = df.execute_stream().await?;
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                let mut writer = datafusion::arrow::json::WriterBuilder::new()
                    .with_encoder_factory(Arc::new(TextMapKeys))
                    .build::<_, LineDelimited>(&mut pending.buf);
                writer.write(&batch)?;
                writer.finish()?;
                pending.batch_done()?;
            }
        }
    }
    pending.finish()
}

fn write_csv(batch: &RecordBatch, header: bool, buf: &mut Vec<u8>) -> Result<()> {
    let mut writer = WriterBuilder::new().with_header(header).build(buf);
    writer.write(batch)?;
    Ok(())
}

/// The schema written to CSV: every nested column becomes a nullable Utf8 of the same name.
fn csv_schema(schema: &SchemaRef) -> SchemaRef {
    if !schema.fields().iter().any(|f| f.data_type().is_nested()) {
        return Arc::clone(schema);
    }
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .map(|f| {
            if f.data_type().is_nested() {
                Arc::new(Field::new(f.name(), DataType::Utf8, true))
            } else {
                Arc::clone(f)
            }
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` with its nested columns replaced by their JSON text (see the module header).
fn csv_batch(batch: &RecordBatch) -> Result<RecordBatch> {
    if !batch.columns().iter().any(is_nested) {
        return Ok(batch.clone());
    }
    let schema = batch.schema();
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            if is_nested(column) {
                json_text(field, column)
            } else {
                Ok(Arc::clone(column))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(csv_schema(&schema), columns)?)
}

fn is_nested(column: &ArrayRef) -> bool {
    column.data_type().is_nested()
}

/// The JSON text of each value of `column`, as a Utf8 column; NULL stays NULL.
fn json_text(field: &FieldRef, column: &ArrayRef) -> Result<ArrayRef> {
    let options = EncoderOptions::default()
        .with_explicit_nulls(true)
        .with_encoder_factory(Arc::new(TextMapKeys));
    let nulls = column.logical_nulls();
    let is_null = |i: usize| nulls.as_ref().is_some_and(|n| n.is_null(i));
    let mut builder = StringBuilder::with_capacity(column.len(), 16 * column.len());
    match make_encoder(field, column.as_ref(), &options) {
        Ok(mut encoder) => {
            let mut text = Vec::new();
            for i in 0..column.len() {
                if is_null(i) {
                    builder.append_null();
                    continue;
                }
                text.clear();
                encoder.encode(i, &mut text);
                let text = std::str::from_utf8(&text).map_err(|e| {
                    DataFusionError::Execution(format!("column {}: {e}", field.name()))
                })?;
                builder.append_value(text);
            }
        }
        // No JSON form (a union): the text the table format shows.
        Err(_) => {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &FormatOptions::default())?;
            for i in 0..column.len() {
                if is_null(i) {
                    builder.append_null();
                } else {
                    builder.append_value(formatter.value(i).try_to_string()?);
                }
            }
        }
    }
    Ok(Arc::new(builder.finish()))
}

/// Writes maps whose keys are not strings (arrow-json refuses them) as JSON objects keyed by
/// the keys' text.
#[derive(Debug)]
struct TextMapKeys;

impl EncoderFactory for TextMapKeys {
    fn make_default_encoder<'a>(
        &self,
        _field: &'a FieldRef,
        array: &'a dyn Array,
        options: &'a EncoderOptions,
    ) -> std::result::Result<Option<NullableEncoder<'a>>, ArrowError> {
        let DataType::Map(entries, _) = array.data_type() else {
            return Ok(None);
        };
        let DataType::Struct(key_value) = entries.data_type() else {
            return Ok(None);
        };
        let map = array.as_map();
        if matches!(
            map.keys().data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) || key_value.len() != 2
        {
            return Ok(None);
        }
        let formatter = ArrayFormatter::try_new(map.keys().as_ref(), &FormatOptions::default())?;
        let keys = (0..map.keys().len())
            .map(|i| {
                let mut key = Vec::new();
                serde_json::to_writer(&mut key, &formatter.value(i).try_to_string()?)
                    .map_err(|e| ArrowError::JsonError(e.to_string()))?;
                Ok(key)
            })
            .collect::<std::result::Result<Vec<_>, ArrowError>>()?;
        let encoder = TextKeyMapEncoder {
            offsets: map.offsets().clone(),
            keys,
            values: make_encoder(&key_value[1], map.values().as_ref(), options)?,
            explicit_nulls: options.explicit_nulls(),
        };
        Ok(Some(NullableEncoder::new(
            Box::new(encoder),
            map.nulls().cloned(),
        )))
    }
}

struct TextKeyMapEncoder<'a> {
    offsets: OffsetBuffer<i32>,
    /// Each key's JSON string, quotes included.
    keys: Vec<Vec<u8>>,
    values: NullableEncoder<'a>,
    explicit_nulls: bool,
}

impl Encoder for TextKeyMapEncoder<'_> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        let (start, end) = (self.offsets[idx] as usize, self.offsets[idx + 1] as usize);
        out.push(b'{');
        let mut first = true;
        for i in start..end {
            let null = self.values.is_null(i);
            if null && !self.explicit_nulls {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(&self.keys[i]);
            out.push(b':');
            if null {
                out.extend_from_slice(b"null");
            } else {
                self.values.encode(i, out);
            }
        }
        out.push(b'}');
    }
}

/// Prints the outcome of a command: nothing for scripts (CSV/JSON), a short line for people.
pub fn print_command(affected: Option<u64>, format: Format, out: &mut dyn Write) -> Result<()> {
    if format == Format::Table {
        match affected {
            Some(n) => writeln!(out, "OK, {n} row{}", if n == 1 { "" } else { "s" }),
            None => writeln!(out, "OK"),
        }
        .map_err(io)?;
    }
    Ok(())
}
