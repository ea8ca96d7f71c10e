"""The payment service's routes: GET /payments/accounts, GET /payments/accounts/{customerId}."""

from __future__ import annotations

from typing import Any

from faust.web import Request, View

from streamapp.app import app
from streamapp.payments.agents import LISTING_KEY, accounts, seeds, service
from streamapp.payments.rules import account_key
from streamapp.web.errors import json_error
from streamapp.web.readiness import when_ready


@app.page("/payments/accounts")
class AccountsView(View):
    @app.table_route(table=accounts, exact_key=LISTING_KEY)
    @when_ready(app)
    async def get(self, request: Request) -> Any:
        customers = sorted(seeds.credit_limits)
        return self.json({"accounts": service.entities(account_key(c) for c in customers)})


@app.page("/payments/accounts/{customer_id}")
class AccountView(View):
    @app.table_route(table=accounts, exact_key=LISTING_KEY)  # one partition: any key routes
    @when_ready(app)
    async def get(self, request: Request, customer_id: str) -> Any:
        account = service.entity(account_key(customer_id))
        if account is None:
            return json_error(self, 404, "NotFound", f"no account {customer_id!r}")
        return self.json(account)
