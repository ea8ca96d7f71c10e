"""The inventory service's routes: GET /inventory, GET /inventory/{sku}."""

from __future__ import annotations

from typing import Any

from faust.web import Request

from streamapp.app import app
from streamapp.inventory.agents import LISTING_KEY, seeds, service, stock
from streamapp.inventory.rules import stock_key
from streamapp.web.views import ServiceView, ready_only


@app.page("/inventory")
class InventoryView(ServiceView):
    @app.table_route(table=stock, exact_key=LISTING_KEY)
    @ready_only
    async def get(self, request: Request) -> Any:
        skus = sorted(seeds.stock)  # only seeded skus exist
        return self.json({"items": service.entities(stock_key(sku) for sku in skus)})


@app.page("/inventory/{sku}")
class StockView(ServiceView):
    @app.table_route(table=stock, exact_key=LISTING_KEY)  # one partition: any key routes
    @ready_only
    async def get(self, request: Request, sku: str) -> Any:
        level = service.entity(stock_key(sku))
        if level is None:
            return self.json_error(404, "NotFound", f"no sku {sku!r}")
        return self.json(level)
