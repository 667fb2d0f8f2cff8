"""The AnthropicSimulator: the aiohttp app, request handling, controls, and start/stop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Final, TypeVar

import orjson
from aiohttp import web

from tests.anthropic_sim.accounting import RequestSummary, SimStats, UsageTotals, bill_usd
from tests.anthropic_sim.cache import CachePlan, PromptCache
from tests.anthropic_sim.errors import ApiError, invalid, spend_limit_error
from tests.anthropic_sim.faults import Fault, fault_error
from tests.anthropic_sim.limits import MAX_REQUEST_BYTES
from tests.anthropic_sim.models import SimModel, lookup
from tests.anthropic_sim.ratelimits import Acceleration, Bucket, acceleration_error, rate_limit_error
from tests.anthropic_sim.replies import build_message, error_response, new_id
from tests.anthropic_sim.responder import Responder, default_responder
from tests.anthropic_sim.rules import check, refuses, thinking_tokens
from tests.anthropic_sim.validation import Prepared, prepare

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_REQUEST_ID: Final = web.RequestKey("request_id", str)
_POOL: Final = web.RequestKey("rate_limit_pool", str)
# The pool whose headers a response carries when the request named no known model.
DEFAULT_POOL: Final = "haiku-5-5"


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
        burst_seconds: how much refill each bucket holds (the real API may enforce a rate
            over intervals far shorter than a minute); buckets are per model pool.
        cache_min_tokens: shortest cacheable prefix; None (the default) uses each model's own
            minimum, as the API does (the real API silently skips caching
            below 1,024 to 4,096 tokens depending on the model; 0 caches everything).
        acceleration_factor, acceleration_floor: when set, a pool's requests in the last second
            may be at most ``factor`` × those of the second before (or ``floor``): sharper ramps
            get a 429 (the API's acceleration limit), whatever the buckets hold.
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
        cache_min_tokens: int | None = None,
        burst_seconds: float = 60.0,
        acceleration_factor: float | None = None,
        acceleration_floor: int = 10,
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
        :func:`~tests.anthropic_sim.errors.spend_limit_error`)."""

        # One lock guards all mutable state below; the condition lets test threads wait
        # for counters without polling.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._rng = random.Random(seed)
        now = time.monotonic()
        self._limits = (rpm, itpm, otpm)
        self.burst_seconds = burst_seconds
        self.acceleration_factor = acceleration_factor
        self.acceleration_floor = acceleration_floor
        self._ramps: dict[str, Acceleration] = {}
        # Each rate-limit pool (a model, or a family of older ones) has its own three buckets.
        self._pools: dict[str, tuple[Bucket, Bucket, Bucket]] = {}
        self._pool(DEFAULT_POOL, now)
        self._cache = PromptCache()
        self._faults: deque[Fault] = deque()
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
        fault = Fault(status, retry_after, delay, message, details)
        with self._lock:
            self._faults.extend([fault] * count)

    def inject_delay(self, seconds: float, count: int = 1) -> None:
        """Hold the next ``count`` requests for ``seconds`` before processing them
        normally — longer than the client's timeout makes the client give up."""
        with self._lock:
            self._faults.extend([Fault(None, delay=seconds)] * count)

    def fail_rate(self, status: int, probability: float) -> None:
        """Answer each request with ``status`` at random with ``probability`` (0 removes)."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        with self._lock:
            if probability == 0.0:
                self._fail_rates.pop(status, None)
            else:
                self._fail_rates[status] = probability

    def _pool(self, pool: str, now: float) -> tuple[Bucket, Bucket, Bucket]:
        """The pool's buckets, made full at first use (call with the lock held)."""
        buckets = self._pools.get(pool)
        if buckets is None:
            rpm, itpm, otpm = self._limits
            buckets = self._pools[pool] = (
                Bucket(rpm, now, self.burst_seconds),
                Bucket(itpm, now, self.burst_seconds),
                Bucket(otpm, now, self.burst_seconds),
            )
        return buckets

    def _ramp(self, pool: str) -> Acceleration | None:
        """The pool's acceleration check, when one is configured (call with the lock held)."""
        if self.acceleration_factor is None:
            return None
        ramp = self._ramps.get(pool)
        if ramp is None:
            ramp = self._ramps[pool] = Acceleration(self.acceleration_factor, self.acceleration_floor)
        return ramp

    def set_limits(self, *, rpm: int | None = None, itpm: int | None = None, otpm: int | None = None) -> None:
        """Change rate limits at runtime (every pool's); the buckets start full again."""
        now = time.monotonic()
        with self._lock:
            old_rpm, old_itpm, old_otpm = self._limits
            self._limits = (
                old_rpm if rpm is None else rpm,
                old_itpm if itpm is None else itpm,
                old_otpm if otpm is None else otpm,
            )
            pools = list(self._pools)
            self._pools.clear()
            for pool in pools:
                self._pool(pool, now)

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
            self._cache = PromptCache()
            self._pools.clear()
            self._ramps.clear()
            self._pool(DEFAULT_POOL, now)
            self._changed.notify_all()

    # ---------------------------------------------------------------- accounting

    @property
    def stats(self) -> SimStats:
        """A consistent snapshot, safe to inspect while requests continue."""
        with self._lock:
            return self._stats.snapshot()

    def bill_usd(self, prices: Mapping[str, Mapping[str, float]] | None = None) -> float:
        """The bill of everything accepted so far: by the simulator's own per-request prices
        (tiers included) or, given ``prices``, by :func:`bill_usd` over the totals."""
        with self._lock:
            usage = self._stats.snapshot().usage
        if prices is None:
            return sum(totals.billed_usd for totals in usage.values())
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

    def ratelimit_headers(self, pool: str = DEFAULT_POOL) -> dict[str, str]:
        """The ``anthropic-ratelimit-*`` headers of a pool as of now (also sent on every response,
        for the pool of the request's model)."""
        now, wall = time.monotonic(), time.time()
        with self._lock:
            requests, input_bucket, output_bucket = self._pool(pool, now)
            for bucket in (requests, input_bucket, output_bucket):
                bucket.refill(now)
            headers = requests.headers("requests", wall)
            headers |= input_bucket.headers("input-tokens", wall)
            headers |= output_bucket.headers("output-tokens", wall)
            # "tokens" reports whichever token bucket is currently more restrictive.
            limited = [b for b in (input_bucket, output_bucket) if not b.unlimited]
            tightest = min(limited, key=lambda b: b.level) if limited else input_bucket
        headers |= tightest.headers("tokens", wall)
        return headers

    # ---------------------------------------------------------------- HTTP plumbing

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            return await handler(request)
        request_id = new_id("req")
        request[_REQUEST_ID] = request_id
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            # aiohttp's own 404/405 → Anthropic-shaped errors.
            response = error_response(request_id, ApiError(exc.status, exc.reason or "error"))
        except Exception as exc:  # pragma: no cover - a simulator bug must still answer JSON
            log.exception("simulator handler failed")
            response = error_response(request_id, ApiError(500, f"simulator bug: {exc}"))
        response.headers["request-id"] = request_id
        response.headers.update(self.ratelimit_headers(request.get(_POOL, DEFAULT_POOL)))
        return response

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
            raise invalid("anthropic-version: header is required")

    @staticmethod
    def _parse_json(raw: bytes) -> dict[str, Any]:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise invalid(f"There was an error parsing the body of your request: {exc}") from None
        if not isinstance(body, dict):
            raise invalid("Request body must be a JSON object")
        return body

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
            for status, probability in self._fail_rates.items():
                if self._rng.random() < probability:
                    return Fault(status)
        return None

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
                response = error_response(ctx.request_id, err)
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
                raise fault_error(fault)

        self._check_headers(ctx)
        if parse_error is not None or body is None:
            raise parse_error or invalid("empty body")
        prepared = await self._cpu(prepare, body, False)
        model = lookup(prepared.model)
        if model is None or (self.models is not None and prepared.model not in self.models):
            raise ApiError(404, f"model: {prepared.model}")
        request[_POOL] = model.pool
        check(body, model, ctx.version, prepared.forced_tool)
        if self.spend_limit_reached:
            raise spend_limit_error()

        plan = self._admit(prepared, model)
        refused = refuses(body)
        result = {} if refused else await self._cpu(self.responder, body)
        thinking = thinking_tokens(body, model, prepared.forced_tool)
        message, output_tokens = build_message(prepared, plan, result, thinking=thinking, refused=refused)

        delay = self.latency + self.latency_per_output_token * output_tokens
        if self.jitter:
            with self._lock:
                delay += self._rng.uniform(-self.jitter, self.jitter)
        if delay > 0:
            await asyncio.sleep(delay)

        with self._lock:
            # Output is "generated" by now: debit it, possibly driving the bucket negative.
            output_bucket = self._pool(model.pool, time.monotonic())[2]
            output_bucket.refill(time.monotonic())
            output_bucket.take(output_tokens)
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
            totals.thinking_tokens += message["usage"]["output_tokens_details"]["thinking_tokens"]
            totals.billed_usd += model.bill(
                prepared.total_input_tokens,
                message["usage"]["input_tokens"],
                output_tokens,
                plan.create_5m,
                plan.create_1h,
                plan.read,
            )
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

    def _admit(self, prepared: Prepared, model: SimModel) -> CachePlan:
        """Rate-limit check of the model's pool and, if admitted, debit requests and uncached input."""
        now = time.monotonic()
        minimum = model.cache_minimum if self.cache_min_tokens is None else self.cache_min_tokens
        with self._lock:
            requests, input_bucket, output_bucket = self._pool(model.pool, now)
            plan = self._cache.plan(prepared.breakpoints, now, minimum)
            # Only uncached input (input + cache writes) counts toward ITPM.
            uncached = prepared.total_input_tokens - plan.read
            checks = (
                ("requests", requests, 1.0),
                ("input", input_bucket, float(uncached)),
                ("output", output_bucket, 1.0),  # output debt must be repaid first
            )
            waits = []
            for name, bucket, need in checks:
                bucket.refill(now)
                wait = bucket.wait_seconds(need)
                if wait > 0:
                    waits.append((wait, name, bucket.limit))
            if waits:
                wait, name, limit = max(waits)
                self._rate_limited(now)
                raise rate_limit_error(name, limit, wait)
            ramp = self._ramp(model.pool)
            if ramp is not None:
                if ramp.refuses(now):
                    self._stats.acceleration_refusals += 1
                    self._rate_limited(now)
                    raise acceleration_error()
                ramp.record(now)
            if self._stats.started_at is None:
                self._stats.started_at = now
            requests.take(1)
            input_bucket.take(uncached)
            self._cache.commit(prepared.breakpoints, now, minimum)
        return plan

    def _rate_limited(self, now: float) -> None:
        """Notes when a 429 was answered (the caller holds the lock)."""
        stats = self._stats
        stats.rate_limited_at.append(now - (stats.started_at if stats.started_at is not None else now))

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
            prepared = await self._cpu(prepare, body, True)
        except ApiError as err:
            return error_response(ctx.request_id, err)
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
