"""Inventory rules (pure): reserve all lines or none, release, commit.

Conservation: available + reserved + committed of a sku changes only by restocking.
A reservation is per saga, so reserving again for the same saga changes nothing and
releasing a saga that holds nothing releases nothing (late or repeated commands).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

RESERVED, RELEASED, COMMITTED = "RESERVED", "RELEASED", "COMMITTED"


class ReservationFailed(Exception):
    """Not enough stock (or an unknown sku) for at least one line: nothing reserved."""

    def __init__(self, shortages: Mapping[str, tuple[int, int]]) -> None:
        self.shortages = dict(shortages)  # sku -> (wanted, available)
        super().__init__(
            "; ".join(f"{sku}: wanted {w}, available {a}" for sku, (w, a) in shortages.items())
        )


@dataclass(frozen=True)
class StockLevel:
    sku: str
    available: int
    reserved: int = 0
    committed: int = 0

    @property
    def total(self) -> int:
        return self.available + self.reserved + self.committed

    def to_view(self) -> dict[str, Any]:
        return {
            "sku": self.sku,
            "available": self.available,
            "reserved": self.reserved,
            "committed": self.committed,
        }


@dataclass(frozen=True)
class Reservation:
    saga_id: str
    lines: tuple[tuple[str, int], ...]  # (sku, quantity), merged per sku
    status: str = RESERVED


def wanted(items: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, int], ...]:
    """Order lines merged per sku (an order may list a sku twice)."""
    counts: Counter[str] = Counter()
    for item in items:
        counts[str(item["sku"])] += int(item["quantity"])
    return tuple(sorted(counts.items()))


def reserve(
    levels: Mapping[str, StockLevel],
    existing: Reservation | None,
    saga_id: str,
    items: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, StockLevel], Reservation]:
    """New stock levels (only the changed skus) and the reservation; all or nothing."""
    if existing is not None:  # the same saga asked again: the first answer stands
        return {}, existing
    lines = wanted(items)
    shortages = {
        sku: (quantity, levels[sku].available if sku in levels else 0)
        for sku, quantity in lines
        if sku not in levels or levels[sku].available < quantity
    }
    if shortages:
        raise ReservationFailed(shortages)
    changed = {
        sku: replace(
            levels[sku],
            available=levels[sku].available - quantity,
            reserved=levels[sku].reserved + quantity,
        )
        for sku, quantity in lines
    }
    return changed, Reservation(saga_id, lines)


def _settle(
    levels: Mapping[str, StockLevel], reservation: Reservation | None, to: str
) -> tuple[dict[str, StockLevel], Reservation | None]:
    """Move a RESERVED reservation's units out of `reserved`, into available (RELEASED)
    or committed (COMMITTED); a reservation in any other state changes nothing."""
    if reservation is None or reservation.status != RESERVED:
        return {}, reservation
    changed = {}
    for sku, quantity in reservation.lines:
        level = replace(levels[sku], reserved=levels[sku].reserved - quantity)
        if to == RELEASED:
            level = replace(level, available=level.available + quantity)
        else:
            level = replace(level, committed=level.committed + quantity)
        changed[sku] = level
    return changed, replace(reservation, status=to)


def release(
    levels: Mapping[str, StockLevel], reservation: Reservation | None
) -> tuple[dict[str, StockLevel], Reservation | None]:
    """Give a RESERVED reservation's units back; anything else releases nothing."""
    return _settle(levels, reservation, RELEASED)


def commit(
    levels: Mapping[str, StockLevel], reservation: Reservation | None
) -> tuple[dict[str, StockLevel], Reservation | None]:
    """A completed order takes its reserved units for good."""
    return _settle(levels, reservation, COMMITTED)
