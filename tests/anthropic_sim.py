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
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import functools
import hashlib
import io
import logging
import math
import random
import re
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Final, TypeVar

import orjson
import pypdf
from aiohttp import web
from PIL import Image, UnidentifiedImageError

__all__ = [
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

log = logging.getLogger(__name__)

Responder = Callable[[dict[str, Any]], dict[str, Any]]
"""Maps a validated request body to the tool input (or JSON object) Claude "returns"."""

_T = TypeVar("_T")

# --- Limits of the real API (ANTHROPIC-API.md) ---------------------------------------------------
MAX_REQUEST_BYTES: Final = 32 * 1024 * 1024
MAX_IMAGE_BYTES: Final = 5 * 1024 * 1024
MAX_IMAGE_SIDE: Final = 8000
MAX_IMAGES_PER_REQUEST: Final = 100
MAX_PDF_PAGES: Final = 100
MAX_CACHE_BREAKPOINTS: Final = 4
# Images whose long edge exceeds this are downscaled before tokenisation.
IMAGE_LONG_EDGE: Final = 1568
PDF_TOKENS_PER_PAGE: Final = 1500
OUTPUT_TOKEN_OVERHEAD: Final = 20
# Reported as limit/remaining for a bucket configured as 0 (= unlimited): the real API always
# sends the headers, and a huge value tells a header-driven client not to throttle.
UNLIMITED_HEADER_VALUE: Final = 1_000_000_000
# Bounded so a long benchmark cannot grow memory without limit.
ACCEPTED_HISTORY: Final = 100_000

IMAGE_MEDIA_TYPES: Final = ("image/jpeg", "image/png", "image/gif", "image/webp")
KNOWN_BLOCK_TYPES: Final = (
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "search_result",
)
_TOOL_NAME_RE: Final = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_TOOL_CHOICE_TYPES: Final = ("auto", "any", "tool", "none")
_CACHE_TTLS: Final = {"5m": 300.0, "1h": 3600.0}

ERROR_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_DEFAULT_FAULT_MESSAGES: Final[Mapping[int, str]] = {
    400: "Invalid request (injected fault).",
    401: "invalid x-api-key",
    403: "Your API key does not have permission to use the specified resource.",
    404: "Not found (injected fault).",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Rate limited (injected fault).",
    500: "Internal server error",
    504: "Request timed out (injected fault).",
    529: "Overloaded",
}

SPEND_LIMIT_ERROR_CODE: Final = "enforced_spend_limit_reached"
_REQUEST_ID: Final = web.RequestKey("request_id", str)


class ApiError(Exception):
    """An error answered to the client in Anthropic's ``{"type":"error",...}`` shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or ERROR_TYPES.get(status, "api_error")
        self.details = details
        self.retry_after = retry_after


def _invalid(message: str, details: dict[str, Any] | None = None) -> ApiError:
    return ApiError(400, message, details=details)


# =================================================================================================
# Accounting
# =================================================================================================


@dataclasses.dataclass
class UsageTotals:
    """Token totals for one model, as the API would bill them."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0
    cache_read_input_tokens: int = 0


@dataclasses.dataclass(frozen=True)
class RequestSummary:
    """One accepted (200) ``/v1/messages`` request.

    The Messages API has no field for docmill's document id (``metadata`` only allows
    ``user_id``), so the summary keeps what is visible on the wire: model, block types,
    document titles and ``metadata.user_id``.
    """

    request_id: str
    model: str
    block_types: tuple[str, ...]
    document_titles: tuple[str, ...]
    tool_name: str | None
    stop_reason: str
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    auth_method: str
    metadata_user_id: str | None
    received_at: float
    """``time.monotonic()`` when the request arrived."""


@dataclasses.dataclass
class SimStats:
    """Counters for assertions. :attr:`AnthropicSimulator.stats` returns a private copy."""

    received: int = 0
    """``/v1/messages`` requests that arrived (including ones still in flight)."""
    total_requests: int = 0
    """``/v1/messages`` requests answered (or abandoned by the client: status 499)."""
    in_flight: int = 0
    by_status: dict[int, int] = dataclasses.field(default_factory=dict)
    by_error_type: dict[str, int] = dataclasses.field(default_factory=dict)
    by_model: dict[str, int] = dataclasses.field(default_factory=dict)
    by_auth: dict[str, int] = dataclasses.field(default_factory=dict)
    """Keys: ``"x-api-key"``, ``"bearer"``, ``"both"``, ``"none"``."""
    by_version: dict[str, int] = dataclasses.field(default_factory=dict)
    accepted: deque[RequestSummary] = dataclasses.field(
        default_factory=lambda: deque(maxlen=ACCEPTED_HISTORY)
    )
    usage: dict[str, UsageTotals] = dataclasses.field(default_factory=dict)
    count_tokens_requests: int = 0

    def snapshot(self) -> SimStats:
        """An independent copy; cheap even with a full history (summaries are frozen)."""
        return dataclasses.replace(
            self,
            by_status=dict(self.by_status),
            by_error_type=dict(self.by_error_type),
            by_model=dict(self.by_model),
            by_auth=dict(self.by_auth),
            by_version=dict(self.by_version),
            accepted=deque(self.accepted, maxlen=self.accepted.maxlen),
            usage={m: dataclasses.replace(u) for m, u in self.usage.items()},
        )

    def status(self, code: int) -> int:
        """How many ``/v1/messages`` requests were answered with ``code``."""
        return self.by_status.get(code, 0)

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly view (without the per-request history) for ``GET /_sim/stats``."""
        return {
            "received": self.received,
            "total_requests": self.total_requests,
            "in_flight": self.in_flight,
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_error_type": dict(self.by_error_type),
            "by_model": dict(self.by_model),
            "by_auth": dict(self.by_auth),
            "by_version": dict(self.by_version),
            "accepted": len(self.accepted),
            "usage": {m: dataclasses.asdict(u) for m, u in self.usage.items()},
            "count_tokens_requests": self.count_tokens_requests,
        }


def bill_usd(usage: Mapping[str, UsageTotals], prices: Mapping[str, Mapping[str, float]]) -> float:
    """Cost in USD of ``usage`` given ``{model_prefix: {rate: USD per MTok}}``.

    Rates: ``input``, ``output``, ``cache_write_5m``, ``cache_read`` and, only needed when
    1-hour cache writes occurred, ``cache_write_1h``. The longest matching prefix wins. A
    model without a price raises :class:`KeyError` — guessing would hide a gap in the
    price table under test.
    """
    total = 0.0
    for model, u in usage.items():
        matches = [p for p in prices if model.startswith(p)]
        if not matches:
            raise KeyError(f"no price for model {model!r} (known prefixes: {sorted(prices)})")
        rate = prices[max(matches, key=len)]
        cost = (
            u.input_tokens * rate["input"]
            + u.output_tokens * rate["output"]
            + u.cache_creation_5m_input_tokens * rate["cache_write_5m"]
            + u.cache_read_input_tokens * rate["cache_read"]
        )
        if u.cache_creation_1h_input_tokens:
            cost += u.cache_creation_1h_input_tokens * rate["cache_write_1h"]
        total += cost / 1_000_000
    return total


# =================================================================================================
# Token estimation and validation (pure functions; run on a worker thread)
# =================================================================================================


def _text_tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _json_tokens(obj: object) -> int:
    return math.ceil(len(orjson.dumps(obj)) / 4)


def _image_tokens(width: int, height: int) -> int:
    long_edge = max(width, height)
    if long_edge > IMAGE_LONG_EDGE:
        # The API downscales large images, so they cost no more than a 1568 px one.
        scale = IMAGE_LONG_EDGE / long_edge
        width, height = max(1, round(width * scale)), max(1, round(height * scale))
    return max(1, math.ceil(width * height / 750))


def _b64decode(data: object, what: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise ValueError(f"{what}: Input should be a non-empty base64 string")
    try:
        # validate=True: the real API rejects stray characters rather than skipping them.
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what}: invalid base64 data") from None


def _sniff_image(raw: bytes) -> str | None:
    if raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if raw.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if raw.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(raw) >= 12 and raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "image/webp"
    return None


def _image_size(raw: bytes) -> tuple[int, int] | None:
    """(width, height) from the image header, or None when it is too large to even open."""
    try:
        # Image.open only parses the header, so this is cheap even for big images.
        with Image.open(io.BytesIO(raw)) as img:
            return img.size
    except Image.DecompressionBombError:
        # > 2 x MAX_IMAGE_PIXELS (~179 Mpx) necessarily has a side above 8000 px.
        return None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"Could not process image: {exc}") from None


@functools.lru_cache(maxsize=32)
def pdf_info(data_b64: str) -> tuple[int, str]:
    """(page count, extracted text) of a base64 PDF; raises ValueError if it is not one.

    Cached because validation, the token estimator and the default responder all need it,
    and benchmarks resend the same documents.
    """
    raw = _b64decode(data_b64, "source.data")
    if not raw.startswith(b"%PDF"):
        raise ValueError("The PDF specified was not valid: data does not start with %PDF")
    try:
        reader = pypdf.PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            raise ValueError("The PDF specified is password protected.")
        pages = len(reader.pages)
    except ValueError:
        raise
    except Exception as exc:  # pypdf raises a zoo of types for broken files
        raise ValueError(f"The PDF specified was not valid: {exc}") from None
    if pages < 1:
        raise ValueError("The PDF specified was not valid: it has no pages")
    texts: list[str] = []
    for page in reader.pages:
        try:
            texts.append(page.extract_text() or "")
        except Exception:
            # A page without extractable text still costs its per-page base.
            texts.append("")
    return pages, "\n".join(texts)


@dataclasses.dataclass(frozen=True)
class _Breakpoint:
    cum_tokens: int
    digest: bytes
    ttl: str


@dataclasses.dataclass
class _Prepared:
    """A validated request plus everything the simulator derives from it."""

    body: dict[str, Any]
    model: str
    max_tokens: int
    total_input_tokens: int
    breakpoints: list[_Breakpoint]
    block_types: tuple[str, ...]
    document_titles: tuple[str, ...]
    forced_tool: str | None
    metadata_user_id: str | None


class _Preparer:
    """Validates a Messages request body and estimates its input tokens in one pass.

    Token estimate: text ≈ len/4, images ≈ w·h/750 after downscaling, PDFs ≈
    pages·1500 + text/4, tools ≈ JSON length/4. The same walk feeds the prompt-cache
    model: segments in the API's prefix order (tools → system → messages) are chained
    into hashes, and every ``cache_control`` marks a cacheable prefix.
    """

    def __init__(self, body: dict[str, Any], *, for_count_tokens: bool) -> None:
        self.body = body
        self.for_count_tokens = for_count_tokens
        self.cum_tokens = 0
        self.digest = b""
        self.breakpoints: list[_Breakpoint] = []
        self.block_types: list[str] = []
        self.document_titles: list[str] = []
        self.images = 0
        self.pdf_pages = 0

    # The chained digest makes "same prefix" cheap to compare; cache_control itself is
    # excluded because moving a breakpoint does not change the cached content.
    def _segment(self, obj: object, tokens: int, cache_ttl: str | None) -> None:
        if isinstance(obj, dict) and "cache_control" in obj:
            obj = {k: v for k, v in obj.items() if k != "cache_control"}
        hasher = hashlib.blake2b(self.digest, digest_size=16)
        hasher.update(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS))
        self.digest = hasher.digest()
        self.cum_tokens += tokens
        if cache_ttl is not None:
            self.breakpoints.append(_Breakpoint(self.cum_tokens, self.digest, cache_ttl))

    def prepare(self) -> _Prepared:
        body = self.body
        model = body.get("model")
        if model is None:
            raise _invalid("model: Field required")
        if not isinstance(model, str) or not model.strip():
            raise _invalid("model: Input should be a non-empty string")
        self.digest = hashlib.blake2b(model.encode(), digest_size=16).digest()
        max_tokens = self._max_tokens()
        if body.get("stream"):
            raise _invalid("stream: this simulator does not implement streaming responses")
        tool_names = self._tools()
        forced_tool = self._tool_choice(tool_names)
        self._system()
        self._messages()
        self._misc()
        if len(self.breakpoints) > MAX_CACHE_BREAKPOINTS:
            raise _invalid(
                f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be "
                f"provided. Found {len(self.breakpoints)}."
            )
        metadata = body.get("metadata")
        user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
        return _Prepared(
            body=body,
            model=model,
            max_tokens=max_tokens,
            total_input_tokens=max(1, self.cum_tokens),
            breakpoints=self.breakpoints,
            block_types=tuple(self.block_types),
            document_titles=tuple(self.document_titles),
            forced_tool=forced_tool,
            metadata_user_id=user_id if isinstance(user_id, str) else None,
        )

    def _max_tokens(self) -> int:
        value = self.body.get("max_tokens")
        if value is None:
            if self.for_count_tokens:
                return 0
            raise _invalid("max_tokens: Field required")
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid("max_tokens: Input should be a valid integer")
        if value < 1:
            raise _invalid("max_tokens: Input should be greater than or equal to 1")
        return value

    def _cache_control(self, obj: dict[str, Any], path: str) -> str | None:
        cc = obj.get("cache_control")
        if cc is None:
            return None
        if not isinstance(cc, dict) or cc.get("type") != "ephemeral":
            raise _invalid(f"{path}.cache_control.type: Input should be 'ephemeral'")
        ttl = cc.get("ttl", "5m")
        if ttl not in _CACHE_TTLS:
            raise _invalid(f"{path}.cache_control.ttl: Input should be '5m' or '1h'")
        return str(ttl)

    def _tools(self) -> set[str]:
        tools = self.body.get("tools")
        if tools is None:
            return set()
        if not isinstance(tools, list):
            raise _invalid("tools: Input should be a valid list")
        names: set[str] = set()
        for i, tool in enumerate(tools):
            path = f"tools.{i}"
            if not isinstance(tool, dict):
                raise _invalid(f"{path}: Input should be a valid dictionary")
            name = tool.get("name")
            if not isinstance(name, str) or not _TOOL_NAME_RE.match(name):
                raise _invalid(f"{path}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
            tool_type = tool.get("type")
            # Server tools (e.g. "web_search_20250305") carry no input_schema.
            if tool_type in (None, "custom"):
                schema = tool.get("input_schema")
                if schema is None:
                    raise _invalid(f"{path}.custom.input_schema: Field required")
                if not isinstance(schema, dict) or schema.get("type") != "object":
                    raise _invalid(
                        f"{path}.custom.input_schema: Input should be a JSON schema object with type 'object'"
                    )
            if name in names:
                raise _invalid("tools: Tool names must be unique.")
            names.add(name)
            self._segment(tool, _json_tokens(tool), self._cache_control(tool, path))
        return names

    def _tool_choice(self, tool_names: set[str]) -> str | None:
        choice = self.body.get("tool_choice")
        if choice is None:
            return None
        if not isinstance(choice, dict) or choice.get("type") not in _TOOL_CHOICE_TYPES:
            raise _invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
        kind = choice["type"]
        if kind in ("any", "tool") and not tool_names:
            raise _invalid("tool_choice may only be specified while providing tools.")
        if kind == "tool":
            name = choice.get("name")
            if not isinstance(name, str):
                raise _invalid("tool_choice.tool.name: Field required")
            if name not in tool_names:
                raise _invalid(f"tool_choice: Tool '{name}' not found in provided tools")
            return name
        if kind == "any":
            # "any" forces *a* tool call; the simulator picks the first declared tool.
            tools = self.body["tools"]
            return str(tools[0]["name"])
        return None

    def _system(self) -> None:
        system = self.body.get("system")
        if system is None:
            return
        if isinstance(system, str):
            self._segment(system, _text_tokens(system), None)
            return
        if not isinstance(system, list):
            raise _invalid("system: Input should be a valid string or list of text blocks")
        for i, block in enumerate(system):
            path = f"system.{i}"
            if not isinstance(block, dict) or block.get("type") != "text":
                raise _invalid(f"{path}.type: Input should be 'text'")
            text = block.get("text")
            if not isinstance(text, str) or not text:
                raise _invalid(f"{path}.text: text content blocks must be non-empty")
            self._segment(block, _text_tokens(text), self._cache_control(block, path))

    def _messages(self) -> None:
        messages = self.body.get("messages")
        if messages is None:
            raise _invalid("messages: Field required")
        if not isinstance(messages, list):
            raise _invalid("messages: Input should be a valid list")
        if not messages:
            raise _invalid("messages: at least one message is required")
        for i, message in enumerate(messages):
            path = f"messages.{i}"
            if not isinstance(message, dict):
                raise _invalid(f"{path}: Input should be a valid dictionary")
            role = message.get("role")
            if role not in ("user", "assistant"):
                raise _invalid(f"{path}.role: Input should be 'user' or 'assistant'")
            self._segment({"role": role}, 0, None)
            content = message.get("content")
            if isinstance(content, str):
                if not content and role == "user":
                    raise _invalid(f"{path}: user messages must have non-empty content")
                self._segment(content, _text_tokens(content), None)
            elif isinstance(content, list):
                if not content:
                    raise _invalid(f"{path}.content: List should have at least 1 item")
                for j, block in enumerate(content):
                    block_path = f"{path}.content.{j}"
                    tokens = self._block(block, block_path, nested=False)
                    cc = self._cache_control(block, block_path)
                    self._segment(block, tokens, cc)
            else:
                raise _invalid(f"{path}.content: Field required (string or list of blocks)")
        if self.images > MAX_IMAGES_PER_REQUEST:
            raise _invalid(f"Too many images: at most {MAX_IMAGES_PER_REQUEST} per request")
        if self.pdf_pages > MAX_PDF_PAGES:
            raise _invalid(f"A maximum of {MAX_PDF_PAGES} PDF pages may be provided.")

    def _block(self, block: object, path: str, *, nested: bool) -> int:
        """Validate one content block; return its input-token estimate."""
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise _invalid(f"{path}.type: Field required")
        kind: str = block["type"]
        if kind not in KNOWN_BLOCK_TYPES:
            expected = ", ".join(f"'{t}'" for t in KNOWN_BLOCK_TYPES)
            raise _invalid(
                f"{path}: Input tag '{kind}' found using 'type' does not match any of the "
                f"expected tags: {expected}"
            )
        self.block_types.append(kind)
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str) or not text:
                raise _invalid(f"{path}.text: text content blocks must be non-empty")
            return _text_tokens(text)
        if kind == "image":
            return self._image(block, path)
        if kind == "document":
            return self._document(block, path)
        if kind == "tool_result":
            return self._tool_result(block, path, nested=nested)
        if kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise _invalid(f"{path}: tool_use blocks need string 'id' and 'name'")
            if not isinstance(block.get("input"), dict):
                raise _invalid(f"{path}.input: Input should be a valid dictionary")
        return _json_tokens(block)

    def _tool_result(self, block: dict[str, Any], path: str, *, nested: bool) -> int:
        if nested:
            raise _invalid(f"{path}: tool_result blocks cannot be nested")
        if not isinstance(block.get("tool_use_id"), str):
            raise _invalid(f"{path}.tool_use_id: Field required")
        content = block.get("content")
        if content is None:
            return 4
        if isinstance(content, str):
            return 4 + _text_tokens(content)
        if not isinstance(content, list):
            raise _invalid(f"{path}.content: Input should be a string or list of blocks")
        return 4 + sum(
            self._block(inner, f"{path}.content.{k}", nested=True) for k, inner in enumerate(content)
        )

    def _image(self, block: dict[str, Any], path: str) -> int:
        self.images += 1
        source = block.get("source")
        if not isinstance(source, dict):
            raise _invalid(f"{path}.source: Field required")
        if source.get("type") != "base64":
            raise _invalid(
                f"{path}.source.type: this simulator only accepts 'base64' image sources "
                f"(got {source.get('type')!r})"
            )
        spath = f"{path}.source.base64"
        media_type = source.get("media_type")
        if media_type not in IMAGE_MEDIA_TYPES:
            raise _invalid(
                f"{spath}.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
            )
        try:
            raw = _b64decode(source.get("data"), f"{spath}.data")
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        if len(raw) > MAX_IMAGE_BYTES:
            raise _invalid(f"{spath}: image exceeds 5 MB maximum: {len(raw)} bytes > {MAX_IMAGE_BYTES} bytes")
        sniffed = _sniff_image(raw)
        if sniffed is None:
            raise _invalid(f"{spath}.data: Could not process image")
        if sniffed != media_type:
            raise _invalid(f"{spath}: Image does not match the provided media type {media_type}")
        try:
            size = _image_size(raw)
        except ValueError as exc:
            raise _invalid(f"{spath}.data: {exc}") from None
        if size is None or max(size) > MAX_IMAGE_SIDE:
            raise _invalid(
                f"{spath}.data: At least one of the image dimensions exceed max allowed size: "
                f"{MAX_IMAGE_SIDE} pixels",
                details={
                    "error_code": "image_dimensions_too_large",
                    "max_side_length_pixels": MAX_IMAGE_SIDE,
                    "paths": [path],
                },
            )
        return _image_tokens(*size)

    def _document(self, block: dict[str, Any], path: str) -> int:
        title = block.get("title")
        if isinstance(title, str):
            self.document_titles.append(title)
        source = block.get("source")
        if not isinstance(source, dict):
            raise _invalid(f"{path}.source: Field required")
        kind = source.get("type")
        if kind == "text":
            if source.get("media_type") != "text/plain":
                raise _invalid(f"{path}.source.text.media_type: Input should be 'text/plain'")
            data = source.get("data")
            if not isinstance(data, str):
                raise _invalid(f"{path}.source.text.data: Input should be a valid string")
            return _text_tokens(data)
        if kind == "base64":
            if source.get("media_type") != "application/pdf":
                raise _invalid(f"{path}.source.base64.media_type: Input should be 'application/pdf'")
            data = source.get("data")
            if not isinstance(data, str):
                raise _invalid(f"{path}.source.base64.data: Input should be a valid string")
            try:
                pages, text = pdf_info(data)
            except ValueError as exc:
                raise _invalid(f"{path}.source.base64.data: {exc}") from None
            self.pdf_pages += pages
            return pages * PDF_TOKENS_PER_PAGE + _text_tokens(text)
        raise _invalid(
            f"{path}.source.type: this simulator accepts 'base64' (application/pdf) or 'text' "
            f"(text/plain) document sources (got {kind!r})"
        )

    def _misc(self) -> None:
        temperature = self.body.get("temperature")
        if temperature is not None and (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not 0.0 <= temperature <= 1.0
        ):
            raise _invalid("temperature: Input should be a number between 0 and 1")
        stops = self.body.get("stop_sequences")
        if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
            raise _invalid("stop_sequences: Input should be a list of strings")
        output_config = self.body.get("output_config")
        if output_config is not None:
            fmt = output_config.get("format") if isinstance(output_config, dict) else None
            if fmt is not None and (
                not isinstance(fmt, dict)
                or fmt.get("type") != "json_schema"
                or not isinstance(fmt.get("schema"), dict)
            ):
                raise _invalid("output_config.format: expected {type: 'json_schema', schema: {...}}")
            if isinstance(fmt, dict):
                self._segment(fmt, _json_tokens(fmt["schema"]), None)


def _prepare(body: dict[str, Any], for_count_tokens: bool) -> _Prepared:
    return _Preparer(body, for_count_tokens=for_count_tokens).prepare()


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """Total input tokens (cached or not) the simulator charges for ``body``; validates it.

    Raises :class:`ApiError` (400) for a body the API would reject.
    """
    return _prepare(body, True).total_input_tokens


# =================================================================================================
# The default responder: a crude, deterministic invoice "extractor"
# =================================================================================================

# A value ends at a run of 2+ spaces or where the next known label starts: PDF text
# extraction often puts several "Label: value" pairs on one line.
_NEXT_LABEL: Final = re.compile(
    r"[ \t]{2,}|[ \t]+(?=(?:invoice|vendor|supplier|seller|date|due|issue|currency|total|"
    r"subtotal|amount|tax|vat|grand|bill|ship|po|order|customer|payment)\b[^:\n]{0,30}:)",
    re.IGNORECASE,
)
_FIELD_PATTERNS: Final[Mapping[str, tuple[re.Pattern[str], ...]]] = {
    "invoice_number": (
        re.compile(
            r"\binvoice[ \t]*(?:(?:number|no\.?|num\.?|id)[ \t]*[:#]|#[ \t]*:?)[ \t]*"
            r"(?P<v>[A-Za-z0-9][\w./-]*)",
            re.IGNORECASE,
        ),
    ),
    "vendor_name": (
        re.compile(
            r"\b(?:vendor|supplier|seller)(?:[ \t]+name)?[ \t]*:[ \t]*(?P<v>[^\n]*)",
            re.IGNORECASE,
        ),
    ),
    "invoice_date": (
        re.compile(
            r"\b(?:invoice[ \t]+date|issue[ \t]+date|date[ \t]+of[ \t]+issue)[ \t]*:[ \t]*"
            r"(?P<v>[^\n]*)",
            re.IGNORECASE,
        ),
        # A bare "Date:" only at line start, so "Due Date:" is not taken for the issue date.
        re.compile(r"^[ \t]*date[ \t]*:[ \t]*(?P<v>[^\n]*)", re.IGNORECASE | re.MULTILINE),
    ),
    "currency": (re.compile(r"\bcurrency[ \t]*:[ \t]*(?P<v>[A-Za-z]{3})\b", re.IGNORECASE),),
    # Most specific label first; "\btotal" does not match inside "Subtotal".
    "total_amount": tuple(
        re.compile(rf"\b{label}[ \t]*(?:\([^)\n]*\))?[ \t]*:[ \t]*(?P<v>[^\n]*)", re.IGNORECASE)
        for label in (
            r"total[ \t]+amount(?:[ \t]+due)?",
            r"amount[ \t]+due",
            r"grand[ \t]+total",
            r"total[ \t]+due",
            r"invoice[ \t]+total",
            r"total",
        )
    ),
}
_CURRENCY_SYMBOLS: Final = {"€": "EUR", "£": "GBP", "$": "USD", "¥": "JPY", "₹": "INR"}
_DATE_FORMATS: Final = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%d %B %Y",
    "%d %b %Y",
    "%B %d, %Y",
    "%b %d, %Y",
    "%B %d %Y",
    "%b %d %Y",
)
_NUMBER_RE: Final = re.compile(r"[-+]?\d[\d,.' \u00a0]*")

IMAGE_INVOICE: Final[Mapping[str, Any]] = {
    "invoice_number": "INV-IMG-0001",
    "vendor_name": "Scanned Supplies Ltd",
    "invoice_date": "2026-01-15",
    "currency": "USD",
    "total_amount": 118.0,
}


PLACEHOLDER_INVOICE: Final[Mapping[str, Any]] = {
    "invoice_number": "UNKNOWN",
    "vendor_name": "UNKNOWN",
    "invoice_date": "UNKNOWN",
    "currency": "USD",
    "total_amount": 0.0,
}


def parse_amount(value: str) -> float | None:
    """``"€1.234,50"`` / ``"1,234.50 EUR"`` → 1234.5; None when there is no number."""
    match = _NUMBER_RE.search(value)
    if match is None:
        return None
    num = re.sub(r"[' \u00a0]", "", match.group()).rstrip(".,")
    if "," in num and "." in num:
        # Whichever separator comes last is the decimal point.
        decimal = "," if num.rfind(",") > num.rfind(".") else "."
        thousands = "." if decimal == "," else ","
        num = num.replace(thousands, "").replace(decimal, ".")
    elif "," in num:
        num = num.replace(",", ".") if re.search(r",\d{1,2}$", num) else num.replace(",", "")
    elif num.count(".") > 1:
        num = num.replace(".", "")
    try:
        return float(num)
    except ValueError:
        return None


def _normalise_date(value: str) -> str:
    value = value.strip().rstrip(".")
    for fmt in _DATE_FORMATS:
        with contextlib.suppress(ValueError):
            return dt.datetime.strptime(value, fmt).date().isoformat()
    return value


def _currency_in(value: str) -> str | None:
    code = re.search(r"\b([A-Z]{3})\b", value)
    if code:
        return code.group(1)
    for symbol, iso in _CURRENCY_SYMBOLS.items():
        if symbol in value:
            return iso
    return None


def extract_invoice(text: str) -> dict[str, Any] | None:
    """Labelled invoice fields found in ``text``; None when no field at all is found."""
    found: dict[str, str] = {}
    for field, patterns in _FIELD_PATTERNS.items():
        for pattern in patterns:
            match = pattern.search(text)
            value = _NEXT_LABEL.split(match.group("v"), maxsplit=1)[0].strip() if match else ""
            if value:
                found[field] = value
                break
    if not found:
        return None
    total_text = found.get("total_amount", "")
    total = parse_amount(total_text) if total_text else None
    currency = found.get("currency") or _currency_in(total_text) or "USD"
    return {
        "invoice_number": found.get("invoice_number", "UNKNOWN").rstrip(".,;"),
        "vendor_name": found.get("vendor_name", "UNKNOWN"),
        "invoice_date": _normalise_date(found["invoice_date"]) if "invoice_date" in found else "UNKNOWN",
        "currency": currency.upper(),
        "total_amount": total if total is not None else 0.0,
    }


def _request_texts(body: Mapping[str, Any]) -> tuple[list[str], list[str], bool]:
    """(document texts, text-block texts, has_image) from the request's messages."""
    documents: list[str] = []
    texts: list[str] = []
    has_image = False

    def visit(block: object) -> None:
        nonlocal has_image
        if not isinstance(block, dict):
            return
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "image":
            has_image = True
        elif kind == "document":
            source = block.get("source") or {}
            if source.get("type") == "text" and isinstance(source.get("data"), str):
                documents.append(source["data"])
            elif source.get("type") == "base64" and isinstance(source.get("data"), str):
                with contextlib.suppress(ValueError):
                    documents.append(pdf_info(source["data"])[1])
        elif kind == "tool_result" and isinstance(block.get("content"), list):
            for inner in block["content"]:
                visit(inner)

    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for block in content:
                visit(block)
    return documents, texts, has_image


def _placeholder(schema: object) -> Any:
    if not isinstance(schema, dict):
        return "UNKNOWN"
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    defaults: dict[str, Any] = {
        "number": 0.0,
        "integer": 0,
        "boolean": False,
        "array": [],
        "object": {},
        "null": None,
    }
    return defaults.get(str(kind), "UNKNOWN")


def _conform(data: dict[str, Any], schema: object) -> dict[str, Any]:
    """Fill required properties the extractor does not know and drop forbidden extras,
    as a schema-following model would."""
    if not isinstance(schema, dict):
        return data
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    if schema.get("additionalProperties") is False and props:
        data = {k: v for k, v in data.items() if k in props}
    for name in schema.get("required") or []:
        if isinstance(name, str) and name not in data:
            data[name] = _placeholder(props.get(name))
    return data


def default_responder(body: dict[str, Any]) -> dict[str, Any]:
    """Extract an invoice from the request's documents and text, as Claude would.

    Documents (PDF text via pypdf, text documents) are searched before text blocks, so
    a labelled example in the prompt never beats the document itself. Requests with
    only images get :data:`IMAGE_INVOICE`. The result is fitted to the forced tool's
    ``input_schema`` (or ``output_config`` schema) when one is given.
    """
    documents, texts, has_image = _request_texts(body)
    invoice = None
    for text in (*documents, "\n".join(texts)):
        invoice = extract_invoice(text)
        if invoice is not None:
            break
    if invoice is None:
        invoice = dict(IMAGE_INVOICE if has_image else PLACEHOLDER_INVOICE)
    return _conform(invoice, _response_schema(body))


def _response_schema(body: Mapping[str, Any]) -> object:
    choice = body.get("tool_choice")
    tools = body.get("tools") or []
    if isinstance(choice, dict) and choice.get("type") in ("tool", "any") and tools:
        name = choice.get("name") if choice.get("type") == "tool" else tools[0].get("name")
        for tool in tools:
            if tool.get("name") == name:
                return tool.get("input_schema")
    output_config = body.get("output_config")
    if isinstance(output_config, dict) and isinstance(output_config.get("format"), dict):
        return output_config["format"].get("schema")
    return None


# =================================================================================================
# Rate limiting and prompt cache (mutated under the simulator's lock)
# =================================================================================================


class _Bucket:
    """A token bucket holding up to ``limit`` and refilled at ``limit/60`` per second.

    ``limit == 0`` means unlimited. The level may go negative (output tokens are debited
    after the fact), in which case requests wait until it has refilled.
    """

    __slots__ = ("level", "limit", "updated")

    def __init__(self, limit: int, now: float) -> None:
        self.limit = max(0, limit)
        self.level = float(self.limit)
        self.updated = now

    @property
    def unlimited(self) -> bool:
        return self.limit == 0

    def refill(self, now: float) -> None:
        if not self.unlimited:
            self.level = min(float(self.limit), self.level + (now - self.updated) * self.limit / 60)
        self.updated = now

    def wait_seconds(self, need: float) -> float:
        """Seconds until ``need`` fits; 0 if it fits now.

        A need larger than the whole bucket is admitted once the bucket is full (then
        driven negative): otherwise such a request could never succeed, and retrying
        clients would spin forever.
        """
        if self.unlimited:
            return 0.0
        need = min(need, float(self.limit))
        return 0.0 if self.level >= need else (need - self.level) * 60 / self.limit

    def take(self, amount: float) -> None:
        if not self.unlimited:
            self.level -= amount

    def headers(self, name: str, now_wall: float) -> dict[str, str]:
        if self.unlimited:
            limit = remaining = UNLIMITED_HEADER_VALUE
            to_full = 0.0
        else:
            limit, remaining = self.limit, max(0, math.floor(self.level))
            to_full = (self.limit - self.level) * 60 / self.limit
        reset = dt.datetime.fromtimestamp(now_wall + max(0.0, to_full), tz=dt.UTC)
        prefix = f"anthropic-ratelimit-{name}"
        return {
            f"{prefix}-limit": str(limit),
            f"{prefix}-remaining": str(remaining),
            f"{prefix}-reset": reset.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


@dataclasses.dataclass(frozen=True)
class _CachePlan:
    read: int = 0
    create_5m: int = 0
    create_1h: int = 0

    @property
    def created(self) -> int:
        return self.create_5m + self.create_1h


class _PromptCache:
    """Prefix hash → expiry. The longest live breakpoint prefix is read; every eligible
    breakpoint beyond it is written (its new tokens billed at that breakpoint's TTL)."""

    def __init__(self) -> None:
        self.entries: dict[bytes, float] = {}

    def plan(self, bps: list[_Breakpoint], now: float, min_tokens: int) -> _CachePlan:
        eligible = [bp for bp in bps if bp.cum_tokens >= min_tokens]
        read, start = 0, 0
        for k in range(len(eligible) - 1, -1, -1):
            if self.entries.get(eligible[k].digest, 0.0) > now:
                read, start = eligible[k].cum_tokens, k + 1
                break
        created = {"5m": 0, "1h": 0}
        prev = read
        for bp in eligible[start:]:
            created[bp.ttl] += max(0, bp.cum_tokens - prev)
            prev = max(prev, bp.cum_tokens)
        return _CachePlan(read=read, create_5m=created["5m"], create_1h=created["1h"])

    def commit(self, bps: list[_Breakpoint], now: float, min_tokens: int) -> None:
        for bp in bps:
            if bp.cum_tokens >= min_tokens:
                # Reads refresh the TTL, as the real cache does.
                self.entries[bp.digest] = now + _CACHE_TTLS[bp.ttl]
        if len(self.entries) > 200_000:
            self.entries = {k: v for k, v in self.entries.items() if v > now}


@dataclasses.dataclass(frozen=True)
class _Fault:
    status: int | None
    """None: only delay, then process the request normally."""
    retry_after: float | None = None
    delay: float = 0.0
    message: str | None = None
    details: dict[str, Any] | None = None


@dataclasses.dataclass
class _Ctx:
    """Per-request facts gathered for the stats."""

    request_id: str
    received_at: float
    model: str | None = None
    auth: str = "none"
    key: str = ""
    version: str | None = None
    error_type: str | None = None
    summary: RequestSummary | None = None


def _fmt_seconds(seconds: float) -> str:
    # Integral values as integers (the real header's format); fractions are kept for
    # fast tests — the SDK accepts non-integer retry-after values.
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _new_id(prefix: str) -> str:
    return f"{prefix}_01{uuid.uuid4().hex[:22]}"


# =================================================================================================
# The simulator
# =================================================================================================


class AnthropicSimulator:
    """An aiohttp server simulating ``/v1/messages`` and ``/v1/messages/count_tokens``.

    Runs on its own event loop in a background thread (``start``/``stop`` or ``with``),
    or in the foreground via :func:`main`. Every public method is thread-safe.

    Args:
        host, port: where to listen; port 0 picks a free port (see :attr:`base_url`).
        rpm, itpm, otpm: org-wide requests / input tokens / output tokens per minute;
            0 = unlimited.
        latency: seconds added to every accepted request; ``jitter`` adds uniform
            ±jitter seconds; ``latency_per_output_token`` models generation time.
        responder: request body → tool input; replaceable at runtime via ``.responder``.
        api_keys: if given, only these keys authenticate (others get 401).
        models: if given, other model ids get 404 not_found_error.
        cache_min_tokens: shortest cacheable prefix (the real API silently skips caching
            below 1,024 to 4,096 tokens depending on the model; 0 caches everything).
        seed: seeds jitter and :meth:`fail_rate` draws for reproducible runs.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rpm: int = 0,
        itpm: int = 0,
        otpm: int = 0,
        latency: float = 0.0,
        jitter: float = 0.0,
        latency_per_output_token: float = 0.0,
        responder: Responder | None = None,
        api_keys: set[str] | None = None,
        models: set[str] | None = None,
        cache_min_tokens: int = 0,
        seed: int | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self.latency = latency
        self.jitter = jitter
        self.latency_per_output_token = latency_per_output_token
        self.responder: Responder = responder or default_responder
        self.api_keys = api_keys
        self.models = models
        self.cache_min_tokens = cache_min_tokens
        self.spend_limit_reached = False
        """When True every ``/v1/messages`` gets the spend-limit 429 (see
        :meth:`_spend_limit_error`)."""

        # One lock guards all mutable state below; the condition lets test threads wait
        # for counters without polling.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._rng = random.Random(seed)
        now = time.monotonic()
        self._limits = (rpm, itpm, otpm)
        self._requests = _Bucket(rpm, now)
        self._input = _Bucket(itpm, now)
        self._output = _Bucket(otpm, now)
        self._cache = _PromptCache()
        self._faults: deque[_Fault] = deque()
        self._fail_rates: dict[int, float] = {}
        self._stats = SimStats()

        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        # Validation, PDF parsing and responders are CPU work; a small pool keeps the
        # event loop free to accept connections and time out sleeps meanwhile.
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    # ---------------------------------------------------------------- lifecycle

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("simulator is not running")
        return self._port

    @property
    def base_url(self) -> str:
        """E.g. ``http://127.0.0.1:43817`` — pass as the SDK's ``base_url``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> AnthropicSimulator:
        """Start serving on a background thread; returns self once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="anthropic-sim", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self.astart(), loop).result(timeout=30)
        except BaseException:
            self._shutdown_thread()
            raise
        return self

    def stop(self) -> None:
        """Stop serving; in-flight requests are cancelled. Idempotent."""
        if self._loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self.astop(), self._loop).result(timeout=30)
        finally:
            self._shutdown_thread()

    def _shutdown_thread(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()

    async def astart(self) -> None:
        """Bind and serve on the *current* event loop (used by ``start`` and :func:`main`)."""
        self._executor = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="sim-cpu")
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/v1/messages", self._handle_messages)
        app.router.add_post("/v1/messages/count_tokens", self._handle_count_tokens)
        app.router.add_get("/_sim/stats", self._handle_admin_stats)
        app.router.add_post("/_sim/reset", self._handle_admin_reset)
        app.router.add_post("/_sim/inject", self._handle_admin_inject)
        # handler_cancellation: a client that gives up (timeout) cancels its handler, so
        # injected hangs do not pile up; short shutdown_timeout: stop() is prompt.
        runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._requested_port, backlog=2048)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner, self._port = runner, site.port

    async def astop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._port = None

    def __enter__(self) -> AnthropicSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- control

    def inject(
        self,
        status: int,
        count: int = 1,
        retry_after: float | None = None,
        *,
        delay: float = 0.0,
        message: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Answer the next ``count`` ``/v1/messages`` requests with ``status``.

        The error type follows the status (500 api_error, 529 overloaded_error, 504
        timeout_error, 429 rate_limit_error, ...). ``retry_after`` adds that header
        (seconds); ``delay`` waits before answering. Faults come before auth and
        validation, like an overloaded front end, and consume no rate limit.
        """
        if count < 1:
            raise ValueError("count must be >= 1")
        fault = _Fault(status, retry_after, delay, message, details)
        with self._lock:
            self._faults.extend([fault] * count)

    def inject_delay(self, seconds: float, count: int = 1) -> None:
        """Hold the next ``count`` requests for ``seconds`` before processing them
        normally — longer than the client's timeout makes the client give up."""
        with self._lock:
            self._faults.extend([_Fault(None, delay=seconds)] * count)

    def fail_rate(self, status: int, probability: float) -> None:
        """Answer each request with ``status`` at random with ``probability`` (0 removes)."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        with self._lock:
            if probability == 0.0:
                self._fail_rates.pop(status, None)
            else:
                self._fail_rates[status] = probability

    def set_limits(self, *, rpm: int | None = None, itpm: int | None = None, otpm: int | None = None) -> None:
        """Change rate limits at runtime; changed buckets start full."""
        now = time.monotonic()
        with self._lock:
            old_rpm, old_itpm, old_otpm = self._limits
            if rpm is not None:
                self._requests = _Bucket(rpm, now)
            if itpm is not None:
                self._input = _Bucket(itpm, now)
            if otpm is not None:
                self._output = _Bucket(otpm, now)
            self._limits = (
                old_rpm if rpm is None else rpm,
                old_itpm if itpm is None else itpm,
                old_otpm if otpm is None else otpm,
            )

    def reset(self) -> None:
        """Clear stats, queued and random faults, the spend-limit switch and the prompt
        cache, and refill the buckets. Configuration (limits, latency, responder) stays."""
        now = time.monotonic()
        with self._lock:
            in_flight = self._stats.in_flight
            self._stats = SimStats(in_flight=in_flight)
            self._faults.clear()
            self._fail_rates.clear()
            self.spend_limit_reached = False
            self._cache = _PromptCache()
            rpm, itpm, otpm = self._limits
            self._requests, self._input, self._output = (
                _Bucket(rpm, now),
                _Bucket(itpm, now),
                _Bucket(otpm, now),
            )
            self._changed.notify_all()

    # ---------------------------------------------------------------- accounting

    @property
    def stats(self) -> SimStats:
        """A consistent snapshot, safe to inspect while requests continue."""
        with self._lock:
            return self._stats.snapshot()

    def bill_usd(self, prices: Mapping[str, Mapping[str, float]]) -> float:
        """Independent bill of everything accepted so far; see :func:`bill_usd`."""
        with self._lock:
            usage = self._stats.snapshot().usage
        return bill_usd(usage, prices)

    def wait_for(self, predicate: Callable[[SimStats], bool], timeout: float = 10.0) -> SimStats:
        """Block until ``predicate(stats)`` holds (re-checked on every change); return a
        snapshot. Raises :class:`TimeoutError` after ``timeout`` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self._stats), timeout=timeout):
                raise TimeoutError(f"simulator condition not met within {timeout}s: {self._stats.to_json()}")
            return self._stats.snapshot()

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> SimStats:
        """Block until at least ``n`` ``/v1/messages`` requests have been answered."""
        return self.wait_for(lambda s: s.total_requests >= n, timeout)

    def ratelimit_headers(self) -> dict[str, str]:
        """The ``anthropic-ratelimit-*`` headers as of now (also sent on every response)."""
        now, wall = time.monotonic(), time.time()
        with self._lock:
            buckets = (self._requests, self._input, self._output)
            for bucket in buckets:
                bucket.refill(now)
            headers = self._requests.headers("requests", wall)
            headers |= self._input.headers("input-tokens", wall)
            headers |= self._output.headers("output-tokens", wall)
            # "tokens" reports whichever token bucket is currently more restrictive.
            limited = [b for b in (self._input, self._output) if not b.unlimited]
            tightest = min(limited, key=lambda b: b.level) if limited else self._input
        headers |= tightest.headers("tokens", wall)
        return headers

    # ---------------------------------------------------------------- HTTP plumbing

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            return await handler(request)
        request_id = _new_id("req")
        request[_REQUEST_ID] = request_id
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            # aiohttp's own 404/405 → Anthropic-shaped errors.
            response = self._error_response(request_id, ApiError(exc.status, exc.reason or "error"))
        except Exception as exc:  # pragma: no cover - a simulator bug must still answer JSON
            log.exception("simulator handler failed")
            response = self._error_response(request_id, ApiError(500, f"simulator bug: {exc}"))
        response.headers["request-id"] = request_id
        response.headers.update(self.ratelimit_headers())
        return response

    def _error_response(self, request_id: str, err: ApiError) -> web.Response:
        error: dict[str, Any] = {"type": err.error_type, "message": err.message}
        if err.details is not None:
            error["details"] = err.details
        headers = {}
        if err.retry_after is not None:
            headers["retry-after"] = _fmt_seconds(err.retry_after)
        return web.Response(
            status=err.status,
            body=orjson.dumps({"type": "error", "error": error, "request_id": request_id}),
            content_type="application/json",
            headers=headers,
        )

    async def _cpu(self, fn: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    @staticmethod
    async def _read_body(request: web.Request) -> bytes:
        """The body, or ApiError(413) beyond 32 MB. The excess is drained, not refused
        mid-upload, so the client reliably sees the 413 instead of a broken pipe."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(1 << 20):
            size += len(chunk)
            if size <= MAX_REQUEST_BYTES:
                chunks.append(chunk)
        if size > MAX_REQUEST_BYTES:
            raise ApiError(
                413,
                "Request exceeds the maximum allowed number of bytes. The maximum request "
                "size is 32 MB for standard API requests.",
            )
        return b"".join(chunks)

    @staticmethod
    def _observe_headers(request: web.Request, ctx: _Ctx) -> None:
        """Note credentials and version without judging them, so requests answered by an
        injected fault are still attributed to the auth method they used."""
        api_key = request.headers.get("x-api-key", "").strip()
        authorization = request.headers.get("authorization", "")
        bearer = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
        ctx.key = api_key or bearer
        if api_key and bearer:
            ctx.auth = "both"
        elif api_key:
            ctx.auth = "x-api-key"
        elif bearer:
            ctx.auth = "bearer"
        ctx.version = request.headers.get("anthropic-version") or None

    def _check_headers(self, ctx: _Ctx) -> None:
        """401 for missing/unknown credentials, then 400 for a missing anthropic-version."""
        if ctx.auth == "none":
            raise ApiError(401, "x-api-key header or Authorization: Bearer token is required")
        if self.api_keys is not None and ctx.key not in self.api_keys:
            raise ApiError(401, "invalid x-api-key")
        if ctx.version is None:
            raise _invalid("anthropic-version: header is required")

    @staticmethod
    def _parse_json(raw: bytes) -> dict[str, Any]:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _invalid(f"There was an error parsing the body of your request: {exc}") from None
        if not isinstance(body, dict):
            raise _invalid("Request body must be a JSON object")
        return body

    def _next_fault(self) -> _Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            for status, probability in self._fail_rates.items():
                if self._rng.random() < probability:
                    return _Fault(status)
        return None

    @staticmethod
    def _fault_error(fault: _Fault) -> ApiError:
        status = fault.status or 500
        message = fault.message or _DEFAULT_FAULT_MESSAGES.get(status, f"Injected HTTP {status}")
        return ApiError(status, message, details=fault.details, retry_after=fault.retry_after)

    @staticmethod
    def _spend_limit_error() -> ApiError:
        """The spend-cap 429, modelled on the SDK 2.x error shape.

        ``error.details.error_code == "enforced_spend_limit_reached"`` (which the SDK maps
        to ``EnforcedSpendLimitReachedError``, a ``RateLimitError``); the message also names
        the code for clients that only read text. No ``retry-after``: waiting does not help.
        """
        return ApiError(
            429,
            "You have reached your organization's enforced spend limit "
            f"({SPEND_LIMIT_ERROR_CODE}). Requests will fail until an administrator raises "
            "the limit or it resets.",
            details={"error_code": SPEND_LIMIT_ERROR_CODE},
        )

    def _rate_limit_error(self, name: str, limit: int, wait: float) -> ApiError:
        unit = {"requests": "requests", "input": "input tokens", "output": "output tokens"}[name]
        return ApiError(
            429,
            f"This request would exceed the rate limit for your organization of {limit:,} "
            f"{unit} per minute. For details, refer to: "
            "https://docs.claude.com/en/api/rate-limits. You can see the response headers "
            "for current usage. Please reduce the prompt length or the maximum tokens "
            "requested, or try again later.",
            retry_after=max(1, math.ceil(wait)),
        )

    # ---------------------------------------------------------------- /v1/messages

    async def _handle_messages(self, request: web.Request) -> web.StreamResponse:
        ctx = _Ctx(request_id=request[_REQUEST_ID], received_at=time.monotonic())
        with self._lock:
            self._stats.received += 1
            self._stats.in_flight += 1
            self._changed.notify_all()
        status = 499  # stays so if the client disconnects and the handler is cancelled
        try:
            try:
                response: web.StreamResponse = await self._messages(request, ctx)
            except ApiError as err:
                ctx.error_type = err.error_type
                response = self._error_response(ctx.request_id, err)
            status = response.status
            return response
        except Exception:
            status = 500
            ctx.error_type = "api_error"
            raise
        finally:
            self._record(ctx, status)

    def _record(self, ctx: _Ctx, status: int) -> None:
        with self._lock:
            s = self._stats
            s.in_flight = max(0, s.in_flight - 1)
            s.total_requests += 1
            s.by_status[status] = s.by_status.get(status, 0) + 1
            s.by_auth[ctx.auth] = s.by_auth.get(ctx.auth, 0) + 1
            if ctx.model is not None:
                s.by_model[ctx.model] = s.by_model.get(ctx.model, 0) + 1
            if ctx.version is not None:
                s.by_version[ctx.version] = s.by_version.get(ctx.version, 0) + 1
            if ctx.error_type is not None:
                s.by_error_type[ctx.error_type] = s.by_error_type.get(ctx.error_type, 0) + 1
            if ctx.summary is not None and status == 200:
                s.accepted.append(ctx.summary)
            self._changed.notify_all()

    async def _messages(self, request: web.Request, ctx: _Ctx) -> web.Response:
        self._observe_headers(request, ctx)
        raw = await self._read_body(request)
        # Parse early (errors reported later, in the API's order) so faults and auth
        # failures are still attributed to a model in the stats.
        body: dict[str, Any] | None = None
        parse_error: ApiError | None = None
        try:
            body = await self._cpu(self._parse_json, raw)
            model = body.get("model")
            ctx.model = model if isinstance(model, str) else None
        except ApiError as err:
            parse_error = err

        fault = self._next_fault()
        if fault is not None:
            if fault.delay > 0:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                raise self._fault_error(fault)

        self._check_headers(ctx)
        if parse_error is not None or body is None:
            raise parse_error or _invalid("empty body")
        prepared = await self._cpu(_prepare, body, False)
        if self.models is not None and prepared.model not in self.models:
            raise ApiError(404, f"model: {prepared.model}")
        if self.spend_limit_reached:
            raise self._spend_limit_error()

        plan = self._admit(prepared)
        result = await self._cpu(self.responder, body)
        message, output_tokens = self._build_message(prepared, plan, result)

        delay = self.latency + self.latency_per_output_token * output_tokens
        if self.jitter:
            with self._lock:
                delay += self._rng.uniform(-self.jitter, self.jitter)
        if delay > 0:
            await asyncio.sleep(delay)

        with self._lock:
            # Output is "generated" by now: debit it, possibly driving the bucket negative.
            self._output.refill(time.monotonic())
            self._output.take(output_tokens)
            # A client that hung up during the sleep cancelled this handler before here:
            # it is billed nothing, though its input was already debited from ITPM.
            totals = self._stats.usage.setdefault(prepared.model, UsageTotals())
            totals.requests += 1
            totals.input_tokens += message["usage"]["input_tokens"]
            totals.output_tokens += output_tokens
            totals.cache_creation_input_tokens += plan.created
            totals.cache_creation_5m_input_tokens += plan.create_5m
            totals.cache_creation_1h_input_tokens += plan.create_1h
            totals.cache_read_input_tokens += plan.read
        usage = message["usage"]
        ctx.summary = RequestSummary(
            request_id=ctx.request_id,
            model=prepared.model,
            block_types=prepared.block_types,
            document_titles=prepared.document_titles,
            tool_name=prepared.forced_tool,
            stop_reason=message["stop_reason"],
            input_tokens=usage["input_tokens"],
            output_tokens=usage["output_tokens"],
            cache_creation_input_tokens=plan.created,
            cache_read_input_tokens=plan.read,
            auth_method=ctx.auth,
            metadata_user_id=prepared.metadata_user_id,
            received_at=ctx.received_at,
        )
        return web.Response(body=orjson.dumps(message), content_type="application/json")

    def _admit(self, prepared: _Prepared) -> _CachePlan:
        """Rate-limit check and, if admitted, debit requests and uncached input."""
        now = time.monotonic()
        with self._lock:
            plan = self._cache.plan(prepared.breakpoints, now, self.cache_min_tokens)
            # Only uncached input (input + cache writes) counts toward ITPM.
            uncached = prepared.total_input_tokens - plan.read
            checks = (
                ("requests", self._requests, 1.0),
                ("input", self._input, float(uncached)),
                ("output", self._output, 1.0),  # output debt must be repaid first
            )
            waits = []
            for name, bucket, need in checks:
                bucket.refill(now)
                wait = bucket.wait_seconds(need)
                if wait > 0:
                    waits.append((wait, name, bucket.limit))
            if waits:
                wait, name, limit = max(waits)
                raise self._rate_limit_error(name, limit, wait)
            self._requests.take(1)
            self._input.take(uncached)
            self._cache.commit(prepared.breakpoints, now, self.cache_min_tokens)
        return plan

    def _build_message(
        self, prepared: _Prepared, plan: _CachePlan, result: dict[str, Any]
    ) -> tuple[dict[str, Any], int]:
        output_json = orjson.dumps(result)
        output_tokens = math.ceil(len(output_json) / 4) + OUTPUT_TOKEN_OVERHEAD
        truncated = output_tokens > prepared.max_tokens
        if truncated:
            # Like the real API: generation stops at max_tokens, leaving a cut-off answer.
            output_tokens = prepared.max_tokens
        content: dict[str, Any]
        if prepared.forced_tool is not None:
            content = {
                "type": "tool_use",
                "id": _new_id("toolu"),
                "name": prepared.forced_tool,
                "input": {} if truncated else result,
            }
            stop_reason = "max_tokens" if truncated else "tool_use"
        else:
            text = output_json.decode()
            content = {"type": "text", "text": text[: output_tokens * 4] if truncated else text}
            stop_reason = "max_tokens" if truncated else "end_turn"
        message = {
            "id": _new_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": prepared.model,
            "content": [content],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": prepared.total_input_tokens - plan.read - plan.created,
                "output_tokens": output_tokens,
                "cache_creation_input_tokens": plan.created,
                "cache_read_input_tokens": plan.read,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": plan.create_5m,
                    "ephemeral_1h_input_tokens": plan.create_1h,
                },
                "service_tier": "standard",
            },
        }
        return message, output_tokens

    # ---------------------------------------------------------------- count_tokens

    async def _handle_count_tokens(self, request: web.Request) -> web.StreamResponse:
        ctx = _Ctx(request_id=request[_REQUEST_ID], received_at=time.monotonic())
        with self._lock:
            self._stats.count_tokens_requests += 1
        try:
            raw = await self._read_body(request)
            self._observe_headers(request, ctx)
            self._check_headers(ctx)
            body = await self._cpu(self._parse_json, raw)
            prepared = await self._cpu(_prepare, body, True)
        except ApiError as err:
            return self._error_response(ctx.request_id, err)
        return web.json_response({"input_tokens": prepared.total_input_tokens})

    # ---------------------------------------------------------------- admin (separate process)

    async def _handle_admin_stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats.to_json())

    async def _handle_admin_reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return web.json_response({"ok": True})

    async def _handle_admin_inject(self, request: web.Request) -> web.StreamResponse:
        try:
            args = orjson.loads(await request.read())
            if args.get("status") is None:
                self.inject_delay(float(args["delay"]), int(args.get("count", 1)))
            else:
                self.inject(
                    int(args["status"]),
                    int(args.get("count", 1)),
                    args.get("retry_after"),
                    delay=float(args.get("delay", 0.0)),
                    message=args.get("message"),
                )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True})


# =================================================================================================
# Standalone entry point
# =================================================================================================


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
    parser.add_argument("--cache-min-tokens", type=int, default=0)
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


if __name__ == "__main__":
    sys.exit(main())
