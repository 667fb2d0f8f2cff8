"""The simulator enforces the December 2026 API: 4.x-style requests fail on 5.x models as they
would on the real API, 5.x models think (billed as output), refuse, price in tiers, cache above
their own minimums, and meter each pool's short-interval bucket on its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.anthropic_sim import AnthropicSimulator
from tests.anthropic_sim.ratelimits import Acceleration
from tests.anthropic_sim.rules import REFUSAL_MARKER

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"invoice_number": {"type": "string"}, "total_amount": {"type": "number"}},
    "required": ["invoice_number", "total_amount"],
    "additionalProperties": False,
}
TOOL = {"name": "record_invoice", "input_schema": SCHEMA}
DOC = "Invoice Number: INV-9\nVendor: Acme\nDate: 2026-01-02\nCurrency: EUR\nTotal: 12.50\n"


@pytest.fixture
def sim() -> Iterator[AnthropicSimulator]:
    with AnthropicSimulator(seed=3) as simulator:
        yield simulator


def client(sim: AnthropicSimulator) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="test-key", max_retries=0)


async def create(api: anthropic.AsyncAnthropic, **request: Any) -> Any:
    """messages.create with a request built as plain data (as docmill builds it)."""
    return await api.messages.create(**request)


def create_sync(api: anthropic.Anthropic, **request: Any) -> Any:
    return api.messages.create(**request)


def user(text: str = DOC) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def structured(**extra: Any) -> dict[str, Any]:
    return {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}, **extra}}


@pytest.mark.parametrize("model", ["claude-sonnet-5-5", "claude-opus-5-5", "claude-fable-5-1"])
async def test_a_forced_tool_call_is_a_400_on_models_that_refuse_it(
    sim: AnthropicSimulator, model: str
) -> None:
    async with client(sim) as api:
        with pytest.raises(anthropic.BadRequestError, match="not supported for this model"):
            await create(
                api,
                model=model,
                max_tokens=256,
                messages=user(),
                tools=[TOOL],
                tool_choice={"type": "tool", "name": "record_invoice"},
            )


async def test_a_forced_tool_call_is_allowed_on_haiku_5_5_and_then_it_does_not_think(
    sim: AnthropicSimulator,
) -> None:
    async with client(sim) as api:
        reply = await create(
            api,
            model="claude-haiku-5-5",
            max_tokens=256,
            messages=user(),
            tools=[TOOL],
            tool_choice={"type": "tool", "name": "record_invoice"},
        )
    assert reply.stop_reason == "tool_use"
    assert reply.usage.output_tokens_details is not None
    assert reply.usage.output_tokens_details.thinking_tokens == 0


@pytest.mark.parametrize("parameter", ["temperature", "top_p", "top_k"])
async def test_sampling_parameters_are_a_400_under_the_current_version(
    sim: AnthropicSimulator, parameter: str
) -> None:
    async with client(sim) as api:
        with pytest.raises(anthropic.BadRequestError, match="sampling parameters"):
            await create(
                api, model="claude-haiku-5-5", max_tokens=64, messages=user(), extra_body={parameter: 0.5}
            )


async def test_assistant_prefill_is_a_400_on_5x(sim: AnthropicSimulator) -> None:
    messages = [*user(), {"role": "assistant", "content": "{"}]
    async with client(sim) as api:
        with pytest.raises(anthropic.BadRequestError, match="prefill"):
            await create(api, model="claude-sonnet-5-5", max_tokens=64, messages=messages)
        ok = await create(api, model="claude-haiku-4-5", max_tokens=64, messages=messages)
    assert ok.stop_reason == "end_turn"  # Haiku 4.5 still takes it


@pytest.mark.parametrize(
    ("model", "thinking"),
    [
        ("claude-opus-5-5", {"type": "disabled"}),
        ("claude-sonnet-5-5", {"type": "disabled"}),
        ("claude-opus-5-5", {"type": "enabled", "budget_tokens": 1024}),
        ("claude-haiku-5-5", {"type": "between_tools"}),
    ],
)
async def test_thinking_settings_a_model_refuses_are_a_400(
    sim: AnthropicSimulator, model: str, thinking: dict[str, Any]
) -> None:
    async with client(sim) as api:
        with pytest.raises(anthropic.BadRequestError, match="thinking"):
            await create(api, model=model, max_tokens=64, messages=user(), thinking=thinking)


async def test_unsupported_schema_keywords_and_open_objects_are_a_400(sim: AnthropicSimulator) -> None:
    bounded = {
        **SCHEMA,
        "properties": {**SCHEMA["properties"], "total_amount": {"type": "number", "minimum": 0}},
    }
    open_object = {key: value for key, value in SCHEMA.items() if key != "additionalProperties"}
    async with client(sim) as api:
        for schema, match in ((bounded, "minimum"), (open_object, "additionalProperties")):
            with pytest.raises(anthropic.BadRequestError, match=match):
                await create(
                    api,
                    model="claude-haiku-5-5",
                    max_tokens=64,
                    messages=user(),
                    output_config={"format": {"type": "json_schema", "schema": schema}},
                )


async def test_5x_models_think_by_default_first_in_the_reply_and_billed_as_output(
    sim: AnthropicSimulator,
) -> None:
    async with client(sim) as api:
        default = await create(
            api, model="claude-haiku-5-5", max_tokens=2048, messages=user(), **structured()
        )
        disabled = await create(
            api,
            model="claude-haiku-5-5",
            max_tokens=2048,
            messages=user(),
            thinking={"type": "disabled"},
            **structured(),
        )
        low = await create(
            api, model="claude-opus-5-5", max_tokens=2048, messages=user(), **structured(effort="low")
        )
    assert [block.type for block in default.content] == ["thinking", "text"]
    assert default.usage.output_tokens_details is not None
    assert disabled.usage.output_tokens_details is not None
    thought = default.usage.output_tokens_details.thinking_tokens
    assert thought > 0
    assert default.usage.output_tokens == disabled.usage.output_tokens + thought
    assert [block.type for block in disabled.content] == ["text"]
    assert low.usage.output_tokens_details is not None
    assert (
        0 < low.usage.output_tokens_details.thinking_tokens < thought
    )  # opus always thinks; low thinks less


async def test_thinking_can_use_up_max_tokens_and_leave_no_answer(sim: AnthropicSimulator) -> None:
    async with client(sim) as api:
        reply = await create(api, model="claude-haiku-5-5", max_tokens=100, messages=user(), **structured())
    assert reply.stop_reason == "max_tokens"
    assert [block.type for block in reply.content] == ["thinking"]


async def test_a_refusal_is_a_200_with_its_reason_and_is_billed(sim: AnthropicSimulator) -> None:
    async with client(sim) as api:
        reply = await create(
            api,
            model="claude-haiku-5-5",
            max_tokens=256,
            messages=user(DOC + REFUSAL_MARKER),
            thinking={"type": "disabled"},
            **structured(),
        )
    assert reply.stop_reason == "refusal"
    assert reply.content == []
    assert reply.stop_details is not None
    assert reply.stop_details.category
    assert sim.bill_usd() > 0


async def test_haiku_5_5_prices_a_prompt_above_100k_tokens_wholly_at_the_higher_tier(
    sim: AnthropicSimulator,
) -> None:
    async with client(sim) as api:
        small = await create(
            api,
            model="claude-haiku-5-5",
            max_tokens=256,
            messages=user(),
            thinking={"type": "disabled"},
            **structured(),
        )
        small_bill = sim.bill_usd()
        large = await create(
            api,
            model="claude-haiku-5-5",
            max_tokens=256,
            messages=user(DOC + "x" * 420_000),
            thinking={"type": "disabled"},
            **structured(),
        )
    large_bill = sim.bill_usd() - small_bill
    assert small_bill == pytest.approx(
        (small.usage.input_tokens * 0.10 + small.usage.output_tokens * 0.50) / 1e6
    )
    assert large.usage.input_tokens > 100_000
    assert large_bill == pytest.approx(
        (large.usage.input_tokens * 0.50 + large.usage.output_tokens * 2.50) / 1e6
    )


async def test_each_model_caches_only_above_its_own_minimum(sim: AnthropicSimulator) -> None:
    """A ~1,000-token prefix is cached by Haiku 5.5 (minimum 512), not by Haiku 4.5 (4,096)."""
    system = [{"type": "text", "text": "R" * 4000, "cache_control": {"type": "ephemeral"}}]
    async with client(sim) as api:
        for model in ("claude-haiku-5-5", "claude-haiku-4-5"):
            for _ in range(2):
                reply = await create(
                    api,
                    model=model,
                    max_tokens=64,
                    system=system,
                    messages=user(),
                    thinking={"type": "disabled"},
                )
            cached = reply.usage.cache_read_input_tokens or 0
            assert (cached > 0) == (model == "claude-haiku-5-5"), model


def test_buckets_hold_seconds_not_a_minute_and_each_pool_has_its_own() -> None:
    """At 60 rpm with a 20-second burst, 20 calls pass and the next ones (within the second it
    takes to refill one) are 429s; another model's pool is untouched."""
    with AnthropicSimulator(rpm=60, burst_seconds=20) as sim:
        headers = sim.ratelimit_headers("haiku-5-5")
        assert headers["anthropic-ratelimit-requests-limit"] == "60"
        assert headers["anthropic-ratelimit-requests-remaining"] == "20"
        sync = anthropic.Anthropic(base_url=sim.base_url, api_key="test-key", max_retries=0)
        started = time.monotonic()
        statuses = []
        for _ in range(22):
            try:
                create_sync(
                    sync,
                    model="claude-haiku-5-5",
                    max_tokens=64,
                    messages=user(),
                    thinking={"type": "disabled"},
                )
                statuses.append(200)
            except anthropic.RateLimitError:
                statuses.append(429)
        if time.monotonic() - started < 1.0:  # the bucket refills one per second
            assert statuses[20:] == [429, 429]
        assert statuses[:20] == [200] * 20
        other = create_sync(sync, model="claude-sonnet-5-5", max_tokens=64, messages=user())
        assert other.usage.output_tokens > 0  # answered: its pool's bucket is full


