from __future__ import annotations

import orjson
import pytest

from streamapp.errors import SchemaError
from streamapp.messages import MAX_COMMAND_BYTES, Command, Reply


def envelope(**changes: object) -> bytes:
    doc = {
        "commandId": "c1",
        "commandType": "CreateOrder",
        "aggregateId": "order-1",
        "data": {"customerId": "x"},
        **changes,
    }
    return orjson.dumps({k: v for k, v in doc.items() if v is not None})


def test_parse_defaults_correlation_to_the_command_id() -> None:
    command = Command.parse(envelope(expectedVersion=0))
    assert command.correlation_id == "c1" and command.expected_version == 0
    assert Command.parse(command.to_json()) == command


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "not JSON"),
        (b"[]", "JSON object"),
        (envelope(commandId=None), "commandId"),
        (envelope(aggregateId=""), "aggregateId"),
        (envelope(aggregateId="a/b"), "without '/'"),
        (envelope(commandId="x\ny"), "control"),
        (envelope(commandId="x" * 201), "at most 200"),
        (envelope(expectedVersion=-1), "expectedVersion"),
        (envelope(expectedVersion=True), "expectedVersion"),
        (envelope(data=[1]), "data must be"),
        (b" " * (MAX_COMMAND_BYTES + 1), "exceeds"),
        (None, "empty"),
    ],
)
def test_malformed_envelopes_are_schema_errors(raw: bytes | None, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        Command.parse(raw)


def test_reply_round_trip_and_duplicate() -> None:
    command = Command.parse(envelope())
    reply = Reply.accepted(command, 1, ("e1",))
    assert Reply.from_dict(orjson.loads(reply.to_json())) == reply
    duplicate = reply.as_duplicate()
    assert duplicate.status == "duplicate" and duplicate.event_ids == ("e1",)
