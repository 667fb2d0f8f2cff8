"""Tests of the Anthropic API simulator, driven through the real ``anthropic`` SDK.

The simulator is only useful if the official client parses its answers exactly as it
parses the real API's, so every behaviour is checked through ``AsyncAnthropic`` (or
raw ``httpx2`` where the SDK would refuse to send the request at all).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any, cast

import anthropic
import httpx2
import orjson
import pypdf
import pytest
from PIL import Image

from tests.anthropic_sim import (
    IMAGE_INVOICE,
    MAX_REQUEST_BYTES,
    AnthropicSimulator,
    bill_usd,
    extract_invoice,
)
from tests.helpers.paths import REPO as ROOT

MODEL = "claude-haiku-4-5"
OTHER_MODEL = "claude-sonnet-4-6"
TOOL_NAME = "record_invoice"
INVOICE_TOOL: dict[str, Any] = {
    "name": TOOL_NAME,
    "description": "Record the fields of one invoice.",
    "input_schema": {
        "type": "object",
        "properties": {
            "invoice_number": {"type": "string"},
            "vendor_name": {"type": "string"},
            "invoice_date": {"type": "string"},
            "currency": {"type": "string"},
            "total_amount": {"type": "number"},
        },
        "required": ["invoice_number", "vendor_name", "invoice_date", "currency", "total_amount"],
        "additionalProperties": False,
    },
}
# USD per MTok, from /work/shared/ANTHROPIC-API.md.
PRICES = {
    "claude-haiku-4-5": {"input": 1.0, "output": 5.0, "cache_write_5m": 1.25, "cache_read": 0.10},
    "claude-sonnet-4": {"input": 3.0, "output": 15.0, "cache_write_5m": 3.75, "cache_read": 0.30},
}
INVOICE_TEXT = """ACME LTD
Invoice Number: INV-001
Vendor: Acme Ltd
Invoice Date: 2026-01-15
Currency: EUR
Subtotal: 1,000.00
Total: 1,234.50
"""
EXPECTED = {
    "invoice_number": "INV-001",
    "vendor_name": "Acme Ltd",
    "invoice_date": "2026-01-15",
    "currency": "EUR",
    "total_amount": 1234.5,
}

pytestmark = pytest.mark.timeout(60)


# --------------------------------------------------------------------------------- helpers


@pytest.fixture
def sim() -> Iterator[AnthropicSimulator]:
    with AnthropicSimulator(seed=1) as simulator:
        yield simulator


def client_for(sim: AnthropicSimulator, **kwargs: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="test-key", max_retries=0, **kwargs)


def text_document(text: str = INVOICE_TEXT) -> dict[str, Any]:
    return {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": text},
        "title": "doc-1",
    }


def png_bytes(width: int = 4, height: int = 4) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def image_block(data: str, media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def minimal_pdf(lines: list[str]) -> bytes:
    """A hand-written one-page PDF (Helvetica text) with a correct xref table."""
    ops = ["BT", "/F1 12 Tf", "14 TL", "72 720 Td"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        ops.append(f"({escaped}) Tj T*")
    ops.append("ET")
    stream = "\n".join(ops).encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def blank_pdf(pages: int) -> bytes:
    writer = pypdf.PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=612, height=792)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def pdf_block(data: bytes) -> dict[str, Any]:
    return {
        "type": "document",
        "source": {
            "type": "base64",
            "media_type": "application/pdf",
            "data": base64.b64encode(data).decode(),
        },
    }


async def extract(
    client: anthropic.AsyncAnthropic, blocks: list[dict[str, Any]], **kwargs: Any
) -> anthropic.types.Message:
    params: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 1024,
        "tools": [INVOICE_TOOL],
        "tool_choice": {"type": "tool", "name": TOOL_NAME},
        "messages": [{"role": "user", "content": blocks}],
    }
    params.update(kwargs)
    return cast(anthropic.types.Message, await client.messages.create(**params))


def raw_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hello"}],
    }
    body.update(overrides)
    return body


# --------------------------------------------------------------------------------- success


@pytest.mark.asyncio
async def test_forced_tool_call_with_text_document(sim: AnthropicSimulator) -> None:
    """A forced tool call on a text document returns a tool_use block carrying the
    labelled invoice fields, with the requested model, ids and a full usage object."""
    async with client_for(sim) as client:
        message = await extract(client, [text_document(), {"type": "text", "text": "Extract."}])

    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == MODEL
    assert message.id.startswith("msg_")
    assert message.stop_reason == "tool_use"
    assert message.stop_sequence is None
    assert message._request_id is not None
    assert message._request_id.startswith("req_")
    [block] = message.content
    assert isinstance(block, anthropic.types.ToolUseBlock)
    assert block.name == TOOL_NAME
    assert block.id.startswith("toolu_")
    assert block.input == EXPECTED
    assert message.usage.input_tokens > len(INVOICE_TEXT) // 4
    assert message.usage.output_tokens == -(-len(orjson.dumps(EXPECTED)) // 4) + 20
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.cache_read_input_tokens == 0

    stats = sim.stats
    assert stats.by_status == {200: 1}
    assert stats.by_auth == {"bearer": 1}  # the 2.x SDK authenticates with a Bearer token
    [summary] = stats.accepted
    assert summary.block_types == ("document", "text")
    assert summary.document_titles == ("doc-1",)
    assert summary.tool_name == TOOL_NAME


@pytest.mark.asyncio
async def test_png_image_gets_fixed_invoice(sim: AnthropicSimulator) -> None:
    """A valid PNG (made with Pillow) is accepted, costs ≈ w·h/750 tokens, and the
    default responder answers a fixed, plausible invoice for image-only requests."""
    data = base64.b64encode(png_bytes(40, 30)).decode()
    async with client_for(sim) as client:
        message = await extract(client, [image_block(data)])
    [block] = message.content
    assert isinstance(block, anthropic.types.ToolUseBlock)
    assert block.input == dict(IMAGE_INVOICE)
    assert message.usage.input_tokens >= 2  # 40*30/750 = 1.6 → 2, plus the tool schema
    assert sim.stats.accepted[0].block_types == ("image",)


@pytest.mark.asyncio
async def test_pdf_document_is_read_with_pypdf(sim: AnthropicSimulator) -> None:
    """A base64 PDF is parsed with pypdf: its text feeds the extractor and each page
    costs ~1,500 input tokens."""
    pdf = minimal_pdf(
        [
            "Invoice Number: INV-PDF-7",
            "Vendor Name: Globex GmbH",
            "Date: 2026-02-01",
            "Amount Due: EUR 2.500,75",
        ]
    )
    async with client_for(sim) as client:
        message = await extract(client, [pdf_block(pdf)])
    [block] = message.content
    assert isinstance(block, anthropic.types.ToolUseBlock)
    assert block.input == {
        "invoice_number": "INV-PDF-7",
        "vendor_name": "Globex GmbH",
        "invoice_date": "2026-02-01",
        "currency": "EUR",
        "total_amount": 2500.75,
    }
    assert message.usage.input_tokens >= 1500


@pytest.mark.asyncio
async def test_unforced_request_gets_json_text(sim: AnthropicSimulator) -> None:
    """Without a forced tool the reply is a text block holding the responder's JSON."""
    async with client_for(sim) as client:
        message = await client.messages.create(
            model=MODEL,
            max_tokens=512,
            messages=[{"role": "user", "content": INVOICE_TEXT}],
        )
    [block] = message.content
    assert isinstance(block, anthropic.types.TextBlock)
    assert orjson.loads(block.text) == EXPECTED
    assert message.stop_reason == "end_turn"


