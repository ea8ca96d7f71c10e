from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamapp.errors import SchemaError, UnknownCommand, ValidationError
from streamapp.resilience.policy import ErrorClassifier, RetryPolicy, error_type


def test_defaults_match_the_issue() -> None:
    policy = RetryPolicy()
    assert (policy.base_ms, policy.factor, policy.cap_ms, policy.jitter, policy.max_attempts) == (
        1000,
        2.0,
        300_000,
        0.10,
        5,
    )
    assert [policy.nominal_delay_ms(n) for n in range(1, 6)] == [1000, 2000, 4000, 8000, 16000]
    assert policy.nominal_delay_ms(20) == 300_000  # capped


@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=2**32))
def test_jitter_stays_within_its_fraction(attempt: int, seed: int) -> None:
    policy = RetryPolicy()
    delay = policy.delay_for(attempt, random.Random(seed))
    nominal = policy.nominal_delay_ms(attempt)
    assert nominal * 0.9 - 1 <= delay <= nominal * 1.1 + 1


def test_jitter_spreads_delays() -> None:
    rng = random.Random(7)
    delays = {RetryPolicy().delay_for(3, rng) for _ in range(50)}
    assert len(delays) > 10 and min(delays) < 4000 < max(delays)


def test_retry_after_and_exhaustion() -> None:
    policy = RetryPolicy(base_ms=100, jitter=0.0, max_attempts=2)
    assert policy.retry_after_ms(2, failed_at_ms=1_000) == 1_200
    assert not policy.exhausted(1) and policy.exhausted(2)


@pytest.mark.parametrize(
    "kwargs",
    [{"base_ms": 0}, {"cap_ms": 10}, {"factor": 0.5}, {"jitter": 1.0}, {"max_attempts": -1}],
)
def test_bad_policies(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_classification() -> None:
    classifier = ErrorClassifier()
    assert not classifier.retryable(SchemaError("bad"))
    assert not classifier.retryable(UnknownCommand("what"))
    assert not classifier.retryable(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad"))
    assert classifier.retryable(TimeoutError())
    assert classifier.retryable(ConnectionError())
    strict = classifier.with_never([ValidationError])
    assert not strict.retryable(ValidationError("no")) and strict.retryable(TimeoutError())
    assert error_type(SchemaError("x")) == "SchemaError" and error_type(TimeoutError()) == (
        "TimeoutError"
    )
