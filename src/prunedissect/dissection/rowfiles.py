"""Reading rows (images) of a memory-mapped ``.npy`` with bounded memory.

The activation files (float16 ``(N, K, h, w)``) and the encoded segmentations (int32
``(N, sh, sw)``) are opened with ``np.load(mmap_mode="r")``. Slicing such a memory map pages the
file in, and the pages stay mapped (and counted in the process's resident set) for as long as
the map lives: a pass over a 12.7 GB activation file of ``broden1_224`` would end with gigabytes
resident. :class:`RowReader` instead copies a range of rows with ``os.pread`` straight from the
file into one reusable buffer, so a pass over the file holds one batch of rows whatever ``N``
(the file's pages go to the kernel's page cache, which is not the process's memory).

Arrays that are not file-backed (an in-memory array in a notebook or a test) or whose rows are
not contiguous in the file are sliced as usual; the results are identical.
"""

from __future__ import annotations

import mmap
import os

import numpy as np


class RowReader:
    """Rows ``start:stop`` of ``array`` (first axis), read into a reusable buffer.

    :meth:`read` returns a view of the buffer, valid until the next call (copy it to keep it).
    """

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.shape = tuple(array.shape)
        self.dtype = array.dtype
        self._row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._position = _file_position(array)
        self._buffer = np.empty(0, dtype=np.uint8)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def streams(self) -> bool:
        """Whether rows are read from the file with ``os.pread`` (else sliced from the array)."""
        return self._position is not None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` (clipped to the array) as an array of shape ``(n, ...)``."""
        start, stop = max(0, start), min(len(self), stop)
        n = max(0, stop - start)
        if self._position is None:
            return np.asarray(self.array[start:stop])
        size = n * self._row_bytes
        if self._buffer.size < size:
            self._buffer = np.empty(size, dtype=np.uint8)
        view = memoryview(self._buffer)[:size]
        offset = self._position + start * self._row_bytes
        with open(self.array.filename, "rb", buffering=0) as handle:
            done = 0
            while done < size:  # pread may return fewer bytes than asked
                got = os.preadv(handle.fileno(), [view[done:]], offset + done)
                if got <= 0:
                    raise OSError(
                        f"{self.array.filename} ended early: expected {size} bytes at {offset}; "
                        "the file is truncated, recompute it"
                    )
                done += got
        return self._buffer[:size].view(self.dtype).reshape(n, *self.shape[1:])


def _file_position(array: np.ndarray) -> int | None:
    """Byte offset in its file of ``array``'s first element when ``array`` is a C-contiguous
    read-only view of a file mapped by ``np.memmap`` (what ``np.load(mmap_mode='r')`` gives);
    else ``None``."""
    if not isinstance(array, np.memmap) or getattr(array, "filename", None) is None:
        return None
    mapped = getattr(array, "_mmap", None)
    if not isinstance(mapped, mmap.mmap) or not array.flags.c_contiguous:
        return None
    if array.dtype.byteorder not in ("=", "|", "<" if np.little_endian else ">"):
        return None
    try:
        start = np.frombuffer(mapped, dtype=np.uint8).ctypes.data
    except (TypeError, ValueError):  # a closed or writable-only mapping
        return None
    mapped_from = array.offset - array.offset % mmap.ALLOCATIONGRANULARITY
    return mapped_from + (array.ctypes.data - start)
