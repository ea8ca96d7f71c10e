"""The inventory service's agent and table: stock per sku, reservations per saga.

The stock is seeded from config/seeds.toml when a worker starts (see
ParticipantService.send_seed); the routes are in views.py.
"""

from __future__ import annotations

from streamapp.app import app
from streamapp.inventory.rules import InventoryRules
from streamapp.participant.service import ParticipantService
from streamapp.seeds import load_seeds

service = ParticipantService(app, InventoryRules())
stock = service.table

#: What this worker started from (read once: seeds change with a restart).
seeds = load_seeds(app.settings.seeds_file)

#: Every request for the whole stock goes to the owner of its (single) partition.
LISTING_KEY = "inventory"


async def seed_stock() -> None:
    await service.send_seed("SeedInventory", {"stock": seeds.stock})


app.task(seed_stock)  # every worker seeds at start; only a changed seed applies
