"""End-to-end probes: a record sent to ``streamapp.probes`` is counted in a table.

Operators (``streamapp probe``) and tests use it to prove the whole path works on a
deployment: produce -> agent -> RocksDB table + changelog -> web view on any worker.
"""

from streamapp.probe import agents, views

__all__ = ["agents", "views"]
