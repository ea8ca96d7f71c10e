"""Each service's OpenAPI document lists exactly the routes its worker serves."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from streamapp.settings import SERVICES
from streamapp.web.openapi import REGISTRY, document

ROOT = Path(__file__).resolve().parents[2]

#: Builds a service's app as a worker does and prints the routes aiohttp would serve.
LIST_ROUTES = """
import json
from streamapp.app import app
app.discover()
app.web.init_server()
print(json.dumps([
    [route.method, route.resource.canonical]
    for route in app.web.web_app.router.routes() if route.method != "HEAD"
]))
"""


def served_routes(service: str) -> set[tuple[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMAPP_")}
    env["STREAMAPP_SERVICE"] = service
    out = subprocess.run(
        [sys.executable, "-c", LIST_ROUTES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return {(method, _shape(path)) for method, path in json.loads(out.splitlines()[-1])}


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


@pytest.mark.parametrize("service", SERVICES)
def test_the_document_covers_every_served_route_and_nothing_else(service: str) -> None:
    doc = document(service, "0")
    documented = {
        (method.upper(), _shape(path)) for path, ops in doc["paths"].items() for method in ops
    }
    assert documented == served_routes(service)


@pytest.mark.parametrize("service", SERVICES)
def test_every_operation_declares_json_errors_and_its_path_parameters(service: str) -> None:
    doc = document(service, "0")
    assert doc["openapi"] == "3.1.0"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            errors = {s: r for s, r in op["responses"].items() if int(s) >= 400}
            assert "405" in errors, (method, path)
            for status, response in errors.items():
                if (path, status) == ("/ready", "503"):
                    continue  # /ready's 503 is its readiness body, as the contract says
                content = response["content"]
                if REGISTRY in content:  # the schema registry answers Confluent's shape
                    assert content[REGISTRY]["schema"]["required"] == ["error_code", "message"]
                    continue
                schema = content["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert declared == set(re.findall(r"\{([^}]+)\}", path)), path
