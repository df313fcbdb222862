"""Shared pytest fixtures."""

from __future__ import annotations

import os
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
