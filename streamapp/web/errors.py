"""The contract's JSON error body, in one place: ``{"error": {"type", "message"}}``.

Views answer their own 4xx with ``ServiceView.json_error`` (web/views.py). Everything
else — aiohttp's own 404 and 405, a body over the size limit (413), an exception a view
did not expect (500) — passes through :func:`json_errors`, the middleware every worker's
web server runs, so no route of any service answers ``text/plain`` or shows a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web as aio

log = logging.getLogger(__name__)

#: HTTP status -> the contract's error type for errors aiohttp raises itself.
ERROR_TYPES = {
    400: "BadRequest",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    500: "InternalError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def error_body(error_type: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message, **extra}}


def _response(status: int, error_type: str, message: str, headers: Any = None) -> aio.Response:
    response = aio.Response(
        status=status,
        body=orjson.dumps(error_body(error_type, message)),
        content_type="application/json",
    )
    if headers and "Allow" in headers:  # 405 must say which methods are allowed
        response.headers["Allow"] = headers["Allow"]
    return response


AioHandler = Callable[[aio.Request], Awaitable[aio.StreamResponse]]


def json_errors(max_body_bytes: int) -> Any:
    """The middleware that turns every HTTP error into the contract's JSON body."""

    @aio.middleware
    async def middleware(request: aio.Request, handler: AioHandler) -> aio.StreamResponse:
        return await _answer(request, handler, max_body_bytes)

    return middleware


async def _answer(
    request: aio.Request, handler: AioHandler, max_body_bytes: int
) -> aio.StreamResponse:
    try:
        response = await handler(request)
    except aio.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are not errors
        error_type = ERROR_TYPES.get(exc.status, exc.reason.replace(" ", ""))
        message = exc.reason
        if exc.status == 404:
            message = f"no route {request.method} {request.path}"
        elif exc.status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        elif exc.status == 413:
            message = f"request body larger than {max_body_bytes} bytes"
        return _response(exc.status, error_type, message, exc.headers)
    except (TimeoutError, aiohttp.ClientError) as exc:
        # A request forwarded to the worker that owns the key (faust's table_route) got
        # no answer: the owner is down or moving. Worth a retry, not a 500.
        log.warning("no answer from a peer for %s %s: %r", request.method, request.path, exc)
        return _response(503, "PeerUnavailable", "the worker owning this key did not answer")
    except Exception:
        # Logged with its traceback for the operator; the client sees no internals.
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return _response(500, "InternalError", "unexpected error; see the worker's log")
    if response.status >= 400 and _foreign_error(response):
        # faust's own View errors ({"error": "..."}) and any non-JSON error body.
        return _response(
            response.status,
            ERROR_TYPES.get(response.status, "Error"),
            response.reason or "error",
            response.headers,
        )
    return response


def _foreign_error(response: aio.StreamResponse) -> bool:
    """An error body in another shape than ours: not JSON, or faust's ``{"error": str}``.

    Other JSON answers are deliberate and pass as they are: /ready's 503 body, and the
    schema registry's Confluent-shaped ``{"error_code", "message"}``."""
    body = getattr(response, "body", None)
    if not isinstance(body, bytes):
        return False  # streamed: nothing to inspect (none of our error answers stream)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return True
    if not isinstance(doc, dict):
        return True
    return "error" in doc and not isinstance(doc["error"], dict)


def web_application_options(max_body_bytes: int) -> dict[str, Any]:
    """aiohttp Application options for faust's web server (``web_application_options``)."""
    return {"middlewares": [json_errors(max_body_bytes)], "client_max_size": max_body_bytes}
