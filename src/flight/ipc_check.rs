//! Checks of Arrow IPC input (bound parameters, bulk ingest) before it is decoded.
//!
//! Decoding trusts the message's metadata: a row count or buffer length a client made up is
//! allocated (a null bitmap for 10^16 rows aborts the process) or sliced out of range (a
//! panic) before any array is validated. So every `FlightData` is checked first against its
//! own body and FStore's limits, decoded arrays are then validated in full, and a decoder
//! panic that still slips through is caught and reported as the client's error. None of this
//! may ever end the process or answer `INTERNAL`.

use std::panic::AssertUnwindSafe;

use arrow_flight::FlightData;
use arrow_flight::error::FlightError;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::{RecordBatch as IpcRecordBatch, root_as_message};
use futures::{FutureExt, Stream, StreamExt};
use tonic::Status;

/// Most parameter rows one execution may bind.
pub const MAX_PARAMETER_ROWS: usize = 65_536;

fn malformed(what: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("malformed Arrow IPC input: {what}"))
}

/// Checks one message's metadata: row counts and field lengths within `max_rows`, null
/// counts within lengths, every buffer inside the body, no compression it would have to
/// inflate blindly.
pub fn check_flight_data(data: &FlightData, max_rows: usize) -> Result<(), Status> {
    if data.data_header.is_empty() {
        return Ok(());
    }
    let message = root_as_message(&data.data_header).map_err(malformed)?;
    let batch = match (
        message.header_as_record_batch(),
        message.header_as_dictionary_batch(),
    ) {
        (Some(b), _) => b,
        (None, Some(d)) => match d.data() {
            Some(b) => b,
            None => return Err(malformed("dictionary batch without data")),
        },
        _ => return Ok(()),
    };
    check_batch(&batch, data.data_body.len(), max_rows)
}

fn check_batch(batch: &IpcRecordBatch, body: usize, max_rows: usize) -> Result<(), Status> {
    let rows = batch.length();
    if rows < 0 {
        return Err(malformed(format!("negative row count {rows}")));
    }
    if rows as u64 > max_rows as u64 {
        return Err(Status::resource_exhausted(format!(
            "a batch of {rows} rows exceeds the limit of {max_rows} rows"
        )));
    }
    if batch.compression().is_some() {
        return Err(Status::unimplemented(
            "compressed Arrow IPC input is not supported here; send it uncompressed",
        ));
    }
    for node in batch.nodes().into_iter().flatten() {
        let (len, nulls) = (node.length(), node.null_count());
        // A nested child may hold more values than rows (lists), but never more than the
        // body could describe with one bit each.
        let bound = (max_rows as u64).max(body as u64 * 8);
        if len < 0 || nulls < 0 || nulls > len || len as u64 > bound {
            return Err(malformed(format!(
                "field of length {len} with {nulls} nulls in a batch of {rows} rows"
            )));
        }
    }
    for buffer in batch.buffers().into_iter().flatten() {
        let (offset, length) = (buffer.offset(), buffer.length());
        let end = offset.checked_add(length);
        if offset < 0 || length < 0 || end.is_none_or(|e| e as u64 > body as u64) {
            return Err(malformed(format!(
                "buffer at {offset}+{length} outside a body of {body} bytes"
            )));
        }
    }
    Ok(())
}

/// A client's `FlightData` stream with every message checked ([`check_flight_data`]) before
/// the decoder sees it.
pub fn checked_messages(
    messages: impl Stream<Item = Result<FlightData, Status>>,
    max_rows: usize,
) -> impl Stream<Item = Result<FlightData, FlightError>> {
    messages.map(move |d| {
        let d = d?;
        check_flight_data(&d, max_rows)?;
        Ok(d)
    })
}

/// Decoded parameter batches one execution may bind: at most [`MAX_PARAMETER_ROWS`] rows in
/// all, every array valid. Checked at bind time and again when a handle comes back from the
/// client (handles are client-held, so their bytes are input like any other).
pub fn accept_parameters(batches: &[RecordBatch]) -> Result<(), Status> {
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    if rows > MAX_PARAMETER_ROWS {
        return Err(Status::resource_exhausted(format!(
            "{rows} parameter rows exceed the limit of {MAX_PARAMETER_ROWS} per execution"
        )));
    }
    batches.iter().try_for_each(validate_batch)
}

/// Validates decoded arrays in full (offsets, UTF-8, dictionary keys, child lengths).
pub fn validate_batch(batch: &RecordBatch) -> Result<(), Status> {
    for column in batch.columns() {
        column.to_data().validate_full().map_err(malformed)?;
    }
    Ok(())
}

/// Runs a decoding future; a panic inside it becomes the client's error.
pub async fn guarded<T>(
    decode: impl std::future::Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match AssertUnwindSafe(decode).catch_unwind().await {
        Ok(r) => r,
        Err(_) => Err(malformed("the input could not be decoded")),
    }
}

/// Runs a synchronous decode; a panic inside it becomes the client's error.
pub fn guarded_sync<T>(decode: impl FnOnce() -> Result<T, Status>) -> Result<T, Status> {
    std::panic::catch_unwind(AssertUnwindSafe(decode))
        .unwrap_or_else(|_| Err(malformed("the input could not be decoded")))
}
