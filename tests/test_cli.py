"""The command line every experiment shares (``experiments/study.py``): what a wrong value, a busy or
unusable output folder, missing results or data, and Ctrl-C each do.

Most tests run a tiny experiment defined here (``FAKE``): it has the five parts of a real one, but
its trainings compute three numbers and run on threads instead of worker processes, so no test
here trains a model. Every error is checked by its exact text: the text is what a user reads.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import minidl.datasets.fashion_mnist as fashion_mnist
from experiments import study
from minidl._io import atomic_write
from minidl.sweep import default_workers

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}  # subprocesses import this checkout
LOAD_DATA = study.load_fashion_mnist  # the real loader, for the data tests (the fixture turns it off)

FAKE = textwrap.dedent(
    '''
    """A tiny experiment for the command-line tests: three numbers per seed, no data, no model."""
    import numpy as np

    from experiments import study
    from minidl._io import write_text_atomic

    NAME = "fake"
    FIGURES = ("sums",)
    FULL = {"seeds": 2, "lr": 0.5}
    QUICK = {**FULL, "seeds": 1}
    CALLS = []  # the (seed, lr) of every training that really ran


    def add_arguments(parser):
        parser.add_argument("--lr", type=study.positive_float, help="the learning rate")


    def apply_arguments(settings, args):
        return {**settings, "lr": args.lr} if args.lr is not None else settings


    def train_one(seed, lr):
        CALLS.append((seed, lr))
        return {"score": lr * (seed + 1), "arrays": {"w": np.full(3, lr * (seed + 1))}}


    def run(st, s):
        tasks = {f"seed{i}": {"seed": i, "lr": s["lr"]} for i in range(s["seeds"])}
        runs = st.train(train_one, tasks)
        st.save_arrays("final", {key: r.pop("arrays")["w"] for key, r in runs.items()})
        return {"runs": runs}


    def summarise(R):
        scores = [r["score"] for r in R["runs"].values()]
        return {"test_accuracy": max(scores), "scores": scores, "settings": R["settings"]}


    def figures(M, out):
        w = study.load_arrays(out, "final")
        write_text_atomic(out / "sums.txt", " ".join(str(w[key].sum()) for key in sorted(w)))


    def report(M):
        return {"n_runs": len(M["scores"])}
    '''
)
TEMPLATE = "# A tiny experiment\n\nBest score ${test_accuracy:.2f} of $n_runs runs.\n"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The tiny experiment, its report template, and a pool of threads in place of processes
    (``fake.POOLS`` lists the size of every pool made). The current folder is an empty
    ``tmp_path / "cwd"``, so a test sees anything written there by mistake."""
    module = types.ModuleType("fake_experiment")
    exec(compile(FAKE, "fake_experiment.py", "exec"), module.__dict__)
    module.POOLS = []

    def thread_pool(workers: int, initializer=None) -> ThreadPoolExecutor:
        module.POOLS.append(workers)
        return ThreadPoolExecutor(workers)

    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "fake.md").write_text(TEMPLATE, encoding="utf-8")
    monkeypatch.setattr(study, "REPORTS", tmp_path / "reports")
    monkeypatch.setattr(study, "process_pool", thread_pool)
    monkeypatch.setattr(study, "load_fashion_mnist", lambda: None)  # the data check before the trainings
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return module


def run(experiment: types.ModuleType, *argv: str) -> tuple[object, dict | None]:
    """``study.main(experiment, argv)``: ``(0, metrics)``, or ``(exit code or message, None)``."""
    try:
        return 0, study.main(experiment, list(argv))
    except SystemExit as stop:
        return stop.code, None


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (the lock file aside) with its bytes."""
    found = (p for p in folder.rglob("*") if p.is_file() and p.name != ".lock")
    return {str(p.relative_to(folder)): p.read_bytes() for p in found}


def parser_error(capsys: pytest.CaptureFixture) -> str:
    """The one error line argparse printed under its usage lines."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0].split("error: ", 1)[1]


