"""The base of every streamapp view: the contract's JSON error answer and the guard
that answers 503 NotReady while the worker is not ready.

During a rebalance or a changelog restore a table holds partial state: answering from it
would return stale or missing values as if they were true. ``@ready_only`` goes inside
``@app.table_route`` so that a request for another worker's key is forwarded first and
the owner decides.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, cast

from faust.web import View

from streamapp.health import readiness
from streamapp.web.errors import error_body


class ServiceView(View):
    """A faust View with the contract's error shape and the readiness guard."""

    def json_error(self, status: int, error_type: str, message: str, **extra: Any) -> Any:
        """``{"error": {"type", "message", ...}}`` with a 4xx/5xx status (never a trace)."""
        return self.json(error_body(error_type, message, **extra), status=status)

    def not_ready(self) -> Any | None:
        """The 503 NotReady answer while this worker is not ready, else None."""
        ready, body = readiness(cast(Any, self.app).readiness_inputs())
        if ready:
            return None
        waiting = ", ".join(body.get("waitingFor", []))
        return self.json_error(503, "NotReady", f"worker not ready: {waiting}")


def ready_only(handler: Callable[..., Awaitable[Any]]) -> Any:
    """Decorate a ServiceView method: 503 NotReady until the worker is ready."""

    @functools.wraps(handler)
    async def guarded(view: ServiceView, request: Any, *args: Any, **kwargs: Any) -> Any:
        refused = view.not_ready()
        if refused is not None:
            return refused
        return await handler(view, request, *args, **kwargs)

    return guarded  # Any: faust's table_route types its argument as a bare View method
