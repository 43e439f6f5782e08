//! One datafusion-proto codec for every FStore plan: [`FStoreLogicalCodec`] and
//! [`FStorePhysicalCodec`] compose the codecs the extensions contribute
//! ([`EngineExtension::logical_codec`], [`EngineExtension::physical_codec`]), so a plan with
//! any FStore node, operator or table provider can be shipped (to distributed executors,
//! between servers) and decoded by an engine with the same extensions.
//!
//! Everything a codec writes travels as a [`Tagged`] message: the name of the extension whose
//! codec wrote it, and that codec's bytes; decoding hands the bytes back to that extension's
//! codec. Encoding asks each codec in turn — one that does not handle the value answers
//! `NotImplemented` and the next is asked — and DataFusion's default codec last. File formats
//! and functions are DataFusion's business (functions travel by name and are resolved in the
//! session's registry).
//!
//! Table providers: DataFusion itself carries listing tables (managed and external tables),
//! empty tables and views (their plans), and inlines feature groups and table functions that
//! return views while planning. Of the rest, a provider the engine's catalog resolves by the
//! scan's name (system tables, tables that cannot be loaded) travels by that name and is
//! looked up again when decoded; a provider made by a table function travels as the call
//! ([`CodecSession::encode_call`]) and is made again by calling the function
//! ([`CodecSession::decode_call`]).

use std::any::Any;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use datafusion::catalog::{TableFunctionArgs, TableProvider};
use datafusion::common::{TableReference, not_impl_err, plan_err};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::execution::context::SessionContext;
use datafusion::logical_expr::{Expr, Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::from_proto::parse_expr;
use datafusion_proto::logical_plan::to_proto::serialize_expr;
use datafusion_proto::logical_plan::{DefaultLogicalExtensionCodec, LogicalExtensionCodec};
use datafusion_proto::physical_plan::{
    DefaultPhysicalExtensionCodec, PhysicalExtensionCodec, PhysicalProtoConverterExtension,
};
use datafusion_proto::protobuf::LogicalExprNode;
use futures::FutureExt;
use prost::Message;

use super::EngineExtension;

/// The tag of providers carried by name (see the module documentation).
const BY_NAME: &str = "catalog";
/// The tag of what DataFusion's default codec wrote.
const DEFAULT: &str = "datafusion";

/// Which call made a provider: the table function's name and its arguments, or `None` for a
/// provider of another kind.
pub type CallOf = fn(&dyn TableProvider) -> Option<(&'static str, &[Expr])>;

/// The logical codec of an area whose only logical values are its table functions'
/// providers: they travel as their calls (see [`CodecSession::encode_call`]) and are made
/// again by calling the function.
#[derive(Debug)]
pub struct CallCodec {
    session: CodecSession,
    /// The area, for messages.
    area: &'static str,
    call_of: CallOf,
}

impl CallCodec {
    pub fn new(session: &CodecSession, area: &'static str, call_of: CallOf) -> Self {
        Self {
            session: session.clone(),
            area,
            call_of,
        }
    }
}

impl LogicalExtensionCodec for CallCodec {
    fn try_decode(&self, _: &[u8], _: &[LogicalPlan], _: &TaskContext) -> Result<Extension> {
        not_impl_err!("the {} codec has no logical nodes", self.area)
    }

    fn try_encode(&self, node: &Extension, _: &mut Vec<u8>) -> Result<()> {
        not_impl_err!("not a {} node: {}", self.area, node.node.name())
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        _table_ref: &TableReference,
        _schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        self.session.decode_call(buf, ctx, self)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match (self.call_of)(node.as_ref()) {
            Some((function, args)) => CodecSession::encode_call(function, args, self, buf),
            None => not_impl_err!("not a {} table function: {table_ref}", self.area),
        }
    }
}

/// One encoded value: which extension's codec wrote it, and its bytes.
#[derive(Clone, PartialEq, Message)]
struct Tagged {
    #[prost(string, tag = "1")]
    codec: String,
    #[prost(bytes = "vec", tag = "2")]
    payload: Vec<u8>,
}

/// A table-function call: the function's name and its argument expressions.
#[derive(Clone, PartialEq, Message)]
struct Call {
    #[prost(string, tag = "1")]
    function: String,
    #[prost(message, repeated, tag = "2")]
    args: Vec<LogicalExprNode>,
}

/// Column indices (a projection) as a prost message; absent means "every column".
#[derive(Clone, PartialEq, Message)]
pub struct Indices {
    #[prost(uint64, repeated, tag = "1")]
    pub indices: Vec<u64>,
}

impl Indices {
    pub fn of(projection: Option<&[usize]>) -> Option<Indices> {
        projection.map(|p| Indices {
            indices: p.iter().map(|&i| i as u64).collect(),
        })
    }

    pub fn to_projection(message: Option<&Indices>) -> Option<Vec<usize>> {
        message.map(|m| m.indices.iter().map(|&i| i as usize).collect())
    }
}

/// Encodes a codec's prost message (`what` names it in errors).
pub fn encode_message(message: &impl Message, buf: &mut Vec<u8>, what: &str) -> Result<()> {
    message
        .encode(buf)
        .map_err(|e| DataFusionError::Internal(format!("cannot encode {what}: {e}")))
}

/// Decodes a codec's prost message (`what` names it in errors).
pub fn decode_message<M: Message + Default>(buf: &[u8], what: &str) -> Result<M> {
    M::decode(buf).map_err(|e| DataFusionError::Internal(format!("cannot decode {what}: {e}")))
}

/// What an area codec may need to decode: the engine's session, with its catalog and table
/// functions.
#[derive(Clone)]
pub struct CodecSession(SessionContext);

impl std::fmt::Debug for CodecSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CodecSession({})", self.0.session_id())
    }
}

