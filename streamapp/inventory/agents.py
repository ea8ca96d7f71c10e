"""The inventory service's agent and table: stock per sku, reservations per saga and sku.

Commands are keyed by sku (the saga sends one per sku of an order): a sku's stock, its
reservations and their answers live in the sku's partition (see inventory.rules).
The stock is seeded from config/seeds.toml when a worker starts, one command per sku;
the routes are in views.py.
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


async def seed_stock() -> None:
    for sku, units in sorted(seeds.stock.items()):
        await service.send_seed("SeedInventory", {"stock": {sku: units}}, key=sku)


app.task(seed_stock)  # every worker seeds at start; only a changed seed applies
