"""The model table: every fact docmill depends on about a Claude model, read from models.json.

One place holds them — status and end of life, prices and their tiers,
caching, how structured output is requested, thinking and effort, the
tokenizer, image limits and the rate-limit pool — so that no model id is
special-cased anywhere in code. A model the table does not know is refused,
never guessed.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from schemas.messages import Usage

MODELS_FILE = Path(__file__).parent / "models.json"
# 4.x ids may carry a snapshot date: claude-haiku-4-5-20251001 is claude-haiku-4-5.
_SNAPSHOT = re.compile(r"-\d{8}$")


class ModelStatus(StrEnum):
    CURRENT = "current"
    LEGACY = "legacy"
    DEPRECATED = "deprecated"  # still served, until its end of life
    RETIRED = "retired"  # no longer served


class UnknownModel(LookupError):
    """The model table has no entry for a model id: docmill refuses to guess its prices or rules."""


class _Fact(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PriceTier(_Fact):
    """USD per million tokens for requests whose prompt is at most ``up_to_prompt_tokens``."""

    up_to_prompt_tokens: int | None = None  # None: no upper bound
    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float


class Thinking(_Fact):
    default: str  # what the model does when the request says nothing
    default_effort: str | None = None  # the effort it thinks at then, where documented
    modes: tuple[str, ...]
    # The cheapest setting for a plain extraction: a thinking type to send, an effort, or neither.
    extraction: Literal["disabled", "between_tools"] | None = None
    extraction_effort: str | None = None


class ImageLimits(_Fact):
    max_long_edge_px: int
    max_tokens: int


class ModelFacts(_Fact):
    """One model's entry in the table."""

    id: str = ""
    status: ModelStatus
    end_of_life: date | None = None
    source: str
    as_of: date
    note: str | None = None
    prices: tuple[PriceTier, ...] = Field(min_length=1)
    cache_minimum_tokens: int
    structured_output: Literal["output_config"]
    forced_tool_choice: bool
    assistant_prefill: bool
    thinking: Thinking
    effort: tuple[str, ...]  # the output_config.effort levels it accepts (empty: none)
    tokenizer_factor: float
    image: ImageLimits
    rate_limit_pool: str

    def tier_for(self, prompt_tokens: int) -> PriceTier:
        """The prices of a request whose whole prompt (input, cache reads and writes) is this long."""
        for tier in self.prices:
            if tier.up_to_prompt_tokens is None or prompt_tokens <= tier.up_to_prompt_tokens:
                return tier
        return self.prices[-1]

    def cost_usd(self, usage: Usage, cache_write_1h_tokens: int = 0, batch: bool = False) -> float:
        """What one call costs: a tier prices the *whole* request, output included.

        ``usage.output_tokens`` is the billed output, thinking included;
        ``cache_write_1h_tokens`` is the 1-hour part of the cache writes.
        """
        prompt = usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens
        tier = self.tier_for(prompt)
        five_minute_writes = usage.cache_creation_input_tokens - cache_write_1h_tokens
        cost = (
            usage.input_tokens * tier.input
            + usage.output_tokens * tier.output
            + five_minute_writes * tier.cache_write_5m
            + cache_write_1h_tokens * tier.cache_write_1h
            + usage.cache_read_input_tokens * tier.cache_read
        ) / 1_000_000
        return cost * model_table().batch_discount if batch else cost

    @property
    def usable(self) -> bool:
        return self.status is not ModelStatus.RETIRED


class ModelTable(_Fact):
    about: str
    source: str
    as_of: date
    batch_discount: float
    models: dict[str, ModelFacts]

    def current(self) -> list[str]:
        return [model_id for model_id, facts in self.models.items() if facts.status is ModelStatus.CURRENT]

    def lookup(self, model: str) -> ModelFacts:
        """The facts of a model id (a 4.x snapshot date is allowed); raises UnknownModel."""
        facts = self.models.get(model) or self.models.get(_SNAPSHOT.sub("", model))
        if facts is None:
            raise UnknownModel(
                f"model {model!r} is not in the model table ({MODELS_FILE.name}); "
                f"current models: {', '.join(self.current())}"
            )
        return facts


@cache
def model_table(path: Path = MODELS_FILE) -> ModelTable:
    raw = orjson.loads(path.read_bytes())
    for model_id, entry in raw["models"].items():
        entry["id"] = model_id
    return ModelTable.model_validate(raw)


def model_facts(model: str) -> ModelFacts:
    """The facts of one model id; raises UnknownModel for a model the table lacks."""
    return model_table().lookup(model)


def startup_problem(model: str, today: date | None = None) -> tuple[str | None, str | None]:
    """(error, warning) about using ``model``: an error for an unknown or retired one (the replica
    must not start), a warning naming the end of life for a legacy or deprecated one."""
    table = model_table()
    alternatives = ", ".join(table.current())
    try:
        facts = table.lookup(model)
    except UnknownModel as error:
        return str(error), None
    today = today or date.today()
    if facts.status is ModelStatus.RETIRED or (facts.end_of_life and facts.end_of_life <= today):
        return f"model {model!r} was retired on {facts.end_of_life}; use one of: {alternatives}", None
    if facts.status in (ModelStatus.LEGACY, ModelStatus.DEPRECATED):
        end = f"; end of life {facts.end_of_life}" if facts.end_of_life else ""
        return None, f"model {model!r} is {facts.status}{end}; current models: {alternatives}"
    return None, None
