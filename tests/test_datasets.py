"""Fashion-MNIST loader and IDX parser, on the real files and on damaged copies of them.

No test touches the network or the real user cache: downloads come from a loopback
HTTP server started here, and HOME / XDG_CACHE_HOME point into tmp_path.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.datasets import (
    CLASS_NAMES,
    DatasetError,
    IDXError,
    cache_dir,
    load_fashion_mnist,
    read_idx,
)
from minidl.datasets import fashion_mnist as fm

# Published SHA-256 of the decompressed files, written out here independently of the module.
PUBLISHED_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
NAMES = list(PUBLISHED_SHA256)
FIX_HINT = "sudo apt-get install dataset-fashion-mnist"


@pytest.fixture(autouse=True)
def _isolated(isolated_data_env: Path) -> None:
    """Every test here runs with a private, empty user cache and no MINIDL_* variables."""


def authors_reader(path: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """utils/mnist_reader.py from the Fashion-MNIST repository, verbatim but for the
    final reshape from (N, 784) to (N, 28, 28)."""
    with gzip.open(path / f"{kind}-labels-idx1-ubyte.gz", "rb") as lbpath:
        labels = np.frombuffer(lbpath.read(), dtype=np.uint8, offset=8)
    with gzip.open(path / f"{kind}-images-idx3-ubyte.gz", "rb") as imgpath:
        images = np.frombuffer(imgpath.read(), dtype=np.uint8, offset=16).reshape(len(labels), 784)
    return images.reshape(-1, 28, 28), labels


@pytest.fixture(scope="module")
def reference(fashion_mnist_dir: Path):
    return authors_reader(fashion_mnist_dir, "train"), authors_reader(fashion_mnist_dir, "t10k")


@pytest.fixture(scope="module")
def loaded(fashion_mnist_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """load_fashion_mnist() once for the module, with its own empty cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("module-cache")))
        mp.delenv("MINIDL_DATA", raising=False)
        return load_fashion_mnist()


def assert_same(got, expected) -> None:
    for part_got, part_expected in zip(got, expected, strict=True):
        for a, b in zip(part_got, part_expected, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a, b)


def populate(directory: Path, source: Path, damaged: dict[str, bytes] | None = None) -> None:
    """Fill ``directory`` with links to the real .gz files; each name in ``damaged`` is
    written instead with the given bytes, as ``<name>.gz`` if they are gzip data, else
    uncompressed as ``<name>``."""
    damaged = damaged or {}
    directory.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        if name in damaged:
            data = damaged[name]
            (directory / (f"{name}.gz" if data[:2] == b"\x1f\x8b" else name)).write_bytes(data)
        else:
            os.symlink(source / f"{name}.gz", directory / f"{name}.gz")


def payload(source: Path, name: str) -> bytes:
    return gzip.decompress((source / f"{name}.gz").read_bytes())


