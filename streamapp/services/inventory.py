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
from streamapp.services.views import listing
from streamapp.web.errors import json_error
from streamapp.web.readiness import when_ready

service = ParticipantService(app, InventoryRules(), roles=("entities", "records"))
stock = service.tables["entities"]

#: Every request for the whole stock goes to the owner of its (single) partition.
LISTING_KEY = "inventory"


async def seed_stock() -> None:
    seeds = load_seeds(app.settings.seeds_file)
    await service.send_seed("SeedInventory", {"stock": seeds.stock})


app.task(seed_stock)  # every worker seeds at start; only a changed seed applies


@app.page("/inventory")
class InventoryView(View):
    @app.table_route(table=stock, exact_key=LISTING_KEY)
    @when_ready(app)
    async def get(self, request: Request) -> Any:
        return self.json({"items": list(listing(stock))})


@app.page("/inventory/{sku}")
class StockView(View):
    @app.table_route(table=stock, match_info="sku")
    @when_ready(app)
    async def get(self, request: Request, sku: str) -> Any:
        level = stock.get(stock_key(sku))
        if level is None:
            return json_error(self, 404, "NotFound", f"no sku {sku!r}")
        return self.json(level)
