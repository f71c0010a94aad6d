"""inferlog: the permanent, tamper-evident record of every inference an AI system makes.

log = inferlog.open("sqlite:///inferlog.db", system="credit-scoring")
rid = log.record(model=inferlog.Model("credit-risk", "3.2.1"), input=x, output=y)
"""

from inferlog.errors import (
    InferlogError,
    NotDurable,
    NotFound,
    RecordInvalid,
    StoreUnavailable,
    UsageError,
)
from inferlog.record.model import (
    AccessEntry,
    AdminEntry,
    ErrorInfo,
    FeedbackEntry,
    InferenceRecord,
    Model,
    StoredEntry,
)
from inferlog.sdk import Log, open
from inferlog.sdk.integrations.sklearn import wrap
from inferlog.store import Page, Query, Store, open_store

__version__ = "0.1.0"  # the one place the version is written: the package metadata is built from it

__all__ = [
    "AccessEntry",
    "AdminEntry",
    "ErrorInfo",
    "FeedbackEntry",
    "InferenceRecord",
    "InferlogError",
    "Log",
    "Model",
    "NotDurable",
    "NotFound",
    "Page",
    "Query",
    "RecordInvalid",
    "Store",
    "StoreUnavailable",
    "StoredEntry",
    "UsageError",
    "open",
    "open_store",
    "wrap",
]
