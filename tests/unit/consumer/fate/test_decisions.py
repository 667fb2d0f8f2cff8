"""The fate table's second step, ``FateTable.decide``: every error class meets exactly one fate."""

from __future__ import annotations

import inspect
import random

import pytest

from consumer.fate import errors
from consumer.fate.backoff import Backoff
from consumer.fate.errors import (
    ApiConnectionFailed,
    ApiTimeout,
    ApiUnavailable,
    DocumentNotFound,
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
from consumer.fate.table import Attempts, Fate, FateTable, Stage
from schemas.error_classes import ErrorClass
from tests.helpers.clock import ManualClock

LEAF_CLASSES = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, ProcessingError) and cls not in (ProcessingError, PermanentError, TransientError)
]


def table(
    clock: ManualClock, *, outage: bool = False, total_seconds: float = 60.0, max_attempts: int = 4
) -> FateTable:
    """A fate table on a manual clock; ``outage`` is what the breaker would say."""
    policy = Backoff(
        base_seconds=1.0, max_seconds=8.0, total_seconds=total_seconds, max_attempts=max_attempts
    )
    return FateTable(policy, outage_suspected=lambda: outage, clock=clock.clock)


def first_attempt(fates: FateTable) -> Attempts:
    return fates.fresh().another()


def test_every_error_class_name_is_a_contract_name_and_back() -> None:
    """Each exception class is one ErrorClass member, and each member has its exception class."""
    assert {cls.__name__ for cls in LEAF_CLASSES} == {member.value for member in ErrorClass}
    for cls in LEAF_CLASSES:
        assert cls("x").error_class is ErrorClass(cls.__name__)


@pytest.mark.parametrize("cls", LEAF_CLASSES, ids=lambda cls: cls.__name__)
def test_every_error_class_has_a_fate_at_every_stage(cls: type[ProcessingError]) -> None:
    """No class falls through: each meets one of the four fates, wherever it happens."""
    fates = table(ManualClock())
    for stage in Stage:
        decision = fates.decide(cls("x"), first_attempt(fates), stage, stopping=False)
        assert decision.fate in set(Fate)
        assert decision.error.error_class == cls.__name__


@pytest.mark.parametrize(
    "cls", [c for c in LEAF_CLASSES if issubclass(c, PermanentError)], ids=lambda c: c.__name__
)
def test_permanent_errors_are_dead_lettered_at_once(cls: type[ProcessingError]) -> None:
    """A permanent error is dead-lettered on its first attempt; its letter is not retryable,
    except where a replay under other settings can succeed (OcrTimeout: a larger time limit)."""
    fates = table(ManualClock())
    decision = fates.decide(cls("x"), first_attempt(fates), Stage.EXTRACT, stopping=False)
    assert decision.fate is Fate.DEAD_LETTER
    assert decision.error.retryable is (cls.__name__ == "OcrTimeout")
    assert decision.attempts.made == 1


def test_transient_errors_retry_with_growing_backoff_until_the_budget_is_spent() -> None:
    """An API 5xx is retried with jittered delays under a doubling ceiling, then dead-lettered (retryable)."""
    clock = ManualClock()
    fates = table(clock)
    attempts = fates.fresh()
    seen: list[Fate] = []
    for ceiling in (1.0, 2.0, 4.0):
        attempts = attempts.another()
        decision = fates.decide(ApiUnavailable("503"), attempts, Stage.EXTRACT, stopping=False)
        seen.append(decision.fate)
        assert 0.0 <= decision.delay <= ceiling
        attempts = decision.attempts
    last = fates.decide(ApiUnavailable("503"), attempts.another(), Stage.EXTRACT, stopping=False)
    assert seen == [Fate.RETRY, Fate.RETRY, Fate.RETRY]
    assert last.fate is Fate.DEAD_LETTER
    assert last.error.retryable is True
    assert last.attempts.made == 4
    assert last.attempts.first_failure_at is not None


def test_the_total_time_budget_ends_retries_early() -> None:
    """Retrying stops once the time spent plus the next delay would pass total_seconds."""
    clock = ManualClock()
    fates = table(clock, total_seconds=5.0, max_attempts=100)
    attempts = fates.fresh().another()
    clock.now += 6.0
    decision = fates.decide(FetchUnavailable("502"), attempts, Stage.EXTRACT, stopping=False)
    assert decision.fate is Fate.DEAD_LETTER


def test_retry_after_is_a_floor_for_the_delay() -> None:
    """A server's retry-after is never shortened by the jitter."""
    fates = table(ManualClock())
    decision = fates.decide(
        ApiUnavailable("503", retry_after=30.0), first_attempt(fates), Stage.EXTRACT, stopping=False
    )
    assert decision.fate is Fate.RETRY
    assert decision.delay >= 30.0


@pytest.mark.parametrize(
    "error", [RateLimited("429", retry_after=2.0), SpendLimitReached("cap"), KafkaUnavailable("leader moved")]
)
def test_waits_never_spend_the_budget(error: TransientError) -> None:
    """429s, the spend cap and Kafka outages wait however long they last: never dead-lettered for it."""
    clock = ManualClock()
    fates = table(clock)
    attempts = fates.fresh()
    for _ in range(50):
        attempts = attempts.another()
        clock.now += 30.0
        decision = fates.decide(error, attempts, Stage.EXTRACT, stopping=False)
        assert decision.fate is Fate.WAIT
        assert decision.attempts.spent == 0
        attempts = decision.attempts
    assert attempts.made == 50


