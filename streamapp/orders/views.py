"""Order HTTP routes: POST /orders (command + wait for reply), GET state, events, snapshots.

GET routes are answered by any worker: faust's table_route forwards them to the worker
that owns the order's partition. POST needs no forwarding: the command goes through
Kafka to the owner, and the reply comes back through orders.replies.
"""

from __future__ import annotations

from typing import Any, cast

import orjson
from faust.web import Request

from streamapp import topics
from streamapp.app import app
from streamapp.errors import CommandRejected, SchemaError
from streamapp.messages import Command, Reply, check_id, derived_id, new_id
from streamapp.orders.agents import commands_topic, event_store, eventstore_table, repository
from streamapp.orders.replies import ReplyWaiter
from streamapp.tracing.context import TRACEPARENT, continued, span_of
from streamapp.web.views import ServiceView, ready_only

#: Rejection type -> HTTP status (the contract's table for POST /orders).
REJECTION_STATUS = {
    "ConcurrencyError": 409,
    "InvalidTransition": 409,
    "ValidationError": 422,
    "SchemaError": 422,
    "UnknownCommand": 422,
}

reply_waiter = ReplyWaiter(app.settings.bootstrap, app.settings.topic(topics.ORDERS_REPLIES.name))
# faust starts instances too (App._prepare_subservice), though its annotation says class.
app.service(cast(Any, reply_waiter))
app.require_for_readiness("reply consumer starting", reply_waiter.positioned.is_set)


def _optional_id(body: dict[str, Any], name: str) -> str | None:
    """An id the client may leave out (absent, null or ""); anything else must be text."""
    value = body.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SchemaError(f"{name} must be a string")
    return value


def create_order_command(body: Any) -> Command:
    """The CreateOrder command for a POST /orders body (the order must not exist yet)."""
    if not isinstance(body, dict):
        raise SchemaError("the body must be a JSON object")
    data = {k: v for k, v in body.items() if k not in ("orderId", "commandId")}
    command_id = _optional_id(body, "commandId") or new_id()
    # Without an orderId, derive it from the commandId: a retry (e.g. after a 504) with
    # the same commandId then names the same order and is recognised as a duplicate.
    order_id = _optional_id(body, "orderId") or f"order-{derived_id('order', command_id)}"
    return Command(
        check_id("commandId", command_id),
        "CreateOrder",
        check_id("orderId", order_id),
        data,
        expected_version=0,
    )


def reply_response(view: Any, reply: Reply) -> Any:
    """201 accepted, 200 duplicate of an accepted command; a rejection (first time or
    duplicate) keeps its 409/422 so a retrying client sees the same answer."""
    body = {"orderId": reply.aggregate_id, **reply.to_dict()}
    if reply.error:
        return view.json(body, status=REJECTION_STATUS.get(str(reply.error.get("type")), 422))
    return view.json(body, status=201 if reply.status == "accepted" else 200)


@app.page("/orders")
class OrdersView(ServiceView):
    """POST /orders: create an order and wait (bounded) for the command's reply."""

    @ready_only
    async def post(self, request: Request) -> Any:
        if not reply_waiter.positioned.is_set():
            return self.json_error(503, "NotReady", "the reply consumer is starting")
        try:
            command = create_order_command(orjson.loads(await request.read()))
        except orjson.JSONDecodeError as exc:
            return self.json_error(422, "SchemaError", f"the body is not JSON: {exc}")
        except CommandRejected as exc:
            return self.json_error(422, exc.error_type, exc.message)

        # The client's traceparent (if any) is the command's parent; else a new trace.
        span = continued(request.headers.get(TRACEPARENT))

        async def send() -> None:
            with span_of(span):
                await commands_topic.send(
                    key=command.aggregate_id.encode(), value=command.to_json()
                )

        timeout = app.settings.http_command_timeout_ms / 1000.0
        reply = await reply_waiter.request(command.command_id, send, timeout)
        if reply is None:
            return self.json_error(
                504,
                "Timeout",
                f"no reply to command {command.command_id} within {timeout:g} s; "
                "it may still be applied (retry with the same commandId)",
                commandId=command.command_id,
                orderId=command.aggregate_id,
            )
        return reply_response(self, reply)


@app.page("/orders/{order_id}")
class OrderView(ServiceView):
    """GET /orders/{orderId}: the order's current state."""

    @app.table_route(table=eventstore_table, match_info="order_id")
    @ready_only
    async def get(self, request: Request, order_id: str) -> Any:
        state, _version = repository.load(order_id)
        if state is None:
            return self.json_error(404, "NotFound", f"no order {order_id!r}")
        return self.json(state.to_view())


def _version_param(request: Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise SchemaError(f"{name} must be a non-negative integer, got {raw!r}")
    return int(raw)


@app.page("/orders/{order_id}/events")
class OrderEventsView(ServiceView):
    """GET /orders/{orderId}/events?fromVersion=&toVersion= (inclusive)."""

    @app.table_route(table=eventstore_table, match_info="order_id")
    @ready_only
    async def get(self, request: Request, order_id: str) -> Any:
        try:
            first = _version_param(request, "fromVersion") or 1
            last = _version_param(request, "toVersion")
        except SchemaError as exc:
            return self.json_error(422, exc.error_type, exc.message)
        if event_store.version(order_id) == 0:
            return self.json_error(404, "NotFound", f"no order {order_id!r}")
        # Through the upcasters: stored old shapes are answered in the current shape.
        events = repository.read_events(order_id, first, last)
        return self.json({"events": [e.to_dict() for e in events]})


@app.page("/orders/{order_id}/snapshots")
class OrderSnapshotsView(ServiceView):
    """GET /orders/{orderId}/snapshots: versions with a snapshot (an operator's view)."""

    @app.table_route(table=eventstore_table, match_info="order_id")
    @ready_only
    async def get(self, request: Request, order_id: str) -> Any:
        version = event_store.version(order_id)
        if version == 0:
            return self.json_error(404, "NotFound", f"no order {order_id!r}")
        return self.json(
            {
                "orderId": order_id,
                "version": version,
                "snapshotEvery": app.settings.snapshot_every,
                "snapshots": event_store.snapshot_versions(order_id),
            }
        )
