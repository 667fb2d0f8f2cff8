"""What the simulated API knows about each model: the rules it enforces and the prices it bills.

Written from ANTHROPIC-API.md independently of docmill's own model table, so
that a mistake in docmill's table shows up as a 400 or a wrong bill here,
not as two copies agreeing with each other.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Final

_SNAPSHOT: Final = re.compile(r"-\d{8}$")
EFFORTS: Final = ("low", "medium", "high", "xhigh", "max")
# Thinking tokens a reply spends up front, by effort (deterministic, roughly what a plain
# extraction costs; only their being billed as output matters to the tests).
THINKING_TOKENS: Final = {"low": 120, "medium": 480, "high": 1200, "xhigh": 2400, "max": 4800}


@dataclasses.dataclass(frozen=True)
class Tier:
    up_to: int | None  # prompt tokens (input + cache reads + writes); None: no bound
    input: float
    output: float
    write_5m: float
    write_1h: float
    read: float


@dataclasses.dataclass(frozen=True)
class SimModel:
    pool: str
    tiers: tuple[Tier, ...]
    cache_minimum: int
    forced_tool_ok: bool
    prefill_ok: bool
    thinking_default: str  # "off", "adaptive" or "always"
    thinking_types: frozenset[str]  # the `thinking.type` values accepted
    default_effort: str | None
    effort_ok: bool
    image_long_edge: int = 1568
    image_max_tokens: int = 1568

    def tier(self, prompt_tokens: int) -> Tier:
        for tier in self.tiers:
            if tier.up_to is None or prompt_tokens <= tier.up_to:
                return tier
        return self.tiers[-1]

    def bill(self, prompt: int, uncached: int, output: int, write_5m: int, write_1h: int, read: int) -> float:
        """USD for one request: the tier of its whole prompt prices all of it, output included."""
        t = self.tier(prompt)
        return (
            uncached * t.input
            + output * t.output
            + write_5m * t.write_5m
            + write_1h * t.write_1h
            + read * t.read
        ) / 1_000_000


def _flat(i: float, o: float, w5: float, w1: float, r: float) -> tuple[Tier, ...]:
    return (Tier(None, i, o, w5, w1, r),)


_ADAPTIVE_OK = frozenset({"adaptive", "disabled"})
_OLD = frozenset({"enabled", "disabled"})
MODELS: Final[dict[str, SimModel]] = {
    "claude-haiku-5-5": SimModel(
        "haiku-5-5",
        (Tier(100_000, 0.10, 0.50, 0.125, 0.20, 0.01), Tier(None, 0.50, 2.50, 0.625, 1.0, 0.05)),
        512,
        True,
        False,
        "adaptive",
        _ADAPTIVE_OK,
        "medium",
        True,
    ),
    "claude-sonnet-5-5": SimModel(
        "sonnet-5-5",
        _flat(2, 10, 2.5, 4, 0.10),
        512,
        False,
        False,
        "adaptive",
        frozenset({"adaptive", "between_tools"}),
        "high",
        True,
        2576,
        4784,
    ),
    "claude-opus-5-5": SimModel(
        "opus-5-5",
        _flat(4, 20, 5, 8, 0.20),
        512,
        False,
        False,
        "always",
        frozenset({"adaptive"}),
        "medium",
        True,
    ),
    "claude-fable-5-1": SimModel(
        "fable-5-1",
        _flat(10, 50, 12.5, 20, 0.25),
        512,
        False,
        False,
        "always",
        frozenset({"adaptive"}),
        "medium",
        True,
    ),
    "claude-sonnet-5": SimModel(
        "sonnet-5", _flat(2, 10, 2.5, 4, 0.2), 1024, True, False, "adaptive", _ADAPTIVE_OK, "medium", True
    ),
    "claude-opus-5": SimModel(
        "opus-5", _flat(5, 25, 6.25, 10, 0.5), 512, True, False, "adaptive", _ADAPTIVE_OK, "medium", True
    ),
    "claude-haiku-4-5": SimModel(
        "haiku-4", _flat(1, 5, 1.25, 2, 0.10), 4096, True, True, "off", _OLD, None, False
    ),
    "claude-sonnet-4-6": SimModel(
        "sonnet-4", _flat(3, 15, 3.75, 6, 0.30), 1024, True, False, "off", _OLD | {"adaptive"}, None, True
    ),
    "claude-opus-4-5": SimModel(
        "opus-4", _flat(5, 25, 6.25, 10, 0.5), 4096, True, True, "off", _OLD, None, True
    ),
    "claude-opus-4-6": SimModel(
        "opus-4", _flat(5, 25, 6.25, 10, 0.5), 4096, True, False, "off", _OLD | {"adaptive"}, None, True
    ),
    "claude-opus-4-7": SimModel(
        "opus-4",
        _flat(5, 25, 6.25, 10, 0.5),
        1024,
        True,
        False,
        "off",
        frozenset({"adaptive", "disabled"}),
        None,
        True,
    ),
    "claude-opus-4-8": SimModel(
        "opus-4",
        _flat(5, 25, 6.25, 10, 0.5),
        1024,
        True,
        False,
        "off",
        frozenset({"adaptive", "disabled"}),
        None,
        True,
    ),
}


def lookup(model: str) -> SimModel | None:
    return MODELS.get(model) or MODELS.get(_SNAPSHOT.sub("", model))
