"""The log fields of the record a task is working on: bound once, on every line the task logs.

One context variable holding the record's fields, set once per record (each
record runs in its own task, whose context is its own), is cheaper on the hot
path than binding each field separately, and ``merge_record_fields`` puts
them on every log line the task writes.
"""

from __future__ import annotations

from contextvars import ContextVar

from structlog.typing import EventDict, WrappedLogger

_RECORD: ContextVar[dict[str, object] | None] = ContextVar("docmill_record", default=None)


def start_record(**fields: object) -> None:
    """Begins the record's log context (call it first thing in the record's own task)."""
    _RECORD.set(fields)


def bind_record(**fields: object) -> None:
    """Adds fields learnt later (e.g. the document id, once decoded) to the record's context."""
    current = _RECORD.get()
    if current is None:
        _RECORD.set(fields)
    else:
        current.update(fields)


def merge_record_fields(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A structlog processor: the current record's fields, unless the line sets them itself."""
    fields = _RECORD.get()
    if fields:
        for name, value in fields.items():
            event_dict.setdefault(name, value)
    return event_dict
