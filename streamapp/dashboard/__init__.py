"""The orders service's dashboard at GET /: traces, sagas, throughput, retries, lag."""
