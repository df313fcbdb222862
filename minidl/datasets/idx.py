"""Read IDX files, the simple binary format MNIST and Fashion-MNIST are stored in.

An IDX file is a short header followed by the raw numbers:

    bytes 0-1   always zero
    byte  2     type code of the numbers; 0x08 means unsigned bytes (uint8)
    byte  3     number of dimensions, d
    then        d sizes, each a 4-byte big-endian unsigned integer
    then        the numbers themselves, row-major, product(sizes) of them

So a label file starts with the "magic number" 0x00000801 (uint8, 1 dimension) and
an image file with 0x00000803 (uint8, 3 dimensions: count, rows, columns). The format
also defines signed and floating-point type codes; the datasets minidl reads use only
0x08, so any other code is rejected with a message saying so.

>>> import numpy as np
>>> data = bytes([0, 0, 8, 2,  0, 0, 0, 2,  0, 0, 0, 3,  1, 2, 3, 4, 5, 6])
>>> read_idx(data)
array([[1, 2, 3],
       [4, 5, 6]], dtype=uint8)
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

UINT8 = 0x08  # the only type code minidl needs
GZIP_MAGIC = b"\x1f\x8b"  # every gzip stream starts with these two bytes; IDX starts with 0, 0

__all__ = ["IDXError", "gunzip_if_compressed", "read_idx"]


class IDXError(ValueError):
    """The bytes are not a well-formed IDX file; the message names the file and the problem."""


def read_idx(
    source: bytes | str | os.PathLike[str], *, ndim: int | None = None, name: str | None = None
) -> np.ndarray:
    """Parse an IDX file into a new uint8 array of the shape its header gives.

    ``source`` is the file's bytes or a path; gzip-compressed data is decompressed first.
    With ``ndim`` the header must announce that many dimensions, i.e. the magic number
    must be ``0x00000800 + ndim`` (1 for labels, 3 for images). ``name`` is used in
    error messages; it defaults to the path, or ``"<bytes>"``.

    Raises ``IDXError`` when the magic number, the dimensions or the payload length
    are wrong, e.g. for a truncated file.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        name = name or "<bytes>"
    else:
        name = name or str(source)
        try:
            data = Path(source).read_bytes()
        except OSError as e:
            raise IDXError(f"{name}: cannot read the file ({e})") from e
    try:
        data = gunzip_if_compressed(data)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise IDXError(f"{name}: damaged gzip data ({e})") from e

    if len(data) < 4:
        raise IDXError(f"{name}: only {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    zeros, type_code, n_dims = data[0:2], data[2], data[3]
    if zeros != b"\x00\x00" or n_dims == 0 or (ndim is not None and n_dims != ndim):
        expected = f"0x{(UINT8 << 8) + ndim:08x}" if ndim is not None else "0x000008NN"
        raise IDXError(f"{name}: bad magic number 0x{magic:08x}, expected {expected}")
    if type_code != UINT8:
        raise IDXError(
            f"{name}: type code 0x{type_code:02x} in magic number 0x{magic:08x} is not "
            f"supported, only 0x{UINT8:02x} (unsigned bytes)"
        )

    header_size = 4 + 4 * n_dims
    if len(data) < header_size:
        raise IDXError(f"{name}: file ends inside the header ({len(data)} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims))
    expected_size = header_size + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected_size:
        problem = "truncated" if len(data) < expected_size else "has trailing bytes"
        raise IDXError(
            f"{name}: {problem}: the header announces shape {shape}, i.e. {expected_size} "
            f"bytes in all, but the file holds {len(data)}"
        )
    # frombuffer shares the (read-only) bytes; copy so the caller owns a writable array.
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape).copy()


def gunzip_if_compressed(data: bytes) -> bytes:
    """Return ``data`` decompressed if it is gzip data, else unchanged.

    Raises ``EOFError`` for a truncated gzip stream and ``OSError`` / ``zlib.error``
    for a damaged one.
    """
    return gzip.decompress(data) if data[:2] == GZIP_MAGIC else data
