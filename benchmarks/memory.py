"""Peak memory of training epochs of the 784-100-10 MLP, against the size of the training matrix.

    python -m benchmarks.memory [--quick] [--out DIR]

The float32 training matrix is 60000 x 784 x 4 bytes = 188 MB; the goal is a full-batch epoch whose
peak stays below twice that, data included (so no hidden copy of the data). Every measurement
runs in a fresh Python process, which loads the data, then trains ``EPOCHS`` epochs with
``minidl.train.train_epoch`` and reports:

* ``traced``: the peak of NumPy's allocations seen by ``tracemalloc`` during the epochs, the data
  itself included (it is allocated while tracing).
* ``rss``: the peak resident set size of the process during the epochs (``VmHWM``, reset after
  loading through ``/proc/self/clear_refs``; where that is not possible, ``ru_maxrss`` of the
  whole process, loading included). This also counts the interpreter, NumPy and the BLAS's own
  work buffers (OpenBLAS keeps tens of MB per thread), so before the epochs one product
  ``X @ W1`` warms the BLAS up, and the "runtime" is the RSS then, less the data: ``(data + RSS
  growth) / data`` is the part of the ratio that training is responsible for.

Results go to ``DIR/memory.json`` and ``DIR/memory.md``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np

from benchmarks._util import DEFAULT_OUT, load_train, machine_info, markdown_table, text_table, write_report
from benchmarks.mlp import minidl_epoch

BATCH_SIZES = [None, 128, 32]
EPOCHS = 2
GOAL = 2.0  # peak / size of the float32 training matrix, full batch
MB = 1e6


def status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes, None if unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Make ``VmHWM`` restart from the current RSS (Linux); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def child(batch_size: int | None, trace: bool) -> dict:
    """Measure in this (fresh) process; called through ``--child``."""
    if trace:
        tracemalloc.start()
    X, y = load_train()
    epoch = minidl_epoch(X, y, batch_size)
    result = {"batch_size": batch_size, "data_bytes": X.nbytes, "labels_bytes": y.nbytes}
    if trace:
        tracemalloc.reset_peak()
        for _ in range(EPOCHS):
            epoch()
        result["traced_peak_bytes"] = tracemalloc.get_traced_memory()[1]
    else:
        np.matmul(X, np.zeros((X.shape[1], 100), X.dtype))  # the BLAS touches its work buffers now
        result["rss_before_bytes"] = status_bytes("VmRSS")
        exact = reset_peak_rss()
        for _ in range(EPOCHS):
            epoch()
        peak = status_bytes("VmHWM") if exact else None
        if peak is None:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        result["rss_peak_bytes"], result["rss_peak_exact"] = peak, exact
    return result


def measure(batch_size: int | None, trace: bool) -> dict:
    command = [sys.executable, "-m", "benchmarks.memory", "--child", str(batch_size)]
    command += ["--trace"] if trace else []
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="full batch only")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(None if args.child == "None" else int(args.child), args.trace)))
        return

    results = []
    for batch_size in [None] if args.quick else BATCH_SIZES:
        row = measure(batch_size, trace=True)
        row.update(measure(batch_size, trace=False))
        results.append(row)
    header = ["batch", "data MB", "traced peak MB", "traced / data", "RSS before MB", "RSS peak MB",
              "RSS peak / data", "(data + RSS growth) / data"]  # fmt: skip
    rows = []
    for r in results:
        data = r["data_bytes"]
        r["traced_ratio"] = r["traced_peak_bytes"] / data
        r["rss_ratio"] = r["rss_peak_bytes"] / data
        growth = r["rss_peak_bytes"] - r["rss_before_bytes"] if r["rss_before_bytes"] else None
        r["rss_growth_ratio"] = None if growth is None else (data + growth) / data
        rows.append([
            "full" if r["batch_size"] is None else str(r["batch_size"]),
            f"{data / MB:.0f}",
            f"{r['traced_peak_bytes'] / MB:.0f}",
            f"{r['traced_ratio']:.2f}",
            f"{r['rss_before_bytes'] / MB:.0f}" if r["rss_before_bytes"] else "-",
            f"{r['rss_peak_bytes'] / MB:.0f}" + ("" if r["rss_peak_exact"] else " (whole run)"),
            f"{r['rss_ratio']:.2f}",
            "-" if growth is None else f"{r['rss_growth_ratio']:.2f}",
        ])  # fmt: skip
    full = next(r for r in results if r["batch_size"] is None)
    met = full["traced_ratio"] < GOAL
    machine = machine_info()
    notes = (
        f"Peak over {EPOCHS} epochs of minidl.train.train_epoch, each batch size in a fresh process; data = "
        f"the float32 training matrix ({full['data_bytes'] / MB:.0f} MB). Goal: full batch below {GOAL}x "
        f"the data (NumPy's allocations, traced): {'met' if met else 'MISSED'}. RSS before = interpreter, "
        f"libraries and BLAS buffers (after one warm-up product) plus the data. numpy {np.__version__}, "
        f"BLAS threads {machine['blas_threads']}."
    )
    print(text_table(header, rows))
    print(notes)
    data = {"results": results, "goal": GOAL, "met": met, "epochs": EPOCHS, "machine": machine}
    write_report(args.out, "memory", data, markdown_table(header, rows) + "\n\n" + notes)
    print(f"wrote {args.out / 'memory.json'} and {args.out / 'memory.md'}")


if __name__ == "__main__":
    main()
