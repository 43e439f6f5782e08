"""``FeatureStore``: the guide's calls, each one the FStore SQL that does the work.

A store holds one ADBC Flight SQL connection to ``fstore serve``. Every method builds its
statements with :mod:`fstore.sql`, runs them, and returns a small record that carries them
(``.sql``); :attr:`FeatureStore.last_sql` is the script of the latest call. The guide leaves
some context implicit; the store resolves it by documented rules:

- ``entity="customer"`` is the key column ``customer_id`` (``<entity>_id`` when the source has
  it, else a column named ``<entity>``);
- the timestamp of a feature group is the source's one timestamp or date column;
- the per-event features of a group are the source's floating-point, decimal and text columns,
  other than keys, the timestamp and identifiers (``id``, ``*_id``);
- ``add_transformation`` without ``feature_group`` applies to the group created last;
- the store created last is the one that ``FeatureSelector()``, ``FeatureValidator()``,
  ``DriftMonitor()``, ``FeatureMonitor()`` and ``temporal_split`` use unless given ``store=``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import pyarrow.types as pat

from ._conn import Call, Session
from .errors import FStoreError, InvalidArgument, NotFound, ServerFeatureMissing
from .frames import Output, check_output, convert, is_frame
from .results import (
    ExportedFile,
    ExportResult,
    FeatureGroup,
    FeatureSelection,
    FeatureSet,
    OnlineServing,
    Transformation,
)
from .sql import (
    duration,
    feature_list_item,
    feature_ref,
    identifier,
    is_query,
    literal,
    parse_set_id,
    split_feature,
)
from .transformations import Encoder, WindowAggregator, WindowFeature

if TYPE_CHECKING:
    from .results import Rows

__all__ = ["DEFAULT_URL", "FeatureStore", "current_store"]

DEFAULT_URL = "grpc://127.0.0.1:50051"
"""Where :class:`FeatureStore` connects when neither ``url`` nor ``FSTORE_URL`` says."""

_current: FeatureStore | None = None
_current_lock = threading.Lock()


def current_store() -> FeatureStore:
    """The store created last (and not closed): the one the guide's helper objects use."""
    with _current_lock:
        if _current is None:
            raise FStoreError(
                "no FeatureStore is open: create one with FeatureStore() first, or pass store=..."
            )
        return _current


def _set_current(store: FeatureStore | None, only_if: FeatureStore | None = None) -> None:
    global _current
    with _current_lock:
        if only_if is None or _current is only_if:
            _current = store


SetRef = FeatureSet | str
"""A feature set: a :class:`FeatureSet`, its id ``"name@version"``, or a name (the latest
version)."""


def set_parts(feature_set: SetRef) -> tuple[str, int | None]:
    """``(name, version)`` of a feature-set reference (version None: the latest)."""
    if isinstance(feature_set, FeatureSet):
        return feature_set.name, feature_set.version
    return parse_set_id(feature_set)


def set_statement_ref(feature_set: SetRef) -> str:
    """A feature set in a statement: ``"name"`` or ``"name" VERSION n``."""
    name, version = set_parts(feature_set)
    return identifier(name) + ("" if version is None else f" VERSION {int(version)}")


def set_argument(feature_set: SetRef) -> str:
    """A feature set as a table-function argument: ``'name'`` or ``'name@n'``."""
    name, version = set_parts(feature_set)
    return literal(name if version is None else f"{name}@{version}")


