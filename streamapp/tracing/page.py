"""GET /traces/{correlationId}/view: the trace as an HTML page with its sequence diagram.

The trace comes from the same lookup as the JSON route (this worker's table, else the
other orders workers); the drawing is trace_html.py's (pure). Errors are the JSON route's
too: 404 for an unknown id, 503 when a worker that may hold it does not answer.
"""

from __future__ import annotations

from typing import Any

from faust.web import Request

from streamapp.app import app
from streamapp.messages import MAX_ID_CHARS
from streamapp.tracing.trace_html import trace_page
from streamapp.tracing.views import PeersUnavailable, find_trace
from streamapp.web.views import ServiceView, ready_only

#: The page runs no script and loads nothing: the browser may do nothing else either.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


@app.page("/traces/{correlation_id}/view")
class TracePageView(ServiceView):
    @ready_only
    async def get(self, request: Request, correlation_id: str) -> Any:
        if len(correlation_id) > MAX_ID_CHARS:
            return self.json_error(404, "NotFound", "no trace for so long an id")
        try:
            trace = await find_trace(correlation_id)
        except PeersUnavailable as exc:
            return self.json_error(503, "PeerUnavailable", str(exc))
        if trace is None:
            return self.json_error(404, "NotFound", f"no trace for {correlation_id!r}")
        return self.html(
            trace_page(trace),
            headers={
                "Content-Security-Policy": CONTENT_SECURITY_POLICY,
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )
