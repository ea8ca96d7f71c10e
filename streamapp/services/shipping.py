"""The shipping service: shipments only to the configured countries.

Routes: GET /shipping/countries, GET /shipping/shipments/{orderId}.
"""

from __future__ import annotations

from typing import Any

from faust.web import Request, View

from streamapp.app import app
from streamapp.participants.shipping import ShippingRules, shipment_key
from streamapp.seeds import load_seeds
from streamapp.services.participant import ParticipantService
from streamapp.web.errors import json_error
from streamapp.web.readiness import when_ready

countries = load_seeds(app.settings.seeds_file).countries
service = ParticipantService(app, ShippingRules(countries))
state = service.table


@app.page("/shipping/countries")
class CountriesView(View):
    async def get(self, request: Request) -> Any:
        return self.json({"countries": list(countries)})


@app.page("/shipping/shipments/{order_id}")
class ShipmentView(View):
    @app.table_route(table=state, match_info="order_id")
    @when_ready(app)
    async def get(self, request: Request, order_id: str) -> Any:
        shipment = service.record(shipment_key(order_id))
        if shipment is None:
            return json_error(self, 404, "NotFound", f"no shipment for {order_id!r}")
        return self.json({"orderId": order_id, **shipment})
