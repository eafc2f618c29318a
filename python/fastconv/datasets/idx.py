"""Reading one IDX file (the MNIST format), header first.

Header: two zero bytes, a type byte, the number of dimensions, then one big-endian uint32 per
dimension; the data follows, row-major, big-endian. The header is read and checked, and the size it
declares is compared with the file (for a ``.gz``, with the uncompressed size in the gzip trailer),
before any data is read: a malformed or hostile file is refused after a few bytes instead of being
decompressed in full first.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO, Optional, Tuple, Union

import numpy as np

PathLike = Union[str, "os.PathLike[str]"]

# IDX type byte -> numpy dtype; multi-byte types are big-endian in the format.
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# Deflate cannot expand data by more than about 1032:1, so a .gz whose header declares more than
# this many times its own size is lying; refusing it bounds what a header can make us allocate.
MAX_GZIP_RATIO = 1032
_CHUNK = 1 << 22  # gzip data is read in 4 MiB pieces, so memory follows the data really present


class IdxHeader:
    """What an IDX header declares: ``dtype``, ``dims``, and the sizes in bytes they imply."""

    def __init__(self, path: Path, type_code: int, dims: Tuple[int, ...]):
        self.path, self.type_code, self.dims = path, type_code, dims
        self.dtype = IDX_DTYPES[type_code]
        self.header_bytes = 4 + 4 * len(dims)
        self.data_bytes = math.prod(dims) * self.dtype.itemsize

    def size_error(self, actual: int, what: str = "") -> ValueError:
        kind = "truncated" if actual < self.data_bytes else "trailing bytes after"
        return ValueError(
            f"{self.path}: {kind} IDX data: dims {self.dims} of {self.dtype.name} need "
            f"{self.data_bytes} bytes after the {self.header_bytes}-byte header; got {actual}{what}"
        )


def _parse_header(fh: BinaryIO, path: Path) -> IdxHeader:
    magic = fh.read(4)
    if len(magic) < 4:
        raise ValueError(f"{path}: truncated IDX header: needs at least 4 bytes; got {len(magic)}")
    type_code, ndim = magic[2], magic[3]
    if magic[0] != 0 or magic[1] != 0 or type_code not in IDX_DTYPES:
        raise ValueError(
            f"{path}: bad IDX magic number: expected 0x0000TTNN with type TT one of 08, 09, 0b..0e "
            f"and NN dimensions; got 0x{int.from_bytes(magic, 'big'):08x}"
        )
    if ndim == 0:
        raise ValueError(f"{path}: bad IDX header: expected at least 1 dimension; got 0")
    raw_dims = fh.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise ValueError(
            f"{path}: truncated IDX header: {ndim} dimensions need {4 + 4 * ndim} bytes; "
            f"got {4 + len(raw_dims)}"
        )
    dims = tuple(int.from_bytes(raw_dims[i:i + 4], "big") for i in range(0, 4 * ndim, 4))
    return IdxHeader(path, type_code, dims)


def _check_expected(header: IdxHeader, ndim: Optional[int], dtype) -> None:
    if ndim is not None and len(header.dims) != ndim:
        raise ValueError(
            f"{header.path}: expected an IDX file of {ndim} dimension{'s' if ndim > 1 else ''}; "
            f"got {len(header.dims)} dimensions {header.dims}"
        )
    if dtype is not None and header.dtype != np.dtype(dtype):
        raise ValueError(
            f"{header.path}: expected IDX data of {np.dtype(dtype).name}; got type "
            f"0x{header.type_code:02x} ({header.dtype.name})"
        )


def _gzip_sizes(path: Path) -> Tuple[int, int]:
    """(compressed size, uncompressed size mod 2**32 as the gzip trailer records it)."""
    with open(path, "rb") as raw:
        size = raw.seek(0, os.SEEK_END)
        if size < 18:  # a 10-byte header and an 8-byte trailer at the least
            raise ValueError(f"{path}: not a gzip file: expected at least 18 bytes; got {size}")
        raw.seek(-4, os.SEEK_END)
        return size, int.from_bytes(raw.read(4), "little")


def _check_gzip_size(header: IdxHeader, compressed: int, isize: int) -> None:
    total = header.header_bytes + header.data_bytes
    if total > MAX_GZIP_RATIO * compressed:
        raise ValueError(
            f"{header.path}: IDX header declares dims {header.dims}, {total} bytes in all, more "
            f"than a {compressed}-byte .gz can hold (deflate expands at most {MAX_GZIP_RATIO}x); "
            f"the file is corrupt"
        )
    # The trailer is exact below 4 GiB; a cut .gz ends mid-stream, so its "trailer" is noise and
    # is reported as what it is.
    if total % (1 << 32) != isize:
        raise header.size_error(isize - header.header_bytes,
                                " by the gzip trailer's count (a cut or corrupt .gz, or one of "
                                "several members, also reads so)")


def _read_gzip_data(fh: BinaryIO, header: IdxHeader) -> bytearray:
    # Read in pieces rather than into a buffer sized from the header: a header that lies beyond
    # what the trailer can contradict (4 GiB) costs only the data really there. One byte past the
    # declared size is asked for, so a longer stream is seen, and a stream that ends exactly there
    # reaches its end, where gzip checks the CRC.
    pieces, wanted = [], header.data_bytes + 1
    while wanted > 0:
        piece = fh.read(min(_CHUNK, wanted))
        if not piece:
            break
        pieces.append(piece)
        wanted -= len(piece)
    return bytearray().join(pieces)


def _read(path: Path, header_only: bool, expect_ndim, expect_dtype):
    gz = path.suffix == ".gz"
    try:
        if gz:
            compressed, isize = _gzip_sizes(path)
        with (gzip.open(path, "rb") if gz else open(path, "rb")) as fh:
            header = _parse_header(fh, path)
            _check_expected(header, expect_ndim, expect_dtype)
            if header_only:
                return header
            if gz:
                _check_gzip_size(header, compressed, isize)
                data = _read_gzip_data(fh, header)
            else:
                actual = os.fstat(fh.fileno()).st_size - header.header_bytes
                if actual != header.data_bytes:
                    raise header.size_error(actual)
                data = bytearray(header.data_bytes)
                got = fh.readinto(data)
                if got != header.data_bytes:  # the file shrank since fstat
                    raise header.size_error(got)
    except (EOFError, OSError, zlib.error) as e:  # BadGzipFile is an OSError
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{path}: cannot read IDX data ({type(e).__name__}: {e})") from e
    if len(data) != header.data_bytes:
        # Reading stops one byte past the declared size: the stream holds at least that much.
        raise header.size_error(len(data), " or more" if len(data) > header.data_bytes else "")
    array = np.frombuffer(data, dtype=header.dtype).reshape(header.dims)
    # A bytearray is writable, so byte data needs no copy; wider types become native-endian.
    return array if header.dtype.itemsize == 1 else array.astype(header.dtype.newbyteorder("="))


def read_idx_header(path: PathLike, *, expect_ndim: Optional[int] = None,
                    expect_dtype=None) -> IdxHeader:
    """Read and check only the header of an IDX file (``.gz`` or not): a few bytes.

    Raises ValueError as ``read_idx`` does for the header's problems.
    """
    return _read(Path(path), True, expect_ndim, expect_dtype)


def read_idx(path: PathLike, *, expect_ndim: Optional[int] = None,
             expect_dtype=None) -> np.ndarray:
    """Read one IDX file (a ``.gz`` is decompressed as a stream) into a native-endian array.

    The header is checked first (with ``expect_ndim``/``expect_dtype`` when given), then the size
    it declares against the file, and only then is the data read. Raises ValueError naming the
    file for a bad magic number, a truncated header, data shorter or longer than the dimensions
    say, or a gzip stream that is cut or corrupt; FileNotFoundError when the file does not exist.
    """
    return _read(Path(path), False, expect_ndim, expect_dtype)
