"""A local HTTP simulator of the Anthropic Messages API for docmill's tests and benchmarks.

Tests point ``ANTHROPIC_BASE_URL`` (or ``AsyncAnthropic(base_url=...)``) at an
:class:`AnthropicSimulator`. It speaks the wire protocol the official ``anthropic`` SDK
expects — response and error shapes, ``request-id`` and ``anthropic-ratelimit-*``
headers, ``retry-after`` on 429 — so the SDK's own parsing and exception mapping run
unchanged, and docmill's retry, rate-limit and cost code is exercised against realistic
behaviour rather than mocks.

What it models (see ``/work/shared/ANTHROPIC-API.md``):

* Request validation like the real API: auth, ``anthropic-version``, body schema,
  content blocks, image and PDF limits, tools and ``tool_choice``, 32 MB body limit.
* Org-wide token buckets for RPM / ITPM / OTPM, refilled continuously; only uncached
  input counts toward ITPM; output is debited after the reply is produced.
* A spend-limit switch, queued or random fault injection, latency with jitter, and
  delays that outlast a client's timeout.
* A deterministic token estimator and a hash-based prompt-cache model, so usage and an
  independent bill (:meth:`AnthropicSimulator.bill_usd`) can be asserted exactly.

Known, deliberate gaps: ``stream: true`` is answered with a 400 (docmill does not
stream), image/document sources other than inline base64/text are rejected, and the
model never "thinks" — the reply comes from a pluggable :data:`Responder`.

Standalone use (benchmarks run it as a separate process)::

    python -m tests.anthropic_sim --port 8765 --rpm 600 --itpm 0 --otpm 0 --latency 1.0

prints its base URL as the first line of stdout and serves until SIGTERM/SIGINT. A
separate process can read ``GET /_sim/stats`` and drive ``POST /_sim/reset`` and
``POST /_sim/inject`` (JSON body with the arguments of :meth:`AnthropicSimulator.inject`).

Modules, one job each:

* ``limits`` — size and count limits of the real API, accepted media and block types.
* ``errors`` — :class:`ApiError`, the status → error-type table, the 400 and spend-limit errors.
* ``accounting`` — usage totals, request summaries, :class:`SimStats`, :func:`bill_usd`.
* ``tokens`` — the deterministic token estimates of text, JSON and images; per-page/reply costs.
* ``media`` — decoding inline base64 media: image type and size, PDF pages and text.
* ``cache`` — the prompt-cache model: prefix breakpoints, TTLs, read/write plans.
* ``validation`` — the request preparer: checks shape, rejects what the API rejects.
* ``invoice`` — reading labelled invoice fields out of plain text.
* ``responder`` — the :data:`Responder` type and :func:`default_responder`.
* ``ratelimits`` — the RPM/ITPM/OTPM token buckets, their headers and 429s.
* ``faults`` — injected faults and the errors they are answered with.
* ``replies`` — the JSON bodies of a Messages reply and of an error reply.
* ``server`` — :class:`AnthropicSimulator`: the aiohttp app, handlers, start/stop.
* ``cli`` / ``__main__`` — the command-line entry point, :func:`main`.
"""

from __future__ import annotations

from tests.anthropic_sim.accounting import RequestSummary, SimStats, UsageTotals, bill_usd
from tests.anthropic_sim.cli import main
from tests.anthropic_sim.errors import ApiError
from tests.anthropic_sim.invoice import extract_invoice
from tests.anthropic_sim.limits import MAX_REQUEST_BYTES
from tests.anthropic_sim.responder import IMAGE_INVOICE, Responder, default_responder
from tests.anthropic_sim.server import AnthropicSimulator

__all__ = [
    "IMAGE_INVOICE",
    "MAX_REQUEST_BYTES",
    "AnthropicSimulator",
    "ApiError",
    "RequestSummary",
    "Responder",
    "SimStats",
    "UsageTotals",
    "bill_usd",
    "default_responder",
    "extract_invoice",
    "main",
]
