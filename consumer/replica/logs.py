"""Structured logs: JSON lines (or a console view), with per-record context bound once."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import orjson
import structlog
from structlog.typing import EventDict, WrappedLogger

from consumer.records.log_context import merge_record_fields

_REDACTED = "[redacted]"


def _redact_api_key(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Masks the API key wherever it might appear, e.g. inside an error's text."""
    key = os.environ.get("ANTHROPIC_API_KEY")
    if not key or len(key) < 8:
        return event_dict
    for name, value in event_dict.items():
        if isinstance(value, str) and key in value:
            event_dict[name] = value.replace(key, _REDACTED)
    return event_dict


def _orjson_dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    """Configures structlog for the process; safe to call more than once.

    ``auto`` is the human-readable console view on a terminal and JSON lines
    everywhere else (containers, files, pipes), where machines read them.
    """
    console = log_format == "console" or (log_format == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if console
        else structlog.processors.JSONRenderer(serializer=_orjson_dumps)
    )
    shared: list[Any] = [
        merge_record_fields,
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Libraries (aiokafka, the SDK) log through the standard library: render
    # their warnings the same way, so every line of the replica is one format.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _redact_api_key,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            _redact_api_key,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
