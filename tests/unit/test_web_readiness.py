"""The base view's readiness guard and error shape (a faust View on a stand-in app)."""

from __future__ import annotations

from typing import Any

from streamapp.health import ReadinessInputs
from streamapp.web.views import ServiceView, ready_only


class FakeApp:
    def __init__(self, ready: bool) -> None:
        self.inputs = ReadinessInputs(True, not ready, True, False, 1)

    def readiness_inputs(self) -> ReadinessInputs:
        return self.inputs


class Probe(ServiceView):
    """json() answers (status, body) instead of a web response."""

    def json(self, value: Any, **kwargs: Any) -> Any:
        return kwargs.get("status", 200), value

    @ready_only
    async def get(self, request: Any, key: str) -> Any:
        return self.json({"key": key})


def view(ready: bool) -> Probe:
    probe = Probe.__new__(Probe)  # no web server: only the methods under test
    probe.app = FakeApp(ready)  # type: ignore[assignment]
    return probe


async def test_view_runs_when_ready() -> None:
    assert await view(True).get(None, key="k") == (200, {"key": "k"})


async def test_view_answers_503_json_while_rebalancing() -> None:
    status, body = await view(False).get(None, key="k")
    assert status == 503
    assert body == {"error": {"type": "NotReady", "message": "worker not ready: rebalancing"}}


def test_errors_have_the_contract_shape_and_extras() -> None:
    status, body = view(True).json_error(504, "Timeout", "late", commandId="c-1")
    assert (status, body) == (
        504,
        {"error": {"type": "Timeout", "message": "late", "commandId": "c-1"}},
    )
