"""The Claude backend against the current API (through the strict simulator and the real broker):
refusals, the refusal fallback, thinking billed as output, and models refused at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from schemas.settings import KafkaSettings, TopicSettings
from tests.anthropic_sim.rules import REFUSAL_MARKER
from tests.helpers.cli import run_docmill, topic_env
from tests.helpers.documents import document_ref, invoice_text, write_file
from tests.helpers.kafka import consumer_config, drain, publish_refs, read_values


async def _publish(kafka: KafkaSettings, topics: TopicSettings, root: Path) -> None:
    refs = [document_ref(f"ok{i}", write_file(root, f"ok{i}.txt", invoice_text(f"OK-{i}"))) for i in range(4)]
    refused = write_file(root, "refused.txt", invoice_text("NO-1") + REFUSAL_MARKER)
    await publish_refs(kafka, topics.documents_topic, [*refs, document_ref("refused", refused)])


def _metric(service: Any, name: str, labels: dict[str, str]) -> float:
    return service.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_refusal_is_dead_lettered_as_refused_with_its_category_and_billed(
    sim: Any, kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    await _publish(kafka, topics, tmp_path)
    service = await drain(consumer_config(kafka, topics, group_id, [tmp_path], backend="claude"))
    letters = await read_values(kafka, topics.dlq_topic)
    assert [(letter["document_id"], letter["error_class"]) for letter in letters] == [("refused", "Refused")]
    assert letters[0]["error_category"] == "cyber"
    assert letters[0]["retryable"] is False
    results = await read_values(kafka, topics.results_topic)
    assert sorted(result["document_id"] for result in results) == [f"ok{i}" for i in range(4)]
    # Every call is billed, the refused one too, and the cost metric is the simulator's bill.
    cost = _metric(service, "docmill_cost_usd_total", {"model": "claude-haiku-5-5"})
    assert abs(cost - sim.bill_usd()) <= 0.001 * sim.bill_usd()
    # Haiku 5.5 is asked with thinking disabled: no thinking tokens paid for.
    assert _metric(service, "docmill_tokens_total", {"model": "claude-haiku-5-5", "type": "thinking"}) == 0
    assert all(result["usage"]["thinking_tokens"] == 0 for result in results)


async def test_the_fallback_model_gets_one_more_attempt_after_a_refusal(
    sim: Any, kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    await _publish(kafka, topics, tmp_path)
    # The simulator refuses the marked document on every model; a fallback that also refuses
    # ends as Refused after exactly one more call on the fallback model.
    config = consumer_config(
        kafka,
        topics,
        group_id,
        [tmp_path],
        backend="claude",
        extraction={"refusal_fallback_model": "claude-sonnet-5-5"},
    )
    service = await drain(config)
    letters = await read_values(kafka, topics.dlq_topic)
    assert [letter["error_class"] for letter in letters] == ["Refused"]
    assert "claude-sonnet-5-5" in letters[0]["error_message"]
    by_model = sim.stats.by_model
    assert by_model["claude-haiku-5-5"] == 5
    assert by_model["claude-sonnet-5-5"] == 1
    # The fallback thinks (between_tools: nothing up front) and its pool is metered on its own.
    assert (
        _metric(service, "docmill_llm_requests_total", {"model": "claude-sonnet-5-5", "status": "200"}) == 1
    )


async def test_thinking_is_billed_as_output_when_a_model_thinks(
    sim: Any, kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """With --effort the model thinks; the thinking tokens are counted apart and in output, and
    the cost still equals the simulator's bill."""
    refs = [
        document_ref(f"t{i}", write_file(tmp_path, f"t{i}.txt", invoice_text(f"T-{i}"))) for i in range(3)
    ]
    await publish_refs(kafka, topics.documents_topic, refs)
    config = consumer_config(
        kafka,
        topics,
        group_id,
        [tmp_path],
        backend="claude",
        extraction={"model": "claude-opus-5-5", "effort": "medium", "max_output_tokens": 4096},
    )
    service = await drain(config)
    results = await read_values(kafka, topics.results_topic)
    assert len(results) == 3
    thinking = sum(result["usage"]["thinking_tokens"] for result in results)
    assert thinking > 0
    assert all(result["usage"]["output_tokens"] > result["usage"]["thinking_tokens"] for result in results)
    assert (
        _metric(service, "docmill_tokens_total", {"model": "claude-opus-5-5", "type": "thinking"}) == thinking
    )
    cost = _metric(service, "docmill_cost_usd_total", {"model": "claude-opus-5-5"})
    assert abs(cost - sim.bill_usd()) <= 0.001 * sim.bill_usd()


def test_a_retired_or_unknown_model_is_refused_at_start_up_in_one_line(
    kafka: KafkaSettings, topics: TopicSettings
) -> None:
    for model, words in (("claude-sonnet-4-5", "retired"), ("claude-haiku-9", "not in the model table")):
        env = {**topic_env(kafka, topics), "ANTHROPIC_API_KEY": "sk-ant-test-0123456789"}
        run = run_docmill(env, "consume", "--drain", "--backend", "claude", "--model", model)
        assert run.returncode == 1, run.stderr
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1, run.stderr
        assert words in lines[0]
        assert "claude-haiku-5-5" in lines[0]  # names the current alternatives
        assert "Traceback" not in run.stderr


async def test_a_prompt_above_haiku_5_5s_tier_is_billed_wholly_at_the_higher_prices(
    sim: Any, kafka: KafkaSettings, topics: TopicSettings, group_id: str, tmp_path: Path
) -> None:
    """One document whose prompt passes 100,000 tokens, one well below: each result's cost_usd and
    the cost metric equal the simulator's per-request bill, the large one at the higher tier."""
    small = write_file(tmp_path, "small.txt", invoice_text("S-1"))
    large = write_file(tmp_path, "large.txt", invoice_text("L-1") + "\nNotes: " + "lorem ipsum " * 36_000)
    await publish_refs(
        kafka, topics.documents_topic, [document_ref("small", small), document_ref("large", large)]
    )
    service = await drain(consumer_config(kafka, topics, group_id, [tmp_path], backend="claude"))
    results = {result["document_id"]: result for result in await read_values(kafka, topics.results_topic)}
    big = results["large"]["usage"]
    assert big["input_tokens"] > 100_000
    assert results["large"]["cost_usd"] == pytest.approx(
        (big["input_tokens"] * 0.50 + big["output_tokens"] * 2.50) / 1e6
    )
    little = results["small"]["usage"]
    assert results["small"]["cost_usd"] == pytest.approx(
        (little["input_tokens"] * 0.10 + little["output_tokens"] * 0.50) / 1e6
    )
    cost = _metric(service, "docmill_cost_usd_total", {"model": "claude-haiku-5-5"})
    assert cost == pytest.approx(sim.bill_usd(), rel=1e-6)
