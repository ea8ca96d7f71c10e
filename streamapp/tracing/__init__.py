"""Event-flow tracing: W3C trace context on every record, one trace per correlation id."""
