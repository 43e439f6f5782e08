"""FStore's Python API: the user guide's calls, each one FStore SQL over Arrow Flight SQL.

>>> from fstore import FeatureStore
>>> store = FeatureStore()                      # $FSTORE_URL, $FSTORE_USER, $FSTORE_PASSWORD
>>> store.create_feature_group(name="customer_behavior", source_table="transactions",
...                            transformations=[agg], entity="customer")
>>> print(store.last_sql)                       # the statements the call ran

Modules, as the guide names them: :mod:`fstore.transformations` (``WindowAggregator``,
``Encoder``), :mod:`fstore.analysis` (``FeatureSelector``), :mod:`fstore.utils`
(``temporal_split``), :mod:`fstore.validation` (``FeatureValidator``), :mod:`fstore.monitoring`
(``DriftMonitor``, ``FeatureMonitor``), :mod:`fstore.experimentation` (``ABTest``); errors in
:mod:`fstore.errors`, SQL building in :mod:`fstore.sql`.
"""

from __future__ import annotations

from .errors import (
    AlreadyExists,
    FStoreError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ServerFeatureMissing,
    Unauthenticated,
)
from .results import (
    CorrelationMatrix,
    DriftReport,
    ExportResult,
    FeatureGroup,
    FeatureSelection,
    FeatureSet,
    ValidationReport,
)
from .store import DEFAULT_URL, FeatureStore, current_store

__all__ = [
    "DEFAULT_URL",
    "AlreadyExists",
    "CorrelationMatrix",
    "DriftReport",
    "ExportResult",
    "FStoreError",
    "FeatureGroup",
    "FeatureSelection",
    "FeatureSet",
    "FeatureStore",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ServerFeatureMissing",
    "Unauthenticated",
    "ValidationReport",
    "current_store",
]

__version__ = "0.1.0"
