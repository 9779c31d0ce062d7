"""`Leviathan` (blocking) and `AsyncLeviathan` (asyncio): the same operations, the
same retries, on httpx. They differ only in how a step of `_core.plan` is carried out."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from ._core import Call, Config, Send, plan
from ._resources import Intelligence
from ._stream import Stream


class _Client:
    """What both clients share: their settings, the operations, the stream."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        stream_url: str | None = None,
        account_id: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        signing_key: Any = None,
        headers: dict[str, str] | None = None,
        http_client: Any = None,
    ):
        self.config = Config.build(
            api_key=api_key,
            base_url=base_url,
            stream_url=stream_url,
            signing_key=signing_key,
            account_id=account_id,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            headers=dict(headers or {}),
        )
        self._http = http_client or self._http_client(timeout)
        self.intelligence = Intelligence(self)

    @staticmethod
    def _http_client(timeout: float) -> Any:
        raise NotImplementedError

    def stream(self, **options: Any) -> Stream:
        """The partner stream, for asyncio: `async with client.stream() as stream: …`
        (options: ping_every, stale_after, reconnect_base, reconnect_max; see `Stream`)."""
        return Stream(self.config, **options)


class Leviathan(_Client):
    """The partner API client.

        client = Leviathan(api_key="lev_live_…")
        for p in client.intelligence.positions():
            print(p.symbol, p.pnl)

    `api_key`, `base_url` and `stream_url` default to LEVIATHAN_API_KEY,
    LEVIATHAN_BASE_URL and LEVIATHAN_STREAM_URL, then to the production URLs.
    `account_id`: the account to act on when the key holds several.
    `signing_key`: an Ed25519 private key (32-byte seed as hex or bytes) when
    the key signs its writes. `timeout` in seconds; `max_retries` for 429s,
    and for connection errors and 5xx of idempotent calls.
    """

    @staticmethod
    def _http_client(timeout: float) -> httpx.Client:
        return httpx.Client(timeout=timeout)

    def _run(self, call: Call) -> Any:
        steps = plan(self.config, call)
        outcome: Any = None
        while True:
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                return done.value
            if isinstance(step, Send):
                try:
                    outcome = self._http.send(step.request)
                except httpx.TransportError as exc:
                    outcome = exc
            else:
                time.sleep(step.seconds)
                outcome = None

    def _paginate(self, page: Callable[[int], Call], key: str) -> Iterator[Any]:
        offset: int | None = 0
        while offset is not None:
            result = self._run(page(offset))
            yield from getattr(result, key) or []
            offset = result.next_offset

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Leviathan":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncLeviathan(_Client):
    """The partner API client for asyncio: `Leviathan`'s methods, awaited.

    async with AsyncLeviathan(api_key="lev_live_…") as client:
        positions = await client.intelligence.positions()
        async for order in client.intelligence.orders.list():
            ...
    """

    @staticmethod
    def _http_client(timeout: float) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=timeout)

    async def _run(self, call: Call) -> Any:
        steps = plan(self.config, call)
        outcome: Any = None
        while True:
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                return done.value
            if isinstance(step, Send):
                try:
                    outcome = await self._http.send(step.request)
                except httpx.TransportError as exc:
                    outcome = exc
            else:
                await asyncio.sleep(step.seconds)
                outcome = None

    async def _paginate(self, page: Callable[[int], Call], key: str) -> AsyncIterator[Any]:
        offset: int | None = 0
        while offset is not None:
            result = await self._run(page(offset))
            for item in getattr(result, key) or []:
                yield item
            offset = result.next_offset

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncLeviathan":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
