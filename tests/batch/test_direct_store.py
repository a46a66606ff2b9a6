"""Chunks written past the page cache: the same bytes as Zarr's own store, never half-written."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest
import zarr
from zarr.codecs import Crc32cCodec

from napari_xray.batch import direct_store
from napari_xray.batch.direct_store import DIRECT_MIN_BYTES, DirectWriteStore, write_direct


@pytest.mark.parametrize("size", [1, 4095, 4096, 4097, 3 * 4096 + 17, (1 << 22) + 4])
def test_write_direct_writes_exactly_the_bytes(tmp_path, size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    target = tmp_path / "c" / "0"
    target.parent.mkdir()
    target.write_bytes(b"old contents")
    assert write_direct(target, memoryview(data))
    assert target.read_bytes() == data
    assert sorted(p.name for p in target.parent.iterdir()) == ["0"]  # no .partial left


def _write_both(tmp_path, frames: np.ndarray):
    for store in (DirectWriteStore(tmp_path / "direct.zarr"), tmp_path / "zarr.zarr"):
        array = zarr.create_array(store, shape=frames.shape, chunks=(1, *frames.shape[1:]),
                                  dtype=frames.dtype, compressors=[Crc32cCodec()])
        for index, frame in enumerate(frames):
            array[index] = frame
    return tmp_path / "direct.zarr", tmp_path / "zarr.zarr"


def test_chunk_files_equal_those_of_zarrs_local_store(tmp_path):
    frames = np.random.default_rng(1).random((3, 1024, 1024), dtype=np.float32)
    direct, plain = _write_both(tmp_path, frames)
    chunks = sorted(p.relative_to(plain) for p in plain.rglob("*") if p.is_file())
    assert len(chunks) == 4  # zarr.json and three chunks
    for chunk in chunks:
        assert (direct / chunk).read_bytes() == (plain / chunk).read_bytes(), chunk
    assert np.array_equal(zarr.open_array(direct, mode="r")[:], frames)


def test_small_chunks_and_metadata_take_zarrs_own_writes(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(direct_store, "write_direct",
                        lambda path, data: calls.append(path) or True)
    frames = np.ones((2, 64, 64), dtype=np.float32)  # 16 KB chunks
    assert frames[0].nbytes < DIRECT_MIN_BYTES
    direct, _ = _write_both(tmp_path, frames)
    assert calls == []
    assert np.array_equal(zarr.open_array(direct, mode="r")[:], frames)


def test_a_filesystem_without_o_direct_gets_ordinary_writes(tmp_path, monkeypatch):
    real_open = os.open

    def refuse_direct(path, flags, *args):
        if flags & os.O_DIRECT:  # as Linux does: the file is made, then O_DIRECT refused
            os.close(real_open(path, flags & ~os.O_DIRECT, *args))
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(direct_store.os, "open", refuse_direct)
    frames = np.random.default_rng(2).random((2, 1024, 1024), dtype=np.float32)
    store = DirectWriteStore(tmp_path / "direct.zarr")
    array = zarr.create_array(store, shape=frames.shape, chunks=(1, 1024, 1024),
                              dtype=frames.dtype)
    array[:] = frames
    assert store.direct is False
    assert np.array_equal(zarr.open_array(tmp_path / "direct.zarr", mode="r")[:], frames)
    assert not list((tmp_path / "direct.zarr").rglob("*.partial"))


def test_a_failed_write_leaves_the_old_chunk_and_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "0"
    target.write_bytes(b"the chunk as it was")

    def disk_full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(direct_store.os, "write", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_direct(target, memoryview(bytes(1 << 20)))
    assert target.read_bytes() == b"the chunk as it was"
    assert [p.name for p in tmp_path.iterdir()] == ["0"]
