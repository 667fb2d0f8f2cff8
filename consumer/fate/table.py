"""The one table that decides what becomes of a record that meets an error.

Two steps, both here, so that a newcomer reads a record's every fate in one
file:

1. ``classify`` turns whatever was raised into a typed ``ProcessingError``:
   the API's answers by HTTP status (not by SDK exception class: those moved
   between SDK versions, 529 and 413 in particular), remote document
   servers' answers by status, Kafka's errors by their retriable flag, and
   anything unforeseen into ``UnexpectedError``.
2. ``FateTable.decide`` maps the typed error, where it happened and what the
   record has been through to one ``Fate``: dead-letter it, retry it with
   backoff (spending its budget), wait (retry without spending the budget),
   or stop (leave it uncommitted for the partition's next owner).

The processor asks and does what it is told; nothing else decides a fate.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from aiokafka.errors import KafkaConnectionError, KafkaError

from consumer.fate.backoff import Backoff
from consumer.fate.errors import (
    ApiAuthenticationFailed,
    ApiConnectionFailed,
    ApiRequestRejected,
    ApiTimeout,
    ApiUnavailable,
    DocumentNotFound,
    FetchFailed,
    FetchUnavailable,
    KafkaUnavailable,
    PermanentError,
    ProcessingError,
    PublishRejected,
    RateLimited,
    SpendLimitReached,
    TransientError,
    UnexpectedError,
)

if TYPE_CHECKING:
    import anthropic

# --- 1. what was raised -> a typed error -------------------------------------------------

# The Messages API's HTTP status -> error. Not listed: other 5xx are ApiUnavailable, other 4xx
# ApiRequestRejected.
API_STATUS: Mapping[int, type[ProcessingError]] = {
    400: ApiRequestRejected,
    401: ApiAuthenticationFailed,
    402: ApiAuthenticationFailed,  # billing: the organisation must act, like a bad key
    403: ApiAuthenticationFailed,
    404: ApiRequestRejected,  # unknown model
    408: ApiUnavailable,
    409: ApiUnavailable,
    413: ApiRequestRejected,
    422: ApiRequestRejected,
    429: RateLimited,
    500: ApiUnavailable,
    502: ApiUnavailable,
    503: ApiUnavailable,
    504: ApiUnavailable,
    529: ApiUnavailable,
}

# A remote document server's HTTP status -> error. Not listed: other 5xx are FetchUnavailable,
# other 4xx FetchFailed.
FETCH_STATUS: Mapping[int, type[ProcessingError]] = {
    404: DocumentNotFound,
    410: DocumentNotFound,
    408: FetchUnavailable,
    429: FetchUnavailable,
}

# enforced_spend_limit_reached (organisation cap) and contract_spend_limit_reached (contract cap).
SPEND_LIMIT_CODE = "spend_limit_reached"
# Frames of an unexpected exception's traceback kept in its dead letter.
_TRACEBACK_FRAMES = 4


def retry_after_seconds(headers: Any) -> float | None:
    """The server's requested delay, from retry-after-ms or retry-after."""
    get = getattr(headers, "get", None)
    if get is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def fetch_status_error(url: str, status: int) -> ProcessingError | None:
    """The error of a document server's answer, or None when the status is not a failure."""
    if status < 400:
        return None
    fate = FETCH_STATUS.get(status, FetchUnavailable if status >= 500 else FetchFailed)
    return fate(f"{url} answered {status}")


def _api_status_error(error: anthropic.APIStatusError) -> ProcessingError:
    status = error.status_code
    retry_after = retry_after_seconds(error.response.headers)
    message = f"API answered {status}: {error.message}"
    if status == 429 and retry_after is None and _is_spend_limit(error):
        return SpendLimitReached(message)
    fate = API_STATUS.get(status, ApiUnavailable if status >= 500 else ApiRequestRejected)
    if issubclass(fate, TransientError):
        return fate(message, retry_after=retry_after)
    return fate(message)


def _is_spend_limit(error: anthropic.APIStatusError) -> bool:
    return SPEND_LIMIT_CODE in str(error.body) or "spend limit" in str(error.message).lower()


def unexpected(error: BaseException) -> UnexpectedError:
    """An UnexpectedError naming the exception and the innermost frames where it was raised."""
    frames = traceback.extract_tb(error.__traceback__)[-_TRACEBACK_FRAMES:]
    where = " <- ".join(
        f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}" for frame in reversed(frames)
    )
    return UnexpectedError(f"{type(error).__name__}: {error}" + (f" (at {where})" if where else ""))


def classify(error: BaseException) -> ProcessingError:
    """The typed error for any exception raised while processing a record."""
    if isinstance(error, ProcessingError):
        return error
    if isinstance(error, KafkaError):
        if error.retriable or isinstance(error, KafkaConnectionError):
            return KafkaUnavailable(f"Kafka: {type(error).__name__}: {error}")
        return PublishRejected(f"Kafka refused it: {type(error).__name__}: {error}")
    if type(error).__module__.partition(".")[0] == "anthropic":
        return _classify_api(error)
    return unexpected(error)


