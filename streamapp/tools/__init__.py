"""Operator tools that act as outside clients of a deployment: they read topics and call
HTTP views, and never run inside a worker (verify, loadgen, dlq, probe, the group-less
topic reader)."""
