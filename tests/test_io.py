"""Atomic writes: the target is the old file or the new one, never a partial one.

This is the one test of that invariant; every file minidl writes (weights, checkpoints, histories,
sweep results, figures, reports, the data cache) goes through ``minidl._io.atomic_write``.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from minidl._io import atomic_write, markdown_table, write_json_atomic, write_text_atomic


def test_written_files_are_readable_by_all_unless_private(tmp_path):
    write_text_atomic(tmp_path / "report.md", "hello")
    with atomic_write(tmp_path / "cache.bin", private=True) as f:
        f.write(b"\x00")
    assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "cache.bin").stat().st_mode) == 0o600
    assert (tmp_path / "report.md").read_text() == "hello"


def _interrupted_block(target):
    with atomic_write(target, "w") as f:
        f.write('{"v": 2')
        raise KeyboardInterrupt  # Ctrl-C halfway through writing


def _failing(name):
    def fail(*args):
        raise OSError(f"{name}: disk full")

    return fail


@pytest.mark.parametrize("where", ["inside the block", "serialising", "fsync", "rename"])
def test_a_failure_anywhere_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch, where):
    target = tmp_path / "metrics.json"
    write_json_atomic(target, {"v": 1})
    if where == "inside the block":
        with pytest.raises(KeyboardInterrupt):
            _interrupted_block(target)
    elif where == "serialising":
        with pytest.raises(TypeError):
            write_json_atomic(target, {"v": object()})
    else:
        monkeypatch.setattr(os, {"fsync": "fsync", "rename": "replace"}[where], _failing(where))
        with pytest.raises(OSError, match="disk full"):
            write_json_atomic(target, {"v": 2})
        monkeypatch.undo()
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_markdown_table_formats_numbers_and_missing_values():
    text = markdown_table(["a", "b", "c"], [[1, 0.123456, None], ["x", float("nan"), 2.0]], digits=3)
    assert text.splitlines() == ["| a | b | c |", "|---|---|---|", "| 1 | 0.123 | - |", "| x | nan | 2.000 |"]
