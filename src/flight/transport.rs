//! The gRPC face of Flight SQL, and nothing more: each RPC decodes its Flight SQL command into
//! one enum, [`FlightCommand`], and dispatches it to the service's method for that command
//! with the principal that [`AuthInterceptor`](super::auth::AuthInterceptor) authenticated.
//! Metadata commands are described and answered by one function each
//! ([`MetadataCommand`]). A command that does not decode, or does not belong to the RPC, is
//! the client's error (`INVALID_ARGUMENT`, or `UNIMPLEMENTED` for commands FStore does not
//! support).

use std::pin::Pin;

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, Any, Command, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementUpdate, DoPutUpdateResult, ProstMessageExt, TicketStatementQuery,
};
use arrow_flight::{
    Action, ActionType, CancelFlightInfoRequest, Criteria, Empty, FlightData, FlightDescriptor,
    FlightInfo, HandshakeRequest, PollInfo, PutResult, SchemaResult, Ticket,
};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use prost::Message;
use tonic::{Request, Response, Status, Streaming};

use super::auth::{HandshakeStream, principal_of, releasing_principal_of};
use super::metadata::MetadataCommand;
use super::service::{FStoreFlightSql, Messages};
use super::status::into_status;
use super::streams::{DataStream, batch_stream};
use crate::principal::Principal;

/// A Flight SQL command, decoded from the `Any` of a descriptor, ticket or first `DoPut`
/// message.
#[derive(Debug)]
pub enum FlightCommand {
    Query(CommandStatementQuery),
    Prepared(CommandPreparedStatementQuery),
    Ticket(TicketStatementQuery),
    Update(CommandStatementUpdate),
    PreparedUpdate(CommandPreparedStatementUpdate),
    Ingest(CommandStatementIngest),
    Metadata(MetadataCommand),
}

impl FlightCommand {
    pub fn decode(bytes: &[u8]) -> Result<Self, Status> {
        let malformed =
            |e: String| Status::invalid_argument(format!("malformed Flight SQL command: {e}"));
        let any = Any::decode(bytes).map_err(|e| malformed(e.to_string()))?;
        let meta = |m| Ok(Self::Metadata(m));
        match Command::try_from(any).map_err(|e| malformed(e.to_string()))? {
            Command::CommandStatementQuery(c) => Ok(Self::Query(c)),
            Command::CommandPreparedStatementQuery(c) => Ok(Self::Prepared(c)),
            Command::TicketStatementQuery(c) => Ok(Self::Ticket(c)),
            Command::CommandStatementUpdate(c) => Ok(Self::Update(c)),
            Command::CommandPreparedStatementUpdate(c) => Ok(Self::PreparedUpdate(c)),
            Command::CommandStatementIngest(c) => Ok(Self::Ingest(c)),
            Command::CommandGetCatalogs(c) => meta(MetadataCommand::Catalogs(c)),
            Command::CommandGetDbSchemas(c) => meta(MetadataCommand::Schemas(c)),
            Command::CommandGetTables(c) => meta(MetadataCommand::Tables(c)),
            Command::CommandGetTableTypes(c) => meta(MetadataCommand::TableTypes(c)),
            Command::CommandGetSqlInfo(c) => meta(MetadataCommand::SqlInfo(c)),
            Command::CommandGetXdbcTypeInfo(c) => meta(MetadataCommand::XdbcTypeInfo(c)),
            Command::CommandGetPrimaryKeys(c) => meta(MetadataCommand::PrimaryKeys(c)),
            Command::CommandGetExportedKeys(c) => meta(MetadataCommand::ExportedKeys(c)),
            Command::CommandGetImportedKeys(c) => meta(MetadataCommand::ImportedKeys(c)),
            Command::CommandGetCrossReference(c) => meta(MetadataCommand::CrossReference(c)),
            other => Err(Status::unimplemented(format!(
                "unsupported Flight SQL command {}",
                other.type_url()
            ))),
        }
    }

