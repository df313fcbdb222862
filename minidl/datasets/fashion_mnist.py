"""Fashion-MNIST: find the four files, check them, decode them, and keep a fast copy.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017) is 70,000 greyscale 28x28 pictures of
clothes in 10 classes: 60,000 for training and 10,000 for testing, with exactly 6,000
and 1,000 pictures per class. It comes as four IDX files (see ``idx.py``), usually gzipped.

Where the files are looked for (the first place that has them wins):

    1. the ``path`` argument of ``load_fashion_mnist``
    2. the directory named by the environment variable ``MINIDL_DATA``
    3. ``/usr/share/datasets/fashion-mnist``, filled by Debian's package
       (``sudo apt-get install dataset-fashion-mnist``)
    4. the user cache, ``~/.cache/minidl/fashion-mnist`` (or ``$XDG_CACHE_HOME/minidl/...``)

A directory counts if it holds all four files, each either ``.gz`` or uncompressed. A
directory you name yourself (1 or 2) must hold them: a mistake there is reported, not
skipped. If no place has them, the four files are downloaded into the user cache from
``DEFAULT_URL`` (or ``$MINIDL_DATA_URL``); each is written under a temporary name and
renamed only once it has been checked, so an interrupted download leaves nothing behind.

Checking: the *decompressed* contents of every file must have a known SHA-256. (Checking
the ``.gz`` bytes would not work: Debian recompressed them, so they differ from the
official download while the images inside are identical.) A file that fails is an error
that names it and says how to fix it; only a damaged file in the download cache is
fetched again, once.

Fast copy: the first load decodes each file and saves the array as ``.npy`` in the user
cache, named after the checked SHA-256. Later loads read those four ``.npy`` files, which
takes a fraction of a second, as long as each is newer than the file it came from (the
rule ``make`` uses; a file edited or replaced since is checked again) and its bytes still
have the CRC-32 written beside it (``<copy>.npy.crc32``) when it was made; a copy that fails
is ignored, and rebuilt from the checked file.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
import urllib.request
import warnings
import zlib
from http.client import HTTPException
from pathlib import Path

import numpy as np

from minidl._io import atomic_write
from minidl._progress import StatusLine

from .idx import IDXError, gunzip_if_compressed, read_idx

__all__ = [
    "CLASS_NAMES",
    "DEBIAN_DIR",
    "DEFAULT_URL",
    "SHA256",
    "DatasetError",
    "cache_dir",
    "load_fashion_mnist",
]

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"

# SHA-256 of each file's decompressed contents, in the order load_fashion_mnist returns them.
SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
SHAPES = {
    "train-images-idx3-ubyte": (60000, 28, 28),
    "train-labels-idx1-ubyte": (60000,),
    "t10k-images-idx3-ubyte": (10000, 28, 28),
    "t10k-labels-idx1-ubyte": (10000,),
}


class DatasetError(OSError):
    """The dataset files are missing, damaged or cannot be downloaded.

    The message names the file or directory concerned and says how to fix it. An ``OSError``
    (as ``gzip.BadGzipFile`` is), so ``except OSError`` around loading catches it too.
    """


def load_fashion_mnist(
    path: str | os.PathLike[str] | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return ``(X_train, y_train), (X_test, y_test)``, checked against the known checksums.

    Images are ``uint8`` arrays of shape ``(N, 28, 28)`` with values 0..255, labels are
    ``uint8`` arrays of shape ``(N,)`` with values 0..9 (names in ``CLASS_NAMES``);
    N is 60,000 for training and 10,000 for testing. Each call returns new arrays.

    ``path`` is a directory holding the four files; without it the places listed in the
    module docstring are searched and, as a last resort, the files are downloaded.
    Raises ``DatasetError`` when the files are missing, damaged or cannot be downloaded.
    """
    directory = _find_directory(path)
    if directory is None:
        directory = cache_dir()
        _download_missing(directory)
    X_train, y_train, X_test, y_test = (_load_array(directory, name) for name in SHA256)
    return (X_train, y_train), (X_test, y_test)


