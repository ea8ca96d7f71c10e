"""Gather one `make bench` run into bench/results/<date>.json.

Each benchmark saves its figures to bench/out/<run>.json (git-ignored, one file per
run). `make bench` touches a marker before the first benchmark; this collects every
result written since, keyed by run name, into the dated file that is committed (a
second run on the same day adds its runs to that day's file).

    .venv/bin/python -m bench.collect bench/out/.make-bench-started
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import Any

from bench.common import OUT_DIR, ROOT

RESULTS_DIR = ROOT / "bench" / "results"


def collect(marker: Path, out_dir: Path, results_dir: Path, day: datetime.date) -> Path:
    """Write the results saved in `out_dir` since `marker` was touched; the file's path."""
    since = marker.stat().st_mtime
    runs = {
        path.stem: json.loads(path.read_text())
        for path in sorted(out_dir.glob("*.json"))
        if path.stat().st_mtime >= since
    }
    if not runs:
        raise SystemExit(f"no benchmark results in {out_dir} since {marker}")
    target = results_dir / f"{day.isoformat()}.json"
    found: dict[str, Any] = json.loads(target.read_text()) if target.exists() else {}
    found.setdefault("runs", {}).update(runs)
    results_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
    return target


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = collect(Path(argv[0]), OUT_DIR, RESULTS_DIR, datetime.date.today())
    print(f"bench results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
