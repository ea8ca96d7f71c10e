"""The inventory service: stock per sku, all-or-nothing reservations per saga.

Routes: GET /inventory, GET /inventory/{sku}. The stock is seeded from config/seeds.toml
when a worker starts (see ParticipantService.send_seed).
"""

from __future__ import annotations

from typing import Any

from faust.web import Request, View

from streamapp.app import app
from streamapp.participants.inventory import InventoryRules, stock_key
from streamapp.seeds import load_seeds
from streamapp.services.participant import ParticipantService
from streamapp.web.errors import json_error
from streamapp.web.readiness import when_ready

service = ParticipantService(app, InventoryRules())
stock = service.table

#: Every request for the whole stock goes to the owner of its (single) partition.
#: What this worker started from (read once: seeds change with a restart).
seeds = load_seeds(app.settings.seeds_file)

LISTING_KEY = "inventory"


async def seed_stock() -> None:
    await service.send_seed("SeedInventory", {"stock": seeds.stock})


app.task(seed_stock)  # every worker seeds at start; only a changed seed applies


@app.page("/inventory")
class InventoryView(View):
    @app.table_route(table=stock, exact_key=LISTING_KEY)
    @when_ready(app)
    async def get(self, request: Request) -> Any:
        skus = sorted(seeds.stock)  # only seeded skus exist
        levels = (service.entity(stock_key(sku)) for sku in skus)
        return self.json({"items": [level for level in levels if level is not None]})


@app.page("/inventory/{sku}")
class StockView(View):
    @app.table_route(table=stock, exact_key=LISTING_KEY)  # one partition: any key routes
    @when_ready(app)
    async def get(self, request: Request, sku: str) -> Any:
        level = service.entity(stock_key(sku))
        if level is None:
            return json_error(self, 404, "NotFound", f"no sku {sku!r}")
        return self.json(level)
