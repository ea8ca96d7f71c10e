"""The payment service's routes: GET /payments/accounts, GET /payments/accounts/{customerId}."""

from __future__ import annotations

from typing import Any

from faust.web import Request

from streamapp.app import app
from streamapp.payments.agents import LISTING_KEY, accounts, seeds, service
from streamapp.payments.rules import account_key
from streamapp.web.views import ServiceView, ready_only


@app.page("/payments/accounts")
class AccountsView(ServiceView):
    @app.table_route(table=accounts, exact_key=LISTING_KEY)
    @ready_only
    async def get(self, request: Request) -> Any:
        customers = sorted(seeds.credit_limits)
        return self.json({"accounts": service.entities(account_key(c) for c in customers)})


@app.page("/payments/accounts/{customer_id}")
class AccountView(ServiceView):
    @app.table_route(table=accounts, exact_key=LISTING_KEY)  # one partition: any key routes
    @ready_only
    async def get(self, request: Request, customer_id: str) -> Any:
        account = service.entity(account_key(customer_id))
        if account is None:
            return self.json_error(404, "NotFound", f"no account {customer_id!r}")
        return self.json(account)
