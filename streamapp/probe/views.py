"""``GET /probes/{key}``: answered by any worker (forwarded to the key's owner)."""

from __future__ import annotations

from typing import Any

from faust.web import Request

from streamapp.app import app
from streamapp.probe.agents import probes_table
from streamapp.web.views import ServiceView, ready_only


@app.page("/probes/{key}")
class ProbeView(ServiceView):
    @app.table_route(table=probes_table, match_info="key")
    @ready_only
    async def get(self, request: Request, key: str) -> Any:
        record = probes_table.get(key.encode())
        if record is None:
            return self.json_error(404, "NotFound", f"no probe seen for key {key!r}")
        return self.json({"key": key, **record})