# ---- one run at a time per output folder --------------------------------------------------------------
HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from experiments import study

    with study.lock(Path(sys.argv[1])):
        print("locked", flush=True)
        sys.stdin.read()  # holds the folder until the test closes stdin or kills this process
    """
)


def test_a_second_run_into_a_folder_in_use_refuses_at_once_naming_the_first(fake, tmp_path, monkeypatch):
    out = tmp_path / "out"
    command = [sys.executable, "-c", HOLDER, str(out)]
    holder = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert holder.stdout.readline() == "locked\n"
        code, _ = run(fake, "--out", str(out), "--lr", "0.25")
        assert code == f"fake: {out} is in use by process {holder.pid} (-c {out}): " + (
            "wait for it, or pass another --out"
        )
        assert fake.CALLS == [] and fake.POOLS == []  # refused before any work
        assert files(out) == {}
    finally:
        holder.kill()  # a run that dies holds nothing: the system drops its lock
        holder.wait()
    assert (out / ".lock").read_text() == f"process {holder.pid} (-c {out})"  # the dead run's name stays
    seen = []
    monkeypatch.setattr(fake, "figures", lambda M, out: seen.append((out / ".lock").read_text()))
    code, metrics = run(fake, "--out", str(out), "--lr", "0.25")
    assert code == 0 and metrics["test_accuracy"] == 0.5
    assert seen == [f"process {os.getpid()} ({' '.join(sys.argv)[:200]})"]  # this run's name, alone
    assert (out / ".lock").read_text() == ""  # and none once it is done


# ---- --out: a one-line error before any work, nothing written --------------------------------------
def _unusable(tmp_path: Path, case: str) -> tuple[str, str]:
    """``(--out value, the error it gets)`` for each kind of output folder that cannot be used."""
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    if case == "empty":
        return "", "the output folder is empty: give a folder name"
    if case == "blank":
        return "  ", "the output folder is empty: give a folder name"
    if case == "file":
        return str(a_file), f"{a_file} is a file, not a folder"
    if case == "under a file":
        return str(a_file / "out"), f"{a_file} is a file, not a folder"
    if case == "read-only":
        read_only = tmp_path / "read-only"
        read_only.mkdir(mode=0o555)
        return str(read_only / "out"), f"cannot write into {read_only} (Permission denied)"
    # Nothing can be made in /proc, whoever asks, though its mode bits say "writable" to root. The
    # reason is the system's (here "No such file or directory"), so only its presence is checked.
    return "/proc/minidl-out", "cannot write into /proc ("


@pytest.mark.parametrize("case", ["empty", "blank", "file", "under a file", "read-only", "proc"])
def test_an_unusable_out_is_one_line_before_any_work(fake, tmp_path, capsys, case):
    if case == "read-only" and os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder: the /proc case checks the same for root")
    if case == "proc" and not Path("/proc/self").exists():
        pytest.skip("no /proc on this system")
    value, message = _unusable(tmp_path, case)
    code, _ = run(fake, "--out", value)
    assert code == 2
    error, expected = parser_error(capsys), f"argument --out: {message}"
    assert error == expected or (case == "proc" and error.startswith(expected) and error.endswith(")"))
    assert fake.CALLS == [] and fake.POOLS == []
    assert list(Path.cwd().iterdir()) == []  # nothing written into the current folder
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "read-only") == ["a_file", "cwd", "reports"]


def test_a_folder_that_can_be_made_is_accepted_and_nothing_is_made_while_parsing(fake, tmp_path):
    args, _ = study.arguments(fake, ["--out", "new/deeper"])
    assert args.out == tmp_path / "cwd" / "new" / "deeper"  # absolute: the same folder from anywhere
    assert list(Path.cwd().iterdir()) == []  # made by the run (under its lock), not by the parser


# ---- --workers: scikit-learn's n_jobs ----------------------------------------------------------------
@pytest.mark.parametrize(("value", "workers"), [("1", 1), ("3", 3), ("-1", default_workers())])
def test_workers_is_a_count_or_minus_one_for_every_core(fake, value, workers):
    args, _ = study.arguments(fake, ["--workers", value])
    assert args.workers == workers
    code, _ = run(fake, "--workers", value, "--out", "out")
    assert code == 0 and fake.POOLS == [workers]


@pytest.mark.parametrize("value", ["0", "-2", "1.5", "all"])
def test_other_workers_values_are_refused(fake, capsys, value):
    code, _ = run(fake, "--workers", value, "--out", "out")
    assert code == 2
    message = f"argument --workers: {value!r} is not a positive number of workers or -1 (all cores)"
    assert parser_error(capsys) == message
    assert list(Path.cwd().iterdir()) == []


def test_workers_with_a_scheduler_is_refused(fake, capsys):
    code, _ = run(fake, "--workers", "2", "--scheduler", "tcp://127.0.0.1:8786", "--out", "out")
    assert code == 2
    assert parser_error(capsys) == (
        "--workers sizes the local pool; with --scheduler the cluster's workers run the trainings"
    )
    assert list(Path.cwd().iterdir()) == []


# ---- numbers: refused by the parser, never replaced by a default -----------------------------------
NUMBER_TYPES = {
    study.positive_int: ("a positive integer", ["0", "-3", "1.5", "1e3", "nan", ""], {"1": 1, "+7": 7}),
    study.nonnegative_int: ("an integer >= 0", ["-1", "0.5", "x"], {"0": 0, "42": 42}),
    study.positive_float: ("a positive number", ["0", "-1e-3", "1e-400", "nan", "inf", "-inf", "lr"],
                           {"1e-3": 1e-3, "0.5": 0.5, "3": 3.0}),
}  # fmt: skip


@pytest.mark.parametrize(
    ("kind", "text"), [(kind, text) for kind, (_, bad, _) in NUMBER_TYPES.items() for text in bad]
)
def test_the_number_types_refuse_what_they_do_not_mean(kind, text):
    with pytest.raises(argparse.ArgumentTypeError) as err:
        kind(text)
    assert str(err.value) == f"{text!r} is not {NUMBER_TYPES[kind][0]}"


@pytest.mark.parametrize("kind", list(NUMBER_TYPES))
def test_the_number_types_keep_what_they_mean(kind):
    for text, value in NUMBER_TYPES[kind][2].items():
        assert kind(text) == value and type(kind(text)) is type(value)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--lr", "0"], "argument --lr: '0' is not a positive number"),
        (["--lr", "-0.1"], "argument --lr: '-0.1' is not a positive number"),
        (["--data-seed", "-1"], "argument --data-seed: '-1' is not an integer >= 0"),
    ],
)
def test_an_experiment_option_with_an_invalid_value_is_refused(fake, capsys, argv, message):
    code, _ = run(fake, *argv, "--out", "out")
    assert code == 2
    assert parser_error(capsys) == message
    assert fake.CALLS == [] and list(Path.cwd().iterdir()) == []


def test_cnn_epochs_and_data_seed_are_checked_and_kept(capsys):
    from experiments import cnn

    for argv, message in [
        (["--epochs", "0"], "argument --epochs: '0' is not a positive integer"),
        (["--epochs", "-2"], "argument --epochs: '-2' is not a positive integer"),
        (["--data-seed", "-5"], "argument --data-seed: '-5' is not an integer >= 0"),
    ]:
        with pytest.raises(SystemExit) as stop:
            study.arguments(cnn, [*argv, "--quick"])
        assert stop.value.code == 2 and parser_error(capsys) == message
    args, settings = study.arguments(cnn, ["--quick", "--epochs", "3", "--data-seed", "7"])
    assert settings == {**cnn.QUICK, "max_epochs": 3} and args.data_seed == 7
    assert study.arguments(cnn, ["--quick"])[1] == cnn.QUICK


# ---- the same folder by any name is the same results -------------------------------------------------
def test_the_same_folder_by_another_path_or_moved_resumes_without_training(fake, tmp_path):
    code, first = run(fake, "--out", "results/fake")
    assert code == 0 and sorted(fake.CALLS) == [(0, 0.5), (1, 0.5)]
    folder = tmp_path / "cwd" / "results" / "fake"
    (tmp_path / "link").symlink_to(folder)
    fake.CALLS.clear()
    for spelling in (str(folder), "./results/../results/fake/", str(tmp_path / "link")):
        assert run(fake, "--out", spelling, "--plot-only") == (0, first)
        assert run(fake, "--out", spelling) == (0, first)
    moved = tmp_path / "moved"
    folder.rename(moved)
    assert run(fake, "--out", str(moved)) == (0, first)
    assert fake.CALLS == []  # every run resumed: nothing trained again
    assert (moved / "report.md").read_text() == "# A tiny experiment\n\nBest score 1.00 of 2 runs.\n"
    assert (moved / "sums.txt").read_text() == "1.5 3.0"  # from the arrays of the resumed runs


def test_other_settings_into_a_folder_with_results_keep_them(fake, tmp_path):
    assert run(fake, "--out", "out")[0] == 0
    out = tmp_path / "cwd" / "out"
    fake.CALLS.clear()
    before = files(out)
    code, _ = run(fake, "--out", "out", "--lr", "0.25")
    assert code == (
        f"fake: {out} holds the results of other settings (seed0, seed1); "
        "they are kept: pass another --out for these settings"
    )
    assert "delete" not in code and fake.CALLS == []
    assert files(out) == before


def test_the_tasks_of_cnn_hold_no_paths(tmp_path):
    """A path in a task would make the same trainings "other settings" once the folder moves."""
    from experiments import cnn

    args, settings = study.arguments(cnn, ["--quick", "--out", str(tmp_path / "out")])
    st, asked = study.Study(cnn.NAME, args), []

    def first_stage_only(fn, tasks):
        asked.append(tasks)
        raise InterruptedError

    st.train = first_stage_only
    with pytest.raises(InterruptedError):
        cnn.run(st, settings)
    assert len(asked[0]) == 3 and str(tmp_path) not in json.dumps(asked[0])


# ---- --plot-only without usable results ---------------------------------------------------------------
def test_plot_only_on_an_empty_folder_says_to_run_first(fake, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    code, _ = run(fake, "--out", str(out), "--plot-only")
    assert code == f"fake: no results in {out}: run the experiment without --plot-only first"
    assert run(fake, "--out", str(out))[0] == 0  # the failed run left no lock behind


def test_plot_only_with_a_truncated_results_file_says_it_is_damaged(fake, tmp_path):
    out = tmp_path / "out"
    assert run(fake, "--out", str(out))[0] == 0
    text = (out / "results.json").read_text()
    (out / "results.json").write_text(text[: len(text) // 2])
    code, _ = run(fake, "--out", str(out), "--plot-only")
    assert code.startswith(f"fake: {out / 'results.json'} is damaged (")
    assert code.endswith("): run the experiment without --plot-only")
    assert "\n" not in code


def test_plot_only_without_the_saved_arrays_names_the_file(fake, tmp_path):
    out = tmp_path / "out"
    assert run(fake, "--out", str(out))[0] == 0
    (out / "final.npz").unlink()
    code, _ = run(fake, "--out", str(out), "--plot-only")
    assert code == f"fake: {out / 'final.npz'} is missing: run the experiment without --plot-only first"


# ---- a missing data set: one message, before any worker starts --------------------------------------
@pytest.fixture
def unreachable_url():
    """A loopback address where nothing listens: a bound socket that never listens refuses."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{s.getsockname()[1]}/"


