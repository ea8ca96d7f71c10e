"""Table-backed views answer 503 while this worker is not ready.

During a rebalance or a changelog restore a table holds partial state: answering from
it would return stale or missing values as if they were true.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from streamapp.health import readiness
from streamapp.web.errors import json_error

if TYPE_CHECKING:
    from streamapp.app import StreamApp

View = Callable[..., Awaitable[Any]]


def when_ready(app: StreamApp) -> Callable[[View], View]:
    """Decorate a faust page handler so it answers 503 NotReady until the worker is ready."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        async def guarded(web: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            ready, body = readiness(app.readiness_inputs())
            if not ready:
                waiting = ", ".join(body.get("waitingFor", []))
                return json_error(web, 503, "NotReady", f"worker not ready: {waiting}")
            return await view(web, request, *args, **kwargs)

        return guarded

    return decorate