@pytest.mark.asyncio
async def test_responder_can_be_replaced_at_runtime(sim: AnthropicSimulator) -> None:
    """``sim.responder`` can be swapped to make Claude return schema-violating output,
    and a tiny max_tokens truncates the call with stop_reason max_tokens."""
    sim.responder = lambda body: {"total_amount": "lots", "unexpected": True}
    async with client_for(sim) as client:
        message = await extract(client, [text_document()])
        truncated = await extract(client, [text_document()], max_tokens=5)
    [block] = message.content
    assert isinstance(block, anthropic.types.ToolUseBlock)
    assert block.input == {"total_amount": "lots", "unexpected": True}
    assert truncated.stop_reason == "max_tokens"
    assert truncated.usage.output_tokens == 5


# --------------------------------------------------------------------------------- validation


@pytest.mark.asyncio
async def test_missing_credentials_is_401(sim: AnthropicSimulator) -> None:
    """No x-api-key and no Bearer token → 401 authentication_error with a request-id
    and rate-limit headers; an x-api-key alone is accepted and recorded as such."""
    async with httpx2.AsyncClient(base_url=sim.base_url) as http:
        denied = await http.post("/v1/messages", json=raw_body(), headers={"anthropic-version": "2023-06-01"})
        allowed = await http.post(
            "/v1/messages",
            json=raw_body(),
            headers={"anthropic-version": "2023-06-01", "x-api-key": "k"},
        )
    assert denied.status_code == 401
    assert denied.json()["type"] == "error"
    assert denied.json()["error"]["type"] == "authentication_error"
    assert denied.headers["request-id"].startswith("req_")
    assert "anthropic-ratelimit-requests-remaining" in denied.headers
    assert allowed.status_code == 200
    assert sim.stats.by_auth == {"none": 1, "x-api-key": 1}


