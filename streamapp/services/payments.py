"""The payment service: customer accounts with credit limits, one charge per saga.

Routes: GET /payments/accounts, GET /payments/accounts/{customerId}. Accounts are
seeded from config/seeds.toml when a worker starts.
"""

from __future__ import annotations

from typing import Any

from faust.web import Request, View

from streamapp.app import app
from streamapp.participants.payments import PaymentRules, account_key
from streamapp.seeds import load_seeds
from streamapp.services.participant import ParticipantService
from streamapp.web.errors import json_error
from streamapp.web.readiness import when_ready

service = ParticipantService(app, PaymentRules())
accounts = service.table

#: What this worker started from (read once: seeds change with a restart).
seeds = load_seeds(app.settings.seeds_file)

LISTING_KEY = "accounts"


async def seed_accounts() -> None:
    limits = {customer: str(limit) for customer, limit in seeds.credit_limits.items()}
    await service.send_seed("SeedAccounts", {"limits": limits})


app.task(seed_accounts)  # every worker seeds at start; only a changed seed applies


@app.page("/payments/accounts")
class AccountsView(View):
    @app.table_route(table=accounts, exact_key=LISTING_KEY)
    @when_ready(app)
    async def get(self, request: Request) -> Any:
        customers = sorted(seeds.credit_limits)
        found = (service.entity(account_key(c)) for c in customers)
        return self.json({"accounts": [account for account in found if account is not None]})


@app.page("/payments/accounts/{customer_id}")
class AccountView(View):
    @app.table_route(table=accounts, exact_key=LISTING_KEY)  # one partition: any key routes
    @when_ready(app)
    async def get(self, request: Request, customer_id: str) -> Any:
        account = service.entity(account_key(customer_id))
        if account is None:
            return json_error(self, 404, "NotFound", f"no account {customer_id!r}")
        return self.json(account)
