"""The inventory service's routes: GET /inventory, GET /inventory/{sku}.

Stock lives in its sku's partition (inventory commands are keyed by sku): one sku is
forwarded to its owner, the list is gathered (participant.views).
"""

from __future__ import annotations

from typing import Any

from faust.web import Request

from streamapp.app import app
from streamapp.inventory.agents import seeds, service, stock
from streamapp.inventory.rules import stock_key
from streamapp.participant.views import gathered
from streamapp.web.views import ServiceView, ready_only


@app.page("/inventory")
class InventoryView(ServiceView):
    @ready_only
    async def get(self, request: Request) -> Any:
        skus = seeds.stock  # only seeded skus exist
        return await gathered(self, request, "/inventory", service, skus, stock_key, "items", "sku")


@app.page("/inventory/{sku}")
class StockView(ServiceView):
    @app.table_route(table=stock, match_info="sku")
    @ready_only
    async def get(self, request: Request, sku: str) -> Any:
        level = service.entity(stock_key(sku))
        if level is None:
            return self.json_error(404, "NotFound", f"no sku {sku!r}")
        return self.json(level)
