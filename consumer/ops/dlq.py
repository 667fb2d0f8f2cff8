"""The dead-letter topic read as a tool: decoding letters, filtering them, counting them.

Replaying them is ``consumer.ops.replay``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from producer.kafka_io import read_to_end
from schemas.messages import DeadLetter
from schemas.settings import KafkaSettings
from schemas.topics import FAILURE_HEADERS, Header

_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Dropped on replay (the replay count is written anew); the original headers are kept.
_NOT_REPLAYED = frozenset({*FAILURE_HEADERS, Header.REPLAY_COUNT})

Record = ConsumerRecord[bytes, bytes]


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """An RFC 3339 timestamp, or a time ago like ``2h``, ``30m``, ``7d``."""
    match = _RELATIVE.match(text)
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: amount})
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an RFC 3339 time or a duration like 2h: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class LetterFilter:
    error_class: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    document_id: str | None = None
    job_id: str | None = None

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (self.error_class is None or letter.error_class == self.error_class)
            and (self.since is None or letter.last_failure_at >= self.since)
            and (self.until is None or letter.last_failure_at <= self.until)
            and (self.document_id is None or letter.document_id == self.document_id)
            and (self.job_id is None or letter.job_id == self.job_id)
        )

    def fingerprint(self) -> str:
        """Stable across runs of the same replay, so its consumer group resumes it."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:12]


def decode_letter(value: bytes | None) -> DeadLetter | None:
    if not value:
        return None
    try:
        return DeadLetter.model_validate_json(value)
    except ValidationError:
        return None


def original_bytes(letter: DeadLetter) -> bytes | None:
    """The failed record's value exactly as it was consumed."""
    if letter.original_value is None:
        return None
    if letter.original_encoding == "base64":
        return base64.standard_b64decode(letter.original_value)
    return letter.original_value.encode("utf-8")


def replay_count(headers: Sequence[tuple[str, bytes]]) -> int:
    for name, value in headers:
        if name == Header.REPLAY_COUNT:
            try:
                return int(value)
            except ValueError:
                return 0
    return 0


def replay_headers(headers: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """The original message's headers, with the replay count incremented."""
    kept = [(name, value) for name, value in headers if name not in _NOT_REPLAYED]
    return [*kept, (Header.REPLAY_COUNT, str(replay_count(headers) + 1).encode())]


# --- inspect ------------------------------------------------------------------------------


@dataclass
class Inspection:
    matched: int = 0
    unreadable: int = 0
    by_class: Counter[str] = field(default_factory=Counter)
    by_hour: Counter[str] = field(default_factory=Counter)
    recent: list[DeadLetter] = field(default_factory=list)


async def letters(kafka: KafkaSettings, dlq_topic: str) -> AsyncIterator[tuple[Record, DeadLetter | None]]:
    """Every record of the dead-letter topic and its decoded letter (None when unreadable)."""
    async for record in read_to_end(kafka, dlq_topic):
        yield record, decode_letter(record.value)


async def inspect(kafka: KafkaSettings, dlq_topic: str, selection: LetterFilter, limit: int) -> Inspection:
    """Counts and the most recent letters matching the filter; reads without committing."""
    result = Inspection()
    async for _, letter in letters(kafka, dlq_topic):
        if letter is None:
            result.unreadable += 1
            continue
        if not selection.matches(letter):
            continue
        result.matched += 1
        result.by_class[letter.error_class] += 1
        result.by_hour[letter.last_failure_at.astimezone(UTC).strftime("%Y-%m-%dT%H:00Z")] += 1
        result.recent.append(letter)
        if len(result.recent) > limit:
            result.recent.sort(key=lambda item: item.last_failure_at, reverse=True)
            del result.recent[limit:]
    result.recent.sort(key=lambda item: item.last_failure_at, reverse=True)
    return result
