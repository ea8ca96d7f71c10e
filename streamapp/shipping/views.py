"""The shipping service's routes: GET /shipping/countries, GET /shipping/shipments/{orderId}."""

from __future__ import annotations

from typing import Any

from faust.web import Request

from streamapp.app import app
from streamapp.shipping.agents import countries, service, state
from streamapp.shipping.rules import shipment_key
from streamapp.web.views import ServiceView, ready_only


@app.page("/shipping/countries")
class CountriesView(ServiceView):
    async def get(self, request: Request) -> Any:
        return self.json({"countries": list(countries)})


@app.page("/shipping/shipments/{order_id}")
class ShipmentView(ServiceView):
    @app.table_route(table=state, match_info="order_id")
    @ready_only
    async def get(self, request: Request, order_id: str) -> Any:
        shipment = service.record(shipment_key(order_id))
        if shipment is None:
            return self.json_error(404, "NotFound", f"no shipment for {order_id!r}")
        return self.json({"orderId": order_id, **shipment})
