"""``GET /probes/{key}``: answered by any worker (forwarded to the key's owner)."""

from __future__ import annotations

from typing import Any

from streamapp.app import app
from streamapp.probe.agents import probes_table
from streamapp.web.errors import json_error
from streamapp.web.readiness import when_ready


@app.page("/probes/{key}")
@app.table_route(table=probes_table, match_info="key")
@when_ready(app)
async def get_probe(web: Any, request: Any, key: str) -> Any:
    record = probes_table.get(key.encode())
    if record is None:
        return json_error(web, 404, "NotFound", f"no probe seen for key {key!r}")
    return web.json({"key": key, **record})
