"""Each service's OpenAPI 3.1 document (pure): every route, its parameters, bodies and
JSON error responses.

Written by hand rather than derived from the views: faust views carry no types, and the
document is a promise to clients. ``tests/unit/test_openapi.py`` keeps it honest: every
route a worker of a service serves is documented and nothing else is.
"""

from __future__ import annotations

from typing import Any

from streamapp.messages import MAX_ID_CHARS
from streamapp.orders.aggregate import MAX_ITEMS, MAX_QUANTITY, MONEY
from streamapp.registry.state import LEVELS
from streamapp.saga.machine import COMPENSATED, COMPENSATING, COMPLETED, EXECUTING, FAILED, STARTED
from streamapp.tracing.trace import STATUSES as TRACE_STATUSES

JSON = "application/json"

_ERROR = {"$ref": "#/components/schemas/Error"}
#: (status, description) pairs each route may answer with the contract's error body.
_ERRORS = {
    400: "bad query parameters",
    404: "unknown key or route",
    405: "method not allowed on this route",
    409: "the command conflicts with the stream's version",
    413: "request body over the limit (STREAMAPP_WEB_MAX_BODY_BYTES)",
    422: "invalid input",
    503: "this worker is not ready (recovery or rebalance) or a peer did not answer",
    504: "no reply within the command timeout; retry with the same commandId",
}

#: A key in a path: any non-empty text without '/' (the record key is its UTF-8 bytes).
_KEY = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): {
            "description": _ERRORS[status],
            "content": {JSON: {"schema": _ERROR}},
        }
        for status in statuses
    }


