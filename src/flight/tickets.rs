//! What the server hands out to clients and gets back: statement tickets and prepared
//! statement handles. Both are self-contained — they carry what is needed to re-plan — so no
//! server-side map of half-finished queries grows without bound, and any server of a warehouse
//! can serve a ticket another one issued. (The server may keep bounded caches keyed by them.)

use arrow_flight::sql::{Any, ProstMessageExt};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use prost::Message;
use serde::{Deserialize, Serialize};
use tonic::Status;

/// The content of a `TicketStatementQuery.statement_handle`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum StatementTicket {
    /// A query to (re-)plan and stream.
    Query { sql: String },
    /// A command that already ran when its FlightInfo was requested; `DoGet` returns its
    /// `count` (rows affected), if any.
    Done { affected: Option<u64> },
}

impl StatementTicket {
    pub fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("tickets serialise"))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Status> {
        serde_json::from_slice(bytes)
            .map_err(|_| Status::invalid_argument("malformed statement ticket"))
    }
}

/// A prepared statement handle: its SQL and, once bound, its parameters (Arrow IPC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreparedHandle {
    pub sql: String,
    /// Base64 of an Arrow IPC stream holding the bound parameter rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<String>,
}

impl PreparedHandle {
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            params: None,
        }
    }

    pub fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("handles serialise"))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Status> {
        serde_json::from_slice(bytes)
            .map_err(|_| Status::invalid_argument("malformed prepared statement handle"))
    }

    /// The same statement bound to `batch`.
    pub fn with_params(&self, batch: &RecordBatch) -> Result<Self, Status> {
        let mut buf = Vec::new();
        {
            let mut w = StreamWriter::try_new(&mut buf, &batch.schema())
                .map_err(|e| Status::internal(e.to_string()))?;
            w.write(batch)
                .map_err(|e| Status::internal(e.to_string()))?;
            w.finish().map_err(|e| Status::internal(e.to_string()))?;
        }
        Ok(Self {
            sql: self.sql.clone(),
            params: Some(STANDARD.encode(buf)),
        })
    }

    /// The bound parameter rows, if any.
    pub fn params(&self) -> Result<Option<RecordBatch>, Status> {
        let Some(b64) = &self.params else {
            return Ok(None);
        };
        let bad = |e: String| Status::invalid_argument(format!("malformed parameters: {e}"));
        let bytes = STANDARD.decode(b64).map_err(|e| bad(e.to_string()))?;
        // A handle comes back from the client: its bytes are checked like any IPC input.
        let batches = super::ipc_check::guarded_sync(|| {
            let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)
                .map_err(|e| bad(e.to_string()))?;
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            super::ipc_check::accept_parameters(&batches)?;
            Ok(batches)
        })?;
        match batches.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            many => {
                let schema = many[0].schema();
                datafusion::arrow::compute::concat_batches(&schema, many)
                    .map(Some)
                    .map_err(|e| bad(e.to_string()))
            }
        }
    }
}

/// Encodes a Flight SQL command as the bytes of a `Ticket` (an `Any`).
pub fn any_bytes<M: ProstMessageExt>(msg: &M) -> Bytes {
    Bytes::from(msg.as_any().encode_to_vec())
}

/// Decodes an `Any` (e.g. the body of a cancel request).
pub fn decode_any(bytes: &[u8]) -> Result<Any, Status> {
    Any::decode(bytes).map_err(|e| Status::invalid_argument(format!("malformed message: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use std::sync::Arc;

    #[test]
    fn tickets_round_trip() {
        for t in [
            StatementTicket::Query {
                sql: "SELECT 1".into(),
            },
            StatementTicket::Done { affected: Some(3) },
            StatementTicket::Done { affected: None },
        ] {
            assert_eq!(StatementTicket::decode(&t.encode()).unwrap(), t);
        }
        assert!(StatementTicket::decode(b"garbage").is_err());
    }

    #[test]
    fn handles_carry_their_parameters() {
        let batch = RecordBatch::try_from_iter(vec![
            ("a", Arc::new(Int64Array::from(vec![1, 2])) as _),
            ("b", Arc::new(StringArray::from(vec![Some("x"), None])) as _),
        ])
        .unwrap();
        let h = PreparedHandle::new("SELECT $1, $2")
            .with_params(&batch)
            .unwrap();
        let back = PreparedHandle::decode(&h.encode()).unwrap();
        assert_eq!(back.sql, "SELECT $1, $2");
        assert_eq!(back.params().unwrap().unwrap(), batch);
        assert_eq!(PreparedHandle::new("x").params().unwrap(), None);
    }
}
