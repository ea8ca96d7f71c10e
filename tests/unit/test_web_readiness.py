from __future__ import annotations

from typing import Any

from streamapp.health import ReadinessInputs
from streamapp.web.readiness import when_ready


class FakeWeb:
    def json(self, body: Any, status: int = 200) -> tuple[int, Any]:
        return status, body


class FakeApp:
    def __init__(self, ready: bool) -> None:
        self.inputs = ReadinessInputs(True, not ready, True, False, 1)

    def readiness_inputs(self) -> ReadinessInputs:
        return self.inputs


async def view(web: FakeWeb, request: object, key: str) -> Any:
    return web.json({"key": key})


async def test_view_runs_when_ready() -> None:
    assert await when_ready(FakeApp(ready=True))(view)(FakeWeb(), None, key="k") == (
        200,
        {"key": "k"},
    )


async def test_view_answers_503_json_while_rebalancing() -> None:
    status, body = await when_ready(FakeApp(ready=False))(view)(FakeWeb(), None, key="k")
    assert status == 503
    assert body == {"error": {"type": "NotReady", "message": "worker not ready: rebalancing"}}
