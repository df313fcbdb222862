"""The study kit: everything the experiments share, written once.

Every experiment is a short module with the same five parts, read top to bottom:

    FULL, QUICK                      its settings, as data (``--quick`` picks QUICK)
    train_one(**task) -> record      one training, run in a worker process (top level of the module)
    run(study, settings) -> results  the trainings, in stages, through ``study.train``; the final
                                     model scores the test set once, in one visible place
    summarise(results) -> metrics    plain numbers from the saved results (no matplotlib)
    figures(metrics, out)            the PNG figures, from the metrics (and saved arrays)
    report(metrics) -> values        the sentences and tables of its Markdown template
                                     ``reports/<name>.md``, which also reads the metrics directly:
                                     ``${models.cnn.test_accuracy:.4f}`` (see ``fill``)

and ends with ``main = study.main_for(__name__)``, which wires them: the command line (every value
checked before any work; ``--set KEY=VALUE`` changes any setting), a lock on the output folder,
run -> ``results.json``, summarise -> ``metrics.json``, figures, ``report.md``. ``--plot-only``
redraws the last three from the saved results. Randomness: one integer seed per training, split
by ``seed_streams`` (``minidl._rng``) into independent streams: ``weights``, ``order``, ``dropout``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import importlib
import json
import math
import multiprocessing
import re
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from minidl._io import (
    FolderInUse,
    folder_lock,
    markdown_table,
    remove_stale_temporaries,
    write_json_atomic,
    write_text_atomic,
)
from minidl._rng import seed_streams  # noqa: F401 (for the experiments: one seed, named streams)
from minidl.data import Standardizer, scale_pixels
from minidl.datasets import CLASS_NAMES, DatasetError, load_fashion_mnist  # noqa: F401
from minidl.model import load_npz, save_npz
from minidl.model_selection import stratified_split, stratified_subsample
from minidl.sweep import SweepConflict, dask_client, default_workers, process_pool, run_sweep
from minidl.train import History

_START = time.perf_counter()
REPORTS = Path(__file__).with_name("reports")


class StudyError(Exception):
    """A study cannot go on; its message is shown alone, without a traceback."""


class ResultsMissing(StudyError):
    """No usable results in the output folder (``--plot-only`` before any run)."""


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
    """An absolute output folder that exists or can be made: tried, since mode bits say yes to root."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the output folder is empty: give a folder name")
    path = Path(text).expanduser().resolve()
    probe = next(p for p in (path, *path.parents) if p.exists())  # the folder, or where it would be made
    if not probe.is_dir():
        raise argparse.ArgumentTypeError(f"{probe} is a file, not a folder")
    try:
        tempfile.TemporaryFile(dir=probe).close()
    except OSError as err:
        raise argparse.ArgumentTypeError(f"cannot write into {probe} ({err.strerror})") from None
    return path


