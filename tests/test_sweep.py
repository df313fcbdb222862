"""run_sweep: same results serial and parallel, resume after a stop, failures kept apart.

Worker processes receive the task function by name and import this module to find it; the
fixture ``importable_in_workers`` makes sure they can. Calls are counted with one file per call
in a folder, which works across processes.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from minidl.model_selection import grid_search
from minidl.sweep import (
    BLAS_THREAD_VARS,
    SweepConflict,
    SweepError,
    process_pool,
    run_sweep,
    task_key,
    write_json_atomic,
)


@pytest.fixture(autouse=True)
def importable_in_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the folder from which this module imports by its name (``test_sweep`` or
    ``tests.test_sweep``, depending on pytest's import mode) on sys.path for the test.
    Spawned workers (process pool or dask) start with the parent's sys.path."""
    depth = compute.__module__.count(".")
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[depth]))


def compute(seed: int, n: int = 30, kind: str = "stats", calls_dir: str | None = None) -> dict:
    """A cheap, seeded NumPy run.

    ``kind`` picks a behaviour: "stats" (the normal result), "fail" (raises), "array" (returns
    something that is not JSON-able), "exit" (the process dies), "blas" (reports the BLAS thread
    variables the process started with and, with threadpoolctl, the threads its BLAS runs).
    With ``calls_dir``, each call leaves a file there, and a file named ``stop-<seed>`` makes
    the run raise KeyboardInterrupt, as if Ctrl-C were pressed.
    """
    if calls_dir is not None:
        if Path(calls_dir, f"stop-{seed}").exists():
            raise KeyboardInterrupt
        os.close(tempfile.mkstemp(dir=calls_dir, prefix=f"call-{seed}-")[0])
    if kind == "fail":
        raise ValueError(f"task {seed} asked to fail")
    if kind == "exit":
        os._exit(3)  # the worker process dies, as if killed
    if kind == "blas":
        return {"env": {name: os.environ.get(name) for name in BLAS_THREAD_VARS}, "threads": blas_threads()}
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n))
    if kind == "array":
        return {"A": {A.shape}}  # a set: not JSON-able (arrays themselves are converted to lists)
    return {"seed": seed, "trace": float(np.trace(A @ A.T)), "col_means": A.mean(axis=0).tolist()}