@pytest.mark.asyncio
async def test_missing_version_and_bad_fields_are_400(sim: AnthropicSimulator) -> None:
    """Missing anthropic-version, non-JSON bodies, bad max_tokens and empty messages
    are 400 invalid_request_error."""
    auth = {"x-api-key": "k"}
    versioned = {**auth, "anthropic-version": "2023-06-01"}
    async with httpx2.AsyncClient(base_url=sim.base_url) as http:
        cases = [
            await http.post("/v1/messages", json=raw_body(), headers=auth),
            await http.post("/v1/messages", content=b"{not json", headers=versioned),
            await http.post("/v1/messages", json=raw_body(max_tokens=0), headers=versioned),
            await http.post("/v1/messages", json=raw_body(messages=[]), headers=versioned),
            await http.post("/v1/messages", json=raw_body(model=7), headers=versioned),
        ]
    for response in cases:
        assert response.status_code == 400, response.text
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert "anthropic-version" in cases[0].json()["error"]["message"]


@pytest.mark.asyncio
async def test_bad_base64_image_is_400(sim: AnthropicSimulator) -> None:
    """An image whose data is not valid base64 is rejected with 400; the SDK raises
    BadRequestError carrying the error type."""
    async with client_for(sim) as client:
        with pytest.raises(anthropic.BadRequestError) as exc_info:
            await extract(client, [image_block("this is *not* base64!")])
    assert exc_info.value.status_code == 400
    assert exc_info.value.type == "invalid_request_error"
    assert "base64" in (exc_info.value.api_message or "")


@pytest.mark.asyncio
async def test_image_checks_media_type_and_dimensions(sim: AnthropicSimulator) -> None:
    """PNG bytes declared as JPEG, and an image wider than 8000 px, are both 400 —
    the latter with image_dimensions_too_large details."""
    async with client_for(sim) as client:
        with pytest.raises(anthropic.BadRequestError) as mismatch:
            await extract(client, [image_block(base64.b64encode(png_bytes()).decode(), "image/jpeg")])
        wide = base64.b64encode(png_bytes(8001, 1)).decode()
        with pytest.raises(anthropic.BadRequestError) as too_wide:
            await extract(client, [image_block(wide)])
    assert "does not match" in (mismatch.value.api_message or "")
    assert too_wide.value.error_code == "image_dimensions_too_large"


