"""The producer every streamapp worker uses: faust's aiokafka producer, idempotent.

faust-streaming asks aiokafka for ``enable_idempotence`` only inside transactions
(``processing_guarantee=exactly_once``). At-least-once workers retry sends too (aiokafka
retries a produce request whose answer was lost), and without idempotence such a retry
can write a record twice or, with several requests in flight, out of order. With
``acks=all`` (the default) the broker deduplicates by producer id and sequence number;
aiokafka refuses idempotence with any other acks, so then it stays off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

ACKS_ALL = -1


def idempotent(acks: int, in_transaction: bool) -> bool:
    """Whether the producer asks for idempotence (transactions already do)."""
    return acks == ACKS_ALL and not in_transaction


class IdempotentProducer(faust_aiokafka.Producer):
    def _settings_extra(self) -> Mapping[str, Any]:
        extra = dict(super()._settings_extra())
        if idempotent(int(self.app.conf.producer_acks), bool(self.app.in_transaction)):
            extra["enable_idempotence"] = True
        return extra
