"""The command line: parse options, serve in the foreground until a signal, report stats."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import orjson

from tests.anthropic_sim.accounting import SimStats
from tests.anthropic_sim.server import AnthropicSimulator


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.anthropic_sim",
        description="Simulate the Anthropic Messages API locally.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--rpm", type=int, default=0, help="requests per minute (0 = unlimited)")
    parser.add_argument("--itpm", type=int, default=0, help="input tokens per minute")
    parser.add_argument("--otpm", type=int, default=0, help="output tokens per minute")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--jitter", type=float, default=0.0, help="± seconds of latency")
    parser.add_argument("--latency-per-output-token", type=float, default=0.0)
    parser.add_argument(
        "--cache-min-tokens",
        type=int,
        default=None,
        help="shortest cacheable prefix (default: each model's own)",
    )
    parser.add_argument(
        "--acceleration-factor",
        type=float,
        default=None,
        help="429 when a pool's requests in a second exceed this × those of the second before",
    )
    parser.add_argument("--acceleration-floor", type=int, default=10, help="requests a second always allowed")
    parser.add_argument(
        "--burst-seconds",
        type=float,
        default=60.0,
        help="refill each rate-limit bucket holds (the API may hold 1 s)",
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--fail-rate",
        action="append",
        default=[],
        metavar="STATUS:P",
        help="random faults, e.g. 529:0.05 (repeatable)",
    )
    parser.add_argument("--spend-limit-reached", action="store_true")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> SimStats:
    sim = AnthropicSimulator(
        host=args.host,
        port=args.port,
        rpm=args.rpm,
        itpm=args.itpm,
        otpm=args.otpm,
        latency=args.latency,
        jitter=args.jitter,
        latency_per_output_token=args.latency_per_output_token,
        cache_min_tokens=args.cache_min_tokens,
        burst_seconds=args.burst_seconds,
        acceleration_factor=args.acceleration_factor,
        acceleration_floor=args.acceleration_floor,
        seed=args.seed,
    )
    for spec in args.fail_rate:
        status, _, probability = spec.partition(":")
        sim.fail_rate(int(status), float(probability))
    sim.spend_limit_reached = args.spend_limit_reached
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await sim.astart()
    # The first stdout line is the contract with whoever launched us.
    print(sim.base_url, flush=True)
    try:
        await stop.wait()
    finally:
        stats = sim.stats
        await sim.astop()
    return stats


def main(argv: list[str] | None = None) -> int:
    """Run the simulator in the foreground until SIGTERM/SIGINT; final stats go to stderr."""
    args = _parse_args(argv)
    stats = asyncio.run(_serve(args))
    sys.stderr.write(orjson.dumps(stats.to_json()).decode() + "\n")
    return 0