def test_the_acceleration_limit_allows_a_ramp_and_refuses_a_jump() -> None:
    """Within the last second, at most factor × the second before (or the floor): a rate that
    doubles every second passes, a jump from nothing to a burst does not."""
    ramp = Acceleration(factor=3, floor=20)
    admitted, owed, now = 0, 0.0, 0.0
    while now < 5.0:  # a rate that doubles every second: 5/s, 10/s, 20/s, …
        owed += 5 * 2**now * 0.001
        while owed >= 1:
            assert not ramp.refuses(now), now
            ramp.record(now)
            admitted, owed = admitted + 1, owed - 1
        now += 0.001
    assert admitted > 200  # 80/s by the end
    jump = Acceleration(factor=3, floor=10)
    refused = 0
    for _ in range(40):
        if jump.refuses(0.5):
            refused += 1
        else:
            jump.record(0.5)
    assert refused == 30


async def test_a_burst_at_start_meets_the_acceleration_limit() -> None:
    with AnthropicSimulator(acceleration_factor=3, acceleration_floor=10) as sim:
        async with client(sim) as api:
            outcomes = await asyncio.gather(
                *(
                    create(
                        api,
                        model="claude-haiku-5-5",
                        max_tokens=64,
                        messages=user(),
                        thinking={"type": "disabled"},
                    )
                    for _ in range(30)
                ),
                return_exceptions=True,
            )
        stats = sim.stats
    refused = [o for o in outcomes if isinstance(o, anthropic.RateLimitError)]
    assert len(refused) == 20
    assert "acceleration" in str(refused[0])
    # The bucket had room: the 429's headers show it, and the stats say when each 429 came.
    assert int(refused[0].response.headers["anthropic-ratelimit-requests-remaining"]) >= 1
    assert len(stats.rate_limited_at) == 20
    assert all(0 <= at < 5 for at in stats.rate_limited_at)