def _ok(schema: dict[str, Any], description: str = "OK", status: int = 200) -> dict[str, Any]:
    return {str(status): {"description": description, "content": {JSON: {"schema": schema}}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": _KEY,
    }


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _get(
    summary: str,
    ok: dict[str, Any],
    *errors: int,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": summary, "responses": {**ok, **_errors(*errors)}}
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


SAGA_STATES = (STARTED, EXECUTING, COMPENSATING, COMPLETED, COMPENSATED, FAILED)
_OBJECT = {"type": "object"}
_STRING = {"type": "string"}
#: A non-negative decimal string (money is never a float), as the order aggregate checks.
_MONEY = {"type": "string", "pattern": f"^{MONEY.pattern}$"}
#: Any text with a non-blank character.
_TEXT = {"type": "string", "pattern": r"\S"}
#: An id that becomes part of table keys: no '/', no control characters, bounded.
_ID = {"type": ["string", "null"], "maxLength": MAX_ID_CHARS, "pattern": "^[^/\\x00-\\x1f]*$"}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {"type": _STRING, "message": _STRING},
            }
        },
    },
    "Health": {
        "type": "object",
        "required": ["status", "app"],
        "properties": {"status": {"const": "ok"}, "app": _STRING},
    },
    "Ready": {
        "type": "object",
        "required": ["ready"],
        "properties": {
            "ready": {"type": "boolean"},
            "waitingFor": {"type": "array", "items": _STRING},
        },
    },
    "Item": {
        "type": "object",
        "required": ["sku", "quantity", "unitPrice"],
        "properties": {
            "sku": _TEXT,
            "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
            "unitPrice": _MONEY,
        },
    },
    "CreateOrder": {
        "type": "object",
        "description": "A CreateOrder command's data, plus optional orderId and commandId "
        "(empty or absent: generated; the orderId is derived from the commandId).",
        "required": ["customerId", "items", "shippingAddress"],
        "properties": {
            "orderId": _ID,
            "commandId": _ID,
            "customerId": _TEXT,
            "items": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_ITEMS,
                "items": _ref("Item"),
            },
            "paymentMethod": {"type": ["string", "null"]},
            "shippingAddress": {
                "type": "object",
                "required": ["country"],
                "properties": {"country": _TEXT},
            },
        },
    },
    "Reply": {
        "type": "object",
        "required": ["commandId", "orderId", "status"],
        "properties": {
            "commandId": _STRING,
            "orderId": _STRING,
            "aggregateId": _STRING,
            "status": {"enum": ["accepted", "rejected", "duplicate"]},
            "version": {"type": ["integer", "null"]},
            "eventIds": {"type": "array", "items": _STRING},
            "error": {"type": ["object", "null"]},
        },
    },
    "Order": {
        "type": "object",
        "required": ["orderId", "status", "version"],
        "properties": {
            "orderId": _STRING,
            "status": _STRING,
            "version": {"type": "integer", "minimum": 1},
            "customerId": _STRING,
            "items": {"type": "array"},
            "totalAmount": {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$"},
            "createdAt": _STRING,
            "updatedAt": _STRING,
        },
    },
    "Event": {
        "type": "object",
        "required": ["eventId", "eventType", "aggregateId", "version", "data"],
        "properties": {
            "eventId": _STRING,
            "eventType": _STRING,
            "aggregateId": _STRING,
            "version": {"type": "integer"},
            "data": _OBJECT,
        },
    },
    "Saga": {
        "type": "object",
        "required": ["sagaId", "sagaType", "state", "steps"],
        "properties": {
            "sagaId": _STRING,
            "sagaType": _STRING,
            "state": _ref("SagaState"),
            "currentStep": {"type": ["string", "null"]},
            "steps": {"type": "array", "items": _OBJECT},
            "data": _OBJECT,
        },
    },
    "SagaState": {"enum": list(SAGA_STATES)},
    "SagaSummary": {
        "type": "object",
        "required": ["sagaId", "state", "updatedAt"],
        "properties": {
            "sagaId": _STRING,
            "state": _ref("SagaState"),
            "currentStep": {"type": ["string", "null"]},
            "updatedAt": _STRING,
        },
    },
    "TraceStatus": {"enum": list(TRACE_STATUSES)},
    "Trace": {
        "type": "object",
        "required": [
            "correlationId",
            "status",
            "startedAt",
            "endedAt",
            "durationMs",
            "services",
            "hops",
            "events",
            "nodes",
            "edges",
        ],
        "properties": {
            "correlationId": _STRING,
            "status": {"$ref": "#/components/schemas/TraceStatus"},
            "startedAt": _STRING,
            "endedAt": _STRING,
            "durationMs": {"type": "integer", "minimum": 0},
            "initiatingEvent": _STRING,
            "aggregateIds": {"type": "array", "items": _STRING},
            "services": {"type": "array", "items": _STRING},
            "hops": {"type": "integer", "minimum": 0},
            "droppedEvents": {"type": "integer", "minimum": 0},
            "events": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["eventId", "eventType", "service", "from", "topic", "atMs"],
                },
            },
            "nodes": {
                "type": "array",
                "items": {"type": "object", "required": ["id", "label"]},
            },
            "edges": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["from", "to", "eventId", "eventType", "atMs", "kind"],
                },
            },
        },
    },
    "TraceSummary": {
        "type": "object",
        "required": ["correlationId", "status", "startedAt", "durationMs", "services"],
        "properties": {
            "correlationId": _STRING,
            "status": {"$ref": "#/components/schemas/TraceStatus"},
            "startedAt": _STRING,
            "durationMs": {"type": "integer", "minimum": 0},
            "services": {"type": "array", "items": _STRING},
            "initiatingEvent": _STRING,
            "events": {"type": "integer", "minimum": 1},
        },
    },
    "StockLevel": {
        "type": "object",
        "required": ["sku", "available", "reserved", "committed"],
        "properties": {
            "sku": _STRING,
            "available": {"type": "integer"},
            "reserved": {"type": "integer"},
            "committed": {"type": "integer"},
        },
    },
    "Account": {
        "type": "object",
        "required": ["customerId", "creditLimit", "balance"],
        "properties": {"customerId": _STRING, "creditLimit": _MONEY, "balance": _MONEY},
    },
    "Shipment": {"type": "object", "required": ["orderId"], "properties": {"orderId": _STRING}},
    "Probe": {"type": "object", "required": ["key"], "properties": {"key": _STRING}},
}


