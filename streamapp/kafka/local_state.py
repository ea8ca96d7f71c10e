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

So a worker marks its data directory while it runs, holding a lock on the mark (the
kernel drops it when the process dies, however), and removes the mark when it has
stopped cleanly: the producer flushed, nothing left in faust's buffer, no send failed
(aiokafka's flush also returns for a batch that failed). A mark found at start means
the last run did not stop cleanly: the table databases are deleted and restored from
the changelogs, whose contents are always a prefix of the writes in order, which is
what the handlers' crash rules assume. A mark still locked means another worker runs
on the directory: refused.
"""

from __future__ import annotations

import fcntl
import shutil
from pathlib import Path
from typing import IO, Any

from faust.sensors import Sensor

MARK = "RUNNING"


class DataDirInUse(RuntimeError):
    """Another live worker holds the directory's mark."""


class Claim:
    """This process's hold on a data directory (see the module docstring)."""

    def __init__(self, data_dir: Path, handle: IO[str], deleted: list[Path]) -> None:
        self.data_dir, self.handle, self.deleted = data_dir, handle, deleted

    def release(self) -> None:
        """End of a clean stop: the local databases match the changelogs."""
        (self.data_dir / MARK).unlink(missing_ok=True)
        self.handle.close()


def claim(data_dir: Path, tables: Path) -> Claim:
    """Start of a run: lock the mark (DataDirInUse if another process holds it); if the
    previous run left it, delete the table databases under `tables` (faust's tabledir)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    mark = data_dir / MARK
    unclean = mark.exists()
    handle = open(mark, "a+")  # noqa: SIM115 - held open (locked) for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirInUse(f"another worker runs on {data_dir}") from None
    deleted: list[Path] = []
    if unclean and tables.exists():
        shutil.rmtree(tables)  # an error stops the worker: never trust half a deletion
        deleted.append(tables)
    handle.truncate(0)
    handle.write("a worker runs on this directory (or did not stop cleanly)\n")
    handle.flush()
    return Claim(data_dir, handle, deleted)


class SendErrors(Sensor):
    """Counts failed sends: after one, a stop is not clean (a changelog record may be
    missing although the local database has its write)."""

    failed = 0

    def on_send_error(self, producer: Any, exc: BaseException, state: Any) -> None:
        self.failed += 1
