"""Orders: the aggregate (pure), the command agent on the event store, the HTTP views."""

from streamapp.orders import agents, views

__all__ = ["agents", "views"]