def _classify_api(error: BaseException) -> ProcessingError:
    """An SDK exception's typed error.

    The SDK is imported here, not at the top: an exception of it means it is loaded already,
    and a replica on the ``local`` backend never loads its ~40 MB of modules.
    """
    import anthropic

    if isinstance(error, anthropic.APITimeoutError):
        return ApiTimeout("the API call timed out")
    if isinstance(error, anthropic.APIConnectionError):
        return ApiConnectionFailed(f"the API cannot be reached: {error}")
    if isinstance(error, anthropic.APIStatusError):
        return _api_status_error(error)
    if isinstance(error, anthropic.APIError):
        return ApiRequestRejected(f"unexpected API error: {error}")
    return unexpected(error)


# --- 2. a typed error -> a fate ------------------------------------------------------------


class Fate(StrEnum):
    DEAD_LETTER = "dead_letter"  # publish a dead letter, then the offset is done
    RETRY = "retry"  # try the step again after a backoff, spending the record's budget
    WAIT = "wait"  # try the step again after a backoff, budget untouched: the cause is not the record
    STOP = "stop"  # give the record up uncommitted: the replica is stopping, the next owner redoes it


class Stage(StrEnum):
    """Where in a record's path an error happened."""

    EXTRACT = "extract"  # decode, fetch, inspect, extract
    PUBLISH_RESULT = "publish_result"
    PUBLISH_LETTER = "publish_letter"


# Fates by error class, looked up along the class's MRO (most specific first).
_FATES: Mapping[type[ProcessingError], Fate] = {
    PermanentError: Fate.DEAD_LETTER,
    UnexpectedError: Fate.DEAD_LETTER,
    TransientError: Fate.RETRY,
    # The limiter already holds every call until the 429's retry-after: the record waits too.
    RateLimited: Fate.WAIT,
    # Lifted by a person, not by time: documents wait in Kafka, never in the dead-letter topic.
    SpendLimitReached: Fate.WAIT,
    # The outcome must be stored before the offset is marked done: retried until acknowledged.
    KafkaUnavailable: Fate.WAIT,
}
# While most recent API calls fail, a failure says more about the API than about the
# document: a long outage must leave documents waiting, not dead-lettered.
_OUTAGE_SENSITIVE = (ApiUnavailable, ApiTimeout, ApiConnectionFailed)


@dataclass(frozen=True, slots=True)
class Attempts:
    """What one step of a record has been through so far."""

    made: int = 0  # every attempt, reported in the result or letter
    spent: int = 0  # attempts that count against the retry budget
    waits: int = 0  # waits since the last attempt that spent the budget
    budget_since: float = 0.0  # monotonic time the current budget started
    first_failure_at: datetime | None = None

    def another(self) -> Attempts:
        return replace(self, made=self.made + 1)


@dataclass(frozen=True, slots=True)
class Decision:
    fate: Fate
    error: ProcessingError
    attempts: Attempts  # as they stand after this failure
    delay: float = 0.0  # seconds before the next attempt (RETRY, WAIT)


class FateTable:
    """Decides fates; ``outage_suspected`` is the circuit breaker's view of the API."""

    def __init__(
        self,
        backoff: Backoff,
        outage_suspected: Callable[[], bool] = lambda: False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backoff = backoff
        self._outage_suspected = outage_suspected
        self._clock = clock

    def fresh(self, since: float | None = None) -> Attempts:
        """The attempts of a step that started at ``since`` (monotonic; default now)."""
        return Attempts(budget_since=self._clock() if since is None else since)

    def decide(self, raised: BaseException, attempts: Attempts, stage: Stage, *, stopping: bool) -> Decision:
        """The fate of a step that raised ``raised`` on attempt ``attempts.made``.

        Any exception may be passed: it is classified first.
        """
        error = classify(raised)
        attempts = replace(attempts, first_failure_at=attempts.first_failure_at or datetime.now(UTC))
        fate = self._base_fate(error, stage)
        if fate is Fate.DEAD_LETTER:
            return Decision(fate, error, attempts)
        if stopping:
            return Decision(Fate.STOP, error, attempts)
        retry_after = error.retry_after if isinstance(error, TransientError) else None
        if fate is Fate.WAIT:
            # The budget restarts once the cause is gone.
            waits = attempts.waits + 1
            attempts = replace(attempts, spent=0, waits=waits, budget_since=self._clock())
            return Decision(fate, error, attempts, self.backoff.delay(waits, retry_after))
        spent = attempts.spent + 1
        delay = self.backoff.delay(spent, retry_after)
        attempts = replace(attempts, spent=spent, waits=0)
        if self.backoff.gives_up(spent, self._clock() - attempts.budget_since, delay):
            return Decision(Fate.DEAD_LETTER, error, attempts)
        return Decision(Fate.RETRY, error, attempts, delay)

    def _base_fate(self, error: ProcessingError, stage: Stage) -> Fate:
        if stage is Stage.PUBLISH_LETTER:
            # The letter is the last place a record can go: when even its smallest form is
            # refused (an authorisation or topic misconfiguration), it waits, loudly, for an
            # operator rather than be lost.
            return Fate.WAIT
        if isinstance(error, _OUTAGE_SENSITIVE) and self._outage_suspected():
            return Fate.WAIT
        for cls in type(error).__mro__:
            if issubclass(cls, ProcessingError) and cls in _FATES:
                return _FATES[cls]
        return Fate.DEAD_LETTER
