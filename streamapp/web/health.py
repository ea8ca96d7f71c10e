"""Pages every worker serves: liveness, readiness, its OpenAPI document
(``/metrics`` comes from faust's Prometheus sensor)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

from streamapp.app import app
from streamapp.health import readiness
from streamapp.web.openapi import document

try:
    _VERSION = importlib.metadata.version("streamapp")
except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
    _VERSION = "0+unknown"


@app.page("/health")
async def health(web: Any, request: Any) -> Any:
    """200 while the process runs and its event loop answers."""
    return web.json({"status": "ok", "app": app.conf.id})


@app.page("/ready")
async def ready(web: Any, request: Any) -> Any:
    """200 once recovery is done and partitions are assigned, else 503."""
    is_ready, body = readiness(app.readiness_inputs())
    return web.json(body, status=200 if is_ready else 503)


@app.page("/openapi.json")
async def openapi(web: Any, request: Any) -> Any:
    """This service's OpenAPI 3.1 document (every route, parameters, JSON errors)."""
    return web.json(document(app.settings.service, _VERSION))