def time_text(value: object, what: str) -> str:
    """A date or time as FStore reads it in arguments: ``'2024-01-01'`` or
    ``'2024-01-01T12:00:00'`` (``str`` values are passed as written)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    iso = getattr(value, "isoformat", None)
    if callable(iso):
        text = iso()
        if isinstance(text, str):
            return text
    raise InvalidArgument(f"{what} must be a date, a datetime or a string, got {value!r}")


def _is_id(column: str) -> bool:
    low = column.lower()
    return low == "id" or low.endswith("_id")


def _is_text(t: pa.DataType) -> bool:
    if pat.is_dictionary(t):
        return _is_text(t.value_type)
    return bool(pat.is_string(t) or pat.is_large_string(t) or pat.is_string_view(t))


def _is_measure(t: pa.DataType) -> bool:
    return bool(pat.is_floating(t) or pat.is_decimal(t))


def _is_time(t: pa.DataType) -> bool:
    return bool(pat.is_timestamp(t) or pat.is_date(t))


def _is_label(t: pa.DataType) -> bool:
    return bool(pat.is_integer(t) or pat.is_boolean(t))


def resolve_entity(entity: str, columns: Sequence[str], where: str) -> str:
    """The key column of ``entity`` among ``columns``: ``<entity>_id``, else ``entity``."""
    for candidate in (f"{entity}_id", entity):
        if candidate in columns:
            return candidate
    raise InvalidArgument(
        f"{where}: no key column for entity {entity!r}: expected a column "
        f"{entity + '_id'!r} or {entity!r} (columns: {', '.join(columns)})"
    )


def resolve_timestamp(schema: pa.Schema, exclude: Sequence[str], where: str) -> str:
    """The one timestamp or date column of ``schema`` (other than ``exclude``)."""
    times = [f.name for f in schema if _is_time(f.type) and f.name not in exclude]
    if len(times) == 1:
        return times[0]
    if not times:
        raise InvalidArgument(
            f"{where}: it has no timestamp or date column; give timestamp_column="
        )
    raise InvalidArgument(
        f"{where}: several time columns ({', '.join(times)}); choose one with timestamp_column="
    )


def default_features(schema: pa.Schema, keys: Sequence[str], timestamp: str) -> list[str]:
    """The per-event features a group gets without ``features=``: the source's floating-point,
    decimal and text columns other than keys, the timestamp and identifiers."""
    return [
        f.name
        for f in schema
        if f.name not in keys
        and f.name != timestamp
        and not _is_id(f.name)
        and (_is_measure(f.type) or _is_text(f.type))
    ]


def default_label(schema: pa.Schema, keys: Sequence[str], timestamp: str, where: str) -> str:
    """The label of a source: its one integer or boolean column that is not a key, the
    timestamp or an identifier."""
    labels = [
        f.name
        for f in schema
        if f.name not in keys and f.name != timestamp and not _is_id(f.name) and _is_label(f.type)
    ]
    if len(labels) == 1:
        return labels[0]
    found = f"candidates: {', '.join(labels)}" if labels else "it has no integer or boolean column"
    raise InvalidArgument(f"{where}: cannot tell the label ({found}); give Encoder(target=...)")


def source_sql(source: str) -> str:
    """A source in ``FROM``: a query text (``SELECT …``, ``WITH …``) in parentheses, anything
    else a name, quoted."""
    text = source.strip()
    if is_query(text):
        return f"({text.rstrip(';')})"
    return identifier(text)


class FeatureStore:
    """A connection to an FStore server (``fstore serve``) and the guide's calls on it.

    ``FeatureStore()`` connects to ``$FSTORE_URL`` (default ``grpc://127.0.0.1:50051``; use
    ``grpc+tls://host:port`` for TLS) as ``$FSTORE_USER`` / ``$FSTORE_PASSWORD``; arguments
    override them. ``tls_root_certs`` (PEM text or a path to a PEM file) and
    ``tls_skip_verify`` configure TLS. ``output`` is the kind of frame that results come back
    as: ``"pandas"`` (default), ``"arrow"`` or ``"polars"``; methods that return frames also
    take ``output=``. One ADBC connection is opened and reused by every call.
    """

    def __init__(
        self,
        url: str | None = None,
        user: str | None = None,
        password: str | None = None,
        *,
        tls_root_certs: str | None = None,
        tls_skip_verify: bool = False,
        output: Output = "pandas",
        connect_options: Mapping[str, str] | None = None,
    ) -> None:
        import adbc_driver_flightsql.dbapi as flight_sql

        self.url = url or os.environ.get("FSTORE_URL") or DEFAULT_URL
        user = user if user is not None else os.environ.get("FSTORE_USER")
        if password is None:
            password = os.environ.get("FSTORE_PASSWORD")
        self.user = user
        self.output: Output = check_output(output)
        options: dict[str, str] = {}
        if user:
            options["username"] = user
            options["password"] = password or ""
        if tls_root_certs:
            pem = tls_root_certs
            if "-----BEGIN" not in pem and os.path.exists(pem):
                with open(pem, encoding="utf-8") as f:
                    pem = f.read()
            options["adbc.flight.sql.client_option.tls_root_certs"] = pem
        if tls_skip_verify:
            options["adbc.flight.sql.client_option.tls_skip_verify"] = "true"
        options.update(connect_options or {})
        try:
            connection = flight_sql.connect(self.url, db_kwargs=options, autocommit=True)
        except Exception as e:
            from .errors import from_driver_error

            raise from_driver_error(e) from None
        self._session = Session(connection)
        self._current_group: str | None = None
        self._keys: dict[tuple[str, int], list[str]] = {}
        _set_current(self)

    # ----------------------------------------------------------------- connection

    @property
    def last_sql(self) -> str:
        """The SQL of the latest call, as a script (uploads and notes as ``--`` comments)."""
        return self._session.last_call.sql

    @property
    def echo(self) -> bool:
        """When true, every statement is printed as it is sent."""
        return self._session.echo

    @echo.setter
    def echo(self, value: bool) -> None:
        self._session.echo = bool(value)

    def close(self) -> None:
        """Closes the connection (the store can no longer be used)."""
        self._session.close()
        _set_current(None, only_if=self)

    def __enter__(self) -> FeatureStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeatureStore(url={self.url!r}, user={self.user!r})"

    def _begin(self) -> Call:
        return self._session.begin()

    def _output(self, output: Output | None) -> Output:
        return self.output if output is None else check_output(output)

    def sql(
        self,
        query: str,
        parameters: Sequence[Any] | None = None,
        *,
        output: Output | None = None,
    ) -> Any:
        """Runs any SQL statement (``?`` placeholders bound to ``parameters``) and returns its
        rows as a frame (pandas by default)."""
        call = self._begin()
        table = self._session.run(call, query, tuple(parameters) if parameters else None)
        return convert(table, self._output(output))

    def _schema(self, call: Call, source: str) -> pa.Schema:
        table = self._session.run(
            call,
            f"SELECT * FROM {source_sql(source)} LIMIT 0",
            note=f"the columns of {source}",
        )
        return table.schema

    # ------------------------------------------------------------- feature groups

    def create_feature_group(
        self,
        name: str,
        source_table: str,
        transformations: Sequence[WindowAggregator | Encoder] = (),
        entity: str | Sequence[str] | None = None,
        *,
        timestamp_column: str | None = None,
        features: Sequence[str] | None = None,
        created_column: str | None = None,
        ttl: str | None = None,
        description: str | None = None,
        tags: Sequence[str] = (),
        owner: str | None = None,
        replace: bool = False,
    ) -> FeatureGroup:
        """Defines a feature group over ``source_table`` (``CREATE FEATURE GROUP``).

        ``source_table`` is a table, view or feature group, or a query text. ``entity`` names
        the entity (``"customer"`` → key column ``customer_id``) or lists key columns. The
        window features of each :class:`WindowAggregator` come first, then the per-event
        features: ``features`` if given, else the source's floating-point, decimal and text
        columns other than keys, the timestamp and identifiers. :class:`Encoder` items with an
        ``output`` are not allowed here; add encoders with :meth:`add_transformation`.
        ``replace=True`` writes ``CREATE OR REPLACE``. Later calls that leave the group out
        (``add_transformation``) apply to this group.
        """
        call = self._begin()
        schema = self._schema(call, source_table)
        columns = schema.names
        where = f"feature group {name!r}"
        if entity is None:
            raise InvalidArgument(f"{where}: give entity= (e.g. entity='customer')")
        entities = [entity] if isinstance(entity, str) else list(entity)
        keys = [resolve_entity(e, columns, where) for e in entities]
        timestamp = timestamp_column or resolve_timestamp(
            schema, [*keys, *([created_column] if created_column else [])], where
        )
        window: list[WindowFeature] = []
        measures = [
            f.name
            for f in schema
            if f.name not in keys
            and f.name != timestamp
            and _is_measure(f.type)
            and not _is_id(f.name)
        ]
        encoders: list[Encoder] = []
        for t in transformations:
            if isinstance(t, WindowAggregator):
                window.extend(t.features(measures))
            elif isinstance(t, Encoder):
                encoders.append(t)
            else:
                raise InvalidArgument(
                    f"{where}: transformations must be WindowAggregator or Encoder, got {t!r}"
                )
        if encoders:
            raise InvalidArgument(
                f"{where}: an Encoder needs the feature it encodes: "
                "store.add_transformation(feature=..., transformation=encoder)"
            )
        plain = (
            list(features) if features is not None else default_features(schema, keys, timestamp)
        )
        items = [w.sql() for w in window] + [identifier(c) for c in plain]
        if not items:
            raise InvalidArgument(f"{where}: no features (give transformations or features=)")
        lines = [
            f"CREATE {'OR REPLACE ' if replace else ''}FEATURE GROUP {identifier(name)}",
            f"  ENTITY ({', '.join(identifier(k) for k in keys)})",
            f"  TIMESTAMP {identifier(timestamp)}",
        ]
        if created_column:
            lines.append(f"  CREATED {identifier(created_column)}")
        lines.append(f"  FROM {source_sql(source_table)}")
        lines.append("  FEATURES (\n    " + ",\n    ".join(items) + "\n  )")
        if ttl is not None:
            lines.append(f"  TTL {literal(duration(ttl))}")
        if description is not None:
            lines.append(f"  DESCRIPTION {literal(description)}")
        if tags:
            lines.append(f"  TAGS {literal(list(tags))}")
        if owner is not None:
            lines.append(f"  OWNER {literal(owner)}")
        self._session.run(call, "\n".join(lines))
        self._current_group = name
        return FeatureGroup(
            name=name,
            entity=tuple(keys),
            timestamp_column=timestamp,
            source=source_table,
            features=tuple([w.name for w in window] + plain),
            sql=call.sql,
        )

    def add_transformation(
        self,
        feature: str,
        transformation: Encoder,
        feature_group: str | None = None,
    ) -> Transformation:
        """Adds an encoder of ``feature`` to a feature group (``ALTER FEATURE GROUP … ADD
        TRANSFORMATION``), fitted once on the server.

        Without ``feature_group``: the group created last by this store. Target encoding
        without a ``target`` encodes against the source's label (its one integer or boolean
        column that is not an identifier)."""
        call = self._begin()
        group = feature_group or self._current_group
        if group is None:
            raise InvalidArgument(
                "add_transformation: which feature group? create one first or give feature_group="
            )
        if not isinstance(transformation, Encoder):
            raise InvalidArgument(f"add_transformation takes an Encoder, got {transformation!r}")
        target = transformation.target
        if transformation.method == "target_encoding" and target is None:
            rows = self._session.run(
                call,
                "SELECT entity, timestamp_column, source FROM fstore.feature_groups WHERE name = ?",
                (group,),
                note=f"the source of {group}, to find its label",
            ).to_pylist()
            if not rows:
                raise NotFound(f"feature group {group!r} not found", sql=call.sql)
            keys = [k.strip() for k in str(rows[0]["entity"]).split(",")]
            schema = self._schema(call, str(rows[0]["source"]).strip())
            target = default_label(
                schema, keys, str(rows[0]["timestamp_column"]), f"target encoding of {feature!r}"
            )
        output = transformation.output_column(feature)
        sql = (
            f"ALTER FEATURE GROUP {identifier(group)}\n"
            f"  ADD TRANSFORMATION {identifier(feature)} USING {transformation.using(target)}"
        )
        if transformation.output is not None:
            sql += f" AS {identifier(transformation.output)}"
        self._session.run(call, sql)
        return Transformation(group, feature, transformation.method, output, call.sql)

    # --------------------------------------------------------------- training data

    def get_training_features(
        self,
        feature_list: Sequence[str | FeatureSet] | str | FeatureSet,
        start_date: object = None,
        end_date: object = None,
        entity_df: object = None,
        timestamp_column: str | None = None,
        *,
        output: Output | None = None,
    ) -> Any:
        """Point-in-time correct features for every row of ``entity_df`` (``training_set``).

        ``feature_list`` items are ``"group:feature"``, ``"group:*"`` or a feature set (id,
        name or :class:`FeatureSet`). ``entity_df`` is a frame (uploaded for the query and
        dropped after it) or the name of a table or view, or a query text; it has a column per
        entity key, named as the key, and ``timestamp_column`` (default: its one time column).
        Only rows with ``start_date <= t < end_date`` are kept when the dates are given.
        Returns a frame (pandas unless ``output`` says otherwise): the entity columns, then
        the features in the order listed.
        """
        call = self._begin()
        items = self._feature_list(feature_list)
        if entity_df is None:
            raise InvalidArgument("get_training_features needs entity_df (the examples)")
        ts = timestamp_column or self._frame_timestamp(entity_df, "entity_df")
        args = [literal(", ".join(items)), "", literal(ts)]
        if start_date is not None or end_date is not None:
            if start_date is None:
                raise InvalidArgument("get_training_features: end_date needs a start_date too")
            args.append(literal(time_text(start_date, "start_date")))
            if end_date is not None:
                args.append(literal(time_text(end_date, "end_date")))
        with self._session.uploaded(call, entity_df, "entity_df") as relation:
            args[1] = literal(relation)
            table = self._session.run(call, f"SELECT * FROM training_set({', '.join(args)})")
        return convert(table, self._output(output))

    def _feature_list(
        self, feature_list: Sequence[str | FeatureSet] | str | FeatureSet
    ) -> list[str]:
        if isinstance(feature_list, (str, FeatureSet)):
            feature_list = [feature_list]
        items: list[str] = []
        for item in feature_list:
            if isinstance(item, FeatureSet):
                items.append(item.id)
            elif isinstance(item, str):
                items.append(feature_list_item(item.strip()))
            else:
                raise InvalidArgument(f"a feature list item must be a string, got {item!r}")
        if not items:
            raise InvalidArgument("the feature list is empty")
        return items

    @staticmethod
    def _frame_timestamp(data: object, what: str) -> str:
        if not is_frame(data):
            raise InvalidArgument(f"give timestamp_column= (the time column of {what})")
        from .frames import to_arrow

        schema = to_arrow(data).schema
        return resolve_timestamp(schema, [], what)

    # ---------------------------------------------------------------- feature sets

    def create_feature_set(
        self,
        name: str,
        features: FeatureSelection | Sequence[str],
        metadata: Mapping[str, object] | None = None,
        *,
        tags: Sequence[str] = (),
        description: str | None = None,
    ) -> FeatureSet:
        """Registers a new version of a feature set (``CREATE FEATURE SET``).

        ``features``: a :class:`FeatureSelection` (its features, of its group) or names
        ``"group.feature"`` / ``"group:feature"`` / ``"group.*"`` (a bare name is a feature of
        the group created last). ``metadata`` becomes ``WITH (key = 'value', …)`` (``author``
        defaults to the user on the server). Returns the new version; its ``id``
        (``"name@version"``) names it in the other calls.
        """
        call = self._begin()
        if isinstance(features, FeatureSelection):
            names = features.qualified()
        elif isinstance(features, str):
            raise InvalidArgument("features must be a list of features, not one string")
        else:
            names = []
            for f in features:
                group, feature = split_feature(f)
                if group is None:
                    if self._current_group is None:
                        raise InvalidArgument(f"feature {f!r}: write it as group.feature")
                    group = self._current_group
                names.append(f"{group}.{feature}")
        if not names:
            raise InvalidArgument(f"feature set {name!r} has no features")
        lines = [
            f"CREATE FEATURE SET {identifier(name)}",
            "  FEATURES (" + ", ".join(feature_ref(n) for n in names) + ")",
        ]
        if metadata:
            pairs = []
            for key, value in metadata.items():
                if not isinstance(key, str) or not key:
                    raise InvalidArgument(f"metadata keys must be names, got {key!r}")
                pairs.append(f"{identifier(key)} = {literal(str(value))}")
            lines.append("  WITH (" + ", ".join(pairs) + ")")
        if tags:
            lines.append(f"  TAGS {literal(list(tags))}")
        if description is not None:
            lines.append(f"  DESCRIPTION {literal(description)}")
        self._session.run(call, "\n".join(lines))
        return self._read_set(call, name, None)

    def get_feature_set(self, feature_set: str) -> FeatureSet:
        """A version of a feature set: ``"name@version"``, or ``"name"`` for the latest."""
        call = self._begin()
        name, version = parse_set_id(feature_set)
        return self._read_set(call, name, version)

    def _read_set(self, call: Call, name: str, version: int | None) -> FeatureSet:
        sql = (
            "SELECT name, version, features, metadata, tags, description "
            "FROM fstore.feature_sets WHERE name = ?"
        )
        params: tuple[Any, ...] = (name,)
        if version is not None:
            sql += " AND version = ?"
            params = (name, version)
        sql += " ORDER BY version DESC LIMIT 1"
        rows = self._session.run(call, sql, params, note="the version just registered").to_pylist()
        if not rows:
            raise NotFound(f"feature set {name!r} not found", sql=call.sql)
        row = rows[0]
        try:
            metadata = {str(k): str(v) for k, v in json.loads(row["metadata"] or "{}").items()}
        except (ValueError, AttributeError):
            metadata = {}
        return FeatureSet(
            name=str(row["name"]),
            version=int(row["version"]),
            features=tuple(str(f) for f in row["features"] or []),
            metadata=metadata,
            tags=tuple(str(t) for t in row["tags"] or []),
            description=row["description"],
            sql=call.sql,
        )

    def export_feature_set(
        self,
        feature_set: SetRef,
        format: str = "parquet",
        path: str | None = None,
        *,
        entity_df: object = None,
        timestamp_column: str | None = None,
    ) -> ExportResult:
        """Writes a feature-set version to Parquet files (``EXPORT FEATURE SET``) in a local
        directory of the server or ``s3://bucket/prefix/``.

        Without ``entity_df``: one file per feature group, one row per event. With it (a frame,
        uploaded for the export, or a table name or query): one file, the point-in-time
        training set of the version for those examples.
        """
        call = self._begin()
        if path is None:
            raise InvalidArgument("export_feature_set needs path= (a directory or s3://…)")
        if format.lower() != "parquet":
            raise InvalidArgument(f"export format {format!r} is not supported; use 'parquet'")
        sql = (
            f"EXPORT FEATURE SET {set_statement_ref(feature_set)} TO {literal(path)} FORMAT parquet"
        )
        if entity_df is None:
            table = self._session.run(call, sql)
        else:
            ts = timestamp_column or self._frame_timestamp(entity_df, "entity_df")
            with self._session.uploaded(call, entity_df, "entity_df") as relation:
                table = self._session.run(
                    call, f"{sql}\n  FOR ENTITIES {literal(relation)} TIMESTAMP {literal(ts)}"
                )
        files = tuple(
            ExportedFile(str(r["file"]), int(r["rows"]), int(r["bytes"])) for r in table.to_pylist()
        )
        name, version = set_parts(feature_set)
        return ExportResult(
            feature_set=name if version is None else f"{name}@{version}",
            files=files,
            sql=call.sql,
        )

    # --------------------------------------------------------------- online serving

    def configure_online_serving(
        self,
        feature_set: SetRef,
        update_frequency: str | None = None,
        cache_ttl: str | None = None,
        *,
        refresh: bool = True,
        as_of: object = None,
    ) -> OnlineServing:
        """Serves a feature-set version online (``ALTER FEATURE SET … SET ONLINE``).

        The server re-materializes it every ``update_frequency``; a served row is at most
        ``cache_ttl`` older than its materialization. With ``refresh`` (the default) it is
        materialized now (``REFRESH ONLINE FEATURE SET``), at ``as_of`` when given (a time in
        the data: ``"2024-03-31T23:59:59"``), so lookups answer at once.
        """
        call = self._begin()
        options = []
        if update_frequency is not None:
            options.append(f"update_frequency = {literal(duration(update_frequency))}")
        if cache_ttl is not None:
            options.append(f"cache_ttl = {literal(duration(cache_ttl))}")
        sql = f"ALTER FEATURE SET {set_statement_ref(feature_set)} SET ONLINE"
        if options:
            sql += f" ({', '.join(options)})"
        self._session.run(call, sql)
        rows: int | None = None
        if refresh:
            name, _ = set_parts(feature_set)
            refresh_sql = f"REFRESH ONLINE FEATURE SET {identifier(name)}"
            if as_of is not None:
                refresh_sql += f" AS OF {literal(time_text(as_of, 'as_of'))}"
            result = self._session.run(call, refresh_sql).to_pylist()
            if result and result[0].get("rows") is not None:
                rows = int(result[0]["rows"])
        name, version = set_parts(feature_set)
        return OnlineServing(
            feature_set=name if version is None else f"{name}@{version}",
            update_frequency=update_frequency,
            cache_ttl=cache_ttl,
            materialized_rows=rows,
            sql=call.sql,
        )

    def refresh_online(self, feature_set: SetRef, as_of: object = None) -> Rows:
        """Materializes an online feature set now (``REFRESH ONLINE FEATURE SET``), at
        ``as_of`` when given; returns the run (rows, status)."""
        from .results import Rows

        call = self._begin()
        name, _ = set_parts(feature_set)
        sql = f"REFRESH ONLINE FEATURE SET {identifier(name)}"
        if as_of is not None:
            sql += f" AS OF {literal(time_text(as_of, 'as_of'))}"
        return Rows(self._session.run(call, sql), call.sql)

    def get_online_features(
        self,
        feature_set: SetRef,
        entity_keys: Sequence[Any],
        *,
        features: Sequence[str] | None = None,
        output: Output | None = None,
    ) -> Any:
        """The online features of entities, by key (``online_features``), in one round trip.

        ``entity_keys``: key values (``["customer_123"]``), or tuples for a composite key. The
        statement is ``SELECT … FROM online_features('set') WHERE key = ?`` with the keys bound
        as parameter rows (the server's direct lookup path): one row per entity that is online,
        in the order of ``entity_keys``, each once; a key that is not online has no row.
        ``features`` limits the columns (keys and times are always returned). The version
        answering is the one served online (:meth:`configure_online_serving`).
        """
        call = self._begin()
        name, version = set_parts(feature_set)
        if isinstance(entity_keys, (str, bytes)) or not isinstance(entity_keys, Sequence):
            raise InvalidArgument("entity_keys must be a list of keys, e.g. ['customer_123']")
        keys = self._key_columns(call, name, version)
        rows: list[tuple[Any, ...]] = [
            tuple(k) if isinstance(k, (tuple, list)) else (k,) for k in entity_keys
        ]
        for r in rows:
            if len(r) != len(keys):
                raise InvalidArgument(
                    f"feature set {name!r} has a key of {len(keys)} column(s) ({', '.join(keys)});"
                    f" got {r!r}"
                )
        columns = "*"
        if features is not None:
            wanted = [*keys, *features, "_feature_ts", "_materialized_at"]
            columns = ", ".join(identifier(c) for c in dict.fromkeys(wanted))
        where = " AND ".join(f"{identifier(k)} = ?" for k in keys)
        sql = f"SELECT {columns} FROM online_features({literal(name)}) WHERE {where}"
        if not rows:
            table = self._session.run(call, sql + " AND FALSE", tuple([None] * len(keys)))
        else:
            batch = pa.record_batch(
                [pa.array([r[i] for r in rows]) for i in range(len(keys))], names=keys
            )
            table = self._session.run(call, sql, batch if len(rows) > 1 else rows[0])
        return convert(table, self._output(output))

    def _key_columns(self, call: Call, name: str, version: int | None) -> list[str]:
        if version is None:
            served = self._session.run(
                call,
                "SELECT version FROM fstore.online_sets WHERE feature_set = ?",
                (name,),
                note="the version served online",
            ).to_pylist()
            if not served:
                raise NotFound(
                    f"feature set {name!r} is not online "
                    "(store.configure_online_serving(...) first)",
                    sql=call.sql,
                )
            version = int(served[0]["version"])
        cached = self._keys.get((name, version))
        if cached is not None:
            return cached
        rows = self._session.run(
            call,
            "SELECT DISTINCT g.entity FROM fstore.lineage AS l "
            "JOIN fstore.feature_groups AS g ON g.name = l.feature_group "
            "WHERE l.feature_set = ? AND l.set_version = ?",
            (name, version),
            note="the entity key of the set's groups",
        ).to_pylist()
        if not rows:
            raise NotFound(f"feature set {name!r} version {version} not found", sql=call.sql)
        keys = [k.strip() for k in str(rows[0]["entity"]).split(",")]
        self._keys[(name, version)] = keys
        return keys

    # ------------------------------------------------------------------- alerting

    def create_alert_channel(
        self,
        name: str,
        type: str = "slack",
        *,
        webhook: str,
        headers: Mapping[str, str] | None = None,
        rate: float | None = None,
        replace: bool = False,
    ) -> str:
        """Creates an alert channel for monitors and returns its SQL (secrets as ``***``).

        ``CREATE ALERT CHANNEL name TYPE slack WEBHOOK '…'`` (Slack's incoming webhooks), or
        ``type="webhook"`` (generic JSON to ``webhook``, with ``headers``). ``rate`` limits
        messages per second.
        The server stores the URL and headers as secrets (``fstore.alert_channels`` masks
        them); only administrators manage channels.

        Raises :class:`~fstore.errors.ServerFeatureMissing` on a server without monitoring
        (issue 15)."""
        call = self._begin()
        if type not in ("slack", "webhook"):
            raise InvalidArgument(f"alert channel type {type!r}: use 'slack' or 'webhook'")
        keyword = "WEBHOOK" if type == "slack" else "URL"
        head = (
            f"CREATE {'OR REPLACE ' if replace else ''}ALERT CHANNEL {identifier(name)} "
            f"TYPE {type} {keyword} "
        )
        sql, shown = head + literal(webhook), head + "'***'"
        if headers:
            real = [f"{literal(k)} = {literal(v)}" for k, v in headers.items()]
            masked = [f"{literal(k)} = '***'" for k in headers]
            sql += f" HEADERS ({', '.join(real)})"
            shown += f" HEADERS ({', '.join(masked)})"
        if rate is not None:
            sql += f" RATE {literal(float(rate))}"
            shown += f" RATE {literal(float(rate))}"
        with monitoring_statement(call, "ALERT CHANNEL"):
            self._session.run(
                call, sql, note="the URL and headers are secrets: shown as ***", shown=shown
            )
        return call.sql


MONITORING = "monitoring: CREATE MONITOR / CREATE ALERT CHANNEL, issue 15"
"""The server feature the monitoring calls need."""


class monitoring_statement:
    """Turns the server's refusal of an unknown monitoring statement (a syntax error on
    ``MONITOR`` / ``ALERT CHANNEL``, or an unknown ``fstore.monitors`` table) into
    :class:`ServerFeatureMissing`; any other error passes unchanged."""

    def __init__(self, call: Call, keyword: str) -> None:
        self.call = call
        self.keyword = keyword

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, tb: object) -> Literal[False]:
        if isinstance(error, FStoreError) and statement_unknown(error, self.keyword):
            raise ServerFeatureMissing(MONITORING, str(error), sql=self.call.sql) from None
        return False


def statement_unknown(error: FStoreError, keyword: str) -> bool:
    """Whether ``error`` says the server does not know a statement or table at all (as opposed
    to refusing a known one): a syntax error found at ``keyword``, "not supported", or an
    unknown ``fstore.`` system table."""
    text = error.message
    words = keyword.split()
    at_keyword = any(re.search(rf"found: {re.escape(w)}\b", text, re.IGNORECASE) for w in words)
    if error.code == "INVALID_ARGUMENT" and "syntax error" in text and at_keyword:
        return True
    if "not supported" in text.lower() and keyword.lower() in text.lower():
        return True
    return bool(re.search(r"table '?fstore\.(fstore\.)?monitor", text) and "not found" in text)