    /// The command's name, for metrics and traces.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Query(_) | Self::Ticket(_) => "statement",
            Self::Prepared(_) => "prepared_statement",
            Self::Update(_) => "statement_update",
            Self::PreparedUpdate(_) => "prepared_statement_update",
            Self::Ingest(_) => "statement_ingest",
            Self::Metadata(m) => m.name(),
        }
    }

    fn wrong_rpc(&self, rpc: &str) -> Status {
        Status::invalid_argument(format!("{rpc} does not take a {} command", self.name()))
    }
}

/// The command's name, or `malformed` for one that did not decode.
fn name_of(command: &Result<FlightCommand, Status>) -> &'static str {
    command.as_ref().map_or("malformed", FlightCommand::name)
}

/// The actions FStore answers.
const CREATE_PREPARED: &str = "CreatePreparedStatement";
const CLOSE_PREPARED: &str = "ClosePreparedStatement";
const CANCEL_QUERY: &str = "CancelQuery";
const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";

/// A Flight SQL action, decoded from its type and body.
#[derive(Debug)]
pub enum FlightAction {
    CreatePrepared(ActionCreatePreparedStatementRequest),
    ClosePrepared(ActionClosePreparedStatementRequest),
    CancelQuery(FlightInfo),
    CancelFlightInfo(FlightInfo),
}

impl FlightAction {
    /// The caller of an action: closing a prepared statement also takes a revoked token
    /// (see `auth`), every other action an authenticated principal.
    fn caller(
        action: &Result<Self, Status>,
        request: &Request<Action>,
    ) -> Result<Principal, Status> {
        match action {
            Ok(Self::ClosePrepared(_)) => releasing_principal_of(request),
            _ => principal_of(request),
        }
    }

    pub fn decode(action: &Action) -> Result<Self, Status> {
        let body = &action.body;
        match action.r#type.as_str() {
            CREATE_PREPARED => Ok(Self::CreatePrepared(unpack(body)?)),
            CLOSE_PREPARED => Ok(Self::ClosePrepared(unpack(body)?)),
            CANCEL_QUERY => {
                let req: ActionCancelQueryRequest = unpack(body)?;
                let info = FlightInfo::decode(req.info)
                    .map_err(|e| Status::invalid_argument(format!("malformed FlightInfo: {e}")))?;
                Ok(Self::CancelQuery(info))
            }
            CANCEL_FLIGHT_INFO => Ok(Self::CancelFlightInfo(cancel_request(body)?)),
            other => Err(Status::unimplemented(format!("unknown action '{other}'"))),
        }
    }

    /// An action type's name, for metrics and traces.
    pub fn name(action_type: &str) -> &'static str {
        match action_type {
            CREATE_PREPARED => "create_prepared_statement",
            CLOSE_PREPARED => "close_prepared_statement",
            CANCEL_QUERY => "cancel_query",
            CANCEL_FLIGHT_INFO => "cancel_flight_info",
            _ => "unknown_action",
        }
    }
}

/// The message in an action's body (an `Any`).
fn unpack<M: ProstMessageExt>(body: &[u8]) -> Result<M, Status> {
    let malformed = |e: String| Status::invalid_argument(format!("malformed action body: {e}"));
    let any = Any::decode(body).map_err(|e| malformed(e.to_string()))?;
    any.unpack::<M>()
        .map_err(|e| malformed(e.to_string()))?
        .ok_or_else(|| malformed(format!("expected {}", M::type_url())))
}

/// A `CancelFlightInfoRequest`'s FlightInfo; the request comes plain or wrapped in an `Any`
/// (clients do both).
fn cancel_request(body: &[u8]) -> Result<FlightInfo, Status> {
    CancelFlightInfoRequest::decode(body)
        .ok()
        .filter(|r| r.info.is_some())
        .or_else(|| {
            let any = Any::decode(body).ok()?;
            CancelFlightInfoRequest::decode(any.value).ok()
        })
        .and_then(|r| r.info)
        .ok_or_else(|| Status::invalid_argument("malformed CancelFlightInfoRequest"))
}