@pytest.mark.asyncio
async def test_pdf_limits(sim: AnthropicSimulator) -> None:
    """A PDF over 100 pages and bytes that only pretend to be a PDF are both 400."""
    async with client_for(sim) as client:
        with pytest.raises(anthropic.BadRequestError) as too_long:
            await extract(client, [pdf_block(blank_pdf(101))])
        with pytest.raises(anthropic.BadRequestError) as broken:
            await extract(client, [pdf_block(b"%PDF-1.4\ngarbage")])
        ok = await extract(client, [pdf_block(blank_pdf(100))])
    assert "100 PDF pages" in (too_long.value.api_message or "")
    assert "PDF" in (broken.value.api_message or "")
    assert ok.usage.input_tokens >= 100 * 1500


@pytest.mark.asyncio
async def test_tool_choice_must_name_a_declared_tool(sim: AnthropicSimulator) -> None:
    """tool_choice naming an undeclared tool, a tool without input_schema and an
    unknown content block type are 400."""
    async with client_for(sim) as client:
        with pytest.raises(anthropic.BadRequestError) as unknown_tool:
            await extract(client, [text_document()], tool_choice={"type": "tool", "name": "x"})
        with pytest.raises(anthropic.BadRequestError):
            await extract(client, [text_document()], tools=[{"name": TOOL_NAME}])
        with pytest.raises(anthropic.BadRequestError):
            await extract(client, [{"type": "video", "data": "..."}])
    assert "not found" in (unknown_tool.value.api_message or "")
    assert sim.stats.by_status == {400: 3}


@pytest.mark.asyncio
async def test_body_over_32_mb_is_413(sim: AnthropicSimulator) -> None:
    """A request body above 32 MB gets 413 request_too_large (the SDK maps it to
    ContentTooLargeError)."""
    padding = "A" * (MAX_REQUEST_BYTES + 16)
    body = raw_body(messages=[{"role": "user", "content": padding}])
    async with client_for(sim, timeout=30) as client:
        with pytest.raises(anthropic.APIStatusError) as exc_info:
            await client.messages.create(**body)
    assert exc_info.value.status_code == 413
    # Not in the SDK's ErrorType literal, but what the API sends for 413.
    assert cast(dict[str, Any], exc_info.value.body)["error"]["type"] == "request_too_large"


# --------------------------------------------------------------------------------- faults


@pytest.mark.asyncio
async def test_injected_529_then_recovery(sim: AnthropicSimulator) -> None:
    """An injected 529 reaches the SDK as an APIStatusError with status 529 and type
    overloaded_error; the next request succeeds."""
    sim.inject(529, count=1, retry_after=2)
    async with client_for(sim) as client:
        with pytest.raises(anthropic.APIStatusError) as exc_info:
            await extract(client, [text_document()])
        await extract(client, [text_document()])
    assert exc_info.value.status_code == 529
    assert exc_info.value.type == "overloaded_error"
    assert exc_info.value.response.headers["retry-after"] == "2"
    assert sim.stats.by_status == {529: 1, 200: 1}


@pytest.mark.asyncio
async def test_delay_outlasting_client_timeout(sim: AnthropicSimulator) -> None:
    """inject_delay holds a request past the client's timeout: the SDK raises
    APITimeoutError, and the abandoned request is recorded as 499."""
    sim.inject_delay(30)
    async with client_for(sim, timeout=0.5) as client:
        with pytest.raises(anthropic.APITimeoutError):
            await extract(client, [text_document()])
    stats = await asyncio.to_thread(sim.wait_for, lambda s: s.status(499) == 1, 10)
    assert stats.in_flight == 0


@pytest.mark.asyncio
async def test_spend_limit_is_429_without_retry_after(sim: AnthropicSimulator) -> None:
    """With the spend-limit switch on, requests get 429 rate_limit_error with
    error.details.error_code enforced_spend_limit_reached and no retry-after."""
    sim.spend_limit_reached = True
    async with client_for(sim) as client:
        with pytest.raises(anthropic.RateLimitError) as exc_info:
            await extract(client, [text_document()])
    err = exc_info.value
    assert isinstance(err, anthropic.EnforcedSpendLimitReachedError)
    assert err.error_code == "enforced_spend_limit_reached"
    assert "spend limit" in (err.api_message or "")
    assert "retry-after" not in err.response.headers


# --------------------------------------------------------------------------------- rate limits