def _common() -> dict[str, Any]:
    return {
        "/health": _get("Liveness: 200 while the process runs", _ok(_ref("Health")), 405),
        "/ready": _get(
            "Readiness: 200 once recovery is done and partitions are assigned",
            {
                **_ok(_ref("Ready"), "ready"),
                "503": {
                    "description": "not ready yet",
                    "content": {JSON: {"schema": _ref("Ready")}},
                },
            },
            405,
        ),
        "/metrics": _get(
            "Prometheus text exposition",
            {"200": {"description": "metrics", "content": {"text/plain": {"schema": _STRING}}}},
            405,
        ),
        "/openapi.json": _get("This document", _ok(_OBJECT, "OpenAPI 3.1 document"), 405),
        "/": _get(
            "faust's index page (a status object)",
            _ok({"type": "object", "properties": {"status": _STRING}}),
            405,
        ),
    }


def _orders() -> dict[str, Any]:
    order_id = _path_param("orderId", "the order id (= the saga id)")
    version = {"type": "integer", "minimum": 0}
    states = "|".join((*SAGA_STATES, "IN_FLIGHT"))
    statuses = "|".join(TRACE_STATUSES)
    sagas_query = [
        _query(
            "state",
            {"type": "string", "pattern": f"^(({states})(,({states}))*)?$"},
            "comma-separated saga states (IN_FLIGHT: the three not ended); empty: all",
        ),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 10000}, "default 100"),
        _query("local", {"type": "string"}, "1: only this worker's partitions (peers use it)"),
    ]
    return {
        "/orders": {
            "post": {
                "summary": "Create an order; waits (bounded) for the command's reply",
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": _ref("CreateOrder")}},
                },
                "responses": {
                    **_ok(_ref("Reply"), "accepted", 201),
                    **_ok(_ref("Reply"), "a duplicate of an accepted command"),
                    **_errors(405, 409, 413, 422, 503, 504),
                },
            }
        },
        "/orders/{orderId}": _get(
            "The order's current state", _ok(_ref("Order")), 404, 405, 503, parameters=[order_id]
        ),
        "/orders/{orderId}/events": _get(
            "The order's events between two versions (inclusive)",
            _ok(
                {
                    "type": "object",
                    "required": ["events"],
                    "properties": {"events": {"type": "array", "items": _ref("Event")}},
                }
            ),
            404,
            405,
            422,
            503,
            parameters=[
                order_id,
                _query("fromVersion", version, "first version (default 1)"),
                _query("toVersion", version, "last version (default: the latest)"),
            ],
        ),
        "/orders/{orderId}/snapshots": _get(
            "Versions with a snapshot",
            _ok({"type": "object", "required": ["orderId", "version", "snapshots"]}),
            404,
            405,
            503,
            parameters=[order_id],
        ),
        "/sagas/{sagaId}": _get(
            "One saga: state, steps, its events",
            _ok(_ref("Saga")),
            404,
            405,
            503,
            parameters=[_path_param("sagaId", "the saga id (= the order id)")],
        ),
        "/sagas": _get(
            "Sagas of every partition, newest first",
            _ok(
                {
                    "type": "object",
                    "required": ["sagas"],
                    "properties": {"sagas": {"type": "array", "items": _ref("SagaSummary")}},
                }
            ),
            400,
            405,
            503,
            parameters=sagas_query,
        ),
        "/traces/{correlationId}": _get(
            "One conversation's trace: its events in causal order, services, hops",
            _ok(_ref("Trace")),
            404,
            405,
            503,
            parameters=[
                _path_param("correlationId", "the correlation id (default: the commandId)"),
                _query("local", {"type": "string"}, "1: only this worker's table (peers use it)"),
            ],
        ),
        "/traces": _get(
            "The newest traces of every partition",
            _ok(
                {
                    "type": "object",
                    "required": ["traces"],
                    "properties": {"traces": {"type": "array", "items": _ref("TraceSummary")}},
                }
            ),
            400,
            405,
            503,
            parameters=[
                _query(
                    "status",
                    {"type": "string", "pattern": f"^(({statuses})(,({statuses}))*)?$"},
                    "comma-separated trace statuses; empty: all",
                ),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "default 50"),
                _query("local", {"type": "string"}, "1: only this worker's partitions"),
            ],
        ),
        "/probes/{key}": _get(
            "The last probe seen for a key (streamapp probe)",
            _ok(_ref("Probe")),
            404,
            405,
            503,
            parameters=[_path_param("key", "the probe key")],
        ),
    }


