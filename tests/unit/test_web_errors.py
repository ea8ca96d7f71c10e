"""The JSON-error middleware on a real aiohttp server (no broker needed)."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from streamapp.web.errors import web_application_options


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals")


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


@pytest.fixture
async def client() -> TestClient:  # type: ignore[misc]
    app = web.Application(**web_application_options(max_body_bytes=1000))
    app.router.add_get("/boom", boom)
    app.router.add_post("/echo", echo)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_unknown_route_is_a_json_404(client: TestClient) -> None:
    response = await client.get("/nowhere")
    assert response.status == 404
    assert response.content_type == "application/json"
    assert await response.json() == {
        "error": {"type": "NotFound", "message": "no route GET /nowhere"}
    }


async def test_wrong_method_is_a_json_405_with_allow(client: TestClient) -> None:
    response = await client.delete("/echo")
    assert response.status == 405
    assert response.headers["Allow"] == "POST"
    assert (await response.json())["error"]["type"] == "MethodNotAllowed"


async def test_a_body_over_the_limit_is_a_json_413(client: TestClient) -> None:
    assert (await client.post("/echo", data=b"x" * 1000)).status == 200
    response = await client.post("/echo", data=b"x" * 1001)
    assert response.status == 413
    body = await response.json()
    assert body["error"] == {
        "type": "PayloadTooLarge",
        "message": "request body larger than 1000 bytes",
    }


async def test_an_unexpected_exception_is_a_logged_500_without_traceback(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="streamapp.web.errors"):
        response = await client.get("/boom")
    assert response.status == 500
    text = await response.text()
    assert "secret internals" not in text and "Traceback" not in text
    assert (await response.json())["error"]["type"] == "InternalError"
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and "secret internals" in str(logged[0].exc_info[1])


async def test_an_error_answer_in_another_shape_is_given_the_contract_shape() -> None:
    async def plain(request: web.Request) -> web.Response:
        return web.json_response({"error": "Method Not Allowed"}, status=405)

    async def good(request: web.Request) -> web.Response:
        body = {"error": {"type": "NotFound", "message": "no sku", "sku": "x"}}
        return web.json_response(body, status=404)

    app = web.Application(**web_application_options(max_body_bytes=1000))
    app.router.add_get("/plain", plain)
    app.router.add_get("/good", good)
    async with TestClient(TestServer(app)) as test_client:
        response = await test_client.get("/plain")
        assert response.status == 405
        assert (await response.json())["error"]["type"] == "MethodNotAllowed"
        response = await test_client.get("/good")  # already right: left as it is
        assert (await response.json())["error"]["sku"] == "x"


async def test_deliberate_json_answers_pass_and_an_unanswering_peer_is_a_503() -> None:
    async def not_ready(request: web.Request) -> web.Response:
        return web.json_response({"ready": False, "waitingFor": ["recovery"]}, status=503)

    async def confluent(request: web.Request) -> web.Response:
        return web.json_response({"error_code": 40401, "message": "no subject"}, status=404)

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="oops", status=502)

    async def forward(request: web.Request) -> web.Response:
        raise aiohttp.ClientConnectionError("connection refused")  # faust's router

    app = web.Application(**web_application_options(max_body_bytes=1000))
    for path, view in [("/ready", not_ready), ("/subjects/x", confluent), ("/text", text)]:
        app.router.add_get(path, view)
    app.router.add_get("/orders/{id}", forward)
    async with TestClient(TestServer(app)) as test_client:
        response = await test_client.get("/ready")
        assert (response.status, await response.json()) == (
            503,
            {"ready": False, "waitingFor": ["recovery"]},
        )
        response = await test_client.get("/subjects/x")
        assert (await response.json())["error_code"] == 40401
        response = await test_client.get("/text")
        assert response.status == 502
        assert (await response.json())["error"]["type"] == "BadGateway"
        response = await test_client.get("/orders/o-1")
        assert response.status == 503
        assert (await response.json())["error"]["type"] == "PeerUnavailable"
