"""Result files: atomic writes, strict JSON and Markdown tables.

Atomic: readers see the old file or the new one, whole, never half of one. The data goes to a
temporary file in the target's folder (same file system, so the final rename is atomic), is
flushed and fsynced, and only then renamed over the target with ``os.replace``. On any error,
Ctrl-C included, the temporary file is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


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


def to_json(obj: Any) -> str:
    """Strict JSON text: NumPy arrays and scalars become lists and numbers, and NaN or infinite
    floats (a diverged loss) become null, since JSON has no NaN."""
    return json.dumps(_plain(obj), allow_nan=False)


def _plain(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, np.generic):
        return _plain(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as strict JSON (``to_json``) to ``path`` atomically; serialised first, so a
    bad object writes nothing."""
    write_text_atomic(path, to_json(obj))


def markdown_table(header: list[str], rows: list[list[Any]], digits: int = 4) -> str:
    """A Markdown table; floats are written with ``digits`` decimals, None as a dash.

    >>> print(markdown_table(["lr", "loss"], [[0.1, 0.34567], [0.01, None]], digits=2))
    | lr | loss |
    |---|---|
    | 0.10 | 0.35 |
    | 0.01 | - |
    """

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        if isinstance(value, (float, np.floating)) and math.isfinite(value):
            return f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


class FolderInUse(OSError):
    """Another process holds the ``folder_lock`` of a folder."""


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "") -> Iterator[None]:
    """One process at a time in ``folder`` (made if missing): a second one is refused at once with
    ``FolderInUse``, which names the holder (``what`` it runs, kept in ``folder/.lock``). The lock is
    the operating system's ``flock``, so it goes with its process, however that process ends."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise FolderInUse(f"{folder} is in use by {f.read().strip() or 'another process'}") from None
        f.truncate(0)  # "a+": the write goes to the end, now the start
        f.write(f"process {os.getpid()} ({what[:200]})")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)


def remove_stale_temporaries(*folders: str | os.PathLike) -> None:
    """Remove what killed writes left in ``folders`` (not below them: another process may be
    writing there): ``atomic_write``'s ``.<name>.*.tmp`` files."""
    for folder in folders:
        for tmp in Path(folder).glob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()
