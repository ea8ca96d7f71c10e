"""Seed data of the participant services (stock, credit limits, shipping countries).

Kept in ``config/seeds.toml`` (setting ``seeds_file``) so that deployments, tests and
``streamapp loadgen`` / ``verify`` agree on what the services started from.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from streamapp.settings import SettingsError


@dataclass(frozen=True)
class Seeds:
    stock: dict[str, int]  # sku -> units
    credit_limits: dict[str, Decimal]  # customerId -> limit
    countries: tuple[str, ...]  # upper-case ISO codes


def parse_seeds(doc: dict[str, Any], source: str = "seeds") -> Seeds:
    """Validate a seeds document; every problem names the entry."""
    stock: dict[str, int] = {}
    for sku, units in doc.get("inventory", {}).items():
        if isinstance(units, bool) or not isinstance(units, int) or units < 0:
            raise SettingsError(f"{source}: inventory.{sku} must be a whole number >= 0")
        stock[str(sku)] = units
    limits: dict[str, Decimal] = {}
    for customer, raw in doc.get("payments", {}).items():
        try:
            limit = Decimal(str(raw))
        except InvalidOperation:
            raise SettingsError(f"{source}: payments.{customer} is not a decimal") from None
        if not limit.is_finite() or limit < 0:
            raise SettingsError(f"{source}: payments.{customer} must be >= 0")
        limits[str(customer)] = limit
    countries = doc.get("shipping", {}).get("countries", [])
    if not isinstance(countries, list) or not all(isinstance(c, str) for c in countries):
        raise SettingsError(f"{source}: shipping.countries must be a list of strings")
    return Seeds(stock, limits, tuple(c.upper() for c in countries))


def load_seeds(path: Path) -> Seeds:
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise SettingsError(f"seeds file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    return parse_seeds(doc, str(path))
