"""The study kit: everything the experiments share, written once.

Every experiment is a short module with the same five parts, read top to bottom:

    FULL, QUICK                      its settings, as data (``--quick`` picks QUICK)
    train_one(**task) -> record      one training, run in a worker process (top level of the module)
    run(study, settings) -> results  the trainings, in stages, through ``study.train``; the final
                                     model scores the test set once, in one visible place
    summarise(results) -> metrics    plain numbers from the saved results (no matplotlib)
    figures(metrics, out)            the PNG figures, from the metrics (and saved arrays)
    report(metrics) -> values        the values of its Markdown template ``reports/<name>.md``

and ends with ``main = study.main_for(__name__)``. ``main`` here wires them: the command line
(``--out``, ``--quick``, ``--plot-only``, ``--workers``, ``--scheduler``, checked before any work),
a lock on the output folder, run -> ``results.json``, summarise -> ``metrics.json``, figures, and
``report.md``. ``--plot-only`` redraws figures, metrics and report from the saved results.

The rule for randomness: one integer seed per training, split by ``seed_streams`` into independent
named streams (weights, order, dropout), so changing one (say, the example order) leaves the
others as they were.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import importlib
import json
import math
import multiprocessing
import os
import signal
import string
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from minidl._io import write_json_atomic, write_text_atomic
from minidl.data import Standardizer, scale_pixels
from minidl.datasets import CLASS_NAMES, DatasetError, load_fashion_mnist
from minidl.model import load_npz, save_npz
from minidl.model_selection import stratified_split, stratified_subsample
from minidl.sweep import default_workers, process_pool, run_sweep
from minidl.train import History

__all__ = [
    "CLASS_NAMES",
    "Data",
    "ResultsMissing",
    "Study",
    "StudyError",
    "fill",
    "fmt",
    "load_data",
    "log",
    "main_for",
    "md_table",
    "pm",
    "positive_float",
    "positive_int",
    "nonnegative_int",
    "record",
    "seed_streams",
    "test_set",
]

_START = time.perf_counter()
REPORTS = Path(__file__).with_name("reports")


class StudyError(Exception):
    """A study cannot go on; its message is shown alone, without a traceback."""


class ResultsMissing(StudyError):
    """``--plot-only`` (or a later stage) found no usable results in the output folder."""


def log(message: str) -> None:
    """A progress line on stderr with the seconds since start."""
    print(f"[{time.perf_counter() - _START:6.1f}s] {message}", file=sys.stderr, flush=True)


# ---- the command line: every value is checked by the parser, before any work ----------------------
def _number(kind: type, text: str, test: Callable[[Any], bool], what: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if not (math.isfinite(value) and test(value)):
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
    return value


def positive_int(text: str) -> int:
    return _number(int, text, lambda v: v > 0, "a positive integer")


def nonnegative_int(text: str) -> int:
    return _number(int, text, lambda v: v >= 0, "an integer >= 0")


def positive_float(text: str) -> float:
    return _number(float, text, lambda v: v > 0, "a positive number")


def n_jobs(text: str) -> int:
    """scikit-learn's ``n_jobs``: a positive count, or -1 for every core."""
    value = _number(int, text, lambda v: v > 0 or v == -1, "a positive number of workers or -1 (all cores)")
    return default_workers() if value == -1 else value


def output_folder(text: str) -> Path:
    """An absolute output folder that exists or can be made, and can be written to."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the output folder is empty: give a folder name")
    path = Path(text).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a file, not a folder")
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write into {probe}")
    return path


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Show an option's default only when it has a real one not already named in its help."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every experiment has."""
    p = argparse.ArgumentParser(
        prog=f"python -m experiments.{name}", description=description, formatter_class=_HelpFormatter
    )
    p.add_argument("--out", type=output_folder, default=Path("runs") / name, help="output folder")
    p.add_argument("--quick", action="store_true", help="a reduced smoke run that takes seconds")
    p.add_argument("--plot-only", action="store_true", help="redraw figures and report from saved results")
    p.add_argument(
        "--workers", type=n_jobs, default=None, help="training processes; -1 or default: all cores"
    )
    p.add_argument("--scheduler", metavar="ADDRESS", help="run the trainings on this Dask scheduler")
    p.add_argument("--data-seed", type=nonnegative_int, default=0, help="seed of the train/validation split")
    return p


