"""Run many independent trainings (configs x seeds x folds) in parallel, and resume after a stop.

A sweep is a function ``fn`` and a list of tasks. Each task is a dict of keyword arguments, so
one run is ``fn(**task)``, and ``fn`` returns a JSON-able dict (numbers, strings, lists...).
``run_sweep`` runs every task once and saves each result the moment it is done, as
``<out_dir>/<key>.json``. Start the same sweep again after a crash or Ctrl-C and the tasks
whose file is already there are loaded, not rerun.

    def train_one(lr, seed):                      # top level of a module, so workers find it
        ...
        return {"val_accuracy": acc, "loss": history["loss"]}

    if __name__ == "__main__":                     # worker processes re-import this module
        tasks = [{"lr": lr, "seed": s} for lr in (0.1, 0.01) for s in range(5)]
        sweep = run_sweep(train_one, tasks, "runs/lr")
        sweep.raise_if_failed()
        print(sweep.results)

Where the runs happen
    By default, on a local ``ProcessPoolExecutor`` with one worker per core. Workers are
    started with "spawn" (a fresh interpreter), not "fork" or "forkserver": a forked child
    inherits the parent's BLAS library already loaded with its thread pool, and the forkserver
    is started once per program with whatever environment it had then. A spawned worker reads
    OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, MKL_NUM_THREADS (and friends) when its NumPy loads,
    and ``process_pool`` sets them to 1 in ``os.environ`` just while it starts a worker, so
    every worker's NumPy runs one BLAS thread. Otherwise two workers on two cores would each
    start a thread per core and fight over them, running slower than one. The parent's own
    NumPy is already loaded and is not affected, and its environment is restored at once.
    Spawned workers import ``fn`` by its module and name: in a notebook, put ``fn`` in a
    ``.py`` file next to it. Starting a spawned worker costs a fraction of a second (it
    imports NumPy), nothing next to a training run.

    ``max_workers=1`` is one worker process, so results are bit-identical for every worker
    count (this process's BLAS may use several threads, which can change the last bits of a
    matrix product). ``executor="serial"`` runs everything in this process, one task after
    another: the place to debug, with the same results up to those last bits. Any other
    ``concurrent.futures.Executor`` can be passed, e.g. a cluster's
    ``dask.distributed.Client(...).get_executor()`` (dask's workers already default to one BLAS
    thread); ``run_sweep`` then only submits to it and leaves its lifetime to you. The results
    are written by this process, so workers need no access to ``out_dir``.

Keys and files
    A task's key names its files. Pass tasks as a list and each key is made from the task itself
    (``task_key``: readable ``name=value`` parts plus a hash of the whole dict, the same in every
    run), or pass a dict ``{key: task}`` to choose the keys. Each file holds ``{"key", "task",
    "seconds", "result"}``; the result you get back is always the JSON round trip of what ``fn``
    returned (tuples become lists), the same whether it was just computed or loaded. Files are
    written atomically (a temporary file in the same folder, flushed, fsynced, renamed over the
    target), so a stop never leaves half a file behind. Arrays (final weights, predictions) go
    in the result's ``"arrays"`` entry, a dict of NumPy arrays: they come back to this process
    and are written as ``<key>.npz`` beside the JSON, and a resumed run gets them back the same.

Failures
    An exception in one run does not stop the others. Its traceback goes to
    ``<key>.error.json`` and to ``SweepResult.failures``; call ``raise_if_failed()`` to turn
    failures into an error. Failed tasks are tried again on the next start. If a worker process
    dies (killed, out of memory), the pool cannot go on: the runs not finished yet are recorded
    as failures, and the next start runs just those.

Progress
    On stderr, one line per finished run, "[12/40] done (3 resumed, 1 failed) ...", redrawn in
    place on a terminal and printed line by line (flushed, nothing else) into a file or a log.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import multiprocessing
import os
import pickle
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

import numpy as np

from minidl._io import atomic_write, to_json, write_json_atomic
from minidl._progress import StatusLine
from minidl.model import load_npz

__all__ = [
    "BLAS_THREAD_VARS",
    "SweepConflict",
    "SweepError",
    "SweepResult",
    "dask_client",
    "default_workers",
    "one_blas_thread",
    "process_pool",
    "run_sweep",
    "task_key",
    "write_json_atomic",
]

#: Environment variables that fix the number of threads of the BLAS libraries NumPy may use.
BLAS_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+,-]{0,199}")


class SweepError(RuntimeError):
    """Raised by ``SweepResult.raise_if_failed`` when some runs failed."""


class SweepConflict(ValueError):
    """``out_dir`` already holds results saved under the same keys for different tasks.

    Raised by ``run_sweep`` before anything runs. ``conflicts`` maps each key to the pair
    ``(saved task, current task)``; the fix is new keys or another ``out_dir``.
    """

    def __init__(self, out_dir: Path, conflicts: dict[str, tuple[Any, Any]]) -> None:
        self.out_dir, self.conflicts = out_dir, conflicts
        lines = [f"  {key}: saved {saved!r}, now {now!r}" for key, (saved, now) in conflicts.items()]
        super().__init__(
            f"{out_dir} already holds results for these keys, from different tasks:\n"
            + "\n".join(lines)
            + "\nuse new keys or another out_dir"
        )


@dataclass
class SweepResult:
    """What a sweep produced, in task order.

    ``results``: key -> what ``fn`` returned (after a JSON round trip), successful runs only.
    ``failures``: key -> traceback text of the runs that raised. ``resumed``: keys loaded from
    ``out_dir`` instead of run. ``seconds``: key -> time ``fn`` took (also for resumed runs).
    """

    results: dict[str, Any]
    failures: dict[str, str]
    resumed: list[str]
    seconds: dict[str, float]
    out_dir: Path
    tasks: dict[str, dict[str, Any]] = field(repr=False, default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def raise_if_failed(self) -> None:
        """Raise ``SweepError`` naming every failed run with its error, then the first traceback."""
        if self.failures:
            lines = [f"{len(self.failures)} of {len(self.tasks)} runs failed:"]
            for key, text in self.failures.items():
                last = text.strip().splitlines()[-1] if text.strip() else "?"
                lines.append(f"  {key}: {last}")
            first_key, first_text = next(iter(self.failures.items()))
            lines.append(f"all tracebacks are in {self.out_dir}/<key>.error.json; {first_key}'s:")
            lines.append(first_text.rstrip())
            raise SweepError("\n".join(lines))


def task_key(task: Mapping[str, Any]) -> str:
    """A file-name-safe key made from a task dict, the same in every run and on every machine.

    Readable ``name=value`` parts for the scalar values (cut to 60 characters), then 10 hex
    digits of the SHA-1 of the whole task written as sorted JSON, which keeps keys unique.

    >>> task_key({"seed": 3, "lr": 0.1})
    'lr=0.1_seed=3-379e5b0c4b'
    """
    canonical = json.dumps(task, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha1(canonical.encode()).hexdigest()[:10]
    scalars = (str, int, float, bool, type(None))
    parts = [f"{k}={v}" for k, v in sorted(task.items()) if isinstance(v, scalars)]
    readable = re.sub(r"[^A-Za-z0-9.=+,-]+", "_", "_".join(parts))[:60]
    readable = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", readable)
    return f"{readable}-{digest}" if readable else digest


def _keyed_tasks(tasks: Iterable[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
    """``{key: task}`` with every key checked and every task checked to be JSON-able."""
    if isinstance(tasks, Mapping):
        pairs = list(tasks.items())
        for key, _ in pairs:
            if not isinstance(key, str) or not _KEY_PATTERN.fullmatch(key) or key.endswith(".error"):
                raise ValueError(
                    f"task key {key!r} is not a safe file name: use letters, digits and ._=+,- "
                    "(not first), at most 200 characters, not ending in '.error'"
                )
    else:
        pairs = []
        for task in tasks:
            if not isinstance(task, Mapping):
                raise TypeError(f"a task is a dict of keyword arguments for fn, got {task!r}")
            pairs.append((task_key(_check_json(task)), task))
    keyed: dict[str, dict] = {}
    for key, task in pairs:
        if key in keyed:
            raise ValueError(f"two tasks have the key {key!r}: {keyed[key]!r} and {task!r}")
        if not isinstance(task, Mapping) or not all(isinstance(k, str) for k in task):
            raise TypeError(f"task {key!r} must be a dict with string keys, got {task!r}")
        keyed[key] = dict(_check_json(task))
    return keyed


def _check_json(task: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        json.dumps(task)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"task {task!r} is not JSON-able: {exc}") from exc
    return task


def _roundtrip(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _load_record(path: Path) -> dict | None:
    """A finished run's record, or None if the file is absent or unreadable (then it reruns).
    A run that returned arrays gets them back from ``<key>.npz`` under ``result["arrays"]``."""
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
        if isinstance(record, dict) and record.get("arrays"):
            record["result"]["arrays"] = load_npz(path.with_suffix(".npz"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or "result" not in record:
        return None
    return record


def _run_one(fn: Callable[..., Any], task: dict[str, Any]) -> tuple[bool, str, float, bytes | None]:
    """Run one task where the executor puts it; returns ``(ok, json_text or traceback, seconds,
    arrays)``, where ``arrays`` is the ``.npz`` bytes of the result's ``"arrays"`` entry (or None).

    Catching the exception here keeps the worker's own traceback text; checking JSON here
    names the run whose result cannot be saved. Arrays travel back as bytes, so the process
    that submitted the task writes every file and workers need no access to ``out_dir``.
    """
    start = time.perf_counter()
    try:
        result = fn(**task)
        blob = None
        if isinstance(result, dict) and "arrays" in result:
            result = dict(result)
            arrays = {name: np.asarray(a) for name, a in result.pop("arrays").items()}
            for name, a in arrays.items():  # what np.load(allow_pickle=False) can read back
                if a.dtype.hasobject or name in ("file", "allow_pickle"):
                    raise TypeError(f"arrays[{name!r}]: give numeric arrays under other names than "
                                    f"'file' and 'allow_pickle' (got dtype {a.dtype})")  # fmt: skip
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            blob = buffer.getvalue()
        text = to_json(result)
    except Exception:
        return False, traceback.format_exc(), time.perf_counter() - start, None
    return True, text, time.perf_counter() - start, blob


def dask_client(address: str, timeout: float = 5.0) -> Any:
    """A client of the Dask scheduler at ``address``; ``dask_client(...).get_executor()`` is an
    Executor for ``run_sweep``. ``ImportError`` naming the extra without dask, ``ConnectionError``
    when the scheduler does not answer within ``timeout`` seconds."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise ImportError("a Dask scheduler needs dask: pip install 'minidl[cluster]'") from None
    try:
        return Client(address, timeout=f"{timeout}s")
    except (OSError, TimeoutError) as err:
        raise ConnectionError(f"cannot reach the Dask scheduler at {address}: {err}") from None


