"""Schema registry: JSON Schemas for every command and event type, Confluent-compatible.

Kept free of Faust imports so that the pure parts (compatibility rules, validation of schemas)
can be used by the CLI and by tests without starting an app.
"""
