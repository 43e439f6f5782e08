"""A Flight SQL server that does no work, to measure a client's own floor.

    python benches/noop_flight_sql.py PORT

It answers the calls an ADBC prepared-statement lookup makes (GetSqlInfo on connect,
CreatePreparedStatement, DoPut to bind, GetFlightInfo, DoGet, ClosePreparedStatement) and a
plain statement's GetFlightInfo + DoGet, always with the same one-row result, shaped like
online_bench.py's lookup. Written on pyarrow.flight (C++ gRPC underneath); the handlers are a
few lines of Python. benches/online_bench.py runs the same ADBC client against it and against
FStore: the difference is what the server costs, the rest is the client and the transport.
"""
import sys

import pyarrow as pa
import pyarrow.flight as flight

SQL_PACKAGE = "type.googleapis.com/arrow.flight.protocol.sql."

RESULT_SCHEMA = pa.schema([
    ("customer_id", pa.int64()), ("spend_7d", pa.float64()), ("orders_30d", pa.int64()),
    ("segment", pa.string()), ("score", pa.float64()),
    ("_feature_ts", pa.timestamp("us")), ("_materialized_at", pa.timestamp("us", tz="UTC")),
])
RESULT = pa.table([[1], [2.0], [3], ["a"], [0.5], pa.array([0], pa.timestamp("us")),
                   pa.array([0], pa.timestamp("us", tz="UTC"))], schema=RESULT_SCHEMA)
PARAMETER_SCHEMA = pa.schema([("customer_id", pa.int64())])
# CommandGetSqlInfo's result schema (the ADBC driver reads it when it connects).
SQL_INFO_SCHEMA = pa.schema([
    pa.field("info_name", pa.uint32(), nullable=False),
    pa.field("value", pa.dense_union([
        pa.field("string_value", pa.utf8()), pa.field("bool_value", pa.bool_()),
        pa.field("bigint_value", pa.int64()), pa.field("int32_bitmask", pa.int32()),
        pa.field("string_list", pa.list_(pa.utf8())),
        pa.field("int32_to_int32_list_map", pa.map_(pa.int32(), pa.list_(pa.int32()))),
    ]), nullable=False),
])
HANDLE = b"noop-prepared-statement"


def varint(n):
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def length_delimited(field_number, data):
    """One protobuf field of wire type 2 (bytes, string, message)."""
    return varint(field_number << 3 | 2) + varint(len(data)) + data


def any_message(type_name, body):
    return length_delimited(1, (SQL_PACKAGE + type_name).encode()) + length_delimited(2, body)


class NoopFlightSql(flight.FlightServerBase):
    def do_action(self, context, action):
        if action.type == "CreatePreparedStatement":
            body = (length_delimited(1, HANDLE)
                    + length_delimited(2, RESULT_SCHEMA.serialize().to_pybytes())
                    + length_delimited(3, PARAMETER_SCHEMA.serialize().to_pybytes()))
            yield flight.Result(any_message("ActionCreatePreparedStatementResult", body))
        # ClosePreparedStatement and anything else: no result.

    def do_put(self, context, descriptor, reader, writer):
        reader.read_all()
        # DoPutPreparedStatementResult: the handle to execute with.
        writer.write(pa.py_buffer(length_delimited(1, HANDLE)))

    def get_flight_info(self, context, descriptor):
        if b"CommandGetSqlInfo" in descriptor.command:
            return flight.FlightInfo(SQL_INFO_SCHEMA, descriptor,
                                     [flight.FlightEndpoint(b"sql-info", [])], -1, -1)
        return flight.FlightInfo(RESULT_SCHEMA, descriptor,
                                 [flight.FlightEndpoint(b"result", [])], -1, -1)

    def do_get(self, context, ticket):
        if ticket.ticket == b"sql-info":
            return flight.RecordBatchStream(SQL_INFO_SCHEMA.empty_table())
        return flight.RecordBatchStream(RESULT)


if __name__ == "__main__":
    server = NoopFlightSql(f"grpc://127.0.0.1:{int(sys.argv[1])}")
    print("ready", flush=True)
    server.serve()
