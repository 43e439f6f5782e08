"""Building FStore SQL: identifiers, literals, durations and feature references.

Every statement the package sends is built here, by one rule per kind of token:

- **identifiers** (tables, feature groups, feature sets, features, columns) are written bare
  when they are plain lower-case names that are not SQL keywords (``amount``), as a person
  would write them, and double-quoted otherwise, with ``"`` doubled (:func:`identifier`), so
  any name — mixed case, spaces, quotes, keywords — means exactly itself;
- **values** go as bound parameters (``?``) wherever the server binds them: in the ``WHERE``
  clauses of queries (system tables, online lookups);
- **constants** of FStore statements and table-function arguments (``CREATE EXPECTATION …
  (min_value = 0)``, ``training_set('…', …)``) are planned by the server before anything is
  bound, so the server requires literals there; they are written by :func:`literal`
  (strings single-quoted with ``'`` doubled, numbers checked to be finite numbers), never
  pasted as text.

Names inside a table function's string argument (``training_set('group:feature, …')``) are
read by the server's own list syntax, which has no quoting: :func:`feature_list_item` refuses a
name that would change the list's meaning (a ``,``, ``:`` or ``@`` in it) instead of sending it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ._keywords import KEYWORDS
from .errors import InvalidArgument

__all__ = [
    "Statement",
    "duration",
    "feature_list_item",
    "feature_ref",
    "identifier",
    "is_query",
    "literal",
    "parse_set_id",
    "relation_argument",
    "render",
]


_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")


def identifier(name: str) -> str:
    """An SQL identifier for ``name``: ``amount`` → ``amount``; ``Amount $`` → ``"Amount $"``.

    A plain lower-case name (letters, digits, ``_``) that is not an SQL keyword is written as
    it is; any other name is double-quoted with its quotes doubled (``a"b`` → ``"a""b"``),
    so that it keeps its case and characters. An empty name, or one holding a NUL character,
    is refused.
    """
    if not isinstance(name, str) or name == "":
        raise InvalidArgument(f"a name must be a non-empty string, got {name!r}")
    if "\x00" in name:
        raise InvalidArgument(f"a name cannot contain a NUL character: {name!r}")
    if _PLAIN.fullmatch(name) and name not in KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


Literal = str | int | float | bool | None


def literal(value: Literal | Sequence[Literal]) -> str:
    """An SQL literal for a constant of an FStore statement or table-function argument.

    ``str`` → ``'text'`` (``'`` doubled), ``bool`` → ``TRUE``/``FALSE``, ``int``/``float`` → the
    number (finite numbers only), ``None`` → ``NULL``, a list or tuple → ``(v, …)``.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"a number must be finite, got {value!r}")
        return repr(float(value))
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidArgument(f"a string cannot contain a NUL character: {value!r}")
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (list, tuple)):
        if not value:
            raise InvalidArgument("a list of values needs at least one value")
        return "(" + ", ".join(literal(v) for v in value) + ")"
    # numpy scalars and the like: accept what converts exactly to int or float.
    number: Any = value
    for kind in (int, float):
        try:
            converted = kind(number)
        except (TypeError, ValueError):
            continue
        if converted == number:
            return literal(converted)
    raise InvalidArgument(f"cannot write {value!r} ({type(value).__name__}) as an SQL literal")


_SHORT_UNITS = {
    "ns": "nanosecond",
    "us": "microsecond",
    "ms": "millisecond",
    "s": "second",
    "sec": "second",
    "m": "minute",
    "min": "minute",
    "h": "hour",
    "hr": "hour",
    "d": "day",
    "w": "week",
    "wk": "week",
}
_SHORT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$", re.IGNORECASE)


