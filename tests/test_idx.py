"""One IDX file: fastconv.datasets.read_idx checks the header, then the size it declares against
the file (a .gz's trailer), before it reads or decompresses the data (issue 9: a 4.6 MB .gz was
decompressed to 2.3 GB before its header was looked at)."""
import gzip
import re
import struct

import numpy as np
import pytest

import fastconv.datasets as ds
from fastconv.datasets import idx as idx_module
from helpers import raises_exactly
from test_datasets import idx_bytes, write_file


def name(tmp_path, stem, gz):
    return tmp_path / (stem + (".gz" if gz else ""))


def test_other_dtypes_come_back_native(tmp_path):
    a = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    path = write_file(tmp_path / "ints", idx_bytes(a.astype(">i4"), type_code=0x0C), gz=False)
    got = ds.read_idx(path)
    np.testing.assert_array_equal(got, a)
    assert got.dtype.isnative


@pytest.mark.parametrize("gz", [False, True])
def test_bytes_round_trip_writable(tmp_path, gz):
    a = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    got = ds.read_idx(write_file(tmp_path / "b", idx_bytes(a), gz))
    np.testing.assert_array_equal(got, a)
    got[0, 0, 0] = 7  # a writable array, not a view of immutable bytes


@pytest.mark.parametrize("gz", [False, True])
def test_bad_magic(tmp_path, gz):
    payload = bytearray(idx_bytes(np.zeros((37, 28, 28), np.uint8)))
    payload[0] = 0x12
    path = write_file(tmp_path / "x", bytes(payload), gz)
    with raises_exactly(ValueError, f"{path}: bad IDX magic number: expected 0x0000TTNN with type "
                        f"TT one of 08, 09, 0b..0e and NN dimensions; got 0x12000803"):
        ds.read_idx(path)


def test_unknown_type_code_and_zero_dimensions(tmp_path):
    path = write_file(tmp_path / "t", bytes([0, 0, 0x0A, 1, 0, 0, 0, 0]), False)
    with pytest.raises(ValueError, match=re.escape(f"{path}: bad IDX magic") + ".*got 0x00000a01$"):
        ds.read_idx(path)
    path = write_file(tmp_path / "z", bytes([0, 0, 8, 0]), False)
    with raises_exactly(ValueError,
                        f"{path}: bad IDX header: expected at least 1 dimension; got 0"):
        ds.read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_header(tmp_path, gz):
    full = idx_bytes(np.ones((11, 28, 28), np.uint8))
    path = write_file(tmp_path / "magic", full[:2], gz)
    with raises_exactly(ValueError, f"{path}: truncated IDX header: needs at least 4 bytes; got 2"):
        ds.read_idx(path)
    path = write_file(tmp_path / "dims", full[:10], gz)
    with raises_exactly(ValueError,
                        f"{path}: truncated IDX header: 3 dimensions need 16 bytes; got 10"):
        ds.read_idx(path)


def test_truncated_and_trailing_data(tmp_path):
    full = idx_bytes(np.ones((11, 28, 28), np.uint8))
    path = write_file(tmp_path / "cut", full[:100], False)
    with raises_exactly(ValueError, f"{path}: truncated IDX data: dims (11, 28, 28) of uint8 need "
                        f"8624 bytes after the 16-byte header; got 84"):
        ds.read_idx(path)
    path = write_file(tmp_path / "long", full + b"\0", False)
    with raises_exactly(ValueError, f"{path}: trailing bytes after IDX data: dims (11, 28, 28) of "
                        f"uint8 need 8624 bytes after the 16-byte header; got 8625"):
        ds.read_idx(path)


TRAILER = (" by the gzip trailer's count (a cut or corrupt .gz, or one of several members, also "
           "reads so)")


def test_gzip_size_checked_from_the_trailer(tmp_path):
    full = idx_bytes(np.ones((11, 28, 28), np.uint8))
    path = write_file(tmp_path / "cut", full[:100], True)
    with raises_exactly(ValueError, f"{path}: truncated IDX data: dims (11, 28, 28) of uint8 need "
                        f"8624 bytes after the 16-byte header; got 84{TRAILER}"):
        ds.read_idx(path)
    path = write_file(tmp_path / "long", full + b"\0\0", True)
    with raises_exactly(ValueError, f"{path}: trailing bytes after IDX data: dims (11, 28, 28) of "
                        f"uint8 need 8624 bytes after the 16-byte header; got 8626{TRAILER}"):
        ds.read_idx(path)


class CountingGzip:
    """gzip.open as idx.py calls it, counting the uncompressed bytes handed out."""

    def __init__(self):
        self.read, self.open = 0, gzip.open

    def __call__(self, path, mode):
        fh = self.open(path, mode)
        real_read = fh.read

        def read(n=-1):
            out = real_read(n)
            self.read += len(out)
            return out

        fh.read = read
        return fh


