"""The request preparer: checks a request's shape, rejects what the API rejects, counts its input."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Any, Final

import orjson

from tests.anthropic_sim.cache import CACHE_TTLS, Breakpoint
from tests.anthropic_sim.errors import invalid
from tests.anthropic_sim.limits import (
    IMAGE_MEDIA_TYPES,
    KNOWN_BLOCK_TYPES,
    MAX_CACHE_BREAKPOINTS,
    MAX_IMAGE_BYTES,
    MAX_IMAGE_SIDE,
    MAX_IMAGES_PER_REQUEST,
    MAX_PDF_PAGES,
)
from tests.anthropic_sim.media import b64decode, image_size, pdf_info, sniff_image
from tests.anthropic_sim.tokens import PDF_TOKENS_PER_PAGE, image_tokens, json_tokens, text_tokens

# Validation and token estimation are pure functions: the server runs them on a worker thread.

_TOOL_NAME_RE: Final = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_TOOL_CHOICE_TYPES: Final = ("auto", "any", "tool", "none")


@dataclasses.dataclass
class Prepared:
    """A validated request plus everything the simulator derives from it."""

    body: dict[str, Any]
    model: str
    max_tokens: int
    total_input_tokens: int
    breakpoints: list[Breakpoint]
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
        self.breakpoints: list[Breakpoint] = []
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
            self.breakpoints.append(Breakpoint(self.cum_tokens, self.digest, cache_ttl))

    def prepare(self) -> Prepared:
        body = self.body
        model = body.get("model")
        if model is None:
            raise invalid("model: Field required")
        if not isinstance(model, str) or not model.strip():
            raise invalid("model: Input should be a non-empty string")
        self.digest = hashlib.blake2b(model.encode(), digest_size=16).digest()
        max_tokens = self._max_tokens()
        if body.get("stream"):
            raise invalid("stream: this simulator does not implement streaming responses")
        tool_names = self._tools()
        forced_tool = self._tool_choice(tool_names)
        self._system()
        self._messages()
        self._misc()
        if len(self.breakpoints) > MAX_CACHE_BREAKPOINTS:
            raise invalid(
                f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be "
                f"provided. Found {len(self.breakpoints)}."
            )
        metadata = body.get("metadata")
        user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
        return Prepared(
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
            raise invalid("max_tokens: Field required")
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid("max_tokens: Input should be a valid integer")
        if value < 1:
            raise invalid("max_tokens: Input should be greater than or equal to 1")
        return value

    def _cache_control(self, obj: dict[str, Any], path: str) -> str | None:
        cc = obj.get("cache_control")
        if cc is None:
            return None
        if not isinstance(cc, dict) or cc.get("type") != "ephemeral":
            raise invalid(f"{path}.cache_control.type: Input should be 'ephemeral'")
        ttl = cc.get("ttl", "5m")
        if ttl not in CACHE_TTLS:
            raise invalid(f"{path}.cache_control.ttl: Input should be '5m' or '1h'")
        return str(ttl)

    def _tools(self) -> set[str]:
        tools = self.body.get("tools")
        if tools is None:
            return set()
        if not isinstance(tools, list):
            raise invalid("tools: Input should be a valid list")
        names: set[str] = set()
        for i, tool in enumerate(tools):
            path = f"tools.{i}"
            if not isinstance(tool, dict):
                raise invalid(f"{path}: Input should be a valid dictionary")
            name = tool.get("name")
            if not isinstance(name, str) or not _TOOL_NAME_RE.match(name):
                raise invalid(f"{path}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'")
            tool_type = tool.get("type")
            # Server tools (e.g. "web_search_20250305") carry no input_schema.
            if tool_type in (None, "custom"):
                schema = tool.get("input_schema")
                if schema is None:
                    raise invalid(f"{path}.custom.input_schema: Field required")
                if not isinstance(schema, dict) or schema.get("type") != "object":
                    raise invalid(
                        f"{path}.custom.input_schema: Input should be a JSON schema object with type 'object'"
                    )
            if name in names:
                raise invalid("tools: Tool names must be unique.")
            names.add(name)
            self._segment(tool, json_tokens(tool), self._cache_control(tool, path))
        return names

    def _tool_choice(self, tool_names: set[str]) -> str | None:
        choice = self.body.get("tool_choice")
        if choice is None:
            return None
        if not isinstance(choice, dict) or choice.get("type") not in _TOOL_CHOICE_TYPES:
            raise invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
        kind = choice["type"]
        if kind in ("any", "tool") and not tool_names:
            raise invalid("tool_choice may only be specified while providing tools.")
        if kind == "tool":
            name = choice.get("name")
            if not isinstance(name, str):
                raise invalid("tool_choice.tool.name: Field required")
            if name not in tool_names:
                raise invalid(f"tool_choice: Tool '{name}' not found in provided tools")
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
            self._segment(system, text_tokens(system), None)
            return
        if not isinstance(system, list):
            raise invalid("system: Input should be a valid string or list of text blocks")
        for i, block in enumerate(system):
            path = f"system.{i}"
            if not isinstance(block, dict) or block.get("type") != "text":
                raise invalid(f"{path}.type: Input should be 'text'")
            text = block.get("text")
            if not isinstance(text, str) or not text:
                raise invalid(f"{path}.text: text content blocks must be non-empty")
            self._segment(block, text_tokens(text), self._cache_control(block, path))

    def _messages(self) -> None:
        messages = self.body.get("messages")
        if messages is None:
            raise invalid("messages: Field required")
        if not isinstance(messages, list):
            raise invalid("messages: Input should be a valid list")
        if not messages:
            raise invalid("messages: at least one message is required")
        for i, message in enumerate(messages):
            path = f"messages.{i}"
            if not isinstance(message, dict):
                raise invalid(f"{path}: Input should be a valid dictionary")
            role = message.get("role")
            if role not in ("user", "assistant"):
                raise invalid(f"{path}.role: Input should be 'user' or 'assistant'")
            self._segment({"role": role}, 0, None)
            content = message.get("content")
            if isinstance(content, str):
                if not content and role == "user":
                    raise invalid(f"{path}: user messages must have non-empty content")
                self._segment(content, text_tokens(content), None)
            elif isinstance(content, list):
                if not content:
                    raise invalid(f"{path}.content: List should have at least 1 item")
                for j, block in enumerate(content):
                    block_path = f"{path}.content.{j}"
                    tokens = self._block(block, block_path, nested=False)
                    cc = self._cache_control(block, block_path)
                    self._segment(block, tokens, cc)
            else:
                raise invalid(f"{path}.content: Field required (string or list of blocks)")
        if self.images > MAX_IMAGES_PER_REQUEST:
            raise invalid(f"Too many images: at most {MAX_IMAGES_PER_REQUEST} per request")
        if self.pdf_pages > MAX_PDF_PAGES:
            raise invalid(f"A maximum of {MAX_PDF_PAGES} PDF pages may be provided.")

    def _block(self, block: object, path: str, *, nested: bool) -> int:
        """Validate one content block; return its input-token estimate."""
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise invalid(f"{path}.type: Field required")
        kind: str = block["type"]
        if kind not in KNOWN_BLOCK_TYPES:
            expected = ", ".join(f"'{t}'" for t in KNOWN_BLOCK_TYPES)
            raise invalid(
                f"{path}: Input tag '{kind}' found using 'type' does not match any of the "
                f"expected tags: {expected}"
            )
        self.block_types.append(kind)
        if kind == "text":
            text = block.get("text")
            if not isinstance(text, str) or not text:
                raise invalid(f"{path}.text: text content blocks must be non-empty")
            return text_tokens(text)
        if kind == "image":
            return self._image(block, path)
        if kind == "document":
            return self._document(block, path)
        if kind == "tool_result":
            return self._tool_result(block, path, nested=nested)
        if kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise invalid(f"{path}: tool_use blocks need string 'id' and 'name'")
            if not isinstance(block.get("input"), dict):
                raise invalid(f"{path}.input: Input should be a valid dictionary")
        return json_tokens(block)

    def _tool_result(self, block: dict[str, Any], path: str, *, nested: bool) -> int:
        if nested:
            raise invalid(f"{path}: tool_result blocks cannot be nested")
        if not isinstance(block.get("tool_use_id"), str):
            raise invalid(f"{path}.tool_use_id: Field required")
        content = block.get("content")
        if content is None:
            return 4
        if isinstance(content, str):
            return 4 + text_tokens(content)
        if not isinstance(content, list):
            raise invalid(f"{path}.content: Input should be a string or list of blocks")
        return 4 + sum(
            self._block(inner, f"{path}.content.{k}", nested=True) for k, inner in enumerate(content)
        )

    def _image(self, block: dict[str, Any], path: str) -> int:
        self.images += 1
        source = block.get("source")
        if not isinstance(source, dict):
            raise invalid(f"{path}.source: Field required")
        if source.get("type") != "base64":
            raise invalid(
                f"{path}.source.type: this simulator only accepts 'base64' image sources "
                f"(got {source.get('type')!r})"
            )
        spath = f"{path}.source.base64"
        media_type = source.get("media_type")
        if media_type not in IMAGE_MEDIA_TYPES:
            raise invalid(
                f"{spath}.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
            )
        try:
            raw = b64decode(source.get("data"), f"{spath}.data")
        except ValueError as exc:
            raise invalid(str(exc)) from None
        if len(raw) > MAX_IMAGE_BYTES:
            raise invalid(f"{spath}: image exceeds 5 MB maximum: {len(raw)} bytes > {MAX_IMAGE_BYTES} bytes")
        sniffed = sniff_image(raw)
        if sniffed is None:
            raise invalid(f"{spath}.data: Could not process image")
        if sniffed != media_type:
            raise invalid(f"{spath}: Image does not match the provided media type {media_type}")
        try:
            size = image_size(raw)
        except ValueError as exc:
            raise invalid(f"{spath}.data: {exc}") from None
        if size is None or max(size) > MAX_IMAGE_SIDE:
            raise invalid(
                f"{spath}.data: At least one of the image dimensions exceed max allowed size: "
                f"{MAX_IMAGE_SIDE} pixels",
                details={
                    "error_code": "image_dimensions_too_large",
                    "max_side_length_pixels": MAX_IMAGE_SIDE,
                    "paths": [path],
                },
            )
        return image_tokens(*size)

    def _document(self, block: dict[str, Any], path: str) -> int:
        title = block.get("title")
        if isinstance(title, str):
            self.document_titles.append(title)
        source = block.get("source")
        if not isinstance(source, dict):
            raise invalid(f"{path}.source: Field required")
        kind = source.get("type")
        if kind == "text":
            if source.get("media_type") != "text/plain":
                raise invalid(f"{path}.source.text.media_type: Input should be 'text/plain'")
            data = source.get("data")
            if not isinstance(data, str):
                raise invalid(f"{path}.source.text.data: Input should be a valid string")
            return text_tokens(data)
        if kind == "base64":
            if source.get("media_type") != "application/pdf":
                raise invalid(f"{path}.source.base64.media_type: Input should be 'application/pdf'")
            data = source.get("data")
            if not isinstance(data, str):
                raise invalid(f"{path}.source.base64.data: Input should be a valid string")
            try:
                pages, text = pdf_info(data)
            except ValueError as exc:
                raise invalid(f"{path}.source.base64.data: {exc}") from None
            self.pdf_pages += pages
            return pages * PDF_TOKENS_PER_PAGE + text_tokens(text)
        raise invalid(
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
            raise invalid("temperature: Input should be a number between 0 and 1")
        stops = self.body.get("stop_sequences")
        if stops is not None and (not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)):
            raise invalid("stop_sequences: Input should be a list of strings")
        output_config = self.body.get("output_config")
        if output_config is not None:
            fmt = output_config.get("format") if isinstance(output_config, dict) else None
            if fmt is not None and (
                not isinstance(fmt, dict)
                or fmt.get("type") != "json_schema"
                or not isinstance(fmt.get("schema"), dict)
            ):
                raise invalid("output_config.format: expected {type: 'json_schema', schema: {...}}")
            if isinstance(fmt, dict):
                self._segment(fmt, json_tokens(fmt["schema"]), None)


def prepare(body: dict[str, Any], for_count_tokens: bool) -> Prepared:
    return _Preparer(body, for_count_tokens=for_count_tokens).prepare()


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """Total input tokens (cached or not) the simulator charges for ``body``; validates it.

    Raises :class:`ApiError` (400) for a body the API would reject.
    """
    return prepare(body, True).total_input_tokens