def default_workers() -> int:
    """Cores this process may use (its CPU affinity where the OS tells it, else ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_environ_lock = threading.RLock()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Set every ``BLAS_THREAD_VARS`` to 1 in ``os.environ`` for the block, then restore them.

    Only processes started inside the block see it: a BLAS library reads these variables once,
    when it is loaded. (A pool of spawned workers starts them later, inside ``submit``; use
    ``process_pool``, which sets them there.)
    """
    with _environ_lock:
        saved = {name: os.environ.get(name) for name in BLAS_THREAD_VARS}
        os.environ.update({name: "1" for name in BLAS_THREAD_VARS})
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


class _OneBlasThreadPool(ProcessPoolExecutor):
    """A ``ProcessPoolExecutor`` whose spawned workers each start with one BLAS thread.

    A spawn pool starts a worker when a task is submitted and no worker is idle, inside
    ``submit``; the new process inherits ``os.environ`` as it is at that moment. So ``submit``
    runs inside ``one_blas_thread()``. (Why not in the worker, before NumPy loads: the worker
    imports NumPy while unpickling its first task or the caller's main module, before any
    initializer runs; a thread limit set afterwards needs threadpoolctl, not a dependency here.)
    """

    def submit(self, fn, /, *args, **kwargs):
        with one_blas_thread():
            return super().submit(fn, *args, **kwargs)


