"""Which workers the dashboard shows (pure).

The setting ``dashboard_workers`` lists them (comma-separated base URLs). Left empty,
the dashboard shows the orders workers this worker knows from the consumer group (the
partition assignor's table metadata, itself included) and the first worker of every
other service at the Procfile's port: honcho gives instance n of process type i the
port ``base + 100 * i + n`` (``SERVICES`` order: orders 0, inventory 1, payments 2,
shipping 3), so the others' first workers listen on ``base + 100 * i``, where ``base``
is the lowest orders worker port known (orders' instance 0 listens on the base itself).
Deployments that do not follow the Procfile set ``dashboard_workers``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from streamapp.settings import SERVICE_PORT_STEP, SERVICES


@dataclass(frozen=True)
class WorkerRef:
    """A worker to ask: its base URL and, when the rule that found it says so, its service."""

    url: str
    service: str | None = None


def configured_workers(setting: str) -> list[WorkerRef]:
    """The workers a ``dashboard_workers`` value lists (service unknown until asked)."""
    urls = (part.strip().rstrip("/") for part in setting.split(","))
    return [WorkerRef(url) for url in dict.fromkeys(u for u in urls if u)]


def procfile_workers(host: str, orders_urls: Iterable[str]) -> list[WorkerRef]:
    """The orders workers given, then each other service's first worker by the Procfile
    rule (see the module docstring)."""
    orders = sorted(dict.fromkeys(u.rstrip("/") for u in orders_urls), key=_port_key)
    refs = [WorkerRef(url, "orders") for url in orders]
    ports = [port for port in (_port(u) for u in orders) if port is not None]
    if not ports:
        return refs
    base = min(ports)
    for index, service in enumerate(SERVICES):
        if service != "orders":
            refs.append(WorkerRef(f"http://{host}:{base + SERVICE_PORT_STEP * index}", service))
    return refs


def service_of(app_id: object, orders_app_id: str) -> str | None:
    """The service of a worker from the app id its /health reports (None: not ours)."""
    if app_id == orders_app_id:
        return "orders"
    if isinstance(app_id, str) and app_id.startswith(f"{orders_app_id}-"):
        service = app_id[len(orders_app_id) + 1 :]
        if service in SERVICES:
            return service
    return None


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        return None


def _port_key(url: str) -> tuple[int, str]:
    return (_port(url) or 0, url)