@pytest.mark.parametrize("magic, dims", [
    (bytes([0x12, 0, 8, 3]), (3000, 28, 28)),  # a bad header in front of 2.3 MB of zeros
    (bytes([0, 0, 8, 3]), (3_000_000, 28, 28)),  # a header declaring 2.3 GB in a few kB of .gz
    (bytes([0, 0, 8, 3]), (2000, 28, 28)),  # a header declaring less than the stream holds
])
def test_gzip_refused_before_decompressing(tmp_path, monkeypatch, magic, dims):
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(magic + struct.pack(">III", *dims) + bytes(3000 * 28 * 28))
    counting = CountingGzip()
    monkeypatch.setattr(idx_module.gzip, "open", counting)
    with pytest.raises(ValueError, match="^" + re.escape(str(path)) + ": "):
        ds.read_idx(path)
    assert counting.read <= 16  # the header only


def test_gzip_bomb_message(tmp_path):
    path = tmp_path / "bomb.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(bytes([0, 0, 8, 3]) + struct.pack(">III", 3_000_000, 28, 28) + bytes(50_000))
    size = path.stat().st_size
    with raises_exactly(ValueError, f"{path}: IDX header declares dims (3000000, 28, 28), "
                        f"2352000016 bytes in all, more than a {size}-byte .gz can hold (deflate "
                        f"expands at most 1032x); the file is corrupt"):
        ds.read_idx(path)


def test_gzip_stream_cut_or_corrupt(tmp_path):
    full = idx_bytes(np.arange(11 * 28 * 28, dtype=np.uint64).astype(np.uint8).reshape(11, 28, 28))
    path = write_file(tmp_path / "x", full, True)
    good = path.read_bytes()
    path.write_bytes(good[:-20])  # the compressed stream itself cut: its "trailer" is noise
    with pytest.raises(ValueError, match="^" + re.escape(str(path)) + ": "):
        ds.read_idx(path)
    corrupt = bytearray(good)
    corrupt[len(good) // 2] ^= 0xFF  # the trailer intact, the deflate data not
    path.write_bytes(bytes(corrupt))
    with pytest.raises(ValueError, match="^" + re.escape(str(path)) + ": "):
        ds.read_idx(path)
    corrupt = bytearray(good)
    corrupt[-6] ^= 0xFF  # the data intact, its CRC in the trailer not: checked at the stream's end
    path.write_bytes(bytes(corrupt))
    with raises_exactly(ValueError, f"{path}: cannot read IDX data (BadGzipFile: CRC check "
                        f"failed {hex(int.from_bytes(corrupt[-8:-4], 'little'))} != "
                        f"{hex(int.from_bytes(good[-8:-4], 'little'))})"):
        ds.read_idx(path)


def test_gzip_longer_stream_than_trailer_says(tmp_path, monkeypatch):
    # Past 4 GiB the trailer's count wraps and can agree with a header that undercounts; a fake
    # trailer stands in for writing 4 GiB. Reading stops one byte past the declared size.
    path = write_file(tmp_path / "x", idx_bytes(np.zeros((4, 2, 2), np.uint8)) + bytes(99), True)
    size = path.stat().st_size
    monkeypatch.setattr(idx_module, "_gzip_sizes", lambda p: (size, 32))
    with raises_exactly(ValueError, f"{path}: trailing bytes after IDX data: dims (4, 2, 2) of "
                        f"uint8 need 16 bytes after the 16-byte header; got 17 or more"):
        ds.read_idx(path)


def test_not_gzip(tmp_path):
    path = tmp_path / "plain.gz"
    path.write_bytes(idx_bytes(np.zeros((2, 3, 3), np.uint8)))
    with raises_exactly(ValueError, f"{path}: cannot read IDX data (BadGzipFile: Not a gzipped "
                        f"file (b'\\x00\\x00'))"):
        ds.read_idx(path)
    path.write_bytes(b"\x1f\x8b\x08")
    with raises_exactly(ValueError, f"{path}: not a gzip file: expected at least 18 bytes; got 3"):
        ds.read_idx(path)


def test_expected_dimensions_and_type(tmp_path):
    path = write_file(tmp_path / "x", idx_bytes(np.zeros((11, 2, 2), np.uint8)), True)
    with raises_exactly(ValueError, f"{path}: expected an IDX file of 1 dimension; got 3 "
                        f"dimensions (11, 2, 2)"):
        ds.read_idx(path, expect_ndim=1)
    path = write_file(tmp_path / "i", idx_bytes(np.zeros(3, ">i4"), type_code=0x0C), False)
    with raises_exactly(ValueError, f"{path}: expected IDX data of uint8; got type 0x0c (int32)"):
        ds.read_idx_header(path, expect_dtype=np.uint8)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        ds.read_idx(tmp_path / "absent")
    with pytest.raises(FileNotFoundError):
        ds.read_idx(tmp_path / "absent.gz")
