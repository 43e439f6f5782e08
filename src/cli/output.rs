//! Printing results: aligned tables for people, CSV and JSON lines for scripts. CSV and JSON
//! stream batch by batch (any result size); tables need every row to align columns.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::json::LineDelimitedWriter;
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

fn io(e: std::io::Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Prints a query result.
pub async fn print_query(df: DataFrame, format: Format, out: &mut dyn Write) -> Result<()> {
    match format {
        Format::Table => {
            let schema = df.schema().as_arrow().clone();
            let batches = df.collect().await?;
            let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
            if batches.is_empty() {
                let empty = RecordBatch::new_empty(std::sync::Arc::new(schema));
                writeln!(out, "{}", pretty_format_batches(&[empty])?).map_err(io)?;
            } else {
                writeln!(out, "{}", pretty_format_batches(&batches)?).map_err(io)?;
            }
            writeln!(out, "({rows} row{})", if rows == 1 { "" } else { "s" }).map_err(io)?;
        }
        Format::Csv => {
            let mut stream = df.execute_stream().await?;
            let mut writer = WriterBuilder::new().with_header(true).build(&mut *out);
            while let Some(batch) = stream.next().await {
                writer.write(&batch?)?;
            }
        }
        Format::Json => {
            let mut stream = df.execute_stream().await?;
            let mut writer = LineDelimitedWriter::new(&mut *out);
            while let Some(batch) = stream.next().await {
                writer.write(&batch?)?;
            }
            writer.finish()?;
        }
    }
    out.flush().map_err(io)
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
