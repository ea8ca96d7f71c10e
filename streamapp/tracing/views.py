"""Trace routes: GET /traces/{correlationId} and GET /traces, answered by any orders worker.

A trace is stored on the partition of its order, not of its correlation id, so no
router can forward by key: a worker looks in its own table first and otherwise asks the
other orders workers (``local=1``) — a handful of requests, only for a miss. The list
gathers every worker's newest traces and merges them, like GET /sagas.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import aiohttp
from faust.web import Request

from streamapp.app import app
from streamapp.eventstore.retention import INDEX_PREFIX, expiry_target
from streamapp.messages import MAX_ID_CHARS
from streamapp.saga.agents import in_flight_correlations
from streamapp.tracing.recorder import load, open_traces, owned_partitions, traces
from streamapp.tracing.trace import ACTIVE, STALLED, STATUSES, Trace
from streamapp.web.client import HttpError, gather_local, get_json
from streamapp.web.views import ServiceView, ready_only

DEFAULT_LIMIT, MAX_LIMIT = 50, 1000
PEER_TIMEOUT_S = 5.0
#: Index entries a worker reads at most for one GET /traces (newest first), so that a
#: rare status over days of traces stays a bounded scan.
SCAN_LIMIT = 20_000


class PeersUnavailable(Exception):
    """Some orders workers did not answer (the message names them)."""


def _peers() -> list[str]:
    return app.peer_urls(traces.name)


def _now_ms() -> int:
    return int(time.time() * 1000)


def local_view(correlation_id: str) -> dict[str, Any] | None:
    trace = load(correlation_id)
    if trace is None:
        return None
    return trace.view(_now_ms(), app.settings.trace_stall_ms)


async def find_trace(correlation_id: str) -> dict[str, Any] | None:
    """The trace JSON from whichever orders worker holds it; None if none does.

    PeersUnavailable when it is not here and a worker that might hold it did not answer."""
    found = local_view(correlation_id)
    if found is not None:
        return found
    peers, missing = _peers(), []
    async with aiohttp.ClientSession() as session:
        answers = await asyncio.gather(
            *(
                get_json(
                    f"{url}/traces/{quote(correlation_id, safe='')}",
                    PEER_TIMEOUT_S,
                    params={"local": "1"},
                    session=session,
                )
                for url in peers
            ),
            return_exceptions=True,
        )
    for url, answer in zip(peers, answers, strict=True):
        if isinstance(answer, HttpError) and answer.status == 404:
            continue
        if isinstance(answer, BaseException):
            missing.append(url)
            continue
        return answer  # type: ignore[no-any-return]
    if missing:
        raise PeersUnavailable(f"no answer from {missing}")
    return None


def _newest_first(partition: int) -> Iterator[bytes]:
    """One owned partition's index entries, newest first (at most SCAN_LIMIT)."""
    store = getattr(traces, "data", traces)
    db = getattr(store, "_dbs", {}).get(partition)
    if db is None:
        return
    for scanned, raw in enumerate(db.keys(from_key=INDEX_PREFIX + b"\xff", backwards=True)):
        if not raw.startswith(INDEX_PREFIX) or scanned >= SCAN_LIMIT:
            return
        yield raw[len(INDEX_PREFIX) :]


def local_traces(statuses: set[str], limit: int) -> list[dict[str, Any]]:
    """This worker's newest traces (owned partitions), filtered by status."""
    now, stall = _now_ms(), app.settings.trace_stall_ms
    if statuses and statuses <= {ACTIVE, STALLED}:  # open traces: a small set, read whole
        candidates: list[Trace] = list(open_traces(in_flight_correlations))
    else:
        candidates = []
        for partition in owned_partitions():
            taken, seen = 0, set()
            for entry in _newest_first(partition):
                cid = expiry_target(entry)
                if cid in seen:  # a stray conversation's traces may have several entries
                    continue
                seen.add(cid)
                trace = load(cid.decode("utf-8", errors="replace"), [partition])
                if trace is not None and (not statuses or trace.status(now, stall) in statuses):
                    candidates.append(trace)
                    taken += 1
                    if taken >= limit:
                        break
    found = [trace.summary(now, stall) for trace in candidates]
    found = [s for s in found if not statuses or s["status"] in statuses]
    found.sort(key=lambda s: s["startedMs"], reverse=True)
    return found[:limit]


async def recent_traces(statuses: set[str], limit: int) -> list[dict[str, Any]]:
    """Every orders worker's newest traces, merged newest first (``startedMs`` kept)."""
    found = local_traces(statuses, limit)
    query = {"status": ",".join(sorted(statuses)), "limit": str(limit)}
    theirs, missing = await gather_local(_peers(), "/traces", "traces", PEER_TIMEOUT_S, query)
    if missing:
        raise PeersUnavailable(f"no answer from {missing}")
    found.extend(theirs)
    found.sort(key=lambda s: s.get("startedMs", 0), reverse=True)
    return found[:limit]


def _filters(request: Request) -> tuple[set[str], int]:
    raw = request.query.get("status") or ""
    wanted = set(raw.split(",")) if raw else set()
    unknown = wanted - set(STATUSES)
    if unknown:
        raise ValueError(f"unknown status(es) {sorted(unknown)}; use {', '.join(STATUSES)}")
    raw_limit = request.query.get("limit", str(DEFAULT_LIMIT))
    if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return wanted, int(raw_limit)


@app.page("/traces/{correlation_id}")
class TraceView(ServiceView):
    @ready_only
    async def get(self, request: Request, correlation_id: str) -> Any:
        if len(correlation_id) > MAX_ID_CHARS:
            return self.json_error(404, "NotFound", "no trace for so long an id")
        if request.query.get("local") == "1":
            found = local_view(correlation_id)
        else:
            try:
                found = await find_trace(correlation_id)
            except PeersUnavailable as exc:
                return self.json_error(503, "PeerUnavailable", str(exc))
        if found is None:
            return self.json_error(404, "NotFound", f"no trace for {correlation_id!r}")
        return self.json(found)


@app.page("/traces")
class TracesView(ServiceView):
    @ready_only
    async def get(self, request: Request) -> Any:
        try:
            wanted, limit = _filters(request)
        except ValueError as exc:
            return self.json_error(400, "BadRequest", str(exc))
        if request.query.get("local") == "1":
            return self.json({"traces": local_traces(wanted, limit)})
        try:
            found = await recent_traces(wanted, limit)
        except PeersUnavailable as exc:
            return self.json_error(503, "PeerUnavailable", str(exc))
        return self.json(
            {"traces": [{k: v for k, v in s.items() if k != "startedMs"} for s in found]}
        )


__all__ = ["PeersUnavailable", "find_trace", "recent_traces"]
