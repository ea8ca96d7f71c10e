"""Upcasters: stored old-shape events turned into the current shape on read (pure).

Events are facts and are never rewritten in the store. When an event's shape changes
incompatibly (a field renamed, a field split), the new shape gets a new schema version
(under FORWARD or NONE) or a new event type (``OrderCreated`` -> ``OrderCreated_v2``),
and an *upcaster* registered in code turns an event stored with the old version into
the next version's shape. The chain is applied step by step, (eventType, schemaVersion)
-> next, until no step matches: aggregates and sagas only ever see current shapes.

An upcaster takes the stored envelope (``Event.to_dict()``) and returns the next
envelope. When it leaves ``eventType`` and ``schemaVersion`` unchanged, the chain sets
``schemaVersion`` to the next version; to move to a new event type it sets
``eventType`` (and ``schemaVersion``, usually 1). docs/schemas.md has a worked example.

The store keeps what was written: redeliveries republish the stored records unchanged;
only loads (Repository.load) and the events view read through the chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from streamapp.messages import Event

#: A stored envelope (as ``Event.to_dict``) -> the next version's envelope.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

#: A chain longer than this is a loop (an upcaster that does not move forward).
MAX_STEPS = 100


class UpcastError(ValueError):
    """A chain that loops: an upcaster leads back to a shape already seen."""


class Upcasters:
    """Upcasters keyed by (eventType, from schemaVersion)."""

    def __init__(self, steps: Mapping[tuple[str, int], Upcaster] | None = None) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = dict(steps or {})

    def register(self, event_type: str, from_version: int, upcaster: Upcaster) -> Upcaster:
        key = (event_type, from_version)
        if key in self._steps:
            raise ValueError(f"an upcaster for {event_type} v{from_version} is registered")
        self._steps[key] = upcaster
        return upcaster

    def step(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator form of `register`."""
        return lambda upcaster: self.register(event_type, from_version, upcaster)

    def __bool__(self) -> bool:
        return bool(self._steps)

    def __len__(self) -> int:
        return len(self._steps)

    def upcast_dict(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        """The current shape of a stored envelope (a copy; the input is not changed)."""
        current = dict(doc)
        seen: set[tuple[str, int]] = set()
        while True:
            key = (str(current.get("eventType")), int(current.get("schemaVersion", 1)))
            upcaster = self._steps.get(key)
            if upcaster is None:
                return current
            if key in seen or len(seen) >= MAX_STEPS:
                raise UpcastError(f"the upcaster chain loops at {key[0]} v{key[1]}")
            seen.add(key)
            nxt = upcaster({**current, "data": dict(current.get("data") or {})})
            if (nxt.get("eventType"), int(nxt.get("schemaVersion", 1))) == key:
                nxt = {**nxt, "schemaVersion": key[1] + 1}
            current = nxt

    def upcast(self, event: Event) -> Event:
        """The event in its current shape (itself when no upcaster applies)."""
        if (event.event_type, event.schema_version) not in self._steps:
            return event
        return Event.from_dict(self.upcast_dict(event.to_dict()))

    def upcast_all(self, events: Iterable[Event]) -> list[Event]:
        return [self.upcast(e) for e in events]


#: No upcasters: events are read as stored.
NONE = Upcasters()
