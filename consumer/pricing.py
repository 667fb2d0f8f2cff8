"""What an extraction cost, from the usage the API reported and the price table in schemas/."""

from __future__ import annotations

from dataclasses import dataclass
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
    cache_read: float

    def cost_usd(self, usage: Usage) -> float:
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_creation_input_tokens * self.cache_write_5m
            + usage.cache_read_input_tokens * self.cache_read
        ) / 1_000_000


def price_for(model: str, prices_file: Path = PRICES_FILE) -> ModelPrice:
    """The price of a model id, matched by the longest known prefix."""
    table = orjson.loads(prices_file.read_bytes())
    matches = [entry for entry in table["models"] if model.startswith(entry["prefix"])]
    if not matches:
        raise UnknownModelPrice(
            f"no price for model {model!r} in {prices_file}; add it to the table before using it"
        )
    best = max(matches, key=lambda entry: len(entry["prefix"]))
    return ModelPrice(best["input"], best["output"], best["cache_write_5m"], best["cache_read"])
