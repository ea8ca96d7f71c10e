"""The payment service's routes: GET /payments/accounts, GET /payments/accounts/{customerId}.

Accounts live in their customer's partition (payments commands are keyed by customerId),
so a request for one is forwarded to the worker that owns it, and the list is gathered:
each worker answers for the customers it owns (``local=1``), like GET /sagas.
"""

from __future__ import annotations

from typing import Any

from faust.web import Request

from streamapp.app import app
from streamapp.payments.agents import accounts, seeds, service
from streamapp.payments.rules import account_key
from streamapp.web.client import gather_local
from streamapp.web.views import ServiceView, ready_only

PEER_TIMEOUT_S = 5.0


class Unassigned(Exception):
    """Some customer's partition has no known owner yet (a rebalance)."""


def local_accounts() -> list[dict[str, Any]]:
    """The seeded accounts whose customer's partition this worker actively owns (a
    standby copy of another worker's partitions is not shown)."""
    owners = {customer: app.key_owner(accounts.name, customer) for customer in seeds.credit_limits}
    if None in owners.values():
        raise Unassigned("the payments partitions are not all assigned yet")
    mine = sorted(customer for customer, owner in owners.items() if owner == app.own_url)
    return list(service.entities(account_key(customer) for customer in mine))


@app.page("/payments/accounts")
class AccountsView(ServiceView):
    @ready_only
    async def get(self, request: Request) -> Any:
        try:
            found = local_accounts()
        except Unassigned as exc:
            return self.json_error(503, "NotReady", str(exc))
        if request.query.get("local") == "1":
            return self.json({"accounts": found})
        theirs, missing = await gather_local(
            app.peer_urls(accounts.name), "/payments/accounts", "accounts", PEER_TIMEOUT_S, {}
        )
        if missing:
            return self.json_error(503, "PeerUnavailable", f"no answer from {missing}")
        found.extend(theirs)
        found.sort(key=lambda account: str(account["customerId"]))
        return self.json({"accounts": found})


@app.page("/payments/accounts/{customer_id}")
class AccountView(ServiceView):
    @app.table_route(table=accounts, match_info="customer_id")
    @ready_only
    async def get(self, request: Request, customer_id: str) -> Any:
        account = service.entity(account_key(customer_id))
        if account is None:
            return self.json_error(404, "NotFound", f"no account {customer_id!r}")
        return self.json(account)