def _html(description: str) -> dict[str, Any]:
    return {"200": {"description": description, "content": {"text/html": {"schema": _STRING}}}}


def _dashboard() -> dict[str, Any]:
    """The orders service's HTML pages and the dashboard's data (tracing/, dashboard/)."""
    count = {"type": "integer", "minimum": 0}
    per_topic = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["topic", "count", "by"],
            "properties": {"topic": _STRING, "count": count, "by": _OBJECT},
        },
    }
    rate = {"type": ["number", "null"], "minimum": 0}
    return {
        "/": _get(
            "The dashboard (HTML, no external asset; polls /dashboard/data)",
            _html("the dashboard page"),
            405,
        ),
        "/dashboard/data": _get(
            "What the dashboard shows: every worker's readiness and metrics, recent traces "
            "(a worker that does not answer is shown as down)",
            _ok(
                {
                    "type": "object",
                    "required": [
                        "generatedAt",
                        "workers",
                        "throughput",
                        "sagas",
                        "retries",
                        "deadLetters",
                        "lag",
                        "traces",
                    ],
                    "properties": {
                        "generatedAt": _STRING,
                        "workers": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["url", "state"],
                                "properties": {
                                    "url": _STRING,
                                    "service": {"type": ["string", "null"]},
                                    "state": {"enum": ["ready", "waiting", "down"]},
                                    "waitingFor": {"type": "array", "items": _STRING},
                                    "error": {"type": ["string", "null"]},
                                    "recordsPerSecond": rate,
                                },
                            },
                        },
                        "throughput": {
                            "type": "object",
                            "required": ["total", "agents"],
                            "properties": {"total": rate, "agents": {"type": "array"}},
                        },
                        "sagas": {
                            "type": "object",
                            "required": ["inFlight", "ended"],
                            "properties": {
                                "inFlight": {"type": "array"},
                                "ended": {"type": "array"},
                            },
                        },
                        "retries": per_topic,
                        "deadLetters": per_topic,
                        "lag": {"type": "array"},
                        "traces": {"type": "array"},
                        "tracesError": {"type": ["string", "null"]},
                    },
                }
            ),
            405,
        ),
        "/traces/{correlationId}/view": _get(
            "The trace as a page: a sequence diagram (SVG) and its events",
            _html("the trace page"),
            404,
            405,
            503,
            parameters=[_path_param("correlationId", "the correlation id")],
        ),
    }


def _local_partitions() -> dict[str, Any]:
    """The ``local`` parameter of a gathered participant listing."""
    return _query("local", {"type": "string"}, "1: only this worker's partitions (peers use it)")


def _inventory() -> dict[str, Any]:
    return {
        "/inventory": _get(
            "Every sku's stock level (gathered from every inventory worker)",
            _ok(
                {
                    "type": "object",
                    "required": ["items"],
                    "properties": {"items": {"type": "array", "items": _ref("StockLevel")}},
                }
            ),
            405,
            503,
            parameters=[_local_partitions()],
        ),
        "/inventory/{sku}": _get(
            "One sku's stock level",
            _ok(_ref("StockLevel")),
            404,
            405,
            503,
            parameters=[_path_param("sku", "the sku")],
        ),
    }