def dead_url() -> str:
    """A loopback URL where nothing listens, so any download attempt fails at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


# ------------------------------------------------------------------------ real files


def test_class_names() -> None:
    assert CLASS_NAMES == (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )  # fmt: skip


def test_shapes_and_dtypes(loaded) -> None:
    (X_train, y_train), (X_test, y_test) = loaded
    assert X_train.shape == (60000, 28, 28) and X_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {a.dtype for a in (X_train, y_train, X_test, y_test)} == {np.dtype(np.uint8)}
    assert X_train.flags.writeable and y_test.flags.writeable


def test_classes_are_balanced(loaded) -> None:
    (_, y_train), (_, y_test) = loaded
    assert np.bincount(y_train, minlength=11).tolist() == [6000] * 10 + [0]
    assert np.bincount(y_test, minlength=11).tolist() == [1000] * 10 + [0]


def test_same_arrays_as_the_authors_reader(loaded, reference) -> None:
    assert_same(loaded, reference)
    (X_train, y_train), (X_test, y_test) = loaded
    assert y_train[0] == 9 and CLASS_NAMES[y_train[0]] == "Ankle boot"
    assert y_test[0] == 9
    assert y_train[:5].tolist() == [9, 0, 0, 3, 0] and y_test[:5].tolist() == [9, 2, 1, 1, 6]
    assert 0 == X_train.min() < X_train.max() == 255


def test_checksums_of_the_real_files(fashion_mnist_dir: Path) -> None:
    assert fm.SHA256 == PUBLISHED_SHA256
    for name, expected in PUBLISHED_SHA256.items():
        assert hashlib.sha256(payload(fashion_mnist_dir, name)).hexdigest() == expected


def test_second_load_reads_only_the_npy_cache(
    fashion_mnist_dir: Path, reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_fashion_mnist()
    saved = sorted(p.name for p in cache_dir().glob("*.npy"))
    assert saved == sorted(f"{name}-{sha}.npy" for name, sha in PUBLISHED_SHA256.items())

    def must_not_be_called(*args, **kwargs):
        raise AssertionError("the second load decoded a file again")

    monkeypatch.setattr(fm, "_read_verified", must_not_be_called)
    second = load_fashion_mnist()
    assert_same(second, reference)
    assert second[0][0] is not first[0][0]


def test_file_changed_after_caching_is_checked_again(fashion_mnist_dir: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    populate(data_dir, fashion_mnist_dir)
    load_fashion_mnist(data_dir)  # fills the .npy cache
    labels = data_dir / "t10k-labels-idx1-ubyte.gz"
    labels.unlink()
    labels.write_bytes((fashion_mnist_dir / labels.name).read_bytes()[:-100])
    npy_time = max(p.stat().st_mtime_ns for p in cache_dir().glob("*.npy"))
    os.utime(labels, ns=(npy_time + 10**9, npy_time + 10**9))  # unambiguously newer
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz"):
        load_fashion_mnist(data_dir)


# -------------------------------------------------------------- damaged or missing files


def truncated_gz(source: Path, name: str) -> bytes:
    data = (source / f"{name}.gz").read_bytes()
    return data[: len(data) // 2]


def altered_gz(source: Path, name: str) -> bytes:
    data = bytearray(payload(source, name))
    data[-1] ^= 0xFF  # one pixel or label changed: the structure is intact, the checksum not
    return gzip.compress(bytes(data), compresslevel=1)


def truncated_raw(source: Path, name: str) -> bytes:
    return payload(source, name)[:-1]


def bad_magic_raw(source: Path, name: str) -> bytes:
    return b"\x00\x00\x08\x03" + payload(source, name)[4:]  # labels announced as images


@pytest.mark.parametrize(
    "make, name, suffix, problem",
    [
        (truncated_gz, "train-labels-idx1-ubyte", ".gz", "cannot read or decompress"),
        (altered_gz, "t10k-labels-idx1-ubyte", ".gz", "checksum mismatch"),
        (truncated_raw, "t10k-labels-idx1-ubyte", "", "truncated"),
        (bad_magic_raw, "train-labels-idx1-ubyte", "", "bad magic number 0x00000803"),
    ],
)
def test_damaged_file_is_an_error_naming_it(
    fashion_mnist_dir: Path, tmp_path: Path, make, name: str, suffix: str, problem: str
) -> None:
    data_dir = tmp_path / "data"
    populate(data_dir, fashion_mnist_dir, damaged={name: make(fashion_mnist_dir, name)})
    with pytest.raises(DatasetError) as error:
        load_fashion_mnist(data_dir)
    message = str(error.value)
    assert str(data_dir / f"{name}{suffix}") in message
    assert problem in message
    assert FIX_HINT in message and "MINIDL_DATA" in message


def test_damaged_file_in_debian_dir_is_not_skipped(
    fashion_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    debian = tmp_path / "debian"
    name = "t10k-labels-idx1-ubyte"
    populate(debian, fashion_mnist_dir, damaged={name: truncated_gz(fashion_mnist_dir, name)})
    monkeypatch.setattr(fm, "DEBIAN_DIR", debian)
    monkeypatch.setenv("MINIDL_DATA_URL", dead_url())
    with pytest.raises(DatasetError, match=f"{debian / name}.gz: cannot read or decompress"):
        load_fashion_mnist()


def test_named_directory_missing_a_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for name in NAMES[:3]:
        (data_dir / name).write_bytes(b"")
    with pytest.raises(DatasetError) as error:
        load_fashion_mnist(data_dir)
    problem, how_to_fix = str(error.value).split("\n", 1)
    assert str(data_dir) in problem and NAMES[3] in problem and NAMES[0] not in problem
    assert FIX_HINT in how_to_fix


def test_nothing_found_and_no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("MINIDL_DATA_URL", dead_url())
    with pytest.raises(DatasetError) as error:
        load_fashion_mnist()
    message = str(error.value)
    assert isinstance(error.value, OSError)  # `except OSError` around loading catches it
    assert "could not download" in message and "train-images-idx3-ubyte.gz" in message
    assert FIX_HINT in message and "MINIDL_DATA" in message
    assert not cache_dir().exists() or list(cache_dir().iterdir()) == []


# --------------------------------------------------------------- where the files are found


def test_minidl_data_overrides_the_other_places(
    fashion_mnist_dir: Path, reference, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    labels = {n: payload(fashion_mnist_dir, n) for n in NAMES if "labels" in n}
    populate(data_dir, fashion_mnist_dir, damaged=labels)  # labels stored uncompressed
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.setenv("MINIDL_DATA_URL", dead_url())
    monkeypatch.setenv("MINIDL_DATA", str(data_dir))
    assert_same(load_fashion_mnist(), reference)


def test_minidl_data_comes_before_debian_and_after_path(
    fashion_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "bad"
    name = "train-labels-idx1-ubyte"
    populate(bad, fashion_mnist_dir, damaged={name: altered_gz(fashion_mnist_dir, name)})
    monkeypatch.setenv("MINIDL_DATA", str(bad))
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_fashion_mnist()  # Debian's good copy is not used instead
    (_, y_train), _ = load_fashion_mnist(fashion_mnist_dir)  # path beats MINIDL_DATA
    assert y_train.shape == (60000,)


def test_cache_dir_follows_xdg_cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "minidl" / "fashion-mnist"
    home = tmp_path / "home"
    for unset_or_relative in (None, "", "relative/dir"):
        if unset_or_relative is None:
            monkeypatch.delenv("XDG_CACHE_HOME")
        else:
            monkeypatch.setenv("XDG_CACHE_HOME", unset_or_relative)
        assert cache_dir() == home / ".cache" / "minidl" / "fashion-mnist"


# ---------------------------------------------------------------------------- downloading


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    """A loopback HTTP server for the files in ``server.root``; ``server.requests`` lists
    the paths asked for. Debian's directory is hidden, so downloading is the only way."""
    root = tmp_path / "served"
    root.mkdir()
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_request(self, code="-", size="-"):
            requests.append(self.path)

        def log_message(self, format, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("MINIDL_DATA_URL", f"http://127.0.0.1:{httpd.server_address[1]}")
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    try:
        yield SimpleNamespace(root=root, requests=requests)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_download_into_the_cache(
    server, fashion_mnist_dir: Path, reference, capsys: pytest.CaptureFixture[str]
) -> None:
    populate(server.root, fashion_mnist_dir)
    assert_same(load_fashion_mnist(), reference)
    assert sorted(server.requests) == sorted(f"/{name}.gz" for name in NAMES)
    cache = cache_dir()
    for name in NAMES:
        downloaded = cache / f"{name}.gz"
        assert downloaded.read_bytes() == (fashion_mnist_dir / f"{name}.gz").read_bytes()
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary files
    err = capsys.readouterr().err
    assert "Downloading http://127.0.0.1" in err and "\r" not in err  # stderr is not a tty

    server.requests.clear()
    assert_same(load_fashion_mnist(), reference)  # the cache is found now
    assert server.requests == []


@pytest.mark.parametrize("make, problem", [(truncated_gz, "cannot read"), (altered_gz, "checksum")])
def test_damaged_download_leaves_nothing_behind(server, fashion_mnist_dir: Path, make, problem: str) -> None:
    name = "train-labels-idx1-ubyte"  # the second file downloaded
    populate(server.root, fashion_mnist_dir, damaged={name: make(fashion_mnist_dir, name)})
    with pytest.raises(DatasetError) as error:
        load_fashion_mnist()
    message = str(error.value)
    assert f"downloaded {os.environ['MINIDL_DATA_URL']}/{name}.gz" in message
    assert problem in message and FIX_HINT in message
    left = sorted(p.name for p in cache_dir().iterdir())
    assert left == ["train-images-idx3-ubyte.gz"]  # the good first file, nothing else


def test_damaged_cached_download_is_fetched_again_once(server, fashion_mnist_dir: Path, reference) -> None:
    name = "train-labels-idx1-ubyte"
    populate(server.root, fashion_mnist_dir)
    populate(cache_dir(), fashion_mnist_dir, damaged={name: truncated_gz(fashion_mnist_dir, name)})
    assert_same(load_fashion_mnist(), reference)
    assert server.requests == [f"/{name}.gz"]
    fresh = (cache_dir() / f"{name}.gz").read_bytes()
    assert fresh == (fashion_mnist_dir / f"{name}.gz").read_bytes()

    # If the server's copy is damaged too, the second failure is reported, not retried.
    (server.root / f"{name}.gz").unlink()
    (server.root / f"{name}.gz").write_bytes(altered_gz(fashion_mnist_dir, name))
    for p in cache_dir().glob("*.npy"):
        p.unlink()
    (cache_dir() / f"{name}.gz").write_bytes(truncated_gz(fashion_mnist_dir, name))
    server.requests.clear()
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_fashion_mnist()
    assert server.requests == [f"/{name}.gz"]


# ------------------------------------------------------------------------------ read_idx


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


@settings(max_examples=50, deadline=None)
@given(
    shape=st.lists(st.integers(0, 5), min_size=1, max_size=4),
    seed=st.integers(0, 2**32 - 1),
    compress=st.booleans(),
)
def test_read_idx_round_trip(shape: list[int], seed: int, compress: bool) -> None:
    array = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    data = idx_bytes(array)
    got = read_idx(gzip.compress(data) if compress else data, ndim=len(shape))
    assert got.dtype == np.uint8 and got.shape == tuple(shape)
    np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize(
    "data, ndim, problem",
    [
        (
            bytes([0, 0, 8, 2, 0, 0, 0, 1, 0, 0, 0, 1, 7]),
            3,
            "bad magic number 0x00000802, expected 0x00000803",
        ),
        (bytes([0, 1, 8, 1, 0, 0, 0, 1, 7]), None, "bad magic number 0x00010801"),
        (bytes([0, 0, 8, 0]), None, "bad magic number 0x00000800"),
        (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]), 1, "type code 0x0d"),
        (bytes([0, 0, 8]), 1, "too short"),
        (bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0]), 3, "ends inside the header"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2]), 1, "truncated"),
        (bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3, 4]), 1, "trailing bytes"),
        (gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]))[:-3], 1, "damaged gzip"),
    ],
)
def test_read_idx_rejects_malformed_files(
    tmp_path: Path, data: bytes, ndim: int | None, problem: str
) -> None:
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(data)
    with pytest.raises(IDXError) as error:
        read_idx(path, ndim=ndim)
    assert str(path) in str(error.value) and problem in str(error.value)
    assert isinstance(error.value, ValueError)


def test_read_idx_on_a_real_gz_file(fashion_mnist_dir: Path) -> None:
    labels = read_idx(fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz", ndim=1)
    assert labels.shape == (10000,) and labels[:3].tolist() == [9, 2, 1]


def test_class_names_match_the_pictures(loaded) -> None:
    """The names are checked against the images, not only against a list: sandals (thin straps)
    are the darkest class, and trousers have a dark gap between the legs."""
    (X_train, y_train), _ = loaded
    means = [X_train[y_train == k].mean() for k in range(10)]
    assert CLASS_NAMES[int(np.argmin(means))] == "Sandal"
    trousers = X_train[y_train == CLASS_NAMES.index("Trouser")].mean(axis=0)
    legs = trousers[16:27]
    assert legs[:, 14].mean() < 0.6 * min(legs[:, 10].mean(), legs[:, 18].mean())
