"""The batch-processing guide's two designs, reimplemented as the guide intends, for comparison.

* ``sequential``: documents one at a time with the synchronous client.
* ``semaphore_of_five``: ``asyncio.gather`` over every document under a
  semaphore of 5, with the asynchronous client.

Both use the guide's retry policy (3 retries, 1 s base, doubling) around each
call, and the SDK client as the guide creates it (its default retries on).
Only the model id and the document (text instead of a JPEG) differ: the
guide's model is retired and the benchmark's documents are text.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import anthropic

MODEL = "claude-haiku-4-5"
PROMPT = "Extract invoice data as JSON: {invoice_number, vendor_name, total_amount}"


def _request(path: Path) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": path.read_text()},
                    },
                    {"type": "text", "text": PROMPT},
                ],
            }
        ],
    }


def _with_retries_sync(call: Any, max_retries: int = 3, base_delay: float = 1.0) -> Any:
    for attempt in range(max_retries + 1):
        try:
            return call()
        except Exception:
            if attempt < max_retries:
                time.sleep(base_delay * 2**attempt)
            else:
                raise
    return None


async def _with_retries_async(call: Any, max_retries: int = 3, base_delay: float = 1.0) -> Any:
    for attempt in range(max_retries + 1):
        try:
            return await call()
        except Exception:
            if attempt < max_retries:
                await asyncio.sleep(base_delay * 2**attempt)
            else:
                raise
    return None


async def sequential(paths: list[Path], base_url: str) -> list[dict[str, Any]]:
    def run() -> list[dict[str, Any]]:
        client = anthropic.Anthropic(base_url=base_url, api_key="sk-ant-bench")
        results = []
        for path in paths:
            try:
                response = _with_retries_sync(lambda p=path: client.messages.create(**_request(p)))
                results.append({"document": str(path), "status": "success", "data": response.content[0].text})
            except Exception as error:
                results.append({"document": str(path), "status": "error", "error": str(error)})
        return results

    return await asyncio.to_thread(run)


async def semaphore_of_five(paths: list[Path], base_url: str) -> list[dict[str, Any]]:
    client = anthropic.AsyncAnthropic(base_url=base_url, api_key="sk-ant-bench")
    semaphore = asyncio.Semaphore(5)

    async def extract(path: Path) -> dict[str, Any]:
        async with semaphore:
            try:
                response = await _with_retries_async(lambda: client.messages.create(**_request(path)))
                return {"document": str(path), "status": "success", "data": response.content[0].text}
            except Exception as error:
                return {"document": str(path), "status": "error", "error": str(error)}

    try:
        return list(await asyncio.gather(*(extract(p) for p in paths)))
    finally:
        await client.close()
