"""Just enough protobuf to speak Flight SQL from pyarrow.flight (which has no Flight SQL
messages): commands are `google.protobuf.Any` wrapping the command message."""


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, payload: bytes):
    """A length-delimited protobuf field."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def any_message(type_name: str, value: bytes) -> bytes:
    return field(1, f"type.googleapis.com/arrow.flight.protocol.sql.{type_name}".encode()) + field(2, value)


def statement_query(sql: str) -> bytes:
    """CommandStatementQuery{query} as an Any."""
    return any_message("CommandStatementQuery", field(1, sql.encode()))


def cancel_flight_info_request(flight_info_bytes: bytes) -> bytes:
    """arrow.flight.protocol.CancelFlightInfoRequest{info} (the Flight RPC action body)."""
    return field(1, flight_info_bytes)


def cancel_query_request(flight_info_bytes: bytes) -> bytes:
    """Flight SQL's ActionCancelQueryRequest{info} as an Any (the older cancel action)."""
    return any_message("ActionCancelQueryRequest", field(1, flight_info_bytes))


def first_varint_field(message: bytes) -> int:
    """The value of field 1 of a message whose first field is a varint (cancel results)."""
    if not message:
        return 0
    assert message[0] == 0x08, message
    value, shift = 0, 0
    for b in message[1:]:
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value
        shift += 7
    raise ValueError("truncated varint")
