"""Event-store appends/s with schema validation on vs off, in one run (issue 12).

The order command handler over an in-memory table, as the orders agent drives it: each
order is a CreateOrder, two AddOrderNote and a ConfirmOrder. "on" validates every
command against its registered schema (as the agent does on consume) and every event
before append (as the handler does), with the repo's schemas compiled once by
jsonschema-rs; "off" does neither. In-process, so the ratio is the validation's whole
cost against the event store's own work; through a Faust worker (~450 µs of framework per
record, bench/relay) the ratio is closer still to 1.

    .venv/bin/python -m bench.validation_cost [--orders N] [--runs R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import orjson

from streamapp.eventstore.store import EventStore
from streamapp.messages import Command, new_id
from streamapp.orders.handler import OrderCommandHandler, SourceRecord, order_repository
from streamapp.registry.validation import Validators

ROOT = Path(__file__).resolve().parents[1]
ITEMS = [{"sku": "SKU-1", "quantity": 2, "unitPrice": "9.99"}]


def validators() -> Validators:
    found = Validators()
    for path in sorted((ROOT / "config" / "schemas").glob("*.json")):
        found.load(path.stem, 1, json.loads(path.read_text()))
    return found


def commands(orders: int) -> list[Command]:
    out = []
    for n in range(orders):
        order = f"order-{n}"
        data = {
            "customerId": "cust-7",
            "items": ITEMS,
            "paymentMethod": "card",
            "shippingAddress": {"country": "NL"},
        }
        out.append(Command(new_id(), "CreateOrder", order, data, expected_version=0))
        out += [Command(new_id(), "AddOrderNote", order, {"note": f"n{k}"}) for k in range(2)]
        out.append(Command(new_id(), "ConfirmOrder", order, {}))
    return out


def run(batch: list[Command], schemas: Validators | None) -> float:
    """Appends/s over the batch (one append per accepted command)."""
    handler = OrderCommandHandler(order_repository(EventStore({}), 100), None, schemas)
    raw = [c.to_json() for c in batch]
    start = time.perf_counter()
    for offset, (command, value) in enumerate(zip(batch, raw, strict=True)):
        if schemas is not None:  # the agent's check on consume
            problems = schemas.errors(command.command_type, orjson.loads(value))
            assert not problems, problems
        outcome = handler.handle(command, SourceRecord(0, offset, 1_795_000_000_000))
        assert outcome.reply.status == "accepted", outcome.reply
    return len(batch) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    batch, schemas = commands(args.orders), validators()
    figures: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(args.runs):  # interleaved, so drift hits both alike
        figures["off"].append(run(batch, None))
        figures["on"].append(run(batch, schemas))
    medians: dict[str, Any] = {k: statistics.median(v) for k, v in figures.items()}
    print(f"{len(batch)} commands ({args.orders} orders), {args.runs} runs each, interleaved")
    print("| validation | appends/s median (min-max) |")
    print("|---|---:|")
    for kind, values in figures.items():
        print(f"| {kind} | {medians[kind]:,.0f} ({min(values):,.0f}-{max(values):,.0f}) |")
    print(f"on/off = {medians['on'] / medians['off']:.2f}")


if __name__ == "__main__":
    main()