def _payments() -> dict[str, Any]:
    return {
        "/payments/accounts": _get(
            "Every customer account (gathered from every payments worker)",
            _ok(
                {
                    "type": "object",
                    "required": ["accounts"],
                    "properties": {"accounts": {"type": "array", "items": _ref("Account")}},
                }
            ),
            405,
            503,
            parameters=[_local_partitions()],
        ),
        "/payments/accounts/{customerId}": _get(
            "One customer's credit limit and balance",
            _ok(_ref("Account")),
            404,
            405,
            503,
            parameters=[_path_param("customerId", "the customer id")],
        ),
    }


def _shipping() -> dict[str, Any]:
    return {
        "/shipping/countries": _get(
            "Where shipments can be scheduled",
            _ok(
                {
                    "type": "object",
                    "required": ["countries"],
                    "properties": {"countries": {"type": "array", "items": _STRING}},
                }
            ),
            405,
        ),
        "/shipping/shipments/{orderId}": _get(
            "The shipment of an order",
            _ok(_ref("Shipment")),
            404,
            405,
            503,
            parameters=[_path_param("orderId", "the order id")],
        ),
    }


REGISTRY = "application/vnd.schemaregistry.v1+json"
#: Confluent's error body on the registry routes (the client libraries parse it).
_CONFLUENT_ERROR = {
    "type": "object",
    "required": ["error_code", "message"],
    "properties": {"error_code": {"type": "integer"}, "message": {"type": "string"}},
}


