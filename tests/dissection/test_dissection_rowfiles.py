"""Rows of memory-mapped .npy files read with os.pread (dissection.rowfiles): the same values
as slicing, for whole files, views and in-memory arrays; and thresholds and tallies computed
from a file equal those from the array in memory."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import random_probe
from prunedissect.dissection import encode_probe_labels, tally_iou, unit_thresholds
from prunedissect.dissection.rowfiles import RowReader


@pytest.fixture
def stored(tmp_path):
    rng = np.random.default_rng(0)
    array = rng.standard_normal((23, 5, 3, 4)).astype(np.float16)
    path = tmp_path / "activations.npy"
    np.save(path, array)
    return array, np.load(path, mmap_mode="r")


@pytest.mark.parametrize(("start", "stop"), [(0, 23), (0, 1), (5, 12), (20, 40), (22, 23)])
def test_rows_read_from_the_file_equal_slices(stored, start, stop):
    array, mapped = stored
    reader = RowReader(mapped)
    assert reader.streams
    np.testing.assert_array_equal(reader.read(start, stop), array[start:stop])
    np.testing.assert_array_equal(reader.read(0, 3), array[0:3])  # the buffer is reused


def test_views_of_a_memory_map(stored):
    array, mapped = stored
    tail = RowReader(mapped[7:])  # starts inside the file
    assert tail.streams
    np.testing.assert_array_equal(tail.read(2, 6), array[9:13])
    strided = RowReader(mapped[:, ::2])  # not contiguous in the file: sliced instead
    assert not strided.streams
    np.testing.assert_array_equal(strided.read(1, 4), array[1:4, ::2])
    memory = RowReader(np.asarray(array))
    assert not memory.streams
    np.testing.assert_array_equal(memory.read(3, 5), array[3:5])


def test_int32_segments_and_big_endian_files(tmp_path):
    segments = np.arange(4 * 6 * 5, dtype=np.int32).reshape(4, 6, 5)
    np.save(tmp_path / "segments.npy", segments)
    reader = RowReader(np.load(tmp_path / "segments.npy", mmap_mode="r"))
    assert reader.streams
    np.testing.assert_array_equal(reader.read(1, 3), segments[1:3])
    np.save(tmp_path / "big.npy", segments.astype(">i4"))
    big = RowReader(np.load(tmp_path / "big.npy", mmap_mode="r"))
    assert not big.streams  # byte order other than the machine's: sliced and converted by numpy
    np.testing.assert_array_equal(big.read(1, 3), segments[1:3])


def test_a_truncated_file_is_reported(stored, tmp_path):
    array, mapped = stored
    reader = RowReader(mapped)
    with open(mapped.filename, "r+b") as handle:
        handle.truncate(200)
    with pytest.raises(OSError, match="truncated"):
        reader.read(0, 23)


def test_thresholds_and_tally_from_files_equal_in_memory(tmp_path):
    rng = np.random.default_rng(3)
    probe = random_probe(rng, n_images=13, shape=(28, 28))
    labels = encode_probe_labels(probe, directory=tmp_path / "labels")  # segments memory-mapped
    assert RowReader(labels.segments).streams
    acts = rng.standard_normal((13, 6, 7, 7)).astype(np.float16)
    np.save(tmp_path / "acts.npy", acts)
    mapped = np.load(tmp_path / "acts.npy", mmap_mode="r")
    thresholds = unit_thresholds(mapped, quantile=0.05, max_elements=1000)
    np.testing.assert_array_equal(thresholds, unit_thresholds(acts, quantile=0.05))
    from_files = tally_iou(mapped, thresholds, labels, batch_size=4)
    in_memory = tally_iou(acts, thresholds, encode_probe_labels(probe))
    np.testing.assert_array_equal(from_files.intersection, in_memory.intersection)
    np.testing.assert_array_equal(from_files.union, in_memory.union)
