"""Atomic writes: the target is the old file or the new one, never a partial one."""

from __future__ import annotations

import json
import stat

import pytest

from minidl._io import atomic_write, write_json_atomic, write_text_atomic


def test_written_files_are_readable_by_all_unless_private(tmp_path):
    write_text_atomic(tmp_path / "report.md", "hello")
    with atomic_write(tmp_path / "cache.bin", private=True) as f:
        f.write(b"\x00")
    assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "cache.bin").stat().st_mode) == 0o600
    assert (tmp_path / "report.md").read_text() == "hello"


def test_an_error_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(KeyboardInterrupt), atomic_write(target, "w") as f:
        f.write('{"v": 2')
        raise KeyboardInterrupt
    with pytest.raises(TypeError):
        write_json_atomic(target, {"v": object()})
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