def _registry_answer(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    content = {REGISTRY: {"schema": schema}}
    return {"200": {"description": description, "content": content}}


def _registry_errors(*statuses: int) -> dict[str, Any]:
    texts = {
        404: "40401 subject, 40402 version or 40403 schema not found; 40408 no subject level",
        405: "method not allowed on this route",
        409: "incompatible with the subject's level",
        413: "request body over the limit",
        422: "42201 invalid schema, 42202 invalid version, 42203 invalid level or body",
        503: "50302 the registry's log is not read yet (the worker is starting)",
    }
    out: dict[str, Any] = {}
    for status in statuses:
        content: dict[str, Any] = {REGISTRY: {"schema": _CONFLUENT_ERROR}}
        if status in (405, 413):  # answered by the middleware, in the contract's shape
            content = {JSON: {"schema": _ERROR}}
        out[str(status)] = {"description": texts[status], "content": content}
    return out


def _registry_op(
    summary: str,
    answer: dict[str, Any],
    *errors: int,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {**_registry_answer(answer), **_registry_errors(405, *errors)},
    }
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        media = {"schema": body}
        operation["requestBody"] = {"required": True, "content": {REGISTRY: media, JSON: media}}
    return operation


def _registry() -> dict[str, Any]:
    subject = {
        "name": "subject",
        "in": "path",
        "required": True,
        "description": "the subject: a command or event type",
        "schema": {"type": "string", "pattern": "^[^/\\x00-\\x1f]{1,200}$"},
    }
    version = {
        "name": "version",
        "in": "path",
        "required": True,
        "description": "a version number (1 .. 2^31-1) or 'latest'",
        "schema": {"type": "string", "pattern": "^([1-9][0-9]{0,8}|latest)$"},
    }
    schema_body = {
        "type": "object",
        "required": ["schema"],
        "properties": {
            "schema": {"type": "string", "description": "the JSON Schema, as JSON text"},
            "schemaType": {"const": "JSON"},
            "references": {"type": "array", "maxItems": 0},
        },
    }
    level_body = {
        "type": "object",
        "properties": {"compatibility": {"enum": list(LEVELS)}},
        "required": ["compatibility"],
    }
    registered = {
        "type": "object",
        "required": ["subject", "version", "id", "schema"],
        "properties": {
            "subject": _STRING,
            "version": {"type": "integer"},
            "id": {"type": "integer"},
            "schemaType": {"const": "JSON"},
            "schema": _STRING,
            "deprecated": {"const": True, "description": "new writes refuse this version"},
        },
    }
    level = {"type": "object", "properties": {"compatibilityLevel": {"enum": list(LEVELS)}}}
    set_level = {"type": "object", "properties": {"compatibility": {"enum": list(LEVELS)}}}
    return {
        "/subjects": {
            "get": _registry_op("Subjects with a live version", {"type": "array", "items": _STRING})
        },
        "/subjects/{subject}": {
            "post": _registry_op(
                "Look a schema up: the subject's version holding it",
                registered,
                404,
                413,
                422,
                parameters=[subject],
                body=schema_body,
            )
        },
        "/subjects/{subject}/versions": {
            "get": _registry_op(
                "The subject's live versions",
                {"type": "array", "items": {"type": "integer"}},
                404,
                422,
                parameters=[subject],
            ),
            "post": _registry_op(
                "Register a schema (the same schema again: its id)",
                {
                    "type": "object",
                    "required": ["id", "version"],
                    "properties": {"id": {"type": "integer"}, "version": {"type": "integer"}},
                },
                409,
                413,
                422,
                503,
                parameters=[subject],
                body=schema_body,
            ),
        },
        "/subjects/{subject}/versions/{version}": {
            "get": _registry_op("One version", registered, 404, 422, parameters=[subject, version]),
            "delete": _registry_op(
                "Soft-delete a version (its id still resolves)",
                {"type": "integer"},
                404,
                422,
                503,
                parameters=[subject, version],
            ),
        },
        "/subjects/{subject}/versions/{version}/deprecate": {
            "post": _registry_op(
                "Deprecate a version: new writes with it are refused, stored events stay "
                "readable (an extension of Confluent's API)",
                {
                    "type": "object",
                    "required": ["subject", "version", "deprecated"],
                    "properties": {
                        "subject": _STRING,
                        "version": {"type": "integer"},
                        "deprecated": {"const": True},
                    },
                },
                404,
                422,
                503,
                parameters=[subject, version],
            ),
        },
        "/schemas/ids/{id}": {
            "get": _registry_op(
                "A schema by id",
                {"type": "object", "required": ["schema"], "properties": {"schema": _STRING}},
                404,
                parameters=[
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[0-9]+$"},
                    }
                ],
            )
        },
        "/compatibility/subjects/{subject}/versions/{version}": {
            "post": _registry_op(
                "Would this schema be accepted? (verbose=true: every reason)",
                {
                    "type": "object",
                    "required": ["is_compatible"],
                    "properties": {
                        "is_compatible": {"type": "boolean"},
                        "messages": {"type": "array", "items": _STRING},
                    },
                },
                404,
                413,
                422,
                parameters=[
                    subject,
                    version,
                    _query("verbose", {"type": "string"}, "true: list every reason"),
                ],
                body=schema_body,
            )
        },
        "/config": {
            "get": _registry_op("The global compatibility level", level),
            "put": _registry_op("Set the global level", set_level, 413, 422, 503, body=level_body),
        },
        "/config/{subject}": {
            "get": _registry_op(
                "The subject's level (defaultToGlobal=true: the global one if it has none)",
                level,
                404,
                422,
                parameters=[
                    subject,
                    _query("defaultToGlobal", {"type": "string"}, "true: fall back"),
                ],
            ),
            "put": _registry_op(
                "Set the subject's level",
                set_level,
                413,
                422,
                503,
                parameters=[subject],
                body=level_body,
            ),
            "delete": _registry_op(
                "Drop the subject's level (back to the global one)",
                level,
                422,
                503,
                parameters=[subject],
            ),
        },
    }


SERVICE_PATHS = {
    "orders": lambda: {**_orders(), **_registry(), **_dashboard()},
    "inventory": _inventory,
    "payments": _payments,
    "shipping": _shipping,
}


def document(service: str, version: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of one service's worker."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"streamapp {service} service",
            "version": version,
            "description": 'Errors are JSON {"error": {"type", "message"}} (the contract, §2).',
        },
        "paths": {**_common(), **SERVICE_PATHS[service]()},
        "components": {"schemas": SCHEMAS},
    }
