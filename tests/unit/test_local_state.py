"""Local table databases survive a clean stop only (streamapp.kafka.local_state)."""

from __future__ import annotations

from pathlib import Path

from streamapp.kafka import local_state


def tables(root: Path) -> Path:
    db = root / "v1" / "tables" / "sagas-0.db"
    db.mkdir(parents=True)
    (db / "000001.sst").write_bytes(b"x")
    return db


def test_a_clean_stop_keeps_the_tables_for_the_next_start(tmp_path: Path) -> None:
    assert local_state.claim(tmp_path) == []  # first start: nothing to distrust
    db = tables(tmp_path)
    local_state.release(tmp_path)
    assert local_state.claim(tmp_path) == [] and db.exists()
    assert (tmp_path / local_state.MARK).exists()  # marked while it runs


def test_after_an_unclean_stop_the_tables_are_deleted_and_restored(tmp_path: Path) -> None:
    local_state.claim(tmp_path)
    db = tables(tmp_path)
    other = tmp_path / "unrelated.txt"
    other.write_text("kept")
    # kill -9: release() never ran
    assert local_state.claim(tmp_path) == [tmp_path / "v1" / "tables"]
    assert not db.exists() and other.read_text() == "kept"
    assert (tmp_path / local_state.MARK).exists()
