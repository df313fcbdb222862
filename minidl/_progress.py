"""One progress line, shared by training (``callbacks.ProgressBar``), sweeps and downloads.

Where a person watches (a terminal, or a Jupyter notebook, whose output stream is not a tty but
shows ``\\r`` redraws in place), the line is redrawn in place at most ten times a second. Anywhere
else (a file, a pipe, a CI log) nothing is redrawn: callers write whole lines, each flushed at
once, with no ``\\r``, ``\\b`` or colour codes. Text is plain ASCII in both cases.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

MIN_INTERVAL = 0.1  # seconds between two redraws of a live line


def is_live(stream: TextIO) -> bool:
    """True on a terminal, or on the output stream of a Jupyter (IPython kernel) notebook."""
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        pass
    # ipykernel's OutStream (ipykernel.iostream) is not a tty, yet the notebook redraws "\r" in place
    return "ipykernel" in sys.modules and type(stream).__module__.startswith("ipykernel")


class StatusLine:
    """A line of progress on ``stream`` (default: stderr).

    ``live`` (from ``is_live(stream)`` unless given) decides the style, once. Live: ask ``due()``
    and, when it says yes, ``update(text)`` redraws the line in place; asking first means the
    text is only built when it will be shown, at most every ``MIN_INTERVAL`` seconds. Not live:
    ``due()`` is always False and ``update`` does nothing. In both styles ``line(text)`` writes a
    finished line (replacing a live line that is on screen), and ``close()`` moves below a live
    line left on screen. Every write is flushed at once.
    """

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = is_live(self.stream) if live is None else live
        self._width = 0  # length of the live line on screen; 0 when there is none
        self._last_draw = -float("inf")

    def due(self, *, force: bool = False) -> bool:
        """Is a redraw wanted now? (Live, and ``force`` or the last one was ``MIN_INTERVAL`` ago.)"""
        return self.live and (force or time.monotonic() - self._last_draw >= MIN_INTERVAL)

    def update(self, text: str) -> None:
        """Redraw the live line with ``text`` (``\\r``, then spaces over a longer previous text)."""
        if not self.live:
            return
        self._last_draw = time.monotonic()
        text = _ascii(text)
        self._write("\r" + text.ljust(self._width))
        self._width = len(text)

    def line(self, text: str) -> None:
        """Write ``text`` as a finished line, over the live line if one is on screen."""
        text = _ascii(text)
        if self._width:
            self._write("\r" + text.ljust(self._width) + "\n")
            self._width = 0
        else:
            self._write(text + "\n")

    def close(self) -> None:
        """Keep the live line on screen and move below it."""
        if self._width:
            self._write("\n")
            self._width = 0

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")
