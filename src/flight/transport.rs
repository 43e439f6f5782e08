//! The gRPC face of the Flight SQL service: every RPC goes to the Flight SQL dispatcher of
//! arrow-flight (which calls [`FStoreFlightSql`]'s handlers), and the dispatcher's own
//! failures are classified here.
//!
//! The dispatcher answers a command it cannot decode (a well-formed `Any` whose value is not
//! the message its type names) with `INTERNAL`. That is the client's error: this layer
//! answers `INVALID_ARGUMENT` instead. Handlers' own statuses pass through unchanged.

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, PollInfo,
    SchemaResult, Ticket,
};
use tonic::{Code, Request, Response, Status, Streaming};

use super::service::FStoreFlightSql;

/// [`FStoreFlightSql`] as served over gRPC.
pub struct Transport(pub FStoreFlightSql);

/// How arrow-flight's dispatcher words a command it could not decode.
const UNDECODABLE: &str = "ParseError(\"Unable to decode Any value";

/// A dispatcher status with the right code: an undecodable command is `INVALID_ARGUMENT`.
fn classified(status: Status) -> Status {
    if status.code() == Code::Internal && status.message().starts_with(UNDECODABLE) {
        let detail = status
            .message()
            .trim_start_matches("ParseError(\"")
            .trim_end_matches("\")");
        return Status::invalid_argument(format!("malformed Flight SQL command: {detail}"));
    }
    status
}

type Inner = FStoreFlightSql;

#[tonic::async_trait]
impl FlightService for Transport {
    type HandshakeStream = <Inner as FlightService>::HandshakeStream;
    type ListFlightsStream = <Inner as FlightService>::ListFlightsStream;
    type DoGetStream = <Inner as FlightService>::DoGetStream;
    type DoPutStream = <Inner as FlightService>::DoPutStream;
    type DoExchangeStream = <Inner as FlightService>::DoExchangeStream;
    type DoActionStream = <Inner as FlightService>::DoActionStream;
    type ListActionsStream = <Inner as FlightService>::ListActionsStream;

    async fn handshake(
        &self,
        r: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(&self.0, r)
            .await
            .map_err(classified)
    }
    async fn list_flights(
        &self,
        r: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        FlightService::list_flights(&self.0, r)
            .await
            .map_err(classified)
    }
    async fn get_flight_info(
        &self,
        r: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        FlightService::get_flight_info(&self.0, r)
            .await
            .map_err(classified)
    }
    async fn poll_flight_info(
        &self,
        r: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        FlightService::poll_flight_info(&self.0, r)
            .await
            .map_err(classified)
    }
    async fn get_schema(
        &self,
        r: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        FlightService::get_schema(&self.0, r)
            .await
            .map_err(classified)
    }
    async fn do_get(&self, r: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        FlightService::do_get(&self.0, r).await.map_err(classified)
    }
    async fn do_put(
        &self,
        r: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        FlightService::do_put(&self.0, r).await.map_err(classified)
    }
    async fn do_exchange(
        &self,
        r: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        FlightService::do_exchange(&self.0, r)
            .await
            .map_err(classified)
    }
    async fn do_action(
        &self,
        r: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        FlightService::do_action(&self.0, r)
            .await
            .map_err(classified)
    }
    async fn list_actions(
        &self,
        r: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        FlightService::list_actions(&self.0, r)
            .await
            .map_err(classified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_commands_are_the_clients_error() {
        let s = classified(Status::internal(
            "ParseError(\"Unable to decode Any value: failed to decode Protobuf message\")",
        ));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.message(),
            "malformed Flight SQL command: Unable to decode Any value: failed to decode Protobuf message"
        );
        // A handler's own internal error is left alone.
        let s = classified(Status::internal("registry state is inconsistent"));
        assert_eq!(s.code(), Code::Internal);
    }
}
