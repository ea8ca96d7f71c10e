"""The one place where an agent gives up on a record.

Every agent calls :func:`set_aside` for a record it cannot process (undecodable, invalid,
or a bug), so that the partition moves on and the record is never silently dropped: it
is logged with its coordinates and counted. This is the seam where dead-lettering to
``<topic>.dlq`` plugs in.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def set_aside(app: Any, agent: str, event: Any, reason: str, error: BaseException) -> None:
    """Record that `event` was not processed by `agent` and why; never raises."""
    message = event.message
    app.metrics.records_rejected.labels(agent, reason).inc()
    log.warning(
        "%s set aside %s[%d]@%d key=%r (%s): %s",
        agent,
        message.topic,
        message.partition,
        message.offset,
        (event.key or b"")[:64],
        reason,
        error,
        exc_info=error if reason == "error" else None,
    )
