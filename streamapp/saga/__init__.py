"""The order saga: definition.py + machine.py (the saga DSL and state machine) and
orchestration.py (what one input does to a saga record) are pure; agents.py (agent,
tables, deadline timers) and views.py (/sagas) are the Faust shell, found by faust's
autodiscovery: importing the package itself registers nothing."""
