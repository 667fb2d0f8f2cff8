"""`docmill models`: the model table — which models docmill knows, their status, prices and pool."""

from __future__ import annotations

import click
import orjson
from rich.console import Console
from rich.table import Table

from schemas.models import ModelFacts, ModelStatus, model_table


def _price(value: float) -> str:
    return f"{value:g}"


def _prices(facts: ModelFacts) -> str:
    """Input / output per million tokens, tier by tier."""
    parts = []
    for tier in facts.prices:
        bound = f" ≤{tier.up_to_prompt_tokens // 1000}k" if tier.up_to_prompt_tokens else ""
        parts.append(f"{_price(tier.input)} / {_price(tier.output)}{bound}")
    return "; ".join(parts)


def _cache(facts: ModelFacts) -> str:
    tier = facts.prices[0]
    return f"{_price(tier.cache_write_5m)} / {_price(tier.cache_write_1h)} / {_price(tier.cache_read)}"


def _thinking(facts: ModelFacts) -> str:
    cheapest = facts.thinking.extraction or (
        f"effort {facts.thinking.extraction_effort}" if facts.thinking.extraction_effort else "off"
    )
    return f"{facts.thinking.default} → {cheapest}"


@click.command()
@click.option(
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--all", "show_all", is_flag=True, help="Include retired models.")
def models(output: str, show_all: bool) -> None:
    """The models docmill knows: status and end of life, USD per million tokens, cache prices
    (5-minute / 1-hour writes / reads), thinking (default → what extraction uses) and rate-limit pool.

    \b
    Examples:
      docmill models
      docmill models --output json
    """
    table = model_table()
    rows = [facts for facts in table.models.values() if show_all or facts.status is not ModelStatus.RETIRED]
    if output == "json":
        click.echo(
            orjson.dumps(
                {
                    "source": table.source,
                    "as_of": table.as_of.isoformat(),
                    "batch_discount": table.batch_discount,
                    "models": [facts.model_dump(mode="json") for facts in rows],
                },
                option=orjson.OPT_INDENT_2,
            ).decode()
        )
        return
    discount = f"{table.batch_discount:.0%}"
    view = Table(title=f"Claude models (as of {table.as_of}; batches {discount} of these prices)")
    for column in ("model", "status", "$/MTok in / out", "cache 5m / 1h / read", "thinking", "pool"):
        view.add_column(column, no_wrap=True)
    for facts in rows:
        status = str(facts.status) + (f" (end of life {facts.end_of_life})" if facts.end_of_life else "")
        view.add_row(facts.id, status, _prices(facts), _cache(facts), _thinking(facts), facts.rate_limit_pool)
    console = Console()
    # Wide enough for every column, also when piped (where rich assumes 80 columns).
    Console(width=max(console.width, 180)).print(view)