def blas_threads() -> list[int] | None:
    """The thread count of every BLAS library loaded in this process (threadpoolctl), or None."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def calls(calls_dir: Path) -> dict[int, int]:
    """How many times ``compute`` ran, per seed."""
    counts: dict[int, int] = {}
    for path in calls_dir.glob("call-*"):
        seed = int(path.name.split("-")[1])
        counts[seed] = counts.get(seed, 0) + 1
    return counts


def assert_clean(out_dir: Path) -> None:
    """Only finished files: no temporary file left behind by an atomic write."""
    names = [p.name for p in out_dir.iterdir()]
    assert all(name.endswith(".json") and not name.startswith(".") for name in names), names


def test_task_key_is_deterministic_unique_and_file_safe():
    assert task_key({"lr": 0.1, "seed": 3}) == task_key({"seed": 3, "lr": 0.1})
    assert task_key({"lr": 0.1, "seed": 3}).startswith("lr=0.1_seed=3-")
    assert task_key({"h": [64, 32]}) != task_key({"h": [64, 33]})
    # names that sanitise to the same text still get different keys (the hash)
    assert task_key({"name": "a/b"}) != task_key({"name": "a b"})
    for task in ({"name": "../../etc"}, {"x": "?*<>|"}, {"": 1}, {"s": "." * 300}):
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._=+,-]*", task_key(task)), task_key(task)


def test_serial_one_worker_and_two_workers_give_the_same_results(tmp_path):
    tasks = [{"seed": s} for s in range(6)]
    serial = run_sweep(compute, tasks, tmp_path / "serial", executor="serial", progress=False)
    one = run_sweep(compute, tasks, tmp_path / "one", max_workers=1, progress=False)
    two = run_sweep(compute, tasks, tmp_path / "two", max_workers=2, progress=False)
    keys = [task_key(t) for t in tasks]
    assert list(serial.results) == list(one.results) == list(two.results) == keys  # task order
    assert serial.results == one.results == two.results
    A = np.random.default_rng(4).standard_normal((30, 30))
    assert serial.results[keys[4]]["trace"] == float(np.trace(A @ A.T))
    for key in keys:  # the saved files hold the same results
        saved = json.loads((tmp_path / "two" / f"{key}.json").read_text())
        assert saved["result"] == serial.results[key] and saved["task"] == tasks[int(saved["task"]["seed"])]
    assert two.ok and not two.failures and two.resumed == []
    assert_clean(tmp_path / "two")


def test_process_pool_workers_run_one_blas_thread(monkeypatch):
    """Even when this process asks for two threads, every worker, started whenever, runs one."""
    for name in BLAS_THREAD_VARS:
        monkeypatch.setenv(name, "2")
    env_before = {name: os.environ.get(name) for name in BLAS_THREAD_VARS}
    threads_before = blas_threads()
    with process_pool(2) as pool:
        # spawned workers start at the first submits, here, with this process's variables as before
        assert {name: os.environ.get(name) for name in BLAS_THREAD_VARS} == env_before
        reports = [f.result() for f in [pool.submit(compute, seed=0, kind="blas") for _ in range(4)]]
    for report in reports:
        assert report["env"] == dict.fromkeys(BLAS_THREAD_VARS, "1")
        if report["threads"] is not None:  # threadpoolctl is installed: ask the BLAS itself
            assert report["threads"] and set(report["threads"]) == {1}, report
    assert {name: os.environ.get(name) for name in BLAS_THREAD_VARS} == env_before
    assert blas_threads() == threads_before  # this process's own BLAS is left alone


def test_interrupted_sweep_resumes_only_missing_runs(tmp_path):
    counted = tmp_path / "calls"
    counted.mkdir()
    out = tmp_path / "out"
    tasks = [{"seed": s, "calls_dir": str(counted)} for s in range(6)]
    (counted / "stop-3").touch()  # Ctrl-C during the fourth run
    with pytest.raises(KeyboardInterrupt):
        run_sweep(compute, tasks, out, executor="serial", progress=False)
    assert calls(counted) == {0: 1, 1: 1, 2: 1}
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{task_key(t)}.json" for t in tasks[:3])
    (counted / "stop-3").unlink()
    done = run_sweep(compute, tasks, out, executor="serial", progress=False)
    assert calls(counted) == dict.fromkeys(range(6), 1)  # each seed ran exactly once in all
    assert done.resumed == [task_key(t) for t in tasks[:3]]
    assert len(done.results) == 6 and done.ok
    # a third start has nothing left to do
    again = run_sweep(compute, tasks, out, executor="serial", progress=False)
    assert calls(counted) == dict.fromkeys(range(6), 1) and again.results == done.results
    assert_clean(out)


def test_half_then_full_list_on_a_pool_runs_the_missing_half(tmp_path):
    counted = tmp_path / "calls"
    counted.mkdir()
    tasks = [{"seed": s, "calls_dir": str(counted)} for s in range(6)]
    first = run_sweep(compute, tasks[:3], tmp_path / "out", executor="serial", progress=False)
    full = run_sweep(compute, tasks, tmp_path / "out", max_workers=2, progress=False)
    assert calls(counted) == dict.fromkeys(range(6), 1)
    assert full.resumed == list(first.results) and len(full.results) == 6
    assert {key: full.results[key] for key in first.results} == first.results


def test_a_dead_worker_loses_no_finished_run(tmp_path):
    tasks = {f"ok{s}": {"seed": s} for s in range(4)}
    tasks["dies"] = {"seed": 9, "kind": "exit"}
    broken = run_sweep(compute, tasks, tmp_path, max_workers=2, progress=False)
    assert "dies" in broken.failures and "BrokenProcessPool" in broken.failures["dies"]
    assert set(broken.results) | set(broken.failures) == set(tasks)
    for key in broken.results:
        assert json.loads((tmp_path / f"{key}.json").read_text())["result"] == broken.results[key]
    del tasks["dies"]
    rest = run_sweep(compute, tasks, tmp_path, executor="serial", progress=False)
    assert rest.ok and rest.resumed == [k for k in tasks if k in broken.results]
    assert_clean(tmp_path)


def test_existing_result_files_are_loaded_not_rerun(tmp_path):
    counted = tmp_path / "calls"
    counted.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    tasks = {f"run{s}": {"seed": s, "calls_dir": str(counted)} for s in range(4)}
    # run0: a finished run (its stored result is not what compute would return, to tell them apart)
    write_json_atomic(out / "run0.json", {"task": tasks["run0"], "seconds": 1.0, "result": {"x": 1}})
    (out / "run1.json").write_text('{"task": {"seed": 1')  # half a file: not finished, run again
    (out / "run2.error.json").write_text("{}")  # an earlier failure: run again
    result = run_sweep(compute, tasks, out, executor="serial", progress=False)
    assert calls(counted) == {1: 1, 2: 1, 3: 1}
    assert result.results["run0"] == {"x": 1} and result.resumed == ["run0"]
    assert result.results["run1"]["seed"] == 1
    assert not (out / "run2.error.json").exists()  # a success clears the old error
    assert_clean(out)


def test_a_changed_task_under_an_existing_key_is_an_error(tmp_path):
    run_sweep(compute, {"a": {"seed": 1}}, tmp_path, executor="serial", progress=False)
    with pytest.raises(SweepConflict, match=r"different tasks:\n  a: saved \{'seed': 1\}") as info:
        run_sweep(compute, {"a": {"seed": 2}}, tmp_path, executor="serial", progress=False)
    assert isinstance(info.value, ValueError) and info.value.conflicts == {"a": ({"seed": 1}, {"seed": 2})}


def test_failures_are_recorded_without_losing_other_runs(tmp_path, capsys):
    tasks = {
        "ok0": {"seed": 0},
        "boom": {"seed": 1, "kind": "fail"},
        "ok2": {"seed": 2},
        "not_json": {"seed": 3, "kind": "array"},
        "ok4": {"seed": 4},
    }
    with ThreadPoolExecutor(2) as pool:
        result = run_sweep(compute, tasks, tmp_path, executor=pool, progress=True)
        assert pool.submit(sum, [1, 2]).result() == 3  # a passed executor is left running
    assert list(result.results) == ["ok0", "ok2", "ok4"]
    assert list(result.failures) == ["boom", "not_json"]
    assert "ValueError: task 1 asked to fail" in result.failures["boom"]
    assert "TypeError: Object of type set is not JSON serializable" in result.failures["not_json"]
    saved = json.loads((tmp_path / "boom.error.json").read_text())
    assert saved["task"] == tasks["boom"] and "Traceback" in saved["error"]
    assert not (tmp_path / "boom.json").exists()
    with pytest.raises(SweepError, match=r"2 of 5 runs failed:\n  boom: ValueError: task 1") as info:
        result.raise_if_failed()
    assert "not_json: TypeError" in str(info.value)
    assert "boom's:\nTraceback (most recent call last)" in str(info.value)
    err = capsys.readouterr().err
    assert "[5/5] done (0 resumed, 2 failed)" in err
    assert "2 of 5 runs failed: boom, not_json" in err
    # fixing the task (same key) reruns only it, and clears its error file
    tasks["boom"] = {"seed": 1}
    fixed = run_sweep(compute, tasks, tmp_path, executor="serial", progress=False)
    assert fixed.ok is False and list(fixed.failures) == ["not_json"]
    assert sorted(fixed.resumed) == ["ok0", "ok2", "ok4"]
    assert fixed.results["boom"]["seed"] == 1 and not (tmp_path / "boom.error.json").exists()
    assert_clean(tmp_path)


def test_progress_is_one_plain_line_per_run_when_not_a_terminal(tmp_path, capsys):
    tasks = {"a": {"seed": 0}, "b": {"seed": 1}, "c": {"seed": 2, "kind": "fail"}}
    run_sweep(compute, {"a": tasks["a"]}, tmp_path, executor="serial", progress=False)
    run_sweep(compute, tasks, tmp_path, executor="serial")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"sweep: 3 runs in {tmp_path}, 1 resumed, 2 to run (in this process)"
    assert re.match(r"\[2/3\] done \(1 resumed, 0 failed\) b ok in \d+\.\ds; elapsed 0:\d\d, ETA", lines[1])
    assert lines[2].startswith("[3/3] done (1 resumed, 1 failed) c FAILED")
    assert lines[3].startswith("sweep: 1 of 3 runs failed: c (tracebacks in")
    assert len(lines) == 4 and not any("\r" in line or "\x1b" in line for line in lines)


def test_serial_runs_in_this_process(tmp_path):
    # a lambda cannot be pickled, so this only works in-process
    result = run_sweep(lambda seed: {"double": 2 * seed}, [{"seed": 4}], tmp_path, executor="serial")
    assert list(result.results.values()) == [{"double": 8}]


def test_bad_arguments_are_reported_before_anything_runs(tmp_path):
    with pytest.raises(TypeError, match="top level of a module"):
        run_sweep(lambda seed: {}, [{"seed": 1}], tmp_path, progress=False)
    with pytest.raises(ValueError, match="two tasks have the key"):
        run_sweep(compute, [{"seed": 1}, {"seed": 1}], tmp_path, progress=False)
    with pytest.raises(TypeError, match="not JSON-able"):
        run_sweep(compute, [{"seed": np.arange(2)}], tmp_path, progress=False)
    with pytest.raises(ValueError, match="not a safe file name"):
        run_sweep(compute, {"../x": {"seed": 1}}, tmp_path, progress=False)
    with pytest.raises(ValueError, match="not a safe file name"):
        run_sweep(compute, {"x.error": {"seed": 1}}, tmp_path, progress=False)
    with pytest.raises(ValueError, match="max_workers"):
        run_sweep(compute, [{"seed": 1}], tmp_path, executor="serial", max_workers=2)
    assert list(tmp_path.iterdir()) == []


def closeness(params, X_train, y_train, X_val, y_val) -> float:
    """A grid_search score that workers can import: best at c = 1, a different offset per fold."""
    return -abs(params["c"] - 1) + 0.01 * float(X_val[0, 0])


def test_dask_cluster_executor(tmp_path):
    """A sweep, and a grid search (its runs are a sweep), on a Dask cluster: the serial results."""
    distributed = pytest.importorskip(
        "dask.distributed", reason="dask not installed (optional extra 'cluster')"
    )
    tasks = [{"seed": s} for s in range(4)]
    serial = run_sweep(compute, tasks, tmp_path / "serial", executor="serial", progress=False)
    X, y = np.arange(24.0).reshape(12, 2), np.arange(12) % 2
    search = grid_search(closeness, {"c": [0, 1, 2]}, X, y, cv=3)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        result = run_sweep(compute, tasks, tmp_path / "dask", executor=client.get_executor(), progress=False)
        on_dask = grid_search(closeness, {"c": [0, 1, 2]}, X, y, cv=3, executor=client.get_executor())
        assert client.submit(sum, [1, 2]).result() == 3  # the client is still ours to use
    assert result.results == serial.results and result.ok
    assert_clean(tmp_path / "dask")
    assert (
        on_dask.to_dict()["cv_results_"]["split2_test_score"]
        == search.to_dict()["cv_results_"]["split2_test_score"]
    )
    assert on_dask.best_params_ == {"c": 1}


def _object_arrays(seed):
    return {"seed": seed, "arrays": {"a": np.array([None, seed], dtype=object)}}


def test_a_result_whose_arrays_cannot_be_read_back_is_a_failed_run(tmp_path):
    """np.savez would pickle an object array, which np.load(allow_pickle=False) then refuses: the run
    fails with a clear error, and the sweep goes on."""
    sweep = run_sweep(_object_arrays, {"k": {"seed": 1}}, tmp_path, executor="serial", progress=False)
    assert "k" in sweep.failures and "numeric arrays" in sweep.failures["k"]
    assert not (tmp_path / "k.json").exists() and not (tmp_path / "k.npz").exists()