def cache_dir() -> Path:
    """The user cache directory: ``$XDG_CACHE_HOME/minidl/fashion-mnist``, by default
    ``~/.cache/minidl/fashion-mnist``. Downloads and the ``.npy`` copies live here."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # relative: ignored
    return base / "minidl" / "fashion-mnist"


# ----------------------------------------------------------------------------- finding


def _how_to_fix() -> str:
    return (
        "To fix it, do one of: install the packaged copy with "
        "`sudo apt-get install dataset-fashion-mnist`; allow network access so minidl can "
        f"download the files into {cache_dir()}; or set MINIDL_DATA to a directory holding "
        f"the four files ({', '.join(SHA256)}, each .gz or uncompressed)."
    )


def _source_file(directory: Path, name: str) -> Path | None:
    """The file for ``name`` in ``directory``, gzipped or not, or None if there is none."""
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def _find_directory(path: str | os.PathLike[str] | None) -> Path | None:
    """The first place holding all four files, or None if none does (see the docstring)."""
    if path is not None:
        return _named_directory(Path(path), "the path argument")
    if os.environ.get("MINIDL_DATA"):
        return _named_directory(Path(os.environ["MINIDL_DATA"]), "$MINIDL_DATA")
    for directory in (DEBIAN_DIR, cache_dir()):
        if all(_source_file(directory, name) for name in SHA256):
            return directory
    return None


def _named_directory(directory: Path, origin: str) -> Path:
    """A directory the user named must hold the files: say which are missing if not."""
    directory = directory.expanduser()
    missing = [name for name in SHA256 if _source_file(directory, name) is None]
    if missing:
        raise DatasetError(
            f"{directory} (given by {origin}) does not hold {', '.join(missing)} "
            f"(looked for .gz and uncompressed).\n{_how_to_fix()}"
        )
    return directory


# ---------------------------------------------------------------------------- checking


def _read_verified(source: Path, name: str, label: str | None = None) -> np.ndarray:
    """Decompress, parse and checksum one file.

    ``label`` names it in error messages; it defaults to the file's path.
    """
    if label is None:
        label, fix = str(source), f"Delete or replace this file. {_how_to_fix()}"
    else:
        fix = f"The download was discarded. {_how_to_fix()}"
    try:
        data = gunzip_if_compressed(source.read_bytes())
    except (OSError, EOFError, zlib.error) as e:  # EOFError: a truncated .gz
        raise DatasetError(f"{label}: cannot read or decompress it ({e}).\n{fix}") from e
    try:
        array = read_idx(data, ndim=len(SHAPES[name]), name=label)
    except IDXError as e:
        raise DatasetError(f"{e}.\n{fix}") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256[name]:
        raise DatasetError(
            f"{label}: checksum mismatch, the decompressed contents have SHA-256 {digest}, "
            f"expected {SHA256[name]} ({name}).\n{fix}"
        )
    return array


def _load_array(directory: Path, name: str) -> np.ndarray:
    """One checked array: from the ``.npy`` copy if it is up to date, else from the file."""
    source = _source_file(directory, name)
    assert source is not None, "_find_directory / _download_missing guarantee the file"
    saved = cache_dir() / f"{name}-{SHA256[name]}.npy"
    array = _load_saved(saved, source, name)
    if array is not None:
        return array
    try:
        array = _read_verified(source, name)
    except DatasetError:
        if directory.resolve() != cache_dir().resolve():
            raise  # not ours to replace: the message says how to fix it
        # A damaged earlier download (interrupted copy, disk error): fetch it once more.
        source.unlink(missing_ok=True)
        source = _download(name, directory)
        array = _read_verified(source, name)
    _save(saved, array)
    return array


# ----------------------------------------------------------------------- the .npy copy


def _load_saved(saved: Path, source: Path, name: str) -> np.ndarray | None:
    """The saved array if it exists, is newer than ``source`` and looks right, else None."""
    try:
        if saved.stat().st_mtime_ns < source.stat().st_mtime_ns:
            return None  # the file changed after the copy was made: check it again
        array = np.load(saved, allow_pickle=False)
        written = _checksum_path(saved).read_text().strip()
    except (OSError, ValueError, EOFError):
        return None  # no copy yet, or a damaged one: it will be rebuilt
    if array.dtype != np.uint8 or array.shape != SHAPES[name]:
        return None
    if _checksum(array) != written:
        return None  # changed since it was made (a disk error, an overwritten file): rebuild it
    return array


def _checksum_path(saved: Path) -> Path:
    return saved.with_name(saved.name + ".crc32")


def _checksum(array: np.ndarray) -> str:
    """CRC-32 of the array's bytes, as 8 hex digits. It catches accidental damage to a copy and
    costs about as much as reading it (9 ms for the four arrays, a third of SHA-256's time). It
    is no defence against someone who can write into the cache: they could rewrite it too."""
    return f"{zlib.crc32(np.ascontiguousarray(array)):08x}"


def _save(saved: Path, array: np.ndarray) -> None:
    """Save the ``.npy`` copy; failing to (read-only cache, full disk) only warns."""
    try:
        with atomic_write(saved, private=True) as f:
            np.save(f, array, allow_pickle=False)
        with atomic_write(_checksum_path(saved), "w", private=True) as f:
            f.write(_checksum(array) + "\n")
    except OSError as e:
        warnings.warn(f"could not save {saved} ({e}); the next load will be slower", stacklevel=3)


# ------------------------------------------------------------------------- downloading


def _base_url() -> str:
    url = os.environ.get("MINIDL_DATA_URL") or DEFAULT_URL
    return url if url.endswith("/") else url + "/"


def _download_missing(directory: Path) -> None:
    missing = [name for name in SHA256 if _source_file(directory, name) is None]
    if missing:
        print(
            f"Fashion-MNIST not found; downloading {len(missing)} file(s) into {directory}",
            file=sys.stderr,
            flush=True,
        )
    for name in missing:
        _download(name, directory)


def _download(name: str, directory: Path) -> Path:
    """Download ``<name>.gz`` into ``directory``, check it, and only then give it its name."""
    url = _base_url() + name + ".gz"
    target = directory / f"{name}.gz"
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_write(target, private=True) as f:
            progress = _Progress(url, int(response.headers.get("Content-Length") or 0))
            while chunk := response.read(1 << 16):
                f.write(chunk)
                progress.update(len(chunk))
            progress.close()
            f.flush()
            _read_verified(Path(f.name), name, label=f"downloaded {url}")
    except DatasetError:
        raise  # a damaged download: its message already names it (and it is an OSError too)
    except (OSError, HTTPException) as e:  # urllib's URLError and timeouts are OSErrors
        raise DatasetError(f"could not download {url} ({e}).\n{_how_to_fix()}") from e
    return target


class _Progress:
    """Download progress on stderr (``minidl._progress``): where watched, one line redrawn in place
    at most 10 times a second; in a log, one plain line per file and nothing else."""

    def __init__(self, url: str, total: int) -> None:
        self.url, self.total, self.done = url, total, 0
        self.start = time.monotonic()
        self.out = StatusLine()
        if not self.out.live:
            self.out.line(f"Downloading {url}" + (f" ({_size(total)})" if total else ""))

    def update(self, n: int) -> None:
        self.done += n
        if self.out.due():
            self.out.update(self._text())

    def close(self) -> None:
        if self.out.live:
            self.out.update(self._text())
            self.out.close()

    def _text(self) -> str:
        done = _size(self.done)
        if self.total:
            done += f" of {_size(self.total)} ({100 * self.done / self.total:.0f}%)"
        return f"Downloading {self.url}: {done}, {time.monotonic() - self.start:.0f} s"


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:.1f} MB" if n_bytes >= 1e6 else f"{n_bytes / 1e3:.0f} kB"
