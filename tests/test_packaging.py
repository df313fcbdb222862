"""The wheel ships the `minidl` package alone, and it imports in a fresh environment with numpy only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # builds a wheel and a virtual environment: a few seconds


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    # A copy of the sources: setuptools builds in place, and a stale build/ would go into the wheel.
    source = tmp_path_factory.mktemp("source") / "minidl"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "runs"))
    # Offline: the build uses this environment's setuptools (the dev extra) instead of fetching one.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        check=True,
        cwd=build,
        env={**os.environ, "PIP_NO_INDEX": "1"},
    )
    (path,) = out.glob("minidl-*.whl")
    return path


def test_wheel_holds_minidl_only(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        tops = {name.split("/")[0] for name in z.namelist()}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"minidl"}
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    assert "minidl/datasets/fashion_mnist.py" in names  # subpackages too
    assert not any(n.startswith(("experiments/", "benchmarks/", "tests/", "notebooks/")) for n in names)


def test_wheel_imports_with_numpy_alone(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            str(wheel),
        ],
        check=True,
    )
    # numpy, and nothing else, from this environment (its package and its bundled libraries)
    here = Path(sysconfig.get_paths()["purelib"])
    numpy_dir = Path(np.__file__).parent
    for entry in [numpy_dir, *here.glob("numpy.libs"), *numpy_dir.parent.glob("numpy.libs")]:
        target = site / entry.name
        if not target.exists():
            target.symlink_to(entry)
    code = (
        "import sys, minidl\n"
        "from minidl import Dense, Sequential\n"
        "assert 'matplotlib' not in sys.modules\n"
        "assert not any(m in sys.modules for m in ('experiments', 'benchmarks'))\n"
        "print(minidl.__file__)\n"
    )
    run = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert str(site) in run.stdout  # the installed wheel, not the checkout
    missing = subprocess.run([python, "-I", "-c", "import experiments"], capture_output=True, cwd=tmp_path)
    assert missing.returncode != 0
