"""Orders: the aggregate (pure), the command agent on the event store, the HTTP views.

faust's autodiscovery scans this package for agents and views; importing the package
itself registers nothing, so pure modules (the aggregate) can be used from any service."""
