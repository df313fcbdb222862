"""Atomic file writes: readers see the old file or the new one, whole, never half of one.

The data goes to a temporary file in the target's folder (same file system, so the final rename
is atomic), is flushed and fsynced, and only then renamed over the target with ``os.replace``.
On any error, Ctrl-C included, the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, private: bool = False) -> Iterator[IO]:
    """Open a temporary file for writing that replaces ``path`` when the block ends without error.

    ``mode`` is ``"wb"`` or ``"w"`` (UTF-8 text). The file gets mode 0644 (readable by all, as an
    ordinary new file), or stays 0600 with ``private=True``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    f = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below, renamed or removed)
        mode, dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False,
        encoding=None if "b" in mode else "utf-8",
    )  # fmt: skip
    try:
        with f:
            yield f  # f.name is the temporary file's path
            f.flush()
            os.fsync(f.fileno())
        if not private:
            os.chmod(f.name, 0o644)
        os.replace(f.name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f.name)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_write(path, "w") as f:
        f.write(text)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as JSON to ``path`` atomically (serialised first: a bad object writes nothing)."""
    text = json.dumps(obj)
    write_text_atomic(path, text)
