//! datafusion-proto codecs of online serving: `online_features(…)` providers travel as their
//! call; `OnlineLookupExec` travels as its lookup (the set, its version, key columns, cache
//! TTL and schema, the keys asked for, the projection). The store it reads is the decoding
//! engine's own: the online service of its `online_features` function.

use std::any::Any;
use std::sync::Arc;

use arrow_schema::Schema;
use datafusion::catalog::TableProvider;
use datafusion::common::{internal_err, not_impl_err};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use datafusion_proto::protobuf::Schema as SchemaMsg;
use prost::Message;

use super::EntityKey;
use super::service::OnlineService;
use super::table_function::{
    F, OnlineFeatures, OnlineFeaturesTable, OnlineLookupExec, OnlineTarget,
};
use crate::engine::codec::{CodecSession, Indices, decode_message, encode_message};

#[derive(Clone, PartialEq, Message)]
struct KeyMsg {
    #[prost(string, repeated, tag = "1")]
    parts: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct LookupMsg {
    #[prost(string, tag = "1")]
    set: String,
    #[prost(uint64, tag = "2")]
    version: u64,
    #[prost(string, repeated, tag = "3")]
    key_columns: Vec<String>,
    #[prost(int64, optional, tag = "4")]
    cache_ttl_micros: Option<i64>,
    #[prost(message, optional, tag = "5")]
    target_schema: Option<SchemaMsg>,
    #[prost(message, optional, tag = "6")]
    schema: Option<SchemaMsg>,
    #[prost(message, repeated, tag = "7")]
    keys: Vec<KeyMsg>,
    #[prost(bool, tag = "8")]
    keep_missing: bool,
    #[prost(message, optional, tag = "9")]
    projection: Option<Indices>,
    #[prost(string, repeated, tag = "10")]
    zero_when_missing: Vec<String>,
}

fn schema_of(msg: Option<&SchemaMsg>, what: &str) -> Result<Arc<Schema>> {
    match msg {
        Some(s) => Ok(Arc::new(Schema::try_from(s)?)),
        None => internal_err!("cannot decode OnlineLookupExec: no {what}"),
    }
}

/// `online_features` providers travel as their calls (see `CallCodec`).
pub fn call_of(node: &dyn TableProvider) -> Option<(&'static str, &[Expr])> {
    let table = node.downcast_ref::<OnlineFeaturesTable>()?;
    Some((F, &table.args))
}

/// Encodes and decodes `OnlineLookupExec`.
#[derive(Debug)]
pub struct OnlinePhysicalCodec {
    session: CodecSession,
}

impl OnlinePhysicalCodec {
    pub fn new(session: &CodecSession) -> Self {
        Self {
            session: session.clone(),
        }
    }

    /// The online service the engine's `online_features` reads.
    fn service(&self) -> Result<Arc<OnlineService>> {
        let function = self.session.session().table_function(F)?;
        let function: &dyn Any = function.function().as_ref();
        match function.downcast_ref::<OnlineFeatures>() {
            Some(f) => Ok(Arc::clone(&f.service)),
            None => internal_err!("{F} is not FStore's online lookup"),
        }
    }
}

impl PhysicalExtensionCodec for OnlinePhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        _ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let m: LookupMsg = decode_message(buf, "OnlineLookupExec")?;
        if !inputs.is_empty() {
            return internal_err!("cannot decode OnlineLookupExec: it has no inputs");
        }
        let target = OnlineTarget {
            set: m.set,
            version: m.version,
            key_columns: m.key_columns,
            cache_ttl: m.cache_ttl_micros,
            schema: schema_of(m.target_schema.as_ref(), "target schema")?,
            zero_when_missing: m.zero_when_missing,
        };
        Ok(Arc::new(OnlineLookupExec::new(
            target,
            schema_of(m.schema.as_ref(), "schema")?,
            m.keys.into_iter().map(|k| EntityKey(k.parts)).collect(),
            m.keep_missing,
            Indices::to_projection(m.projection.as_ref()),
            self.service()?,
        )))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let Some(exec) = node.downcast_ref::<OnlineLookupExec>() else {
            return not_impl_err!("not an online operator: {}", node.name());
        };
        let target = &exec.target;
        let msg = LookupMsg {
            set: target.set.clone(),
            version: target.version,
            key_columns: target.key_columns.clone(),
            cache_ttl_micros: target.cache_ttl,
            target_schema: Some(target.schema.as_ref().try_into()?),
            schema: Some(exec.schema.as_ref().try_into()?),
            keys: exec
                .keys
                .iter()
                .map(|k| KeyMsg { parts: k.0.clone() })
                .collect(),
            keep_missing: exec.keep_missing,
            projection: Indices::of(exec.projection.as_deref()),
            zero_when_missing: target.zero_when_missing.clone(),
        };
        encode_message(&msg, buf, "OnlineLookupExec")
    }
}
