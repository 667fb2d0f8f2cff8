"""The API simulator as a separate process, so it never competes with the code it measures for a GIL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx2 as httpx


class SimProcess:
    """``python -m tests.anthropic_sim`` with org-wide limits; stats and reset over its admin API."""

    def __init__(
        self,
        *,
        rpm: int,
        itpm: int,
        otpm: int,
        latency: float,
        jitter: float,
        log: Path,
        burst_seconds: float = 60.0,
        acceleration_factor: float | None = None,
        acceleration_floor: int = 10,
    ) -> None:
        self.rpm, self.itpm, self.otpm = rpm, itpm, otpm
        self.latency, self.burst_seconds = latency, burst_seconds
        self._args = [
            sys.executable,
            "-m",
            "tests.anthropic_sim",
            "--port",
            "0",
            "--rpm",
            str(rpm),
            "--itpm",
            str(itpm),
            "--otpm",
            str(otpm),
            "--latency",
            str(latency),
            "--jitter",
            str(jitter),
            "--seed",
            "7",
            "--burst-seconds",
            str(burst_seconds),
            *(
                [
                    "--acceleration-factor",
                    str(acceleration_factor),
                    "--acceleration-floor",
                    str(acceleration_floor),
                ]
                if acceleration_factor
                else []
            ),
        ]
        self._log = log
        self._process: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> SimProcess:
        with self._log.open("a") as sink:
            self._process = subprocess.Popen(self._args, stdout=subprocess.PIPE, stderr=sink, text=True)
        assert self._process.stdout is not None
        self.base_url = self._process.stdout.readline().strip()
        if not self.base_url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"simulator did not start: {self.base_url!r}")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(30)

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.base_url}/_sim/stats", timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def reset(self) -> None:
        httpx.post(f"{self.base_url}/_sim/reset", timeout=10).raise_for_status()
