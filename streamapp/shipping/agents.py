"""The shipping service's agent and table: shipments only to the configured countries.

The routes are in views.py.
"""

from __future__ import annotations

from streamapp.app import app
from streamapp.participant.service import ParticipantService
from streamapp.seeds import load_seeds
from streamapp.shipping.rules import ShippingRules

countries = load_seeds(app.settings.seeds_file).countries
service = ParticipantService(app, ShippingRules(countries))
state = service.table
