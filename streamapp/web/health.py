"""Liveness and readiness pages of every worker (``/metrics`` comes from the sensor)."""

from __future__ import annotations

from typing import Any

from streamapp.app import app
from streamapp.health import readiness


@app.page("/health")
async def health(web: Any, request: Any) -> Any:
    """200 while the process runs and its event loop answers."""
    return web.json({"status": "ok", "app": app.conf.id})


@app.page("/ready")
async def ready(web: Any, request: Any) -> Any:
    """200 once recovery is done and partitions are assigned, else 503."""
    is_ready, body = readiness(app.readiness_inputs())
    return web.json(body, status=200 if is_ready else 503)
