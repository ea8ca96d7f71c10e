"""Validations/s of three JSON Schema validators on an OrderCreated envelope (issue 12).

``jsonschema`` (Draft202012Validator), ``fastjsonschema`` and ``jsonschema-rs``, each
compiled once from ``config/schemas/OrderCreated.json``, on a valid envelope and on an
invalid one (several errors). Per validator and instance: the median of >= 3 timed runs
with min and max, and the ratio to ``jsonschema``. Two modes:

* *verdict*: valid or not (``is_valid``; fastjsonschema: the compiled function, which
  raises on the first error);
* *all errors*: every error with its path (``iter_errors``); fastjsonschema stops at the
  first error, so it has no such mode.

    .venv/bin/python -m bench.validators            # 5 runs of ~0.3 s per cell
    .venv/bin/python -m bench.validators --quick    # 3 runs of ~0.05 s per cell

jsonschema-rs is the package's validator; jsonschema and fastjsonschema come with the
dev extras.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
import jsonschema_rs

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_FILE = ROOT / "config" / "schemas" / "OrderCreated.json"

VALID: dict[str, Any] = {
    "eventId": "5b0e7c1e-7f7a-5d43-9a57-3c0f0e4b8a11",
    "eventType": "OrderCreated",
    "aggregateId": "order-42",
    "aggregateType": "Order",
    "version": 1,
    "schemaVersion": 1,
    "timestamp": "2026-11-26T12:00:00.000Z",
    "correlationId": "c0f3a1d2-8b1e-4c7a-9d7e-2f1b3c4d5e6f",
    "causationId": "c0f3a1d2-8b1e-4c7a-9d7e-2f1b3c4d5e6f",
    "source": "orders",
    "data": {
        "customerId": "cust-7",
        "items": [
            {"sku": "SKU-1", "quantity": 2, "unitPrice": "9.99"},
            {"sku": "SKU-2", "quantity": 1, "unitPrice": "24.50"},
            {"sku": "SKU-3", "quantity": 5, "unitPrice": "0.99"},
        ],
        "totalAmount": "49.43",
        "paymentMethod": "card",
        "shippingAddress": {"country": "NL", "city": "Delft", "line1": "Mekelweg 4"},
    },
}


def invalid_envelope() -> dict[str, Any]:
    """Four errors: a float price, a missing customerId, version 0, a bad timestamp."""
    doc = copy.deepcopy(VALID)
    doc["version"] = 0
    doc["timestamp"] = "26/11/2026 12:00"
    del doc["data"]["customerId"]
    doc["data"]["items"][1]["unitPrice"] = 24.5
    return doc


INVALID = invalid_envelope()


@dataclass(frozen=True)
class Candidate:
    name: str
    package: str
    verdict: Callable[[dict[str, Any]], bool]
    all_errors: Callable[[dict[str, Any]], list[str]] | None
    first_error: Callable[[dict[str, Any]], str]


def candidates(schema: dict[str, Any]) -> list[Candidate]:
    reference = jsonschema.Draft202012Validator(schema)  # compiled once
    fast = fastjsonschema.compile(schema)  # generated Python code, compiled once
    rust = jsonschema_rs.Draft202012Validator(schema)  # compiled once

    def fast_verdict(doc: dict[str, Any]) -> bool:
        try:
            fast(doc)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    def fast_first(doc: dict[str, Any]) -> str:
        try:
            fast(doc)
        except fastjsonschema.JsonSchemaValueException as exc:
            return str(exc.message)
        return ""

    def listed(errors: Any) -> list[str]:
        return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]

    return [
        Candidate(
            "jsonschema",
            "jsonschema",
            reference.is_valid,
            lambda doc: listed(reference.iter_errors(doc)),
            lambda doc: next(iter(listed(reference.iter_errors(doc))), ""),
        ),
        Candidate("fastjsonschema", "fastjsonschema", fast_verdict, None, fast_first),
        Candidate(
            "jsonschema-rs",
            "jsonschema-rs",
            rust.is_valid,
            lambda doc: [
                f"{'/'.join(map(str, e.instance_path))}: {e.message}" for e in rust.iter_errors(doc)
            ],
            lambda doc: next(
                (
                    f"{'/'.join(map(str, e.instance_path))}: {e.message}"
                    for e in rust.iter_errors(doc)
                ),
                "",
            ),
        ),
    ]


@dataclass(frozen=True)
class Rate:
    median: float
    low: float
    high: float


def measure(
    call: Callable[[dict[str, Any]], object], doc: dict[str, Any], runs: int, seconds: float
) -> Rate:
    """Validations/s: calibrate a loop length of about `seconds`, then time `runs` runs."""
    n, elapsed = 1, 0.0
    while elapsed < seconds / 4:
        n *= 2
        start = time.perf_counter()
        for _ in range(n):
            call(doc)
        elapsed = time.perf_counter() - start
    n = max(1, int(n * seconds / elapsed))
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(n):
            call(doc)
        rates.append(n / (time.perf_counter() - start))
    return Rate(statistics.median(rates), min(rates), max(rates))


def fmt(rate: Rate | None, base: Rate | None) -> tuple[str, str]:
    if rate is None:
        return "n/a", "n/a"
    cell = f"{rate.median:,.0f} ({rate.low:,.0f}-{rate.high:,.0f})"
    ratio = f"{rate.median / base.median:.1f}x" if base is not None else ""
    return cell, ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.validators", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 short runs per cell")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per cell (>= 3)")
    args = parser.parse_args(argv)
    runs = max(3, args.runs or (3 if args.quick else 5))
    seconds = 0.05 if args.quick else 0.3

    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    found = candidates(schema)
    for candidate in found:  # all three agree before anything is timed
        assert candidate.verdict(VALID), candidate.name
        assert not candidate.verdict(INVALID), candidate.name

    rows = []
    results: dict[str, dict[str, Rate | None]] = {}
    for candidate in found:
        results[candidate.name] = {
            "valid": measure(candidate.verdict, VALID, runs, seconds),
            "invalid": measure(candidate.verdict, INVALID, runs, seconds),
            "errors": measure(candidate.all_errors, INVALID, runs, seconds)
            if candidate.all_errors
            else None,
        }
    base = results["jsonschema"]
    for candidate in found:
        mine = results[candidate.name]
        cells = []
        for key in ("valid", "invalid", "errors"):
            cells += fmt(mine[key], base[key])
        rows.append(
            f"| {candidate.name} {version(candidate.package)} | " + " | ".join(cells) + " |"
        )

    print(
        f"Validations/s of an OrderCreated envelope ({SCHEMA_FILE.relative_to(ROOT)}), "
        f"validators compiled once; median (min-max) of {runs} runs of ~{seconds} s; "
        f"Python {platform.python_version()} on {platform.machine()}.\n"
    )
    print(
        "| validator | valid: verdict/s | ratio | invalid: verdict/s | ratio "
        "| invalid: all errors/s | ratio |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    print("\nErrors reported for the invalid envelope (4 errors):\n")
    for candidate in found:
        if candidate.all_errors is not None:
            listed = candidate.all_errors(INVALID)
            print(f"- {candidate.name}: {len(listed)} errors: " + "; ".join(listed))
        else:
            print(f"- {candidate.name}: first error only: {candidate.first_error(INVALID)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