/// The command of a `DoPut`, named by its first message (which may also hold data: it is
/// peeked at, and stays in the stream).
async fn put_command(messages: &mut Messages) -> Result<FlightCommand, Status> {
    match Pin::new(messages).peek().await {
        None => Err(Status::invalid_argument("DoPut without a command")),
        Some(Err(e)) => Err(e.clone()),
        Some(Ok(first)) => match &first.flight_descriptor {
            Some(d) => FlightCommand::decode(&d.cmd),
            None => Err(Status::invalid_argument(
                "DoPut without a flight descriptor",
            )),
        },
    }
}

type Stream1<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// One reply, as a stream.
fn one<T: Send + 'static>(item: T) -> Stream1<T> {
    Box::pin(futures::stream::iter([Ok(item)]))
}

/// [`FStoreFlightSql`] as served over gRPC.
pub struct Transport(pub FStoreFlightSql);

#[tonic::async_trait]
impl FlightService for Transport {
    type HandshakeStream = HandshakeStream;
    type ListFlightsStream = Stream1<FlightInfo>;
    type DoGetStream = DataStream;
    type DoPutStream = Stream1<PutResult>;
    type DoExchangeStream = Stream1<FlightData>;
    type DoActionStream = Stream1<arrow_flight::Result>;
    type ListActionsStream = Stream1<ActionType>;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        let svc = &self.0;
        svc.observe(("handshake", ""), svc.auth.handshake(request))
            .await
    }

    async fn get_flight_info(
        &self,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let svc = &self.0;
        let command = FlightCommand::decode(&request.get_ref().cmd);
        svc.observe(("get_flight_info", name_of(&command)), async {
            let principal = principal_of(&request)?;
            let descriptor = request.into_inner();
            let info = match command? {
                FlightCommand::Query(q) => svc.statement_info(q, &principal, descriptor).await?,
                FlightCommand::Prepared(p) => svc.prepared_info(p, &principal, descriptor).await?,
                FlightCommand::Metadata(m) => {
                    let ticket = descriptor.cmd.clone();
                    svc.info(&m.schema(), ticket, descriptor)?
                }
                other => return Err(other.wrong_rpc("GetFlightInfo")),
            };
            Ok(Response::new(info))
        })
        .await
    }

    async fn do_get(&self, request: Request<Ticket>) -> Result<Response<DataStream>, Status> {
        let svc = &self.0;
        let command = FlightCommand::decode(&request.get_ref().ticket);
        svc.observe(("do_get", name_of(&command)), async {
            let principal = principal_of(&request)?;
            let ticket = request.into_inner().ticket;
            let stream = match command? {
                FlightCommand::Ticket(t) => svc.statement_stream(t, &principal, ticket).await?,
                FlightCommand::Prepared(p) => svc.prepared_stream(p, &principal, ticket).await?,
                FlightCommand::Metadata(m) => batch_stream(
                    m.answer(&svc.engine, &principal)
                        .await
                        .map_err(into_status)?,
                ),
                other => return Err(other.wrong_rpc("DoGet")),
            };
            Ok(Response::new(stream))
        })
        .await
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let svc = &self.0;
        let mut request = request.map(StreamExt::peekable);
        let command = put_command(request.get_mut()).await;
        svc.observe(("do_put", name_of(&command)), async {
            let principal = principal_of(&request)?;
            let messages = request.into_inner();
            let count = |record_count| DoPutUpdateResult { record_count }.encode_to_vec();
            let reply = match command? {
                FlightCommand::Update(c) => count(svc.update(c, &principal).await?),
                FlightCommand::Ingest(c) => count(svc.ingest(c, &principal, messages).await?),
                FlightCommand::PreparedUpdate(c) => {
                    count(svc.prepared_update(c, &principal, messages).await?)
                }
                FlightCommand::Prepared(c) => svc.bind(c, messages).await?.encode_to_vec(),
                other => return Err(other.wrong_rpc("DoPut")),
            };
            let app_metadata = Bytes::from(reply);
            Ok(Response::new(one(PutResult { app_metadata })))
        })
        .await
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let svc = &self.0;
        let action = FlightAction::decode(request.get_ref());
        let name = FlightAction::name(&request.get_ref().r#type);
        svc.observe(("do_action", name), async {
            let principal = FlightAction::caller(&action, &request)?;
            let reply = match action? {
                FlightAction::CreatePrepared(r) => {
                    let created = svc.create_prepared(r, &principal).await?;
                    Some(created.as_any().encode_to_vec())
                }
                FlightAction::ClosePrepared(r) => {
                    svc.close_prepared(r.prepared_statement_handle, &principal);
                    None
                }
                FlightAction::CancelQuery(info) => {
                    Some(svc.cancel_query(&info).as_any().encode_to_vec())
                }
                FlightAction::CancelFlightInfo(info) => {
                    Some(svc.cancel_flight_info(&info).encode_to_vec())
                }
            };
            let replies = reply.map(|body| Ok(arrow_flight::Result { body: body.into() }));
            Ok(Response::new(Box::pin(futures::stream::iter(replies)) as _))
        })
        .await
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        let actions = [
            (
                CREATE_PREPARED,
                "ActionCreatePreparedStatementRequest → ActionCreatePreparedStatementResult",
            ),
            (CLOSE_PREPARED, "ActionClosePreparedStatementRequest"),
            (
                CANCEL_QUERY,
                "ActionCancelQueryRequest → ActionCancelQueryResult",
            ),
            (
                CANCEL_FLIGHT_INFO,
                "CancelFlightInfoRequest → CancelFlightInfoResult",
            ),
        ]
        .map(|(t, d)| {
            Ok(ActionType {
                r#type: t.into(),
                description: d.into(),
            })
        });
        Ok(Response::new(Box::pin(futures::stream::iter(actions))))
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(Status::unimplemented(
            "ListFlights: query with Flight SQL commands",
        ))
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented("PollFlightInfo: use GetFlightInfo"))
    }

    async fn get_schema(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        Err(Status::unimplemented("GetSchema: use GetFlightInfo"))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented("DoExchange is not supported"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn commands_that_do_not_decode_are_the_clients_error() {
        let garbage = Any {
            type_url: CommandStatementQuery::type_url().into(),
            value: Bytes::from_static(&[0xff, 0xff, 0xff]),
        };
        let err = FlightCommand::decode(&garbage.encode_to_vec()).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
        assert!(
            err.message().starts_with("malformed Flight SQL command"),
            "{err}"
        );
        let err = FlightCommand::decode(&[0xff, 0x01]).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
        let unknown = Any {
            type_url: "type.googleapis.com/example.Other".into(),
            value: Bytes::new(),
        };
        let err = FlightCommand::decode(&unknown.encode_to_vec()).unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented, "{err}");
    }

    #[test]
    fn actions_decode_or_are_refused() {
        let action = |t: &str, body: &[u8]| Action {
            r#type: t.into(),
            body: Bytes::copy_from_slice(body),
        };
        let err = FlightAction::decode(&action("DropEverything", b"")).unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented, "{err}");
        let err = FlightAction::decode(&action(CREATE_PREPARED, &[0xff, 0x01])).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
        let req = ActionCreatePreparedStatementRequest {
            query: "SELECT 1".into(),
            transaction_id: None,
        };
        let ok = FlightAction::decode(&action(CREATE_PREPARED, &req.as_any().encode_to_vec()));
        assert!(matches!(ok, Ok(FlightAction::CreatePrepared(r)) if r.query == "SELECT 1"));
        // A body of another message type is refused, not misread.
        let err = FlightAction::decode(&action(CLOSE_PREPARED, &req.as_any().encode_to_vec()))
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    }

    #[test]
    fn commands_decode_to_their_variant() {
        let q = CommandStatementQuery {
            query: "SELECT 1".into(),
            transaction_id: None,
        };
        let cmd = FlightCommand::decode(&q.as_any().encode_to_vec()).unwrap();
        assert!(matches!(&cmd, FlightCommand::Query(c) if c.query == "SELECT 1"));
        let tables = arrow_flight::sql::CommandGetTables::default();
        let cmd = FlightCommand::decode(&tables.as_any().encode_to_vec()).unwrap();
        assert_eq!(cmd.name(), "tables");
    }
}
