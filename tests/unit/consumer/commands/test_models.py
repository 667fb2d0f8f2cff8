"""`docmill models`: the model table as a table and as JSON."""

from __future__ import annotations

import orjson
from click.testing import CliRunner

from consumer.commands import cli


def test_the_table_lists_current_models_with_prices_and_pools() -> None:
    result = CliRunner().invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    for text in (
        "claude-haiku-5-5",
        "claude-sonnet-5-5",
        "0.1 / 0.5 ≤100k; 0.5 / 2.5",
        "end of life 2027-01-22",
    ):
        assert text in result.output
    assert "claude-sonnet-4-5" not in result.output  # retired: only with --all


def test_json_has_every_fact_and_retired_models_with_all() -> None:
    result = CliRunner().invoke(cli, ["models", "--output", "json", "--all"])
    assert result.exit_code == 0, result.output
    table = orjson.loads(result.output)
    by_id = {entry["id"]: entry for entry in table["models"]}
    assert by_id["claude-sonnet-4-5"]["status"] == "retired"
    haiku = by_id["claude-haiku-5-5"]
    assert haiku["prices"][0]["up_to_prompt_tokens"] == 100_000
    assert haiku["rate_limit_pool"]
    assert haiku["tokenizer_factor"] == 1.3
