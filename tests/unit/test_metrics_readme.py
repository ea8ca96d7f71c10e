"""README's metrics table and the registry list the same streamapp metrics and labels."""

from __future__ import annotations

import re
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from streamapp.metrics import ScrapeGauge
from tests.integration.support import ROOT

#: A table row: | `name` | type | `label`, `label` | meaning |
ROW = re.compile(r"^\| `(streamapp_[a-z_]+)` \| ([a-z]+) \| ([^|]*) \|")


def readme_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (type, labels) of every streamapp row of README's metrics table."""
    rows: dict[str, tuple[str, tuple[str, ...]]] = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        match = ROW.match(line)
        if match:
            name, kind, labels = match.groups()
            assert name not in rows, f"{name} is listed twice"
            rows[name] = (kind, tuple(sorted(re.findall(r"`([a-z_]+)`", labels))))
    return rows


def registry_metrics(registry: CollectorRegistry) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The same for the registry, named as exposed (counters with _total)."""
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    collectors: list[Any] = list(registry._collector_to_names)
    for collector in collectors:
        if isinstance(collector, ScrapeGauge):
            labels: tuple[str, ...] = collector.labels
        elif isinstance(collector, MetricWrapperBase):
            labels = tuple(collector._labelnames)
        else:
            continue  # process, platform and GC collectors
        for family in collector.describe():
            if family.name.startswith("streamapp_"):
                name = f"{family.name}_total" if family.type == "counter" else family.name
                found[name] = (family.type, tuple(sorted(labels)))
    return found


def test_readme_lists_every_metric_of_the_orders_service_with_its_type_and_labels() -> None:
    from streamapp.app import app

    app.discover()  # the feature modules may add metrics too
    listed, exposed = readme_metrics(), registry_metrics(app.metrics.registry)
    assert len(listed) > 20  # the table was found
    assert sorted(set(exposed) - set(listed)) == [], "metrics missing from README's table"
    assert sorted(set(listed) - set(exposed)) == [], "README lists metrics nobody exposes"
    assert {n: listed[n] for n in exposed} == exposed
