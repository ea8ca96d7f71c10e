"""Shipping: shipments only to the configured countries.

rules.py is the pure core; agents.py (agent, table, seeding) and views.py (routes) are the
Faust shell. faust's autodiscovery scans this package; importing the package itself
registers nothing."""
