"""Inventory rules (pure): reserve all lines or none, release, commit.

Conservation: available + reserved + committed of a sku changes only by restocking.
A reservation is per saga and per set of skus its command names (the saga sends one
command per sku: the stock of a sku lives in that sku's partition), so reserving again
for the same saga and skus changes nothing and releasing what holds nothing releases
nothing (late or repeated commands). ReleaseInventory and CommitInventory name the skus
(the items) of the reservation they settle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from streamapp.errors import SchemaError, UnknownCommand
from streamapp.messages import Command
from streamapp.participant.handler import Reaction, Tables

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
    stream: str  # the saga and the skus reserved (reservation_stream)
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
    stream: str,
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
    return changed, Reservation(stream, lines)


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


# -- the service's rules over its tables (see participants.handler) ----------------------
def stock_key(sku: str) -> bytes:
    return sku.encode()


RESERVATION = b"reservation/"


def reservation_stream(saga_id: str, skus: Iterable[str]) -> str:
    """A saga's reservation of some skus: ``<saga>/<sku>[,<sku>...]`` (a saga id has no
    '/'), the stream its events are numbered in."""
    return f"{saga_id}/{','.join(sorted(set(skus)))}"


def reservation_key(stream: str) -> bytes:
    return RESERVATION + stream.encode()


def _level(doc: Mapping[str, Any]) -> StockLevel:
    return StockLevel(doc["sku"], doc["available"], doc["reserved"], doc["committed"])


def _reservation(doc: Mapping[str, Any] | None) -> Reservation | None:
    if doc is None:
        return None
    lines = tuple((str(sku), int(quantity)) for sku, quantity in doc["lines"])
    return Reservation(doc["stream"], lines, doc["status"])


def _reservation_doc(reservation: Reservation) -> dict[str, Any]:
    return {
        "stream": reservation.stream,
        "lines": [list(line) for line in reservation.lines],
        "status": reservation.status,
    }


def _lines_view(lines: Iterable[tuple[str, int]]) -> list[dict[str, Any]]:
    return [{"sku": sku, "quantity": quantity} for sku, quantity in lines]


def seed(levels: Mapping[str, StockLevel], stock: Mapping[str, int]) -> dict[str, StockLevel]:
    """New skus start at their seeded units; a seed above a sku's total is a restock of
    the difference. Stock is never taken away by seeding (units may be reserved)."""
    changed = {}
    for sku, units in stock.items():
        level = levels.get(sku)
        if level is None:
            changed[sku] = StockLevel(sku, units)
        elif units > level.total:
            changed[sku] = replace(level, available=level.available + units - level.total)
    return changed


class InventoryRules:
    """ReserveInventory, ReleaseInventory, CommitInventory; SeedInventory (internal)."""

    service = "inventory"
    aggregate_type = "Inventory"

    def _levels(self, tables: Tables, skus: Iterable[str]) -> dict[str, StockLevel]:
        entities = tables["entities"]
        found = {sku: entities.get(stock_key(sku)) for sku in skus}
        return {sku: _level(doc) for sku, doc in found.items() if doc is not None}

    def _skus(self, tables: Tables, command: Command) -> list[str]:
        if command.command_type == "SeedInventory":
            return list(command.data.get("stock", {}))
        if command.command_type == "ReserveInventory":
            return [sku for sku, _ in wanted(_items(command.data))]
        held = _reservation(tables["records"].get(reservation_key(self.stream(command))))
        return [sku for sku, _ in held.lines] if held else []

    def stream(self, command: Command) -> str:
        """The reservation a saga command is about: the saga and its items' skus (a
        seed, or a command without items: the aggregate; decide rejects the latter)."""
        try:
            items = _items(command.data)
        except SchemaError:
            return command.aggregate_id
        return reservation_stream(command.aggregate_id, (str(i["sku"]) for i in items))

    def decide(self, tables: Tables, command: Command) -> Reaction:
        kind = command.command_type
        levels = self._levels(tables, self._skus(tables, command))
        stream = self.stream(command)
        if kind == "SeedInventory":
            stock = command.data.get("stock")
            if not isinstance(stock, dict):
                raise SchemaError("SeedInventory needs data.stock {sku: units}")
            changed = seed(levels, {str(k): int(v) for k, v in stock.items()})
            writes = tuple(("entities", stock_key(s), lv.to_view()) for s, lv in changed.items())
            return Reaction(None, writes=writes)
        if kind not in ("ReserveInventory", "ReleaseInventory", "CommitInventory"):
            raise UnknownCommand(f"unknown commandType {kind!r} for inventory")
        items = _items(command.data)  # a saga command names its skus
        held = _reservation(tables["records"].get(reservation_key(stream)))
        if kind == "ReserveInventory":
            try:
                changed, reservation = reserve(levels, held, stream, items)
            except ReservationFailed as exc:
                shortages = {
                    sku: {"wanted": w, "available": a} for sku, (w, a) in exc.shortages.items()
                }
                return Reaction(
                    "InventoryReservationFailed", {"reason": str(exc), "shortages": shortages}
                )
            return Reaction(
                "InventoryReserved",
                {"lines": _lines_view(reservation.lines)},
                self._writes(changed, reservation),
            )
        settle = release if kind == "ReleaseInventory" else commit
        changed, after = settle(levels, held)
        moved = after.lines if changed and after is not None else ()
        event = "InventoryReleased" if kind == "ReleaseInventory" else "InventoryCommitted"
        return Reaction(event, {"lines": _lines_view(moved)}, self._writes(changed, after))

    @staticmethod
    def _writes(
        changed: Mapping[str, StockLevel], reservation: Reservation | None
    ) -> tuple[tuple[str, bytes, Any], ...]:
        writes = [("entities", stock_key(sku), level.to_view()) for sku, level in changed.items()]
        if reservation is not None:
            writes.append(
                ("records", reservation_key(reservation.stream), _reservation_doc(reservation))
            )
        return tuple(writes)

    def touched(self, tables: Tables, command: Command) -> list[tuple[str, bytes]]:
        keys = [("entities", stock_key(sku)) for sku in self._skus(tables, command)]
        return [*keys, ("records", reservation_key(self.stream(command)))]

    def saga_records(self, stream: str) -> tuple[bytes, ...]:
        return (reservation_key(stream),)

    def closed(self, key: bytes, value: Any) -> bool:
        """A released or committed reservation holds no units: nothing can change it."""
        return key.startswith(RESERVATION) and value.get("status") in (RELEASED, COMMITTED)


def _items(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = data.get("items")
    if not isinstance(items, list) or not all(
        isinstance(i, dict) and isinstance(i.get("sku"), str) and isinstance(i.get("quantity"), int)
        for i in items
    ):
        raise SchemaError("an inventory command needs data.items [{sku, quantity}]")
    return items