def setting(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` of ``--set``; VALUE is read as JSON (``0.1``, ``[10, 50]``, ``true``) or else text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    with contextlib.suppress(ValueError):
        return key.strip(), json.loads(value)
    return key.strip(), value


def _refused(value: Any, default: Any) -> str | None:
    """Why ``value`` cannot replace a setting whose default is ``default`` (None if it can)."""
    if isinstance(default, bool) or not isinstance(default, int | float):
        same_kind = default is None or type(value) is type(default)
        return None if same_kind else f"must be {type(default).__name__}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "must be a number"
    if isinstance(default, int) and value % 1:
        return "must be a whole number"
    if value < 0 or (value == 0 < default):
        return "must be > 0" if default > 0 else "must be >= 0"
    return None


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every experiment has."""
    p = argparse.ArgumentParser(prog=f"python -m experiments.{name}", description=description)
    out_help, data_seed_help = f"output folder (default: runs/{name})", "seed of the train/validation split"
    p.add_argument("--out", type=output_folder, default=Path("runs") / name, help=out_help)
    p.add_argument("--quick", action="store_true", help="a reduced smoke run that takes seconds")
    p.add_argument("--plot-only", action="store_true", help="redraw figures and report from saved results")
    p.add_argument("--workers", type=n_jobs, help="training processes; -1 or default: all cores")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run the trainings on this Dask scheduler")
    p.add_argument("--set", type=setting, action="append", default=[], metavar="KEY=VALUE",
                   help="change one of the settings (shown in results.json), e.g. --set seeds=3")  # fmt: skip
    p.add_argument("--data-seed", type=nonnegative_int, default=0, help=data_seed_help + " (default: 0)")
    return p


# ---- data --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Data:
    """A stratified train / validation split of the 60000 official training images: ``X_*``
    float32 rows (normalised as asked), ``images_*`` the uint8 28x28 images, ``y_*`` int64 labels,
    ``scaler`` the per-pixel statistics of the train part (None for raw pixels). With ``n_val=0``
    the train part is all 60000 images (a final model's refit) and the validation part is empty."""

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
def load_data(normalisation: str = "standardise", n_train: int | None = None, n_val: int | None = None,
              data_seed: int = 0) -> Data:  # fmt: skip
    """Fashion-MNIST's training images split into train / validation (10000 images, ``n_val`` of
    them if given, 0 for none), stratified and seeded; ``n_train`` keeps a stratified subset of the
    train part. ``normalisation``: ``"raw"`` pixels in [0, 1], ``"centre"`` (minus the per-pixel
    train mean) or ``"standardise"`` (also divided by the per-pixel std). Cached per process."""
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
    X_train, X_val = scale_pixels(images[train_idx]), scale_pixels(images[val_idx])
    scaler = None
    if normalisation != "raw":
        scaler = Standardizer(with_std=normalisation == "standardise").fit(X_train)
        X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)
    return Data(X_train, labels[train_idx], X_val, labels[val_idx], images[train_idx], images[val_idx],
                normalisation, scaler)  # fmt: skip


def test_set(data: Data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The official 10000 test images ``(X, y, images)``, normalised with ``data``'s train statistics:
    the one door to the test set, which an experiment opens once, for its final model."""
    _, (images, labels) = load_fashion_mnist()
    X = scale_pixels(images)
    return (X if data.scaler is None else data.scaler.transform(X)), labels.astype(np.int64), images


# ---- run records and many trainings -------------------------------------------------------------------
def record(history: History, *, steps: bool = False, **extra: Any) -> dict[str, Any]:
    """A training's JSON-able record: its curves, epoch times, best epoch, why it stopped (with
    ``steps=True`` the loss of every update too), plus ``extra``."""
    best = len(history.epoch) - 1 if history.best_epoch is None else history.best_epoch
    rec = {"history": history.history, "epoch_time": history.epoch_time, "stop_reason": history.stop_reason,
           "steps_per_epoch": history.params.get("steps_per_epoch"), "diverged": history.diverged,
           "best_epoch": best}  # fmt: skip
    return {**rec, **({"step_loss": list(history.step_loss)} if steps else {}), **extra}


def _ignore_interrupts() -> None:
    """Workers leave Ctrl-C to the main process, which stops them itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Study:
    """One experiment's run. ``study.train(train_one, {key: task})`` runs every ``train_one(**task)``
    on the local pool (``--workers``, one BLAS thread each) or a Dask cluster (``--scheduler``),
    saves each record in ``out/runs`` as it finishes (a stopped run resumes) and returns
    ``{key: record}``; a record's ``"arrays"`` come back and are saved beside it."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        self.name, self.args, self.out, self.quick = name, args, Path(args.out), args.quick
        self._executor: Any = None
        self._client: Any = None
        self.train_seconds = 0.0  # what the trainings took, resumed ones included

    @property
    def executor(self) -> Any:
        if self._executor is None:
            if self.args.scheduler:
                try:
                    self._client = dask_client(self.args.scheduler)
                except (ImportError, ConnectionError) as err:
                    raise StudyError(str(err)) from None
                self._executor = self._client.get_executor()
            else:
                workers = self.args.workers or default_workers()
                self._executor = process_pool(workers, initializer=_ignore_interrupts)
        return self._executor

    def train(self, fn: Callable[..., dict], tasks: Mapping[str, Mapping[str, Any]]) -> dict[str, dict]:
        try:
            sweep = run_sweep(fn, tasks, self.out / "runs", executor=self.executor)
        except SweepConflict as err:
            keys = ", ".join(err.conflicts)
            message = f"{self.out} holds the results of other settings ({keys}); they are kept: "
            raise StudyError(message + "pass another --out for these settings") from None
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


def load_arrays(out: Path, name: str) -> dict[str, np.ndarray]:
    path = Path(out) / f"{name}.npz"
    if not path.exists():
        raise ResultsMissing(f"{path} is missing: run the experiment without --plot-only first")
    return load_npz(path)


# ---- the report: a Markdown template filled from the metrics -----------------------------------------
_PLACEHOLDER = re.compile(r"\$(?:(\$)|([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z0-9_.]+)(?::([^}]*))?\})")


def fill(name: str, values: Mapping[str, Any]) -> str:
    """``reports/<name>.md`` with its placeholders filled from ``values``; a missing one is an error.
    ``$word`` is ``values["word"]``; ``${a.b.0:.4f}`` follows keys and list positions into nested
    values and formats as ``format()`` does; ``$$`` is a dollar sign."""
    text = (REPORTS / f"{name}.md").read_text(encoding="utf-8")

    def value(match: re.Match) -> str:
        dollar, word, path, spec = match.groups()
        if dollar:
            return "$"
        found: Any = values
        for part in (word or path).split("."):
            try:
                found = found[int(part)] if isinstance(found, list) else found[part]
            except (KeyError, IndexError, ValueError, TypeError):
                raise KeyError(f"reports/{name}.md: no value for {match.group(0)}") from None
        return format(found, spec or "")

    return _PLACEHOLDER.sub(value, text)


md_table = markdown_table  # a Markdown table: floats with ``digits`` decimals, None as a dash


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


# ---- main: command line -> run -> results.json -> metrics.json -> figures -> report.md -------------
def lock(out: Path) -> contextlib.AbstractContextManager:
    """One run at a time per output folder: a second one refuses at once, naming the first."""
    return folder_lock(out, " ".join(sys.argv))


def read_results(out: Path) -> dict[str, Any]:
    path = out / "results.json"
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ResultsMissing(f"no results in {out}: run the experiment without --plot-only first") from None
    except ValueError as err:
        raise ResultsMissing(f"{path} is damaged ({err}): run the experiment without --plot-only") from None


def train(experiment: ModuleType, settings: dict, args: argparse.Namespace) -> dict[str, Any]:
    """The trainings: ``experiment.run`` on a fresh ``Study``, then ``results.json`` in ``args.out``."""
    try:  # here, so a missing data set is one clear message, not one failure per worker
        load_fashion_mnist()
    except DatasetError as err:
        raise StudyError(str(err)) from None
    study = Study(experiment.NAME, args)
    started = time.perf_counter()
    try:
        results = experiment.run(study, settings)
    except BaseException as err:
        study.close(cancel=isinstance(err, KeyboardInterrupt))
        raise
    study.close()
    results.update(quick=args.quick, settings=settings, seconds=time.perf_counter() - started)
    write_json_atomic(Path(args.out) / "results.json", results)
    return results


def draw(experiment: ModuleType, out: Path) -> dict[str, Any]:
    """From the saved results: ``metrics.json``, the figures and ``report.md``; returns the metrics."""
    metrics = experiment.summarise(read_results(out))
    write_json_atomic(out / "metrics.json", metrics)
    log(f"{experiment.NAME}: drawing the figures")
    experiment.figures(metrics, out)
    write_text_atomic(out / "report.md", report_text(experiment, metrics))
    return metrics


def report_text(experiment: ModuleType, metrics: dict[str, Any]) -> str:
    """The filled report template: it reads the metrics and ``experiment.report``'s sentences."""
    return fill(experiment.NAME, {**metrics, **experiment.report(metrics)})


def arguments(experiment: ModuleType, argv: Sequence[str] | None = None) -> tuple[argparse.Namespace, dict]:
    """The parsed command line (every value checked) and the settings it asks for."""
    p = parser(experiment.NAME, (experiment.__doc__ or experiment.NAME).strip().splitlines()[0])
    if hasattr(experiment, "add_arguments"):
        experiment.add_arguments(p)
    args = p.parse_args(argv)
    if args.scheduler and args.workers:
        p.error("--workers sizes the local pool; with --scheduler the cluster's workers run the trainings")
    settings = dict(experiment.QUICK if args.quick else experiment.FULL)
    for key, value in args.set:
        if key not in settings:
            p.error(f"--set {key}: no such setting; there are {', '.join(settings)}")
        if why := _refused(value, settings[key]):
            p.error(f"--set {key}={value!r}: {key} {why} (it is {settings[key]!r})")
        settings[key] = value
    if hasattr(experiment, "apply_arguments"):
        settings = experiment.apply_arguments(settings, args)
    return args, settings


def notebook_arguments(experiment: ModuleType, settings: dict, quick: bool) -> argparse.Namespace:
    """A notebook's arguments: folder ``runs/<name>/<settings hash>``, so changed settings train anew."""
    tag = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    out = ["--out", str(Path("runs") / experiment.NAME / tag)]
    return arguments(experiment, out + (["--quick"] if quick else []))[0]


def main(experiment: ModuleType, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run ``experiment`` as its command line asks; return its metrics."""
    args, settings = arguments(experiment, argv)
    name, out = experiment.NAME, args.out
    try:
        with lock(out):
            remove_stale_temporaries(out, out / "runs")  # left by a killed write
            if not args.plot_only:
                train(experiment, settings, args)
            metrics = draw(experiment, out)
    except KeyboardInterrupt:
        print(f"\n{name}: stopped. Finished trainings are kept in {out / 'runs'}: the same command resumes.",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(130) from None
    except (StudyError, FolderInUse) as err:
        suffix = ": wait for it, or pass another --out" if isinstance(err, FolderInUse) else ""
        raise SystemExit(f"{name}: {err}{suffix}") from None
    log(f"{name}: figures, metrics.json and report.md in {out}")
    if "test_accuracy" in metrics:
        print(f"{name}: test accuracy {metrics['test_accuracy']:.4f}")
    return metrics


def main_for(module_name: str) -> Callable[[Sequence[str] | None], dict[str, Any]]:
    """``main`` of the experiment module ``module_name`` (``main = study.main_for(__name__)``)."""

    def experiment_main(argv: Sequence[str] | None = None) -> dict[str, Any]:
        module = sys.modules[module_name]
        if module_name == "__main__":  # python -m experiments.<name>: use it by its own name, so
            module = importlib.import_module(f"experiments.{module.NAME}")  # workers find train_one
        return main(module, argv)

    return experiment_main