impl CodecSession {
    pub fn new(session: &SessionContext) -> Self {
        Self(session.clone())
    }

    pub fn session(&self) -> &SessionContext {
        &self.0
    }

    /// Encodes the call `function(args)` that made a table provider.
    pub fn encode_call(
        function: &str,
        args: &[Expr],
        codec: &dyn LogicalExtensionCodec,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let call = Call {
            function: function.to_string(),
            args: args
                .iter()
                .map(|a| Ok(serialize_expr(a, codec)?))
                .collect::<Result<_>>()?,
        };
        encode_message(&call, buf, &format!("the call of {function}"))
    }

    /// Calls the table function of an encoded call again: the provider it makes now.
    pub fn decode_call(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
        codec: &dyn LogicalExtensionCodec,
    ) -> Result<Arc<dyn TableProvider>> {
        let call: Call = decode_message(buf, "a table-function call")?;
        let args = call
            .args
            .iter()
            .map(|a| Ok(parse_expr(a, ctx, codec)?))
            .collect::<Result<Vec<_>>>()?;
        let state = self.0.state();
        self.0
            .table_function(&call.function)?
            .create_table_provider_with_args(TableFunctionArgs::new(&args, &state))
    }

    /// The provider the catalog resolves `table` to, if it resolves without waiting.
    fn catalog_table(&self, table: &TableReference) -> Option<Result<Arc<dyn TableProvider>>> {
        self.0.table_provider(table.clone()).now_or_never()
    }
}

/// Asks each codec in turn to encode a value (see the module documentation) and writes the
/// first answer, tagged with its codec's name.
fn encode_tagged<C: ?Sized>(
    codecs: &[(&'static str, Arc<C>)],
    what: &str,
    buf: &mut Vec<u8>,
    mut encode: impl FnMut(&C, &mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let mut declined = Vec::new();
    for (name, codec) in codecs {
        let mut payload = Vec::new();
        match encode(codec, &mut payload) {
            Ok(()) => return write_tag(name, payload, buf),
            Err(DataFusionError::NotImplemented(m)) => declined.push(format!("{name}: {m}")),
            Err(e) => return Err(e),
        }
    }
    not_impl_err!(
        "no FStore codec can encode {what} (declined by {})",
        declined.join("; ")
    )
}

fn write_tag(codec: &str, payload: Vec<u8>, buf: &mut Vec<u8>) -> Result<()> {
    let tagged = Tagged {
        codec: codec.to_string(),
        payload,
    };
    encode_message(&tagged, buf, "a tagged plan node")
}

/// A tagged value, and the codec that wrote it.
fn read_tag<'a, C: ?Sized>(
    codecs: &'a [(&'static str, Arc<C>)],
    buf: &[u8],
) -> Result<(&'a C, Tagged)> {
    let tagged: Tagged = decode_message(buf, "a tagged plan node")?;
    Ok((codec_named(codecs, &tagged.codec)?, tagged))
}

