from __future__ import annotations

import random

import pytest

from streamapp.resilience.consumer import TransientFailure
from streamapp.resilience.headers import Origin, retry_after, retry_headers
from streamapp.resilience.injection import FailureInjection


def test_retry_after_is_read_from_the_headers() -> None:
    headers = retry_headers([("h", b"1")], Origin("t", 0, 5), 1, 123_456, "E", "boom")
    assert retry_after(headers) == 123_456
    assert retry_after([("retry-after", b"soon")]) is None
    assert retry_after([]) is None


def test_injection_fails_the_first_attempts_then_at_its_rate() -> None:
    first = FailureInjection(first_attempts=2)
    for attempt in (0, 1):
        with pytest.raises(TransientFailure):
            first.check(attempt)
    first.check(2)
    never = FailureInjection(rate=0.0)
    never.check(0)
    always = FailureInjection(rate=1.0)
    with pytest.raises(TransientFailure):
        always.check(7)
    some = FailureInjection(rate=0.2, rng=random.Random(1))
    failures = 0
    for _ in range(1000):
        try:
            some.check(0)
        except TransientFailure:
            failures += 1
    assert 150 < failures < 250


def test_injection_at_a_rate_can_be_capped_per_record() -> None:
    capped = FailureInjection(rate=1.0, max_per_record=5)
    for attempt in range(5):
        with pytest.raises(TransientFailure):
            capped.check(attempt)
    capped.check(5)  # the sixth attempt (retry 5, the last before the DLQ) goes through
