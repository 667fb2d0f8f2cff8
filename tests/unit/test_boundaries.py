"""The package boundaries hold: contracts depend on nothing, the producer never pulls in the consumer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers.paths import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def test_import_contracts_are_kept() -> None:
    """Every contract in pyproject's [tool.importlinter] is kept (schemas alone, producer embeddable,
    consumer stages pointing down, metrics through schemas.metrics)."""
    run = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_importing_the_producer_loads_neither_the_sdk_nor_the_consumer() -> None:
    """`import producer` (what upstream services embed) loads no anthropic SDK and no consumer module."""
    probe = (
        "import sys, producer, producer.jobs, producer.sources, producer.kafka_io; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('anthropic', 'consumer')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_local_replica_and_the_produce_command_do_not_load_the_sdk() -> None:
    """The anthropic SDK (tens of MB of modules) is loaded only by a replica that calls Claude."""
    probe = (
        "import sys, consumer.replica.wiring, consumer.records.processor, consumer.commands.produce, "
        "consumer.commands.consume, consumer.ops.replay; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'anthropic'); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    run = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
