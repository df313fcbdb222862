"""Shared pytest fixtures, and a private data cache for the whole test session.

The loader keeps decoded ``.npy`` copies of Fashion-MNIST in ``$XDG_CACHE_HOME/minidl``
(``minidl.datasets.cache_dir``). The suite must not write into the user's own cache, so
``XDG_CACHE_HOME`` points at a temporary folder for the session (worker processes and
experiment subprocesses inherit it), removed at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# "ci": the same number of examples, derandomised, so a CI failure repeats exactly; "dev" (default):
# a fresh random search on every run.
settings.register_profile(
    "ci", max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

_session_cache: str | None = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` means: trains on real data or runs an experiment. Every test in a
    ``test_experiment*.py`` file runs an experiment, so it is marked here; tests elsewhere that
    train on the real data carry the mark themselves. ``pytest -m "not slow"`` is the fast lane."""
    for item in items:
        if item.path.name.startswith("test_experiment"):
            item.add_marker(pytest.mark.slow)


def pytest_configure(config: pytest.Config) -> None:
    global _session_cache
    _session_cache = tempfile.mkdtemp(prefix="minidl-test-cache-")
    os.environ["XDG_CACHE_HOME"] = _session_cache


def pytest_unconfigure(config: pytest.Config) -> None:
    if _session_cache is not None:
        shutil.rmtree(_session_cache, ignore_errors=True)


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    """Debian's copy of the real Fashion-MNIST files; the test is skipped if it is absent."""
    if not FASHION_MNIST_DIR.is_dir():
        pytest.skip(f"{FASHION_MNIST_DIR} is absent: run `sudo apt-get install dataset-fashion-mnist`")
    return FASHION_MNIST_DIR


@pytest.fixture
def isolated_data_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point HOME and XDG_CACHE_HOME into tmp_path and clear MINIDL_DATA / MINIDL_DATA_URL,
    so a test never reads or writes the real user cache. Returns the cache root."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("MINIDL_DATA", raising=False)
    monkeypatch.delenv("MINIDL_DATA_URL", raising=False)
    return cache
