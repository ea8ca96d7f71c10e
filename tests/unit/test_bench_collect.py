"""bench.collect: a `make bench` run's results land in the dated file, earlier ones not."""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

import pytest

from bench.collect import collect


def test_collects_the_runs_written_since_the_marker_and_adds_to_the_days_file(
    tmp_path: Path,
) -> None:
    out, results = tmp_path / "out", tmp_path / "results"
    out.mkdir()
    old = out / "retry-old.json"
    old.write_text('{"ratio": 0.5}')
    os.utime(old, (1_000, 1_000))  # before the marker
    marker = out / ".started"
    marker.touch()
    (out / "retry-new.json").write_text('{"ratio": 0.96}')
    day = datetime.date(2026, 12, 7)

    path = collect(marker, out, results, day)
    assert path == results / "2026-12-07.json"
    assert json.loads(path.read_text()) == {"runs": {"retry-new": {"ratio": 0.96}}}

    (out / "saga-2.json").write_text('{"sustained_per_s": 11.0}')
    collect(marker, out, results, day)  # a second run the same day adds its runs
    assert set(json.loads(path.read_text())["runs"]) == {"retry-new", "saga-2"}


def test_a_run_that_saved_nothing_is_an_error(tmp_path: Path) -> None:
    marker = tmp_path / ".started"
    marker.touch()
    with pytest.raises(SystemExit, match="no benchmark results"):
        collect(marker, tmp_path, tmp_path / "results", datetime.date(2026, 12, 7))
