"""The contract's JSON error body, in one place: ``{"error": {"type", "message"}}``."""

from __future__ import annotations

from typing import Any


def error_body(error_type: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"type": error_type, "message": message, **extra}}


def json_error(web: Any, status: int, error_type: str, message: str, **extra: Any) -> Any:
    """A JSON error response (4xx for bad input; never a stack trace)."""
    return web.json(error_body(error_type, message, **extra), status=status)
