"""The trace page and the dashboard in a real browser (headless Chromium over CDP).

The four services run as real workers; an order completes and one is compensated (its
customer has no credit). Chromium loads each trace's page and the dashboard: no console
error of any kind, one lane per node and one drawn arrow per edge of the trace JSON, the
dashboard redraws itself with a new order's trace. Screenshots go to
``artifacts/screenshots/`` at the repository root.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from streamapp.messages import new_id
from streamapp.settings import SERVICES
from tests.integration.chromium import Page, chromium, open_page
from tests.integration.support import (
    ROOT,
    http_get,
    http_json,
    http_post_json,
    wait_for,
)
from tests.integration.system import System

pytestmark = pytest.mark.integration

SCREENSHOTS = ROOT / "artifacts" / "screenshots"
#: A worker the dashboard is told about that does not answer: it must show as down. Its
#: port is held (bound, not listening) by the test, so nothing else can take it.
_HELD = socket.socket()
_HELD.bind(("127.0.0.1", 0))
MISSING_WORKER = f"http://127.0.0.1:{_HELD.getsockname()[1]}"

#: The diagram as the browser rendered it: lanes, arrows (with their drawn size and
#: computed stroke), the event table's rows.
DIAGRAM_JS = """(() => {
  const svg = document.querySelector("svg.sequence");
  const attr = (g, name) => g.getAttribute(name);
  return {
    svgs: document.querySelectorAll("svg").length,
    lanes: [...svg.querySelectorAll("g.lane")].map(g => attr(g, "data-lane")),
    labels: [...svg.querySelectorAll("g.lane text")].map(t => t.textContent),
    hops: [...svg.querySelectorAll("g.hop")].map(g => {
      const shape = g.querySelector("line, path");
      const box = shape.getBBox();
      const style = getComputedStyle(shape);
      return {id: attr(g, "data-event-id"), from: attr(g, "data-from"), to: attr(g, "data-to"),
              kind: attr(g, "data-kind"), width: box.width, y: box.y, stroke: style.stroke,
              dashed: style.strokeDasharray !== "none",
              label: g.querySelector("text.label").textContent,
              at: g.querySelector("text.at").textContent};
    }),
    rows: [...document.querySelectorAll("table.events tbody tr")].map(r => r.dataset.eventId),
    back: [...document.querySelectorAll("a")].some(a => a.getAttribute("href") === "/"),
  };
})()"""

RED, ORANGE = "rgb(220, 38, 38)", "rgb(234, 88, 12)"


@pytest.fixture(scope="module")
def system(bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    deployment = System(
        bootstrap,
        tmp_path_factory.mktemp("pages"),
        retry_base_ms="500",
        retry_max_attempts="3",
    )
    urls = [deployment.url(service) for service in SERVICES]
    deployment.configure(dashboard_workers=",".join([*urls, MISSING_WORKER]))
    deployment.start()
    yield deployment
    deployment.stop()
    _HELD.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root = tmp_path_factory.mktemp("chromium")
    with chromium(root / "profile", root / "chromium.log") as devtools_port:
        yield devtools_port


def place(system: System, customer: str, sku: str) -> str:
    """POST /orders; the correlation id of its flow (the command id)."""
    status, body = http_post_json(
        f"{system.url('orders')}/orders",
        {
            "orderId": f"order-{new_id()[:12]}",
            "customerId": customer,
            "items": [{"sku": sku, "quantity": 1, "unitPrice": "10.00"}],
            "paymentMethod": "card",
            "shippingAddress": {"country": "NL", "city": "Delft", "line1": "Mekelweg 4"},
        },
    )
    assert status == 201, body
    return str(body["commandId"])


def trace_of(system: System, correlation_id: str) -> Any:
    url = f"{system.url('orders')}/traces/{quote(correlation_id, safe='')}"
    status, body = http_json(url, timeout=10)
    return body if status == 200 else None


def wait_trace(system: System, correlation_id: str, status: str, *types: str) -> Any:
    def reached() -> Any:
        trace = trace_of(system, correlation_id)
        if trace is None or trace["status"] != status:
            return None
        return trace if set(types) <= {e["eventType"] for e in trace["events"]} else None

    try:
        return wait_for(reached, 90, f"trace {correlation_id} {status} with {types}", 0.3)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nlast: {trace_of(system, correlation_id)}") from None


@pytest.fixture(scope="module")
def flows(system: System) -> dict[str, str]:
    """A completed and a compensated flow, each with every event it will ever have."""
    completed = place(system, "cust-happy", "SKU-HAPPY")
    compensated = place(system, "cust-broke", "SKU-PAY")
    wait_trace(system, completed, "COMPLETED", "SagaCompleted", "InventoryCommitted")
    wait_trace(
        system,
        compensated,
        "FAILED",
        "PaymentFailed",
        "InventoryReleased",
        "OrderCancelled",
        "SagaCompensated",
    )
    return {"completed": completed, "compensated": compensated}


async def render_trace(page: Page, system: System, correlation_id: str) -> tuple[Any, Any]:
    """(the diagram as rendered, the trace JSON it was drawn from): loaded again if the
    trace changed meanwhile (a late event)."""
    url = f"{system.url('orders')}/traces/{quote(correlation_id, safe='')}/view"
    for _ in range(5):
        before = trace_of(system, correlation_id)
        await page.goto(url)
        drawn = await page.evaluate(DIAGRAM_JS)
        after = trace_of(system, correlation_id)
        if before == after:
            return drawn, after
    raise AssertionError(f"trace {correlation_id} kept changing")


@pytest.mark.parametrize("flow", ["completed", "compensated"])
async def test_the_trace_page_draws_a_lane_per_node_and_an_arrow_per_hop(
    system: System, browser: int, flows: dict[str, str], flow: str
) -> None:
    correlation_id = flows[flow]
    async with open_page(browser) as page:
        drawn, trace = await render_trace(page, system, correlation_id)
        await page.screenshot(SCREENSHOTS / f"trace-{flow}.png")
        errors = list(page.errors)
    assert errors == [], errors

    assert drawn["svgs"] == 1
    assert drawn["lanes"] == [node["id"] for node in trace["nodes"]]
    assert drawn["labels"] == [node["label"] for node in trace["nodes"]]
    assert set(trace["services"]) <= set(drawn["lanes"])
    hops = drawn["hops"]
    assert [(h["id"], h["from"], h["to"], h["kind"]) for h in hops] == [
        (e["eventId"], e["from"], e["to"], e["kind"]) for e in trace["edges"]
    ]
    assert len(hops) == trace["hops"]
    assert all(h["width"] > 0 for h in hops), hops  # every arrow is drawn
    ys = [h["y"] for h in hops]
    assert ys == sorted(ys), ys  # top to bottom in causal order
    assert [(h["label"], h["at"]) for h in hops] == [
        (e["eventType"], f"+{e['atMs']} ms") for e in trace["edges"]
    ]
    assert drawn["rows"] == [e["eventId"] for e in trace["events"]]
    assert drawn["back"]

    by_type = {h["label"]: h for h in hops}
    if flow == "completed":
        assert set(trace["services"]) == {"orders", "saga", "inventory", "payments", "shipping"}
        assert by_type["SagaCompleted"]["kind"] == "terminal"
    else:
        assert by_type["PaymentFailed"]["stroke"] == RED
        released = by_type["InventoryReleased"]
        assert released["stroke"] == ORANGE and released["dashed"]
        assert by_type["SagaCompensated"]["kind"] == "terminal"


def test_the_trace_page_answers_html_and_unknown_ids_the_contracts_404(
    system: System, flows: dict[str, str]
) -> None:
    base = system.url("orders")
    status, body = http_get(f"{base}/traces/{flows['completed']}/view", timeout=10)
    assert status == 200 and body.startswith(b"<!doctype html>")
    status, body = http_get(f"{base}/traces/no-such-{new_id()}/view", timeout=10)
    assert status == 404
    assert orjson.loads(body)["error"]["type"] == "NotFound"


async def test_the_dashboard_shows_workers_sagas_and_traces_and_redraws_itself(
    system: System, browser: int, flows: dict[str, str]
) -> None:
    status, data = http_json(f"{system.url('orders')}/dashboard/data", timeout=15)
    assert status == 200, data
    states = {w["url"]: (w["service"], w["state"]) for w in data["workers"]}
    assert states[MISSING_WORKER] == (None, "down")
    for service in SERVICES:
        assert states[system.url(service)] == (service, "ready")

    async with open_page(browser, height=1000) as page:
        await page.goto(f"{system.url('orders')}/")
        listed = """[...document.querySelectorAll("#traces tr.trace")]
                    .map(tr => tr.dataset.correlationId)"""
        shown = await page.wait_until(
            f"(ids => {orjson.dumps(list(flows.values())).decode()}.every(i => ids.includes(i)))"
            f"({listed})",
            30,
            "both flows on the dashboard",
        )
        assert shown
        # A new flow appears without reloading the page: the dashboard polls.
        drawn_before = int(await page.evaluate("Number(document.body.dataset.refreshes)"))
        newer = place(system, "cust-1", "SKU-1")
        wait_trace(system, newer, "COMPLETED", "SagaCompleted")
        await page.wait_until(
            f"{listed}.includes({orjson.dumps(newer).decode()})", 30, "the new flow's trace"
        )
        assert int(await page.evaluate("Number(document.body.dataset.refreshes)")) > drawn_before
        await page.wait_until(
            """document.querySelector("#throughput .big").textContent !== "\\u2014" """,
            15,
            "a throughput figure (two polls)",
        )
        seen = await page.evaluate(
            """(() => ({
              workers: [...document.querySelectorAll("#workers tbody tr")]
                .map(tr => [tr.dataset.url, ...[...tr.cells].map(c => c.textContent)]),
              sagas: Object.fromEntries([...document.querySelectorAll("#sagas .tile")]
                .map(t => [t.title, Number(t.querySelector(".value").textContent)])),
              link: document.querySelector("#traces tr.trace a").getAttribute("href"),
              banner: document.getElementById("banner").textContent,
            }))()"""
        )
        await page.screenshot(SCREENSHOTS / "dashboard.png")
        errors = list(page.errors)
        # The trace links lead to the trace pages.
        await page.goto(f"{system.url('orders')}{seen['link']}")
        assert await page.evaluate('document.querySelectorAll("svg.sequence g.hop").length') > 0
        errors += page.errors[len(errors) :]
    assert errors == [], errors

    rows = {url: cells for url, *cells in seen["workers"]}
    for service in SERVICES:
        assert rows[system.url(service)][0] == service
        assert rows[system.url(service)][2] == "ready"
    assert rows[MISSING_WORKER][2] == "down"
    assert seen["sagas"]["SagaCompleted"] >= 2 and seen["sagas"]["SagaCompensated"] >= 1
    assert seen["link"].startswith("/traces/") and seen["link"].endswith("/view")
    assert seen["banner"] == ""