fn codec_named<'a, C: ?Sized>(codecs: &'a [(&'static str, Arc<C>)], name: &str) -> Result<&'a C> {
    match codecs.iter().find(|(n, _)| *n == name) {
        Some((_, codec)) => Ok(codec.as_ref()),
        None => plan_err!(
            "the plan was encoded by the codec of extension '{name}', which this engine does not have"
        ),
    }
}

/// The logical codec of every extension (see the module documentation).
#[derive(Debug)]
pub struct FStoreLogicalCodec {
    codecs: Vec<(&'static str, Arc<dyn LogicalExtensionCodec>)>,
    session: CodecSession,
}

impl FStoreLogicalCodec {
    pub fn new(extensions: &[Box<dyn EngineExtension>], session: &CodecSession) -> Self {
        let mut codecs: Vec<(&'static str, Arc<dyn LogicalExtensionCodec>)> = extensions
            .iter()
            .filter_map(|e| Some((e.name(), e.logical_codec(session)?)))
            .collect();
        codecs.push((DEFAULT, Arc::new(DefaultLogicalExtensionCodec {})));
        Self {
            codecs,
            session: session.clone(),
        }
    }

    /// Whether `provider` is what the catalog resolves `table` to (the same kind of
    /// provider), so that the name alone identifies it.
    fn is_by_name(&self, table: &TableReference, provider: &Arc<dyn TableProvider>) -> bool {
        match self.session.catalog_table(table) {
            Some(Ok(found)) => {
                (found.as_ref() as &dyn Any).type_id() == (provider.as_ref() as &dyn Any).type_id()
            }
            _ => false,
        }
    }
}

impl LogicalExtensionCodec for FStoreLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        let (codec, tagged) = read_tag(&self.codecs, buf)?;
        codec.try_decode(&tagged.payload, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        let what = format!("logical node {}", node.node.name());
        encode_tagged(&self.codecs, &what, buf, |c, b| c.try_encode(node, b))
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        let tagged: Tagged = decode_message(buf, "a table provider")?;
        if tagged.codec == BY_NAME {
            return match self.session.catalog_table(table_ref) {
                Some(found) => found,
                None => plan_err!("table '{table_ref}' cannot be resolved without waiting"),
            };
        }
        codec_named(&self.codecs, &tagged.codec)?.try_decode_table_provider(
            &tagged.payload,
            table_ref,
            schema,
            ctx,
        )
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if self.is_by_name(table_ref, &node) {
            return write_tag(BY_NAME, Vec::new(), buf);
        }
        let what = format!("table provider '{table_ref}'");
        encode_tagged(&self.codecs, &what, buf, |c, b| {
            c.try_encode_table_provider(table_ref, Arc::clone(&node), b)
        })
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        DefaultLogicalExtensionCodec {}.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        DefaultLogicalExtensionCodec {}.try_encode_file_format(buf, node)
    }
}

/// The physical codec of every extension (see the module documentation).
#[derive(Debug)]
pub struct FStorePhysicalCodec {
    codecs: Vec<(&'static str, Arc<dyn PhysicalExtensionCodec>)>,
}

impl FStorePhysicalCodec {
    pub fn new(extensions: &[Box<dyn EngineExtension>], session: &CodecSession) -> Self {
        let mut codecs: Vec<(&'static str, Arc<dyn PhysicalExtensionCodec>)> = extensions
            .iter()
            .filter_map(|e| Some((e.name(), e.physical_codec(session)?)))
            .collect();
        codecs.push((DEFAULT, Arc::new(DefaultPhysicalExtensionCodec {})));
        Self { codecs }
    }
}

impl PhysicalExtensionCodec for FStorePhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (codec, tagged) = read_tag(&self.codecs, buf)?;
        codec.try_decode(&tagged.payload, inputs, ctx, proto_converter)
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let what = format!("operator {}", node.name());
        encode_tagged(&self.codecs, &what, buf, |c, b| {
            c.try_encode(Arc::clone(&node), b, proto_converter)
        })
    }
}