@pytest.mark.asyncio
async def test_requests_per_minute_limit() -> None:
    """With rpm=2 a burst of three gets 429 on the third, with an integer retry-after
    and anthropic-ratelimit-* headers readable through with_raw_response."""
    with AnthropicSimulator(rpm=2) as sim:
        async with client_for(sim) as client:
            first = await client.messages.with_raw_response.create(
                model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
            )
            parsed = await first.parse()
            await client.messages.with_raw_response.create(
                model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
            )
            with pytest.raises(anthropic.RateLimitError) as exc_info:
                await client.messages.with_raw_response.create(
                    model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]
                )
    assert first.headers["anthropic-ratelimit-requests-limit"] == "2"
    assert first.headers["anthropic-ratelimit-requests-remaining"] == "1"
    assert parsed.type == "message"
    headers = exc_info.value.response.headers
    assert exc_info.value.type == "rate_limit_error"
    assert 1 <= int(headers["retry-after"]) <= 30  # 1 request refills in 60/2 s
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    reset = dt.datetime.fromisoformat(headers["anthropic-ratelimit-requests-reset"])
    assert reset > dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    for name in ("input-tokens", "output-tokens", "tokens"):
        assert f"anthropic-ratelimit-{name}-limit" in headers


@pytest.mark.asyncio
async def test_output_tokens_are_debited_after_the_reply() -> None:
    """OTPM is charged after generation and may go negative: one reply larger than
    the bucket is served, then the next request waits for the debt to refill."""
    with AnthropicSimulator(otpm=30) as sim:
        async with client_for(sim) as client:
            message = await extract(client, [text_document()])
            with pytest.raises(anthropic.RateLimitError) as exc_info:
                await extract(client, [text_document()])
    assert message.usage.output_tokens > 30
    assert "output tokens" in (exc_info.value.api_message or "")
    assert exc_info.value.response.headers["anthropic-ratelimit-output-tokens-remaining"] == "0"


@pytest.mark.asyncio
async def test_cache_reads_do_not_count_toward_itpm(sim: AnthropicSimulator) -> None:
    """A cache_control'd prefix is written on first sight and read afterwards; only
    uncached input is debited from the ITPM bucket."""
    sim.cache_min_tokens = 0  # this prefix is below Haiku 4.5's minimum; that rule has its own test
    system = [{"type": "text", "text": "R" * 8000, "cache_control": {"type": "ephemeral"}}]
    async with client_for(sim) as client:
        first = await extract(client, [text_document()], system=system)
        small = first.usage.input_tokens
        created = first.usage.cache_creation_input_tokens or 0
        sim.set_limits(itpm=3 * small)
        second = await extract(client, [text_document()], system=system)
        third = await extract(client, [text_document()], system=system)
        with pytest.raises(anthropic.RateLimitError):
            await extract(client, [text_document("uncached " * 5000)])
    assert created > 2000
    assert first.usage.cache_read_input_tokens == 0
    for cached in (second, third):
        assert cached.usage.cache_read_input_tokens == created
        assert cached.usage.cache_creation_input_tokens == 0
        assert cached.usage.input_tokens == small


# --------------------------------------------------------------------------------- accounting


