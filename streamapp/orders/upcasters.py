"""The order events' upcaster chain (pure): stored old shapes -> current shapes.

Empty while no order event has changed shape incompatibly. A breaking change registers
its step here, next to the new schema in ``config/schemas/`` (docs/schemas.md, "A
breaking change, worked through"), e.g.::

    @ORDER_UPCASTERS.step("OrderNoteAdded", 1)
    def _note_renamed(doc):  # v1 {"note"} -> v2 {"text"}
        data = dict(doc["data"])
        data["text"] = data.pop("note")
        return {**doc, "data": data}

Repository.load (replays, command handling) and GET /orders/{id}/events read through it.
"""

from __future__ import annotations

from streamapp.eventstore.upcasting import Upcasters

ORDER_UPCASTERS = Upcasters()
