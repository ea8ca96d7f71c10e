"""Where finished record spans go: nowhere by default, OTLP when configured."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from streamapp.resilience.consumer import Delivery
    from streamapp.tracing.context import Span


class SpanSink(Protocol):
    def record(
        self,
        span: Span,
        agent: str,
        delivery: Delivery,
        started: float,
        ended: float,
        error: BaseException | None,
    ) -> None:
        """One record processed by `agent` in `span`, between two perf_counter() times;
        `error` is the failure it was retried or dead-lettered for. Must not block."""
