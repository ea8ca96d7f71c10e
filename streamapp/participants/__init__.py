"""The saga's participant services (inventory, payments, shipping).

Today: their pure domain rules (``*/model``-style modules without Faust). Their agents,
tables, views and Procfile entries come with the saga issue.
"""
