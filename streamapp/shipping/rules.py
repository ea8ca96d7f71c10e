"""Shipping rules (pure): ship only to configured countries; cancel a scheduled shipment."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from streamapp.errors import UnknownCommand
from streamapp.messages import Command, derived_id
from streamapp.participant.handler import Reaction, Tables

SCHEDULED, CANCELLED = "SCHEDULED", "CANCELLED"


class ShipmentRejected(Exception):
    """The order cannot be shipped (a country outside the configured list)."""


def check_destination(address: Mapping[str, Any] | None, countries: Collection[str]) -> str:
    """The destination country, if shipments can be scheduled there."""
    country = str((address or {}).get("country", "")).upper()
    if country not in {c.upper() for c in countries}:
        raise ShipmentRejected(f"no shipments to {country or 'an unknown country'}")
    return country


SHIPMENT = b"shipment/"


def shipment_key(saga_id: str) -> bytes:
    return SHIPMENT + saga_id.encode()


class ShippingRules:
    """ScheduleShipment (within the configured countries), CancelShipment."""

    service = "shipping"
    aggregate_type = "Shipment"

    def __init__(self, countries: Collection[str]) -> None:
        self.countries = tuple(countries)

    def decide(self, tables: Tables, command: Command) -> Reaction:
        kind, saga = command.command_type, command.aggregate_id
        key = shipment_key(saga)
        held = tables["records"].get(key)
        if kind == "ScheduleShipment":
            if held is not None:  # one shipment per saga
                return Reaction("ShipmentScheduled", held)
            address = command.data.get("shippingAddress")
            try:
                country = check_destination(
                    address if isinstance(address, dict) else None, self.countries
                )
            except ShipmentRejected as exc:
                return Reaction("ShipmentFailed", {"reason": str(exc)})
            shipment = {
                "shipmentId": derived_id(saga, "shipment"),
                "country": country,
                "status": SCHEDULED,
            }
            return Reaction("ShipmentScheduled", shipment, (("records", key, shipment),))
        if kind == "CancelShipment":
            if held is None or held["status"] != SCHEDULED:
                return Reaction("ShipmentCancelled", {"cancelled": False})
            cancelled = {**held, "status": CANCELLED}
            return Reaction(
                "ShipmentCancelled",
                {**cancelled, "cancelled": True},
                (("records", key, cancelled),),
            )
        raise UnknownCommand(f"unknown commandType {kind!r} for shipping")

    def touched(self, tables: Tables, command: Command) -> list[tuple[str, bytes]]:
        return [("records", shipment_key(command.aggregate_id))]

    def stream(self, command: Command) -> str:
        return command.aggregate_id  # one command of each kind per saga

    def saga_records(self, saga_id: str) -> tuple[bytes, ...]:
        return (shipment_key(saga_id),)

    def closed(self, key: bytes, value: Any) -> bool:
        """A cancelled shipment is final; a SCHEDULED one may still be cancelled."""
        return key.startswith(SHIPMENT) and value.get("status") == CANCELLED