def test_a_missing_data_folder_is_one_message_and_nothing_is_downloaded(
    fake, tmp_path, monkeypatch, capsys, isolated_data_env, unreachable_url
):
    monkeypatch.setattr(study, "load_fashion_mnist", LOAD_DATA)
    (tmp_path / "no-data").mkdir()
    monkeypatch.setenv("MINIDL_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("MINIDL_DATA_URL", unreachable_url)  # were a download tried, it would fail here
    code, _ = run(fake, "--out", str(tmp_path / "out"))
    first = (
        f"fake: {tmp_path / 'no-data'} (given by $MINIDL_DATA) does not hold train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (looked for .gz and "
        "uncompressed)."
    )
    assert code.splitlines()[0] == first and code.splitlines()[1].startswith("To fix it, do one of:")
    assert "download" not in capsys.readouterr().err
    assert fake.CALLS == [] and fake.POOLS == []  # no worker started, so none failed
    assert not (tmp_path / "out" / "runs").exists() and not isolated_data_env.exists()


def test_no_data_anywhere_is_one_failed_download_not_one_per_worker(
    fake, tmp_path, monkeypatch, capsys, isolated_data_env, unreachable_url
):
    monkeypatch.setattr(study, "load_fashion_mnist", LOAD_DATA)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no-debian-copy")
    monkeypatch.setenv("MINIDL_DATA_URL", unreachable_url)
    code, _ = run(fake, "--out", str(tmp_path / "out"), "--workers", "2")
    assert code.startswith(f"fake: could not download {unreachable_url}train-images-idx3-ubyte.gz (")
    assert capsys.readouterr().err.count("Fashion-MNIST not found; downloading") == 1
    assert fake.CALLS == [] and fake.POOLS == []
    assert list(isolated_data_env.rglob("*.gz")) == []  # no half download left


# ---- Ctrl-C: the same clean exit while training and while drawing -------------------------------------
@pytest.fixture
def ctrl_c_raises():
    """Ctrl-C raises KeyboardInterrupt in this process, whatever handler the test runner set."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("during", ["run", "figures"])
def test_ctrl_c_is_the_same_clean_exit_while_training_or_drawing(fake, tmp_path, monkeypatch, capsys,
                                                                 ctrl_c_raises, during):  # fmt: skip
    out = tmp_path / "out"
    part = getattr(fake, during)

    def interrupted(*args):
        part(*args)  # the trainings are done (or the first figure drawn), then Ctrl-C
        with atomic_write(out / "half.png") as f:
            f.write(b"half a figure")
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(fake, during, interrupted)
    try:
        code, _ = run(fake, "--out", str(out))
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C went through study.main as a traceback")
    assert code == 130
    assert capsys.readouterr().err.endswith(
        f"\nfake: stopped. Finished trainings are kept in {out / 'runs'}: the same command resumes.\n"
    )
    assert not (out / "half.png").exists() and list(out.rglob("*.tmp")) == []
    monkeypatch.setattr(fake, during, part)
    fake.CALLS.clear()
    assert run(fake, "--out", str(out))[0] == 0  # no lock left, and
    assert fake.CALLS == []  # the finished trainings were kept


KILLED_WRITE = textwrap.dedent(
    """
    import contextlib, os, signal, sys
    from minidl._io import atomic_write

    with contextlib.ExitStack() as files:
        for path in sys.argv[1:]:
            files.enter_context(atomic_write(path)).write(b"half a file")
        os.kill(os.getpid(), signal.SIGKILL)  # killed mid-write: no clean-up runs
    """
)


def test_the_next_run_removes_the_temporary_files_of_a_killed_write(fake, tmp_path):
    out = tmp_path / "out"
    assert run(fake, "--out", str(out))[0] == 0
    (out / "notes.tmp").write_text("not a temporary of ours")  # not hidden: kept
    before = files(out)
    targets = [out / "sums.txt", out / "runs" / "seed0.json"]
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITE, *map(str, targets)], env=ENV)
    assert killed.returncode == -signal.SIGKILL
    left = sorted(out.rglob(".*.tmp"))
    assert [p.parent for p in left] == [out, out / "runs"] and files(out) != before
    assert run(fake, "--out", str(out), "--plot-only")[0] == 0
    assert list(out.rglob(".*.tmp")) == [] and files(out) == before
