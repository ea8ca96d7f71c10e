"""Consumer lag per topic-partition, read from faust's consumer when Prometheus scrapes.

faust's sensor has no lag metric. Lag here is the partition's end offset (the highwater
aiokafka's fetcher last saw, the offset the next record will get) minus the offset this
worker's consumer group last committed for it (the next record it will read after a
restart), for the partitions assigned to this worker whose records an agent acknowledges
(faust's acking topics: not the table changelogs, which recovery reads without commits).

Both numbers are in memory (aiokafka's fetch state, faust's ``_committed_offset``), so a
scrape reads them without a broker round trip and never blocks the event loop. A
partition's highwater is unknown until its first fetch comes back, and stale while
faust pauses it; such partitions are left out rather than guessed. Commits run every
``broker_commit_interval``, so records processed since the last commit count as lag
until then. A partition without a commit is read from its beginning (see
streamapp.kafka.faust_patches), so its lag counts from offset 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from faust.types import TP

from streamapp.metrics import Sample


def lag(highwater: int | None, committed: int | None) -> int | None:
    """Records after the committed offset; None while the highwater is unknown."""
    if highwater is None or highwater < 0:
        return None
    return max(0, highwater - (committed or 0))


def lag_samples(
    partitions: Iterable[TP],
    highwater: Callable[[TP], int | None],
    committed: Callable[[TP], int | None],
) -> list[Sample]:
    """(topic, partition) -> lag of every partition whose highwater is known, sorted."""
    samples: list[Sample] = []
    for tp in sorted(partitions):
        behind = lag(highwater(tp), committed(tp))
        if behind is not None:
            samples.append(((tp.topic, str(tp.partition)), float(behind)))
    return samples


def consumer_lag(app: Any) -> Iterator[Sample]:
    """The lag samples of a running worker's consumer; none before it has started."""
    consumer = getattr(app, "_consumer", None)  # app.consumer would create one
    if consumer is None:
        return iter(())
    try:
        assigned = consumer.assignment()
    except Exception:  # ConsumerNotStarted: the worker is starting
        return iter(())
    acking = app.topics.acking_topics
    committed: dict[TP, int | None] = consumer._committed_offset  # a defaultdict: .get only

    def highwater(tp: TP) -> int | None:
        try:
            value: int | None = consumer.highwater(tp)
        except Exception:  # revoked since assignment() (aiokafka asserts it is assigned)
            return None
        return value

    partitions = [tp for tp in assigned if tp.topic in acking]
    return iter(lag_samples(partitions, highwater, committed.get))
