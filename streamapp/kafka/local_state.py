"""Local table databases are trusted only after a clean stop.

faust writes a table change to the local RocksDB at once and to the changelog through
the producer. A worker killed (kill -9, OOM, power) loses the changelog records still in
the producer buffer, while the local database kept them. On restart faust replays the
changelog from the database's last persisted offset, which brings back *older* values
for keys written again in that tail, but leaves the keys whose only recent writes were
lost at their newer local values: a mix of two moments that no command ever saw. (Found
by the chaos test: an inventory reservation and its answer survived locally while the
stock level it had changed was rolled back by the replay, so the command was taken for
a repeat and its units were never reserved.)

So a worker marks its data directory while it runs and removes the mark when it has
stopped cleanly (the producer flushed: the changelog holds every local write). A mark
found at start means the last run did not stop cleanly: the table databases are
deleted and restored from the changelogs, whose contents are always a prefix of the
writes in order, which is what the handlers' crash rules assume.
"""

from __future__ import annotations

import shutil
from pathlib import Path

MARK = "RUNNING"


def claim(data_dir: Path) -> list[Path]:
    """Start of a run: delete the table databases if the previous run left its mark
    (returned: what was deleted), then mark the directory."""
    data_dir.mkdir(parents=True, exist_ok=True)
    mark = data_dir / MARK
    deleted: list[Path] = []
    if mark.exists():
        for tables in sorted(data_dir.glob("v*/tables")):
            shutil.rmtree(tables, ignore_errors=True)
            deleted.append(tables)
    mark.write_text("a worker runs on this directory (or did not stop cleanly)\n")
    return deleted


def release(data_dir: Path) -> None:
    """End of a clean stop: the local databases match the changelogs."""
    (data_dir / MARK).unlink(missing_ok=True)
