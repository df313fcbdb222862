"""Small helpers for argument checks: every error names the argument, what it accepts, and what it got."""

from __future__ import annotations

import numpy as np


def describe(value: object) -> str:
    """A bad value as an error message shows it: ``'0.1' (str)``, ``2.5 (float)``, ``None``."""
    if value is None:
        return "None"
    if isinstance(value, type):
        return f"the class {value.__name__}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def is_whole_number(value: object) -> bool:
    """An ``int`` or NumPy integer, but not a bool (``True`` is 1 to Python, never meant as a count)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_count(value: object, name: str, accepts: str, minimum: int = 1) -> None:
    """Refuse a ``value`` that is not a whole number ``>= minimum``; ``accepts`` says what it counts."""
    if not is_whole_number(value) or value < minimum:
        raise ValueError(f"{name} must be {accepts}, got {describe(value)}")
