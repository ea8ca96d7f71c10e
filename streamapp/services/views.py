"""View helpers shared by the participant services."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def listing(table: Any, skip_prefix: bytes = b"") -> Iterable[Any]:
    """The values of a table's active partitions on this worker, in key order."""
    for key, value in sorted(table.items()):
        if value is not None and not (skip_prefix and key.startswith(skip_prefix)):
            yield value
