"""The model table: lookups, tiered prices, start-up verdicts, and the table's own completeness."""

from __future__ import annotations

from datetime import date

import pytest

from schemas.messages import Usage
from schemas.models import ModelStatus, UnknownModel, model_facts, model_table, startup_problem


def test_dated_4x_id_is_its_models_entry() -> None:
    """claude-haiku-4-5-20251001 is claude-haiku-4-5: the same facts, the same prices."""
    assert model_facts("claude-haiku-4-5-20251001") == model_facts("claude-haiku-4-5")
    assert model_facts("claude-haiku-4-5").prices[0].input == 1.0


def test_unknown_model_is_refused_naming_the_current_ones() -> None:
    with pytest.raises(UnknownModel, match=r"gpt-4o.*claude-haiku-5-5"):
        model_facts("gpt-4o")


@pytest.mark.parametrize(
    "model", ["my-claude-haiku-4-5", "claude-haiku-4-5-2025", "claude-haiku-5-5-20261001x"]
)
def test_an_id_that_merely_contains_a_known_one_is_unknown(model: str) -> None:
    with pytest.raises(UnknownModel):
        model_facts(model)


def test_cost_is_each_token_kind_times_its_price() -> None:
    facts = model_facts("claude-sonnet-5-5")
    usage = Usage(
        input_tokens=10_000,
        output_tokens=2_000,
        cache_creation_input_tokens=4_000,
        cache_read_input_tokens=20_000,
    )
    expected = (10_000 * 2 + 2_000 * 10 + 4_000 * 2.5 + 20_000 * 0.10) / 1_000_000
    assert facts.cost_usd(usage) == pytest.approx(expected)


def test_one_hour_cache_writes_are_priced_apart() -> None:
    facts = model_facts("claude-sonnet-5-5")
    usage = Usage(cache_creation_input_tokens=1_000_000)
    assert facts.cost_usd(usage, cache_write_1h_tokens=400_000) == pytest.approx(0.6 * 2.5 + 0.4 * 4)


def test_haiku_5_5_prices_the_whole_request_at_the_higher_tier_above_100k_prompt_tokens() -> None:
    """At 100,000 prompt tokens the low tier; one more (a cache read counts) and all of it is dearer."""
    facts = model_facts("claude-haiku-5-5")
    at_threshold = Usage(input_tokens=100_000, output_tokens=1_000)
    assert facts.cost_usd(at_threshold) == pytest.approx((100_000 * 0.10 + 1_000 * 0.50) / 1e6)
    above = Usage(input_tokens=90_000, cache_read_input_tokens=10_001, output_tokens=1_000)
    assert facts.cost_usd(above) == pytest.approx((90_000 * 0.50 + 10_001 * 0.05 + 1_000 * 2.50) / 1e6)


def test_batch_calls_cost_half() -> None:
    facts = model_facts("claude-haiku-5-5")
    usage = Usage(input_tokens=5_000, output_tokens=500)
    assert facts.cost_usd(usage, batch=True) == pytest.approx(facts.cost_usd(usage) / 2)


def test_zero_usage_costs_nothing() -> None:
    assert model_facts("claude-opus-5-5").cost_usd(Usage()) == 0.0


def test_startup_verdicts_by_status() -> None:
    """Current: silent; legacy: a warning; deprecated: a warning naming its end of life; retired or
    past its end of life: an error naming the current models."""
    today = date(2026, 12, 2)
    assert startup_problem("claude-haiku-5-5", today) == (None, None)
    error, warning = startup_problem("claude-haiku-4-5", today)
    assert error is None
    assert warning
    assert "legacy" in warning
    error, warning = startup_problem("claude-opus-4-5", today)
    assert error is None
    assert warning
    assert "2027-01-22" in warning
    error, warning = startup_problem("claude-sonnet-4-5", today)
    assert error
    assert "retired" in error
    assert "claude-haiku-5-5" in error
    assert warning is None
    error, _ = startup_problem("claude-opus-4-5", date(2027, 1, 22))
    assert error
    assert "retired" in error
    error, _ = startup_problem("claude-nonexistent-1", today)
    assert error
    assert "not in the model table" in error


def test_every_entry_is_complete_and_sourced() -> None:
    """Every model has a source and date, sorted ascending tiers ending unbounded, non-negative
    prices, a pool, and a cheapest thinking setting it accepts."""
    table = model_table()
    assert table.current()
    for model_id, facts in table.models.items():
        assert facts.id == model_id
        assert facts.source
        assert facts.as_of
        bounds = [tier.up_to_prompt_tokens for tier in facts.prices]
        assert bounds[-1] is None, model_id
        assert all(b is not None for b in bounds[:-1]), model_id
        for tier in facts.prices:
            assert (
                min(tier.input, tier.output, tier.cache_write_5m, tier.cache_write_1h, tier.cache_read) >= 0
            )
        assert facts.rate_limit_pool
        if facts.thinking.extraction is not None:
            assert facts.thinking.extraction in facts.thinking.modes, model_id
        if facts.thinking.extraction_effort is not None:
            assert facts.thinking.extraction_effort in facts.effort, model_id
        if facts.status is ModelStatus.DEPRECATED:
            assert facts.end_of_life is not None, model_id


def test_no_current_model_is_asked_for_a_forced_tool_call() -> None:
    """The structured-output way is the same on every model: output_config (a forced tool call is
    a 400 on Sonnet 5.5, Opus 5.5 and Fable)."""
    for facts in model_table().models.values():
        assert facts.structured_output == "output_config"
    assert not model_facts("claude-sonnet-5-5").forced_tool_choice
