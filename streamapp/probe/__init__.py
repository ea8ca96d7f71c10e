"""End-to-end probes: a record sent to ``streamapp.probes`` is counted in a table.

Operators (``streamapp probe``) and tests use it to prove the whole path works on a
deployment: produce -> agent -> RocksDB table + changelog -> web view on any worker.
model.py is the pure core; agents.py and views.py the Faust shell, found by faust's
autodiscovery: importing the package itself registers nothing.
"""
