"""Errors of the FStore client: the server's gRPC status as a Python exception.

Every failure the server reports comes back as an :class:`FStoreError` subclass chosen by its
gRPC status (``NOT_FOUND`` → :class:`NotFound`, …), carrying the server's own message without
the ADBC driver's Go/cgo framing. A call the server cannot serve yet because a statement it
needs does not exist raises :class:`ServerFeatureMissing`, which names the missing feature.
"""

from __future__ import annotations

import re

__all__ = [
    "AlreadyExists",
    "Cancelled",
    "DeadlineExceeded",
    "FStoreError",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "ServerFeatureMissing",
    "Unauthenticated",
    "Unavailable",
    "from_driver_error",
]


class FStoreError(Exception):
    """An error reported by the FStore server (or by the client before sending a statement).

    ``message`` is the server's message; ``code`` the gRPC status name (``"INVALID_ARGUMENT"``
    …) or ``None`` when the error did not come from the server; ``sql`` the statement that
    failed, when there was one.
    """

    code: str | None = None
    driver_error: BaseException | None = None
    """The ADBC driver's exception this error was made from (its text has the Go framing)."""

    def __init__(self, message: str, *, sql: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.sql = sql
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class InvalidArgument(FStoreError):
    """Bad SQL or a wrong argument (gRPC ``INVALID_ARGUMENT``): the message says what and where."""

    code = "INVALID_ARGUMENT"


class NotFound(FStoreError):
    """A table, feature group, feature set or feature that does not exist (``NOT_FOUND``)."""

    code = "NOT_FOUND"


class AlreadyExists(FStoreError):
    """A name that is already taken (``ALREADY_EXISTS``)."""

    code = "ALREADY_EXISTS"


class PermissionDenied(FStoreError):
    """The user lacks a privilege, or named a location it may not (``PERMISSION_DENIED``)."""

    code = "PERMISSION_DENIED"


class Unauthenticated(FStoreError):
    """A wrong user or password, or an expired or revoked login (``UNAUTHENTICATED``)."""

    code = "UNAUTHENTICATED"


class ResourceExhausted(FStoreError):
    """A memory, concurrency, login-rate or size limit of the server (``RESOURCE_EXHAUSTED``)."""

    code = "RESOURCE_EXHAUSTED"


class DeadlineExceeded(FStoreError):
    """A query that ran longer than its time limit (``DEADLINE_EXCEEDED``)."""

    code = "DEADLINE_EXCEEDED"


class Cancelled(FStoreError):
    """A query that was cancelled (``CANCELLED``)."""

    code = "CANCELLED"


class Unavailable(FStoreError):
    """The server or its storage cannot be reached (``UNAVAILABLE``)."""

    code = "UNAVAILABLE"


class ServerFeatureMissing(FStoreError, NotImplementedError):
    """The server does not have the statement this call needs yet.

    ``feature`` names it, e.g. ``"A/B experiments: CREATE EXPERIMENT, issue 16"``. Nothing is
    emulated on the client: the call does nothing else.
    """

    code = "UNIMPLEMENTED"

    def __init__(self, feature: str, detail: str = "", *, sql: str | None = None) -> None:
        message = f"not available on this FStore server yet: {feature}"
        if detail:
            message += f": {detail}"
        super().__init__(message, sql=sql)
        self.feature = feature


# gRPC status names as the Go driver writes them ("(InvalidArgument; Prepare)") → class.
_BY_GO_NAME: dict[str, type[FStoreError]] = {
    "InvalidArgument": InvalidArgument,
    "NotFound": NotFound,
    "AlreadyExists": AlreadyExists,
    "PermissionDenied": PermissionDenied,
    "Unauthenticated": Unauthenticated,
    "ResourceExhausted": ResourceExhausted,
    "DeadlineExceeded": DeadlineExceeded,
    "Canceled": Cancelled,
    "Cancelled": Cancelled,
    "Unavailable": Unavailable,
}

# ADBC status codes (adbc_driver_manager.AdbcStatusCode names) → class, when the text has no
# gRPC marker.
_BY_ADBC_STATUS: dict[str, type[FStoreError]] = {
    "INVALID_ARGUMENT": InvalidArgument,
    "INVALID_STATE": InvalidArgument,
    "NOT_FOUND": NotFound,
    "ALREADY_EXISTS": AlreadyExists,
    "UNAUTHORIZED": PermissionDenied,
    "UNAUTHENTICATED": Unauthenticated,
    "TIMEOUT": DeadlineExceeded,
    "CANCELLED": Cancelled,
    "IO": Unavailable,
}

# The Go driver's suffix: " (InvalidArgument; Prepare)", " (NotFound; DoGet: endpoint 0: [])".
_GO_MARKER = re.compile(r"\s\(([A-Z][A-Za-z]+); [A-Za-z][^\n]*\)\s*$")
_PREFIX = re.compile(r"^(?:[A-Z_]+:\s*)?(?:\[[A-Za-z ]+\]\s*)*")
_GRPC_DESC = re.compile(r"rpc error: code = \w+ desc = ")


def _first_paragraph(text: str) -> str:
    """The text before the "Vendor code" / "Detail" lines the Go driver appends."""
    parts = re.split(r"(?:\.\s+|\n\s*)(?:Vendor code|Details?:|Driver-specific)", text.strip())
    return parts[0].strip()


def server_message(text: str) -> str:
    """The server's message inside an ADBC driver error text.

    The Go driver frames it as ``INVALID_ARGUMENT: [FlightSQL] <message> (InvalidArgument;
    Prepare)``, sometimes with ``rpc error: code = … desc =`` and a detail block after it; only
    ``<message>`` is kept.
    """
    first = _first_paragraph(text)
    marker = _GO_MARKER.search(first)
    if marker:
        first = first[: marker.start()].rstrip()
    first = _PREFIX.sub("", first, count=1)
    first = _GRPC_DESC.sub("", first)
    return first.strip() or text.strip()


def error_class(text: str, adbc_status: str | None = None) -> type[FStoreError]:
    """The :class:`FStoreError` subclass for a driver error's text and ADBC status name."""
    marker = _GO_MARKER.search(_first_paragraph(text))
    if marker and marker.group(1) in _BY_GO_NAME:
        return _BY_GO_NAME[marker.group(1)]
    code = re.search(r"rpc error: code = (\w+)", text)
    if code and code.group(1) in _BY_GO_NAME:
        return _BY_GO_NAME[code.group(1)]
    if adbc_status is not None and adbc_status in _BY_ADBC_STATUS:
        return _BY_ADBC_STATUS[adbc_status]
    return FStoreError


def from_driver_error(error: BaseException, sql: str | None = None) -> FStoreError:
    """Turns an ADBC driver exception into the matching :class:`FStoreError` subclass."""
    if isinstance(error, FStoreError):
        return error
    text = str(error)
    status = getattr(error, "status_code", None)
    status_name = getattr(status, "name", None)
    cls = error_class(text, status_name if isinstance(status_name, str) else None)
    mapped = cls(server_message(text), sql=sql)
    mapped.driver_error = error
    return mapped
