"""Studies on a Dask cluster: ``--scheduler ADDRESS`` gives the local pool's results, and fails fast."""

from __future__ import annotations

import json
import sys
import time

import pytest

from experiments import softmax_only
from minidl.sweep import dask_client

TIMING = ("seconds", "time", "load")  # keys that measure the machine, not the results


def without_timings(obj):
    """``obj`` with every entry whose key names a duration or load left out, recursively."""
    if isinstance(obj, dict):
        return {k: without_timings(v) for k, v in obj.items() if not any(t in k for t in TIMING)}
    if isinstance(obj, list):
        return [without_timings(v) for v in obj]
    return obj


@pytest.mark.slow
def test_main_job_on_a_local_cluster_equals_the_local_pool(tmp_path, fashion_mnist_dir):
    distributed = pytest.importorskip("dask.distributed", reason="the cluster extra is not installed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        on_cluster = softmax_only.main(
            ["--quick", "--out", str(tmp_path / "cluster"), "--scheduler", cluster.scheduler_address]
        )
    on_pool = softmax_only.main(["--quick", "--out", str(tmp_path / "pool"), "--workers", "2"])
    assert without_timings(on_cluster) == without_timings(on_pool)
    # every file came back to this process: the runs and their arrays are in the output folder
    runs = sorted(p.name for p in (tmp_path / "cluster" / "runs").iterdir())
    assert runs == sorted(p.name for p in (tmp_path / "pool" / "runs").iterdir())
    saved = json.loads((tmp_path / "cluster" / "metrics.json").read_text())
    assert saved["test_accuracy"] == on_pool["test_accuracy"]


def test_an_unreachable_scheduler_is_a_one_line_error_within_seconds():
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        dask_client("tcp://127.0.0.1:9", timeout=1)  # the discard port: nothing listens there
    assert time.perf_counter() - start < 10


def test_without_dask_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # makes the import fail
    with pytest.raises(ImportError, match=r"minidl\[cluster\]"):
        dask_client("tcp://127.0.0.1:8786")


def test_workers_and_scheduler_together_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        softmax_only.main(["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2", "--out", "unused"])
    assert "--workers" in capsys.readouterr().err