# ---- data --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Data:
    """A stratified train / validation split of the 60000 official training images.

    ``X_*`` float32 rows (normalised as asked), ``images_*`` the untouched uint8 28x28 images,
    ``y_*`` int64 labels. ``scaler`` holds the per-pixel statistics, fitted on the train part
    only (None for raw pixels). With ``n_val=0`` the train part is all 60000 images (the refit
    of a final model) and the validation arrays are empty.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    images_train: np.ndarray
    images_val: np.ndarray
    normalisation: str
    scaler: Standardizer | None


def _subset(y: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    return np.arange(len(y)) if n is None or n >= len(y) else np.sort(stratified_subsample(y, n, rng=seed))


@functools.lru_cache(maxsize=6)
def load_data(
    normalisation: str = "standardise",
    n_train: int | None = None,
    n_val: int | None = None,
    data_seed: int = 0,
) -> Data:
    """Fashion-MNIST's training images split into train / validation, stratified and seeded.

    The validation part is 10000 images (``n_val`` fewer, stratified; 0 for none); ``n_train``
    keeps a stratified subset of the train part. ``normalisation``: ``"raw"`` pixels in [0, 1],
    ``"centre"`` (minus the per-pixel train mean) or ``"standardise"`` (also divided by the
    per-pixel train std). Cached per process, so a worker loads once for all its trainings.
    """
    if normalisation not in ("raw", "centre", "standardise"):
        raise ValueError(f"unknown normalisation {normalisation!r}: use 'raw', 'centre' or 'standardise'")
    (images, labels), _ = load_fashion_mnist()
    labels = labels.astype(np.int64)
    if n_val == 0:
        train_idx, val_idx = np.arange(len(labels)), np.arange(0)
    else:
        train_idx, val_idx = stratified_split(labels, 10_000, rng=data_seed)
        val_idx = val_idx[_subset(labels[val_idx], n_val, data_seed)]
    train_idx = train_idx[_subset(labels[train_idx], n_train, data_seed)]
    X_train = scale_pixels(images[train_idx])
    X_val = scale_pixels(images[val_idx]) if len(val_idx) else X_train[:0]  # (0, 784): no validation
    scaler = None
    if normalisation != "raw":
        scaler = Standardizer(with_std=normalisation == "standardise").fit(X_train)
        X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)
    return Data(X_train, labels[train_idx], X_val, labels[val_idx], images[train_idx], images[val_idx],
                normalisation, scaler)  # fmt: skip


def test_set(data: Data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The official 10000 test images ``(X, y, images)``, normalised with ``data``'s train statistics.

    The one door to the test set: an experiment calls it once, for its final model.
    """
    _, (images, labels) = load_fashion_mnist()
    X = scale_pixels(images)
    return (X if data.scaler is None else data.scaler.transform(X)), labels.astype(np.int64), images


# ---- seeding and run records -------------------------------------------------------------------------
STREAMS = ("weights", "order", "dropout")


def seed_streams(seed: int) -> dict[str, np.random.Generator]:
    """One training's seed split into independent named streams: ``weights`` (initialisation),
    ``order`` (the example order of every epoch) and ``dropout`` (its masks).

    ``np.random.SeedSequence(seed).spawn`` gives streams that are statistically independent of
    each other and the same on every machine, so the weights of seed 3 do not change when the
    batch size (and so the number of order draws) does.
    """
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)}


