"""Faust plumbing of the saga's participant services (one Faust app each)."""
