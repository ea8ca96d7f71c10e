"""Shipping rules (pure): ship only to configured countries."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any


class ShipmentRejected(Exception):
    """The order cannot be shipped (a country outside the configured list)."""


def check_destination(address: Mapping[str, Any] | None, countries: Collection[str]) -> str:
    """The destination country, if shipments can be scheduled there."""
    country = str((address or {}).get("country", "")).upper()
    if country not in {c.upper() for c in countries}:
        raise ShipmentRejected(f"no shipments to {country or 'an unknown country'}")
    return country
