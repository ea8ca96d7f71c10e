"""The orders service's dashboard: ``GET /`` (the page) and ``GET /dashboard/data``.

``/`` replaces faust's index page on the orders service only (this package is in the
orders service's modules alone): faust registers its index blueprint when the web server
starts, after the pages discovered here, and aiohttp serves the first route that matches.

The data route asks every worker (workers.py) for ``/health``, ``/ready`` and
``/metrics`` at once, each request bounded by ``WORKER_TIMEOUT_S``: a worker that does not
answer is shown as down, never turned into an error of this route.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
from faust.web import Request

from streamapp.app import app
from streamapp.dashboard.dashboard_html import (
    CONTENT_SECURITY_POLICY,
    DATA_PATH,
    TRACES_SHOWN,
    dashboard_page,
)
from streamapp.dashboard.summary import (
    DOWN,
    READY,
    WAITING,
    ThroughputMeter,
    WorkerState,
    dashboard_data,
    parse_metrics,
    processed_totals,
)
from streamapp.dashboard.workers import (
    WorkerRef,
    configured_workers,
    procfile_workers,
    service_of,
)
from streamapp.tracing.views import recent_traces
from streamapp.web.client import HttpError, get_json, get_text, request_json
from streamapp.web.views import ServiceView

WORKER_TIMEOUT_S = 2.0
TRACES_TIMEOUT_S = 5.0

_meter = ThroughputMeter()
_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


def dashboard_workers() -> list[WorkerRef]:
    """The workers to show: the setting's list, else the cluster's and the Procfile's."""
    if app.settings.dashboard_workers.strip():
        return configured_workers(app.settings.dashboard_workers)
    me = str(app.conf.canonical_url).rstrip("/")
    try:
        known = [str(url) for url in app.router.tables_metadata()]
    except Exception:  # no assignment yet: only this worker is known
        known = []
    return procfile_workers(app.settings.web_host, [me, *known])


async def _worker_state(session: aiohttp.ClientSession, ref: WorkerRef) -> WorkerState:
    health, ready, metrics = await asyncio.gather(
        get_json(f"{ref.url}/health", WORKER_TIMEOUT_S, session=session),
        request_json("GET", f"{ref.url}/ready", WORKER_TIMEOUT_S),
        get_text(f"{ref.url}/metrics", WORKER_TIMEOUT_S, session=session),
        return_exceptions=True,
    )
    service = ref.service
    if isinstance(health, dict):
        service = service_of(health.get("app"), app.settings.app_id) or service
    if isinstance(ready, BaseException):
        return WorkerState(ref.url, service, DOWN, error=_reason(ready))
    status, body = ready
    waiting = body.get("waitingFor", []) if isinstance(body, dict) else []
    state = READY if status == 200 else WAITING
    error = None
    samples: tuple[Any, ...] = ()
    if isinstance(metrics, BaseException):
        error = f"metrics: {_reason(metrics)}"
    else:
        try:
            samples = tuple(parse_metrics(metrics))
        except ValueError as exc:
            error = f"metrics unreadable: {exc}"
    return WorkerState(
        ref.url, service, state, tuple(str(w) for w in waiting), error=error, samples=samples
    )


def _reason(exc: BaseException) -> str:
    """A short reason for the dashboard (the worker's URL is shown beside it)."""
    if isinstance(exc, HttpError):
        if exc.status is not None:
            return f"HTTP {exc.status}"
        text = str(exc).removeprefix(f"{exc.url}: ")
        if "Cannot connect" in text or "Connect call failed" in text:
            return "unreachable"
        return "no answer in time" if "Timeout" in text else text[:120]
    return type(exc).__name__


async def _recent_traces() -> tuple[list[dict[str, Any]], str | None]:
    try:
        return await asyncio.wait_for(recent_traces(set(), TRACES_SHOWN), TRACES_TIMEOUT_S), None
    except Exception as exc:  # a peer down or moving: the rest of the dashboard still shows
        return [], str(exc) or type(exc).__name__


async def gather_dashboard() -> dict[str, Any]:
    """The dashboard's JSON, from every worker's answers (each bounded in time)."""
    refs = dashboard_workers()
    async with aiohttp.ClientSession() as session:
        states, (traces, traces_error) = await asyncio.gather(
            asyncio.gather(*(_worker_state(session, ref) for ref in refs)),
            _recent_traces(),
        )
    rates = _meter.update(time.monotonic(), processed_totals(states))
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return dashboard_data(list(states), rates, traces, traces_error, now, app.settings.topic_prefix)


@app.page("/")
class DashboardView(ServiceView):
    async def get(self, request: Request) -> Any:
        return self.html(
            dashboard_page(app.conf.id),
            headers={**_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY},
        )


@app.page(DATA_PATH)
class DashboardDataView(ServiceView):
    async def get(self, request: Request) -> Any:
        return self.json(await gather_dashboard(), headers=_HEADERS)
