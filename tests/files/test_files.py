"""Atomic directory builds and file digests (prunedissect.files)."""

from __future__ import annotations

import hashlib

import pytest

from prunedissect.files import file_digest, staged_directory, write_bytes_atomic


def test_a_staged_directory_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with staged_directory(target) as staging:
            (staging.path / "half.txt").write_text("half")
            raise RuntimeError("killed between files")
    assert list(tmp_path.iterdir()) == []
    with staged_directory(target) as staging:
        (staging.path / "a.txt").write_text("a")
        assert not target.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert (target / "a.txt").read_text() == "a"


def test_a_staged_directory_can_publish_a_directory_inside_it(tmp_path):
    target = tmp_path / "probe"
    with staged_directory(target, purpose="extracting") as staging:
        inner = staging.path / "broden1_224"
        inner.mkdir()
        (inner / "index.csv").write_text("image\n")
        staging.root = inner
    assert [p.name for p in tmp_path.iterdir()] == ["probe"]
    assert (target / "index.csv").read_text() == "image\n"


def test_file_digests_match_hashlib(tmp_path):
    data = bytes(range(256)) * 5000
    write_bytes_atomic(tmp_path / "f", data)
    assert file_digest(tmp_path / "f") == hashlib.sha256(data).hexdigest()
    assert file_digest(tmp_path / "f", "md5") == hashlib.md5(data).hexdigest()
    assert [p.name for p in tmp_path.iterdir()] == ["f"]  # no temporary sibling left
