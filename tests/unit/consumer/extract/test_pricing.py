"""Unit tests of consumer.pricing: model prices by longest prefix and cost arithmetic."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from consumer.extract.pricing import PRICES_FILE, ModelPrice, UnknownModelPrice, price_for
from schemas.messages import Usage


def _row(prefix: str) -> dict[str, float | str]:
    table = orjson.loads(PRICES_FILE.read_bytes())
    return next(entry for entry in table["models"] if entry["prefix"] == prefix)


def test_dated_haiku_id_uses_the_haiku_row() -> None:
    """claude-haiku-4-5-20251001 is priced by the claude-haiku-4-5 row of the table."""
    row = _row("claude-haiku-4-5")
    price = price_for("claude-haiku-4-5-20251001")
    assert price == ModelPrice(
        input=float(row["input"]),
        output=float(row["output"]),
        cache_write_5m=float(row["cache_write_5m"]),
        cache_write_1h=float(row["cache_write_1h"]),
        cache_read=float(row["cache_read"]),
    )
    assert price.input == 1.0
    assert price.output == 5.0


def test_alias_and_dated_id_cost_the_same() -> None:
    """A model alias and its dated snapshot get the same price."""
    assert price_for("claude-sonnet-4-5") == price_for("claude-sonnet-4-5-20250929")


def test_cost_usd_arithmetic() -> None:
    """Cost is the sum of each token kind times its per-million price."""
    price = ModelPrice(input=1.0, output=5.0, cache_write_5m=1.25, cache_write_1h=2.0, cache_read=0.1)
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=200_000,
        cache_creation_input_tokens=400_000,
        cache_read_input_tokens=2_000_000,
    )
    # 1.0 + 0.2*5 + 0.4*1.25 + 2*0.1
    assert price.cost_usd(usage) == pytest.approx(1.0 + 1.0 + 0.5 + 0.2)


def test_small_usage_costs_fractions_of_a_cent() -> None:
    """A typical small extraction on haiku costs its exact fraction of a dollar."""
    usage = Usage(input_tokens=1500, output_tokens=200)
    assert price_for("claude-haiku-4-5").cost_usd(usage) == pytest.approx(
        (1500 * 1.0 + 200 * 5.0) / 1_000_000
    )


def test_zero_usage_costs_nothing() -> None:
    """No tokens, no cost."""
    assert price_for("claude-opus-4-5").cost_usd(Usage()) == 0.0


def test_unknown_model_is_refused() -> None:
    """A model missing from the table raises UnknownModelPrice naming it; docmill never guesses."""
    with pytest.raises(UnknownModelPrice, match="gpt-4o"):
        price_for("gpt-4o")


def test_prefix_must_match_from_the_start() -> None:
    """A model id that merely contains a known prefix is not priced by it."""
    with pytest.raises(UnknownModelPrice):
        price_for("my-claude-haiku-4-5")


def test_longest_prefix_wins(tmp_path: Path) -> None:
    """When several prefixes match, the longest (most specific) one is used."""
    table = {
        "models": [
            {
                "prefix": "claude-x",
                "input": 1,
                "output": 2,
                "cache_write_5m": 3,
                "cache_write_1h": 5,
                "cache_read": 4,
            },
            {
                "prefix": "claude-x-large",
                "input": 10,
                "output": 20,
                "cache_write_5m": 30,
                "cache_write_1h": 50,
                "cache_read": 40,
            },
        ]
    }
    prices = tmp_path / "prices.json"
    prices.write_bytes(orjson.dumps(table))
    assert price_for("claude-x-large-2026", prices).input == 10
    assert price_for("claude-x-small", prices).input == 1


def test_every_table_row_is_complete() -> None:
    """Every row of the shipped table has all four prices as non-negative numbers."""
    table = orjson.loads(PRICES_FILE.read_bytes())
    assert table["models"]
    for entry in table["models"]:
        for key in ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read"):
            assert isinstance(entry[key], int | float)
            assert entry[key] >= 0
