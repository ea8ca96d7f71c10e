"""The payment service's agent and table: accounts with credit limits, one charge per saga.

Accounts are seeded from config/seeds.toml when a worker starts; the routes are in views.py.
"""

from __future__ import annotations

from streamapp.app import app
from streamapp.participant.service import ParticipantService
from streamapp.payments.rules import PaymentRules
from streamapp.seeds import load_seeds

service = ParticipantService(app, PaymentRules())
accounts = service.table

#: What this worker started from (read once: seeds change with a restart).
seeds = load_seeds(app.settings.seeds_file)

LISTING_KEY = "accounts"


async def seed_accounts() -> None:
    limits = {customer: str(limit) for customer, limit in seeds.credit_limits.items()}
    await service.send_seed("SeedAccounts", {"limits": limits})


app.task(seed_accounts)  # every worker seeds at start; only a changed seed applies
