"""Handling records that cannot be processed: dead letters today (deadletter.py); the
delayed retry topics, their consumer and the operator tools come with the retry issue.
Pure parts: policy.py (backoff, classification) and headers.py (the contract's headers)."""
