"""The payment service's agent and table: accounts with credit limits, one charge per saga.

Commands are keyed by customerId: an account, its charges and their answers live in the
customer's partition (see payments.rules).
Accounts are seeded from config/seeds.toml when a worker starts, one command per
customer; the routes are in views.py.
"""

from __future__ import annotations

from streamapp.app import app
from streamapp.participant.service import ParticipantService
from streamapp.payments.rules import PaymentRules, account_seeds
from streamapp.seeds import load_seeds

service = ParticipantService(app, PaymentRules())
accounts = service.table

#: What this worker started from (read once: seeds change with a restart).
seeds = load_seeds(app.settings.seeds_file)


async def seed_accounts() -> None:
    for customer, data in account_seeds(seeds.credit_limits):
        await service.send_seed("SeedAccounts", data, key=customer)


app.task(seed_accounts)  # every worker seeds at start; only a changed seed applies
