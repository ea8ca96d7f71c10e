"""Saga routes: GET /sagas/{sagaId} (forwarded to the owner), GET /sagas (gathered).

GET /sagas asks every worker that owns saga partitions for its part (``local=1``) and
merges the answers newest first, so any worker answers for the whole cluster.
"""

from __future__ import annotations

from typing import Any

from faust.web import Request

from streamapp.app import app
from streamapp.saga.agents import sagas
from streamapp.saga.machine import COMPENSATED, COMPENSATING, COMPLETED, EXECUTING, FAILED, STARTED
from streamapp.saga.orchestration import SagaRecord, summary, view
from streamapp.web.client import gather_local
from streamapp.web.views import ServiceView, ready_only

STATES = (STARTED, EXECUTING, COMPENSATING, COMPLETED, COMPENSATED, FAILED)
#: ?state=IN_FLIGHT: every saga that has not ended.
IN_FLIGHT = "IN_FLIGHT"
DEFAULT_LIMIT, MAX_LIMIT = 100, 10_000
PEER_TIMEOUT_S = 5.0


@app.page("/sagas/{saga_id}")
class SagaView(ServiceView):
    @app.table_route(table=sagas, match_info="saga_id")
    @ready_only
    async def get(self, request: Request, saga_id: str) -> Any:
        stored = sagas.get(saga_id.encode())
        if stored is None:
            return self.json_error(404, "NotFound", f"no saga {saga_id!r}")
        return self.json(view(SagaRecord.from_dict(stored)))


def _filters(request: Request) -> tuple[set[str], int]:
    raw_state = request.query.get("state") or ""
    wanted = set(raw_state.split(",")) if raw_state else set()
    unknown = wanted - set(STATES) - {IN_FLIGHT}
    if unknown:  # exact names, as the OpenAPI document says
        raise ValueError(
            f"unknown state(s) {sorted(unknown)}; use {', '.join(STATES)} or {IN_FLIGHT}"
        )
    if IN_FLIGHT in wanted:
        wanted = (wanted - {IN_FLIGHT}) | {STARTED, EXECUTING, COMPENSATING}
    raw_limit = request.query.get("limit", str(DEFAULT_LIMIT))
    if not (raw_limit.isascii() and raw_limit.isdigit()) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return wanted, int(raw_limit)


def local_sagas(wanted: set[str], limit: int) -> list[dict[str, Any]]:
    found = []
    for stored in sagas.values():
        record = SagaRecord.from_dict(stored)
        if not wanted or record.state.state in wanted:
            found.append(summary(record))
    found.sort(key=lambda s: s["updatedMs"], reverse=True)
    return found[:limit]


@app.page("/sagas")
class SagasView(ServiceView):
    @ready_only
    async def get(self, request: Request) -> Any:
        try:
            wanted, limit = _filters(request)
        except ValueError as exc:
            return self.json_error(400, "BadRequest", str(exc))
        found = local_sagas(wanted, limit)
        if request.query.get("local") == "1":
            return self.json({"sagas": found})
        query = {"state": request.query.get("state") or "", "limit": str(limit)}
        theirs, missing = await gather_local(
            app.peer_urls(sagas.name), "/sagas", "sagas", PEER_TIMEOUT_S, query
        )
        if missing:
            return self.json_error(503, "PeerUnavailable", f"no answer from {missing}")
        found.extend(theirs)
        found.sort(key=lambda s: s["updatedMs"], reverse=True)
        return self.json(
            {"sagas": [{k: v for k, v in s.items() if k != "updatedMs"} for s in found[:limit]]}
        )
