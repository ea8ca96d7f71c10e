"""Local table databases survive a clean stop only (streamapp.kafka.local_state)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streamapp.kafka import local_state


def tables(root: Path) -> Path:
    db = root / "v1" / "tables" / "sagas-0.db"
    db.mkdir(parents=True)
    (db / "000001.sst").write_bytes(b"x")
    return root / "v1" / "tables"


def test_a_clean_stop_keeps_the_tables_for_the_next_start(tmp_path: Path) -> None:
    first = local_state.claim(tmp_path, tmp_path / "v1" / "tables")
    assert first.deleted == []  # first start: nothing to distrust
    db = tables(tmp_path)
    first.release()
    again = local_state.claim(tmp_path, db)
    assert again.deleted == [] and db.exists()
    assert (tmp_path / local_state.MARK).exists()  # marked while it runs
    again.release()


def test_after_an_unclean_stop_the_tables_are_deleted_and_restored(tmp_path: Path) -> None:
    db = tables(tmp_path)
    other = tmp_path / "unrelated.txt"
    other.write_text("kept")
    crashed = local_state.claim(tmp_path, db)
    crashed.handle.close()  # a kill -9: the lock goes with the process, the mark stays
    claim = local_state.claim(tmp_path, db)
    assert claim.deleted == [db] and not db.exists() and other.read_text() == "kept"
    assert (tmp_path / local_state.MARK).exists()
    claim.release()


def test_a_second_worker_on_a_live_directory_is_refused(tmp_path: Path) -> None:
    db = tables(tmp_path)
    live = local_state.claim(tmp_path, db)
    with pytest.raises(local_state.DataDirInUse, match="another worker runs on"):
        local_state.claim(tmp_path, db)
    assert db.exists()  # the live worker's tables are untouched
    live.release()


def test_a_failed_send_is_counted() -> None:
    sensor = local_state.SendErrors()
    sensor.on_send_error(None, RuntimeError("broker gone"), None)
    assert sensor.failed == 1
