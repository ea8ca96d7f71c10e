"""Retry policy and error classification (pure).

``RetryPolicy.delay_for(attempt)`` is exponential backoff with jitter; ``classify``
decides whether a failure is worth retrying. Both are used by the retry-topic mechanism
(attempt n goes to ``<topic>.retry.<n>``, then ``<topic>.dlq``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from streamapp.errors import CommandRejected, SchemaError, UnknownCommand


@dataclass(frozen=True)
class RetryPolicy:
    """Delay of attempt n = min(cap, base * factor^(n-1)), +/- jitter fraction."""

    base_ms: int = 1_000
    factor: float = 2.0
    cap_ms: int = 300_000
    jitter: float = 0.10
    max_attempts: int = 5

    def __post_init__(self) -> None:
        # Named as the settings (retry_*) that build a policy: the one place they are checked.
        if self.base_ms < 1 or self.cap_ms < self.base_ms:
            raise ValueError("need 1 <= retry_base_ms <= retry_cap_ms")
        if self.factor < 1:
            raise ValueError("retry_factor must be >= 1")
        if not 0 <= self.jitter < 1:
            raise ValueError("retry_jitter must be in [0, 1)")
        if self.max_attempts < 0:
            raise ValueError("retry_max_attempts must be >= 0")

    def nominal_delay_ms(self, attempt: int) -> int:
        """The delay before retry `attempt` (1-based), without jitter."""
        if attempt < 1:
            raise ValueError("attempts count from 1")
        delay = self.base_ms * self.factor ** (attempt - 1)
        return int(min(delay, self.cap_ms))

    def delay_for(self, attempt: int, rng: random.Random | None = None) -> int:
        """The delay with jitter: uniform in nominal * [1 - jitter, 1 + jitter], capped."""
        nominal = self.nominal_delay_ms(attempt)
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(1, min(int(nominal * (1 + spread)), int(self.cap_ms * (1 + self.jitter))))

    def retry_after_ms(
        self, attempt: int, failed_at_ms: int, rng: random.Random | None = None
    ) -> int:
        """Epoch ms before which retry `attempt` must not run (the retry-after header)."""
        return failed_at_ms + self.delay_for(attempt, rng)

    def budget_ms(self) -> int:
        """The longest a record can spend waiting in retry topics: every delay at its
        longest (nominal + jitter). A saga step's deadline must be longer than this, or a
        command that would still succeed on a later retry is given up as timed out."""
        longest = int(self.cap_ms * (1 + self.jitter))
        return sum(
            min(int(self.nominal_delay_ms(n) * (1 + self.jitter)), longest)
            for n in range(1, self.max_attempts + 1)
        )

    def exhausted(self, attempts_made: int) -> bool:
        """True when no retry is left after `attempts_made` retries: dead-letter it."""
        return attempts_made >= self.max_attempts


#: Failures that can never succeed by trying again.
NEVER_RETRYABLE: tuple[type[BaseException], ...] = (
    SchemaError,
    UnknownCommand,
    UnicodeDecodeError,
)


@dataclass(frozen=True)
class ErrorClassifier:
    """Retryable unless the error is (a subclass of) one of `never` (configurable per
    agent): undecodable bytes, schema errors and unknown types are never retried."""

    never: tuple[type[BaseException], ...] = NEVER_RETRYABLE
    also_never: tuple[type[BaseException], ...] = field(default=())

    def retryable(self, error: BaseException) -> bool:
        return not isinstance(error, (*self.never, *self.also_never))

    def with_never(self, extra: Iterable[type[BaseException]]) -> ErrorClassifier:
        return ErrorClassifier(self.never, (*self.also_never, *extra))


def error_type(error: BaseException) -> str:
    """The name used in error-type headers and metric labels."""
    if isinstance(error, CommandRejected):
        return error.error_type
    return type(error).__name__