def duration(text: str) -> str:
    """A duration in FStore's long form: ``"30d"`` → ``"30 days"``, ``"1h"`` → ``"1 hour"``.

    One number with a short unit (``ns us ms s m h d w``) is spelled out; anything else is kept
    as written and checked by the server (``"1 day 12 hours"``, ``"1h30m"``). ``m`` is minutes.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidArgument(
            f"a duration must be a string such as '30d' or '1 hour', got {text!r}"
        )
    m = _SHORT.match(text)
    if m and m.group(2).lower() in _SHORT_UNITS:
        number, unit = m.group(1), _SHORT_UNITS[m.group(2).lower()]
        return f"{number} {unit}" + ("" if number == "1" else "s")
    return text.strip()


def duration_suffix(text: str) -> str:
    """The compact form of a duration for feature names: ``"30 days"`` / ``"30d"`` → ``"30d"``."""
    long = duration(text)
    m = re.match(r"^(\d+(?:\.\d+)?) ([a-z]+?)s?$", long)
    if m:
        short = {v: k for k, v in reversed(list(_SHORT_UNITS.items()))}
        unit = short.get(m.group(2))
        if unit:
            return m.group(1).replace(".", "_") + unit
    return re.sub(r"[^0-9a-zA-Z]+", "_", long).strip("_").lower()


def feature_ref(item: str) -> str:
    """A feature of a feature-set definition: ``group.feature``, ``group:feature``,
    ``group.*`` or ``group:*`` → ``"group"."feature"`` / ``"group".*``.

    The first ``.`` or ``:`` separates the group from the feature.
    """
    group, feature = split_feature(item)
    if group is None:
        return identifier(feature)
    if feature == "*":
        return f"{identifier(group)}.*"
    return f"{identifier(group)}.{identifier(feature)}"


def split_feature(item: str) -> tuple[str | None, str]:
    """``"group:feature"`` or ``"group.feature"`` → ``("group", "feature")``; a bare name →
    ``(None, name)``."""
    if not isinstance(item, str) or not item:
        raise InvalidArgument(f"a feature must be a non-empty string, got {item!r}")
    m = re.match(r"^([^.:]+)[.:](.+)$", item)
    if m:
        return m.group(1), m.group(2)
    return None, item


def feature_list_item(item: str) -> str:
    """One item of ``training_set``'s feature list: ``group:feature``, ``group:*``, ``set`` or
    ``set@n`` (``group.feature`` is accepted and written ``group:feature``)."""
    group, feature = split_feature(item) if "@" not in item else (None, item)
    names = [feature] if group is None else [group, feature]
    for name in names:
        if name != "*" and re.search(r"[,:]", name):
            raise InvalidArgument(
                f"feature list item {item!r}: a name holding ',' or ':' cannot be written in "
                "training_set's feature list"
            )
        if name.strip() != name or not name:
            raise InvalidArgument(
                f"feature list item {item!r}: names cannot start or end with spaces"
            )
    return feature if group is None else f"{group}:{feature}"


def parse_set_id(set_id: str) -> tuple[str, int | None]:
    """A feature-set id ``"name@3"`` → ``("name", 3)``; a bare name → ``(name, None)``."""
    if not isinstance(set_id, str) or not set_id:
        raise InvalidArgument(f"a feature set id must be 'name' or 'name@version', got {set_id!r}")
    m = re.match(r"^(.*)@(\d+)$", set_id)
    if m:
        return m.group(1), int(m.group(2))
    return set_id, None


_QUERY = re.compile(r"^\s*(?:\(|select\b|with\b|values\b)", re.IGNORECASE)


def is_query(text: str) -> bool:
    """Whether a source text is a query (it starts with ``SELECT``, ``WITH``, ``VALUES`` or
    ``(``) rather than the name of a table, view or feature group."""
    return bool(_QUERY.match(text))


def relation_argument(text: str) -> str:
    """A table-function argument naming rows: a query text as it is; a name as it is, or, when
    it holds whitespace (which the server would read as a query), ``SELECT * FROM "name"``."""
    if is_query(text) or not re.search(r"\s", text):
        return text
    return f"SELECT * FROM {identifier(text)}"


def object_name(name: str, what: str) -> str:
    """A name the server reads from a string argument (a table, view, group or set name):
    refused when it holds whitespace (which the server would read as a query text)."""
    if not isinstance(name, str) or not name or re.search(r"\s", name):
        raise InvalidArgument(f"{what} {name!r}: a name given as text cannot contain whitespace")
    return name


@dataclass(frozen=True)
class Statement:
    """One SQL statement sent to the server, with the parameters bound to it.

    ``note`` says why it was sent (shown as an SQL comment by :func:`render`).
    """

    sql: str
    parameters: tuple[object, ...] = ()
    note: str | None = None

    def __str__(self) -> str:
        return render([self])


def render(statements: Iterable[Statement]) -> str:
    """Statements as one SQL script: each ends with ``;``, its note a ``--`` comment above it,
    its bound parameters a ``--`` comment below it."""
    out: list[str] = []
    for s in statements:
        if s.note:
            out.extend(f"-- {line}" for line in s.note.splitlines())
        if s.sql.strip():
            out.append(s.sql.rstrip().rstrip(";") + ";")
        if s.parameters:
            out.append("--   parameters: " + ", ".join(repr(p) for p in s.parameters))
    return "\n".join(out)
