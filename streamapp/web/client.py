"""The one HTTP JSON client (aiohttp): operator tools, the local runner and the views
that gather from peer workers all GET JSON through it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson


class HttpError(Exception):
    """A JSON document that could not be had: HTTP status (``status``), unreachable, or
    not JSON. The message starts with the URL."""

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.status = status


async def get_json(
    url: str,
    timeout_s: float,
    *,
    params: dict[str, str] | None = None,
    session: aiohttp.ClientSession | None = None,
) -> Any:
    """GET a JSON document (2xx only); HttpError, never a crash, when it cannot be had."""
    if session is None:
        async with aiohttp.ClientSession() as own:
            return await get_json(url, timeout_s, params=params, session=own)
    try:
        async with session.get(
            url, params=params, timeout=aiohttp.ClientTimeout(total=timeout_s)
        ) as response:
            body = await response.read()
            if not 200 <= response.status < 300:
                raise HttpError(url, f"HTTP {response.status}", response.status)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:  # refused, unresolvable, slow
        raise HttpError(url, str(exc) or type(exc).__name__) from None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpError(url, f"not JSON ({exc})", response.status) from None


async def gather_local(
    peers: Sequence[str], path: str, field: str, timeout_s: float, params: dict[str, str]
) -> tuple[list[Any], list[str]]:
    """GET ``<peer><path>?local=1&<params>`` from every peer worker at once (views that
    gather a list from the workers of a table): the items under `field` of every answer,
    and the URLs of the peers that did not answer."""
    query = {**params, "local": "1"}
    async with aiohttp.ClientSession() as session:
        answers = await asyncio.gather(
            *(get_json(f"{url}{path}", timeout_s, params=query, session=session) for url in peers),
            return_exceptions=True,
        )
    items: list[Any] = []
    missing: list[str] = []
    for url, answer in zip(peers, answers, strict=True):
        if isinstance(answer, BaseException):
            missing.append(url)
        else:
            items.extend(answer[field])
    return items, missing


async def get_text(url: str, timeout_s: float, *, session: aiohttp.ClientSession) -> str:
    """GET a text document (2xx only, e.g. /metrics); HttpError when it cannot be had."""
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            body = await response.read()
            if not 200 <= response.status < 300:
                raise HttpError(url, f"HTTP {response.status}", response.status)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise HttpError(url, str(exc) or type(exc).__name__) from None
    return body.decode("utf-8", errors="replace")


async def request_json(
    method: str, url: str, timeout_s: float, body: Any = None
) -> tuple[int, Any]:
    """Any method, a JSON body; the status and the JSON answer (errors included: the
    caller reads e.g. Confluent's error codes). HttpError when nothing JSON answered."""
    data = None if body is None else orjson.dumps(body)
    headers = {"Content-Type": "application/json"} if data is not None else {}
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as response,
        ):
            raw = await response.read()
            status = response.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise HttpError(url, str(exc) or type(exc).__name__) from None
    try:
        return status, orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HttpError(url, f"not JSON ({exc})", status) from None


async def get_status(url: str, timeout_s: float) -> int | None:
    """The HTTP status of a GET; None when nothing answered."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, timeout=aiohttp.ClientTimeout(total=timeout_s)) as response,
        ):
            return response.status
    except (aiohttp.ClientError, OSError, TimeoutError):
        return None


def fetch_json(url: str, timeout: float) -> Any:
    """get_json for synchronous callers (no event loop running in this thread)."""
    return asyncio.run(get_json(url, timeout))


def fetch_status(url: str, timeout: float) -> int | None:
    """get_status for synchronous callers (no event loop running in this thread)."""
    return asyncio.run(get_status(url, timeout))