def process_pool(
    max_workers: int | None = None,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
) -> ProcessPoolExecutor:
    """A local pool of spawned worker processes, each with one BLAS thread (``initializer``, a
    top-level function, runs first in every worker with ``initargs``, e.g. to set its signal
    handling).

    The pool ``run_sweep`` uses by default; make one yourself to share it between several
    sweeps (workers then keep what they cached, e.g. a loaded data set). The thread variables
    are set only while a worker is being started, and this process's environment is left as it
    was. Shut it down yourself (``with process_pool() as pool:``).
    """
    return _OneBlasThreadPool(
        max_workers or default_workers(),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=initializer,
        initargs=initargs,
    )


class _Progress:
    """One status line per finished run (``minidl._progress``: redrawn in place where watched)."""

    def __init__(self, total: int, resumed: int, enabled: bool, stream: TextIO | None = None):
        self.out = StatusLine(stream) if enabled else None
        self.total, self.resumed = total, resumed
        self.done, self.failed, self.ran = resumed, 0, 0
        self.start = time.perf_counter()

    def message(self, text: str) -> None:
        if self.out is not None:
            self.out.close()
            self.out.line(text)

    def update(self, key: str, ok: bool, seconds: float | None) -> None:
        self.done += 1
        self.ran += 1
        self.failed += not ok
        if self.out is None or (self.out.live and not self.out.due(force=self.done == self.total)):
            return
        elapsed = time.perf_counter() - self.start
        eta = elapsed / self.ran * (self.total - self.done)
        took = "" if seconds is None else f" in {seconds:.1f}s"
        text = (
            f"[{self.done}/{self.total}] done ({self.resumed} resumed, {self.failed} failed) "
            f"{key} {'ok' if ok else 'FAILED'}{took}; elapsed {_hms(elapsed)}, ETA {_hms(eta)}"
        )
        if self.out.live:
            self.out.update(text)
        else:
            self.out.line(text)

    def close(self) -> None:
        if self.out is not None:
            self.out.close()


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def run_sweep(
    fn: Callable[..., Any],
    tasks: Iterable[Mapping[str, Any]] | Mapping[str, Mapping[str, Any]],
    out_dir: str | os.PathLike,
    *,
    executor: Executor | Literal["serial"] | None = None,
    max_workers: int | None = None,
    progress: bool = True,
) -> SweepResult:
    """Run ``fn(**task)`` for every task not finished yet, saving each result as it completes.

    ``tasks``: a list of JSON-able dicts (keys from ``task_key``) or a dict ``{key: task}``.
    ``fn``: a top-level function (it is pickled by name to reach worker processes) returning a
    JSON-able value, usually a dict. ``executor``: ``None`` for a local process pool of
    ``max_workers`` (default: all usable cores, one BLAS thread each), ``"serial"`` to run in
    this process, or any ``concurrent.futures.Executor``, which is used as is and not shut
    down. ``progress``: status lines on stderr.

    Returns a ``SweepResult``; a failing run is recorded, never raised: call
    ``raise_if_failed()`` when every run must succeed. A ``<key>.json`` in ``out_dir`` whose
    task differs from the current task of that key is a ``SweepConflict`` (a ``ValueError``),
    raised before anything runs: change the key, or the folder.
    """
    if max_workers is not None and max_workers < 1:
        raise ValueError(f"max_workers must be at least 1, got {max_workers}")
    if max_workers is not None and executor is not None:
        raise ValueError("max_workers sizes the default process pool; it cannot apply to an executor")
    if isinstance(executor, str) and executor != "serial":
        raise ValueError(f"executor must be an Executor, 'serial' or None, got {executor!r}")
    keyed = _keyed_tasks(tasks)
    serial = executor == "serial"
    own_pool = executor is None and not serial
    if own_pool:
        try:
            pickle.dumps(fn)
        except Exception as exc:
            raise TypeError(
                f"fn={fn!r} cannot be sent to worker processes: define it at the top level of "
                "a module (not a lambda or a nested function), or use executor='serial'"
            ) from exc
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    results: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    failures: dict[str, str] = {}
    resumed: list[str] = []
    conflicts: dict[str, tuple[Any, Any]] = {}
    for key, task in keyed.items():
        record = _load_record(out / f"{key}.json")
        if record is None:
            continue
        if record.get("task") != _roundtrip(task):
            conflicts[key] = (record.get("task"), task)
            continue
        results[key] = record["result"]
        seconds[key] = record.get("seconds")
        resumed.append(key)
    if conflicts:
        raise SweepConflict(out, conflicts)
    pending = [key for key in keyed if key not in results]

    n_workers = min(max_workers or default_workers(), len(pending))
    if serial or not pending:
        where = "in this process"
    elif own_pool:
        where = f"{n_workers} worker processes"
    else:
        where = type(executor).__name__
    bar = _Progress(len(keyed), len(resumed), progress)
    bar.message(f"sweep: {len(keyed)} runs in {out}, {len(resumed)} resumed, {len(pending)} to run ({where})")

    def record(key: str, ok: bool, payload: str, took: float | None, arrays: bytes | None = None) -> None:
        error_path = out / f"{key}.error.json"
        if ok:
            results[key] = json.loads(payload)
            seconds[key] = took
            entry = {"key": key, "task": keyed[key], "seconds": took, "result": results[key]}
            if arrays is not None:  # the arrays first: the .json marks the run as finished
                with atomic_write(out / f"{key}.npz") as f:
                    f.write(arrays)
                entry["arrays"] = f"{key}.npz"
            write_json_atomic(out / f"{key}.json", entry)
            if arrays is not None:
                results[key]["arrays"] = load_npz(out / f"{key}.npz")
            with contextlib.suppress(FileNotFoundError):
                error_path.unlink()
        else:
            failures[key] = payload
            entry = {"key": key, "task": keyed[key], "seconds": took, "error": payload}
            write_json_atomic(error_path, entry)
        bar.update(key, ok, took)

    try:
        if serial:
            for key in pending:
                record(key, *_run_one(fn, keyed[key]))
        elif pending and own_pool:
            pool = process_pool(n_workers)
            try:
                _collect(pool, fn, keyed, pending, record)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        elif pending:
            _collect(executor, fn, keyed, pending, record)
    finally:
        bar.close()

    # runs finish in any order; report them in task order
    sweep = SweepResult(
        results={k: results[k] for k in keyed if k in results},
        failures={k: failures[k] for k in keyed if k in failures},
        resumed=resumed,
        seconds={k: seconds[k] for k in keyed if k in seconds},
        out_dir=out,
        tasks=keyed,
    )
    if sweep.failures:
        bar.message(
            f"sweep: {len(failures)} of {len(keyed)} runs failed: {', '.join(sweep.failures)} "
            f"(tracebacks in {out}/<key>.error.json)"
        )
    return sweep


def _collect(
    executor: Executor,
    fn: Callable[..., Any],
    keyed: dict[str, dict],
    pending: list[str],
    record: Callable[[str, bool, str, float | None, bytes | None], None],
) -> None:
    """Submit every pending task, then record each as it finishes (in completion order)."""
    futures: dict[Future, str] = {}
    try:
        for key in pending:
            futures[executor.submit(_run_one, fn, keyed[key])] = key
        for future in as_completed(futures):
            try:
                ok, payload, took, arrays = future.result()
            except Exception as exc:  # the worker died, or fn could not be sent or run there
                ok, payload, took, arrays = False, "".join(traceback.format_exception(exc)), None, None
            record(futures[future], ok, payload, took, arrays)
    finally:
        for future in futures:
            future.cancel()
