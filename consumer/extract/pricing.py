"""What an API call cost, from the usage it reported and the price table in schemas/prices.json."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import orjson

import schemas
from schemas.messages import Usage

PRICES_FILE = Path(schemas.__file__).parent / "prices.json"


class UnknownModelPrice(LookupError):
    """The price table has no entry for a model: docmill refuses to guess."""


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens for one model."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float

    def cost_usd(self, usage: Usage, cache_write_1h_tokens: int = 0) -> float:
        """The cost of one call; ``cache_write_1h_tokens`` is the 1-hour part of the cache writes."""
        five_minute_writes = usage.cache_creation_input_tokens - cache_write_1h_tokens
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + five_minute_writes * self.cache_write_5m
            + cache_write_1h_tokens * self.cache_write_1h
            + usage.cache_read_input_tokens * self.cache_read
        ) / 1_000_000


@cache
def _table(prices_file: Path) -> list[dict[str, float | str]]:
    entries: list[dict[str, float | str]] = orjson.loads(prices_file.read_bytes())["models"]
    return entries


def price_for(model: str, prices_file: Path = PRICES_FILE) -> ModelPrice:
    """The price of a model id, matched by the longest known prefix."""
    matches = [entry for entry in _table(prices_file) if model.startswith(str(entry["prefix"]))]
    if not matches:
        raise UnknownModelPrice(
            f"no price for model {model!r} in {prices_file}; add it to the table before using it"
        )
    best = max(matches, key=lambda entry: len(str(entry["prefix"])))
    return ModelPrice(
        input=float(best["input"]),
        output=float(best["output"]),
        cache_write_5m=float(best["cache_write_5m"]),
        cache_write_1h=float(best["cache_write_1h"]),
        cache_read=float(best["cache_read"]),
    )