def test_a_wait_restarts_the_budget() -> None:
    """After the API comes back from a wait, a failing record has its whole budget again."""
    clock = ManualClock()
    fates = table(clock, max_attempts=2)
    attempts = fates.decide(
        ApiUnavailable("503"), first_attempt(fates), Stage.EXTRACT, stopping=False
    ).attempts
    assert attempts.spent == 1
    attempts = fates.decide(RateLimited("429"), attempts.another(), Stage.EXTRACT, stopping=False).attempts
    assert attempts.spent == 0
    decision = fates.decide(ApiUnavailable("503"), attempts.another(), Stage.EXTRACT, stopping=False)
    assert decision.fate is Fate.RETRY


@pytest.mark.parametrize("cls", [ApiUnavailable, ApiTimeout, ApiConnectionFailed])
def test_api_failures_during_a_suspected_outage_wait(cls: type[TransientError]) -> None:
    """While the breaker suspects an outage, API failures wait instead of spending the budget."""
    clock = ManualClock()
    fates = table(clock, outage=True, max_attempts=1)
    decision = fates.decide(cls("down"), first_attempt(fates), Stage.EXTRACT, stopping=False)
    assert decision.fate is Fate.WAIT


def test_a_failing_document_server_is_not_an_api_outage() -> None:
    """A remote document server's 5xx spends the budget even while the API looks down."""
    fates = table(ManualClock(), outage=True, max_attempts=1)
    decision = fates.decide(FetchUnavailable("502"), first_attempt(fates), Stage.EXTRACT, stopping=False)
    assert decision.fate is Fate.DEAD_LETTER


@pytest.mark.parametrize("error", [ApiUnavailable("503"), RateLimited("429"), KafkaUnavailable("down")])
def test_stopping_replicas_give_records_up_instead_of_waiting(error: TransientError) -> None:
    """A replica that is stopping leaves a record it would retry uncommitted, for the next owner."""
    fates = table(ManualClock())
    assert fates.decide(error, first_attempt(fates), Stage.EXTRACT, stopping=True).fate is Fate.STOP


def test_stopping_replicas_still_dead_letter_permanent_failures() -> None:
    """A permanent failure is stored as a letter even while stopping: its fate is already known."""
    fates = table(ManualClock())
    decision = fates.decide(DocumentNotFound("gone"), first_attempt(fates), Stage.EXTRACT, stopping=True)
    assert decision.fate is Fate.DEAD_LETTER


def test_a_result_kafka_refuses_is_dead_lettered() -> None:
    """A result larger than the topic accepts becomes a PublishRejected dead letter."""
    fates = table(ManualClock())
    decision = fates.decide(
        PublishRejected("too large"), first_attempt(fates), Stage.PUBLISH_RESULT, stopping=False
    )
    assert decision.fate is Fate.DEAD_LETTER


@pytest.mark.parametrize(
    "error", [PublishRejected("refused"), UnexpectedError("bug"), KafkaUnavailable("down")]
)
def test_a_letter_that_cannot_be_stored_waits(error: ProcessingError) -> None:
    """The dead letter is the last place a record can go: failing to store it waits, never drops it."""
    fates = table(ManualClock())
    decision = fates.decide(error, first_attempt(fates), Stage.PUBLISH_LETTER, stopping=False)
    assert decision.fate is Fate.WAIT


def test_a_bug_is_dead_lettered_as_unexpected_error_with_its_traceback() -> None:
    """An exception of no known class is dead-lettered at once as UnexpectedError, retryable."""
    fates = table(ManualClock())
    prices: dict[str, float] = {}
    try:
        prices["missing"]
    except KeyError as bug:
        decision = fates.decide(bug, first_attempt(fates), Stage.EXTRACT, stopping=False)
    assert decision.fate is Fate.DEAD_LETTER
    assert isinstance(decision.error, UnexpectedError)
    assert decision.error.retryable is True
    assert "KeyError" in str(decision.error)
    assert "test_decisions.py" in str(decision.error)


def test_the_first_failure_time_is_kept_across_retries() -> None:
    """first_failure_at is set by the first failure and not moved by later ones."""
    clock = ManualClock()
    fates = table(clock)
    first = fates.decide(ApiUnavailable("503"), first_attempt(fates), Stage.EXTRACT, stopping=False).attempts
    later = fates.decide(ApiUnavailable("503"), first.another(), Stage.EXTRACT, stopping=False).attempts
    assert later.first_failure_at == first.first_failure_at


def test_delays_come_from_the_one_backoff_policy() -> None:
    """The table's delays are the backoff policy's, so every retry in docmill backs off the same way."""
    random.seed(3)
    fates = table(ManualClock())
    delays = [
        fates.decide(ApiUnavailable("503"), first_attempt(fates), Stage.EXTRACT, stopping=False).delay
        for _ in range(200)
    ]
    assert min(delays) >= 0.0
    assert max(delays) <= fates.backoff.ceiling(1)
    assert len(set(delays)) > 150
