"""Shared helpers for the benchmarks: data, timing, machine description, report writing.

Nothing here is imported by ``minidl`` itself, and nothing needs PyTorch: it is used only when
it can be imported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from minidl._io import markdown_table as markdown_table  # the tables of every benchmark report
from minidl._io import write_text_atomic
from minidl.data import scale_pixels
from minidl.datasets import load_fashion_mnist

DEFAULT_OUT = Path("runs/benchmarks")


# ---- data ---------------------------------------------------------------------------------------
def load_train(dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """The 60000 Fashion-MNIST training images as ``(60000, 784)`` rows in [0, 1], labels int64
    (minidl's loader: it finds, checks and caches the files; see ``minidl.datasets``)."""
    (images, labels), _ = load_fashion_mnist()
    return scale_pixels(images, dtype), labels.astype(np.int64)


# ---- timing -------------------------------------------------------------------------------------
def timed(fn: Callable[[], object]) -> float:
    """Seconds taken by one call of ``fn``."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def round_robin(
    jobs: dict[str, Callable[[], object]], repeats: int, *, warmup: int = 1, progress: bool = True
) -> dict[str, list[float]]:
    """Time every job ``repeats`` times, interleaved: one call of each job per round, the order
    rotated from round to round, so a slow spell of a shared machine hits all jobs alike.
    ``warmup`` untimed rounds first (first-touch page faults, BLAS thread start-up, caches)."""
    names = list(jobs)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            t = timed(jobs[name])
            if r >= warmup:
                times[name].append(t)
        if progress:
            print(".", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ---- the machine --------------------------------------------------------------------------------
def blas_threads() -> int:
    """Threads NumPy's BLAS uses (threadpoolctl when installed, else the CPU count)."""
    try:
        from threadpoolctl import threadpool_info

        counts = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
        if counts:
            return counts[0]
    except ImportError:
        pass
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return os.cpu_count() or 1


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def cpu_snapshot() -> tuple[float, float, float] | None:
    """(busy CPU seconds of the whole machine, CPU seconds of this process, wall clock); Linux only."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    mine = os.times()
    return busy, mine.user + mine.system, time.monotonic()


def others_load(start, end) -> float | None:
    """Cores kept busy by *other* processes between two ``cpu_snapshot()``s (0 on a quiet machine)."""
    if start is None or end is None:
        return None
    return max(0.0, ((end[0] - start[0]) - (end[1] - start[1])) / (end[2] - start[2]))


def machine_info() -> dict:
    """CPU model, cores, Python, NumPy and its BLAS, PyTorch, the OpenBLAS variables, the load."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas_threads": blas_threads(),
        "env": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))},
        "load_average": load_average(),
    }
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = [
            {k: p.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for p in threadpool_info()
        ]
    except ImportError:
        config = np.show_config(mode="dicts") if np.lib.NumpyVersion(np.__version__) >= "1.26.0" else {}
        info["blas"] = config.get("Build Dependencies", {}).get("blas")
    torch = import_torch()
    info["torch"] = torch.__version__ if torch is not None else None
    return info


def import_torch():
    """PyTorch if it can be imported, else None (it is never required)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


# ---- reports ------------------------------------------------------------------------------------
def parse_args(description: str, *, repeats: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeats", type=int, default=repeats, help=f"timed rounds (default {repeats})")
    parser.add_argument("--quick", action="store_true", help="fewer sizes and rounds, for a smoke run")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    return parser.parse_args()


def text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if c == 0 else f"{{:>{w}}}" for c, w in enumerate(widths))
    return "\n".join(
        [fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows]
    )


def write_report(out: Path, name: str, data: dict, markdown: str) -> None:
    """``out/name.json`` (the numbers and the machine) and ``out/name.md`` (the table), atomically."""
    write_text_atomic(out / f"{name}.json", json.dumps(data, indent=2) + "\n")
    write_text_atomic(out / f"{name}.md", markdown + "\n")


def publish(out: Path, name: str, data: dict, header: list[str], rows: list[list], notes: str) -> None:
    """Print the table and its notes, and write them with ``data`` as ``out/name.{json,md}``."""
    print(text_table(header, rows))
    print(notes)
    write_report(out, name, data, markdown_table(header, rows) + "\n\n" + notes)
    print(f"wrote {out / (name + '.json')} and {out / (name + '.md')}")