def record(history: History, *, steps: bool = False, **extra: Any) -> dict[str, Any]:
    """What a training keeps of its ``History`` (JSON-able): the curves, the epoch times, the best
    epoch and why it stopped; the loss of every update with ``steps=True``; plus ``extra``."""
    rec = {
        "history": history.history,
        "epoch_time": history.epoch_time,
        "steps_per_epoch": history.params.get("steps_per_epoch"),
        "best_epoch": history.best_epoch if history.best_epoch is not None else len(history.epoch) - 1,
        "stop_reason": history.stop_reason,
        "diverged": history.diverged,
    }
    if steps:
        rec["step_loss"] = list(history.step_loss)
    return {**rec, **extra}


# ---- many trainings -----------------------------------------------------------------------------------
def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C and SIGTERM to the main process, which stops them itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Study:
    """One experiment's run: its output folder, settings and the trainings' executor.

    ``study.train(train_one, tasks)`` runs ``train_one(**task)`` for every ``{key: task}`` on the
    local pool (``--workers``, one BLAS thread each) or a Dask cluster (``--scheduler``), saves
    each record under ``out/runs`` as it finishes (so a stopped run resumes), and returns
    ``{key: record}``. Arrays in a record's ``"arrays"`` entry come back and are saved beside it.
    """

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        self.name, self.args, self.out = name, args, Path(args.out)
        self.quick = args.quick
        self._executor: Any = None
        self._client: Any = None
        self.train_seconds = 0.0

    @property
    def executor(self) -> Any:
        if self._executor is None:
            if self.args.scheduler:
                self._client = connect(self.args.scheduler)
                self._executor = self._client.get_executor()
            else:
                self._executor = process_pool(
                    self.args.workers or default_workers(), initializer=_ignore_interrupts
                )
        return self._executor

    def train(self, fn: Callable[..., dict], tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
        sweep = run_sweep(fn, tasks, self.out / "runs", executor=self.executor)
        if sweep.failures:
            key, text = next(iter(sweep.failures.items()))
            raise StudyError(
                f"{len(sweep.failures)} of {len(tasks)} trainings failed; {key}: "
                f"{text.strip().splitlines()[-1]}\n(tracebacks in {self.out / 'runs'}/<key>.error.json)"
            )
        self.train_seconds += sum(s for s in sweep.seconds.values() if s)
        return sweep.results

    def save_arrays(self, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Arrays that the figures need (final weights, test predictions) as ``out/<name>.npz``."""
        save_npz(self.out / f"{name}.npz", dict(arrays))

    def close(self, cancel: bool = False) -> None:
        if self._client is not None:
            self._client.close()
        elif self._executor is not None:
            if cancel:
                for child in multiprocessing.active_children():
                    child.terminate()
            self._executor.shutdown(wait=True, cancel_futures=True)
        self._executor = self._client = None


def connect(address: str) -> Any:
    """A client of the Dask scheduler at ``address``, or a one-line error within seconds."""
    try:
        from dask.distributed import Client
    except ImportError:
        raise StudyError("--scheduler needs dask: pip install 'minidl[cluster]'") from None
    try:
        return Client(address, timeout="5s")
    except (OSError, TimeoutError) as err:
        raise StudyError(f"cannot reach the Dask scheduler at {address}: {err}") from None


def load_arrays(out: Path, name: str) -> dict[str, np.ndarray]:
    path = Path(out) / f"{name}.npz"
    if not path.exists():
        raise ResultsMissing(f"{path} is missing: run the experiment without --plot-only first")
    return load_npz(path)


# ---- the report: a Markdown template filled from the metrics -----------------------------------------
def fill(name: str, values: Mapping[str, Any]) -> str:
    """``reports/<name>.md`` with every ``$placeholder`` replaced; a missing value is an error."""
    template = string.Template((REPORTS / f"{name}.md").read_text(encoding="utf-8"))
    try:
        return template.substitute(values)
    except KeyError as err:
        raise KeyError(f"reports/{name}.md: no value for ${err.args[0]}") from None
    except ValueError as err:
        raise ValueError(f"reports/{name}.md: {err}") from None


def fmt(value: Any, digits: int = 4) -> str:
    """A number for a table: floats rounded, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def pm(values: Sequence[float], digits: int = 4) -> str:
    """``mean ± std`` (population std) of a list of numbers."""
    a = np.asarray(values, dtype=float)
    return f"{a.mean():.{digits}f} ± {a.std():.{digits}f}"


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 4) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v, digits) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# ---- main: command line -> run -> results.json -> metrics.json -> figures -> report.md -------------
@contextlib.contextmanager
def lock(out: Path) -> Iterator[None]:
    """One run at a time per output folder: a second one refuses at once, naming the first."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / ".lock"
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise StudyError(f"{out} is in use by {holder}: wait for it, or pass another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} ({' '.join(sys.argv)[:200]})")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)


def read_results(out: Path) -> dict[str, Any]:
    path = out / "results.json"
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ResultsMissing(f"no results in {out}: run the experiment without --plot-only first") from None
    except ValueError as err:
        raise ResultsMissing(f"{path} is damaged ({err}): run the experiment without --plot-only") from None


def _remove_stale_temporaries(out: Path) -> None:
    """Temporary files left by a killed write (``.<name>.<random>.tmp``) are of no use."""
    for tmp in out.rglob(".*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()


def main(experiment: ModuleType, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run ``experiment`` as its command line asks; return its metrics."""
    name = experiment.NAME
    p = parser(name, (experiment.__doc__ or name).strip().splitlines()[0])
    if hasattr(experiment, "add_arguments"):
        experiment.add_arguments(p)
    args = p.parse_args(argv)
    if args.scheduler and args.workers:
        p.error("--workers sizes the local pool; with --scheduler the cluster's workers run the trainings")
    settings = dict(experiment.QUICK if args.quick else experiment.FULL)
    if hasattr(experiment, "apply_arguments"):
        settings = experiment.apply_arguments(settings, args)
    out: Path = args.out
    try:
        with lock(out):
            _remove_stale_temporaries(out)
            if not args.plot_only:
                _check_data()
                study = Study(name, args)
                started = time.perf_counter()
                try:
                    results = experiment.run(study, settings)
                except BaseException as err:
                    study.close(cancel=isinstance(err, KeyboardInterrupt))
                    raise
                study.close()
                results["quick"], results["settings"] = args.quick, settings
                results["seconds"] = time.perf_counter() - started
                write_json_atomic(out / "results.json", results)
            results = read_results(out)
            metrics = experiment.summarise(results)
            write_json_atomic(out / "metrics.json", metrics)
            log(f"{name}: drawing the figures")
            experiment.figures(metrics, out)
            write_text_atomic(out / "report.md", fill(name, experiment.report(metrics)))
    except KeyboardInterrupt:
        sys.stderr.write(
            f"\n{name}: stopped. Finished trainings are kept in {out / 'runs'}: the same command resumes.\n"
        )
        raise SystemExit(130) from None
    except StudyError as err:
        raise SystemExit(f"{name}: {err}") from None
    log(f"{name}: figures, metrics.json and report.md in {out}")
    if "test_accuracy" in metrics:
        print(f"{name}: test accuracy {metrics['test_accuracy']:.4f}")
    return metrics


def _check_data() -> None:
    """Load Fashion-MNIST once here, so a missing data set is one clear message, not one per worker."""
    try:
        load_fashion_mnist()
    except DatasetError as err:
        raise StudyError(str(err)) from None


def main_for(module_name: str) -> Callable[[Sequence[str] | None], dict[str, Any]]:
    """``main`` of the experiment module ``module_name`` (``main = study.main_for(__name__)``)."""

    def experiment_main(argv: Sequence[str] | None = None) -> dict[str, Any]:
        module = sys.modules[module_name]
        if module_name == "__main__":  # python -m experiments.<name>: use it by its own name, so
            module = importlib.import_module(f"experiments.{module.NAME}")  # workers find train_one
        return main(module, argv)

    return experiment_main