@pytest.mark.asyncio
async def test_usage_totals_and_bill(sim: AnthropicSimulator) -> None:
    """Per-model usage totals equal the sum of the usage the SDK saw, and bill_usd
    prices them; a model missing from the price table is refused, not guessed."""
    sim.cache_min_tokens = 0  # this prefix is below Haiku 4.5's minimum; that rule has its own test
    system = [{"type": "text", "text": "S" * 6000, "cache_control": {"type": "ephemeral"}}]
    async with client_for(sim) as client:
        replies = [
            await extract(client, [text_document()], system=system),
            await extract(client, [text_document()], system=system),
            await extract(client, [text_document()], model=OTHER_MODEL),
        ]
    stats = sim.wait_for_requests(3, timeout=5)
    expected_bill = 0.0
    for model, rate in ((MODEL, PRICES[MODEL]), (OTHER_MODEL, PRICES["claude-sonnet-4"])):
        mine = [r.usage for r in replies if r.model == model]
        totals = stats.usage[model]
        assert totals.requests == len(mine)
        assert totals.input_tokens == sum(u.input_tokens for u in mine)
        assert totals.output_tokens == sum(u.output_tokens for u in mine)
        assert totals.cache_creation_input_tokens == sum(u.cache_creation_input_tokens or 0 for u in mine)
        assert totals.cache_read_input_tokens == sum(u.cache_read_input_tokens or 0 for u in mine)
        expected_bill += (
            totals.input_tokens * rate["input"]
            + totals.output_tokens * rate["output"]
            + totals.cache_creation_input_tokens * rate["cache_write_5m"]
            + totals.cache_read_input_tokens * rate["cache_read"]
        ) / 1e6
    assert stats.usage[MODEL].cache_read_input_tokens > 0
    assert sim.bill_usd(PRICES) == pytest.approx(expected_bill)
    with pytest.raises(KeyError, match="no price"):
        bill_usd(stats.usage, {"claude-haiku": PRICES[MODEL]})


@pytest.mark.asyncio
async def test_count_tokens_matches_messages_usage(sim: AnthropicSimulator) -> None:
    """/v1/messages/count_tokens returns the same estimate /v1/messages bills."""
    async with client_for(sim) as client:
        params: dict[str, Any] = {
            "model": MODEL,
            "tools": [INVOICE_TOOL],
            "tool_choice": {"type": "tool", "name": TOOL_NAME},
            "messages": [{"role": "user", "content": [text_document()]}],
        }
        counted = await client.messages.count_tokens(**params)
        message = await extract(client, [text_document()])
    assert counted.input_tokens == message.usage.input_tokens
    assert sim.stats.count_tokens_requests == 1


@pytest.mark.asyncio
async def test_hundreds_of_concurrent_requests() -> None:
    """300 concurrent requests with 0.2 s latency each overlap (far below the 60 s a
    serial server would need) and are all counted; wait_for_requests sees them."""
    with AnthropicSimulator(latency=0.2, jitter=0.05) as sim:
        async with client_for(sim) as client:
            started = time.monotonic()
            replies = await asyncio.gather(*(extract(client, [text_document()]) for _ in range(300)))
            elapsed = time.monotonic() - started
        stats = sim.wait_for_requests(300, timeout=5)
    assert len(replies) == 300
    assert stats.by_status == {200: 300}
    assert elapsed < 15


def test_wait_for_requests_times_out(sim: AnthropicSimulator) -> None:
    """wait_for_requests raises TimeoutError when the count is not reached."""
    with pytest.raises(TimeoutError):
        sim.wait_for_requests(1, timeout=0.05)


def test_extract_invoice_label_variants() -> None:
    """The default extractor handles inline labels, European amounts, currency symbols
    and written dates, and ignores "Due Date" and "Subtotal"."""
    text = (
        "Vendor Name: Initech Services Ltd  Invoice #: 42/B\n"
        "Due Date: 2026-03-01\n"
        "Date: 5 March 2026\n"
        "Subtotal: €900,00\n"
        "Amount Due: €1.234,50\n"
    )
    assert extract_invoice(text) == {
        "invoice_number": "42/B",
        "vendor_name": "Initech Services Ltd",
        "invoice_date": "2026-03-05",
        "currency": "EUR",
        "total_amount": 1234.5,
    }
    assert extract_invoice("nothing to see") is None


def test_standalone_process() -> None:
    """``python -m tests.anthropic_sim`` prints its base URL first, serves requests with
    the configured limits, exposes /_sim/stats, and exits 0 on SIGTERM."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.anthropic_sim", "--port", "0", "--rpm", "600"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
        reply = httpx2.post(f"{base_url}/v1/messages", json=raw_body(), headers=headers)
        assert reply.status_code == 200
        assert reply.headers["anthropic-ratelimit-requests-limit"] == "600"
        assert httpx2.get(f"{base_url}/_sim/stats").json()["total_requests"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr
    assert orjson.loads(stderr.strip().splitlines()[-1])["by_status"] == {"200": 1}
