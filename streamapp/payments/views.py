"""The payment service's routes: GET /payments/accounts, GET /payments/accounts/{customerId}.

Accounts live in their customer's partition (payments commands are keyed by customerId):
one is forwarded to its owner, the list is gathered (participant.views).
"""

from __future__ import annotations

from typing import Any

from faust.web import Request

from streamapp.app import app
from streamapp.participant.views import gathered
from streamapp.payments.agents import accounts, seeds, service
from streamapp.payments.rules import account_key
from streamapp.web.views import ServiceView, ready_only


@app.page("/payments/accounts")
class AccountsView(ServiceView):
    @ready_only
    async def get(self, request: Request) -> Any:
        customers = seeds.credit_limits  # only seeded accounts exist
        return await gathered(
            self,
            request,
            "/payments/accounts",
            service,
            customers,
            account_key,
            "accounts",
            "customerId",
        )


@app.page("/payments/accounts/{customer_id}")
class AccountView(ServiceView):
    @app.table_route(table=accounts, match_info="customer_id")
    @ready_only
    async def get(self, request: Request, customer_id: str) -> Any:
        account = service.entity(account_key(customer_id))
        if account is None:
            return self.json_error(404, "NotFound", f"no account {customer_id!r}")
        return self.json(account)
