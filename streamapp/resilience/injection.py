"""Transient failures on purpose (participant services; tests, demos, benchmarks)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from streamapp.resilience.consumer import TransientFailure


@dataclass
class FailureInjection:
    """Fail a record's first `first_attempts` attempts, then a `rate` fraction of the
    rest (on its first `max_per_record` attempts only, if set); both raise
    TransientFailure (retryable) before the handler changes anything."""

    rate: float = 0.0
    first_attempts: int = 0
    max_per_record: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def check(self, attempt: int) -> None:
        if attempt < self.first_attempts:
            raise TransientFailure(f"injected: attempt {attempt} < {self.first_attempts}")
        if self.max_per_record and attempt >= self.max_per_record:
            return
        if self.rate and self.rng.random() < self.rate:
            raise TransientFailure(f"injected: failure rate {self.rate:g}")
