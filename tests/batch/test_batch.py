"""The batch's pure parts and the lazy store reader, without a Dask cluster.

Expected results are computed here from frames read independently with Pillow
(``convert("L")`` for colour PNGs) and the engine's ``OPERATIONS[key](frame)``;
nothing is compared with the batch's own earlier output. The cluster runs (2
worker processes, a real ``dask scheduler``/``dask worker``, kill and resume) are
in ``test_batch_cluster.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from PIL import Image

from napari_xray.batch import store as batch_store
from napari_xray.batch import worker
from napari_xray.batch.inputs import FilterSpec, discover_inputs, parse_filters, parse_params
from napari_xray.batch.report import write_report
from napari_xray.batch.store import (
    BatchPlan,
    open_or_create_store,
    read_status,
    todo_frames,
)
from napari_xray.batch.worker import build_graph, process_frames
from napari_xray.engine.operations import OPERATIONS
from napari_xray.errors import BatchError
from napari_xray.io import store
from napari_xray.io.store import STATUS_DONE, STATUS_FAILED, STATUS_TODO, STORE_FORMAT
from napari_xray.phantom import make_phantom
from napari_xray.plugin._reader import napari_get_reader, open_store_layers

SHAPE = (96, 128)


# --------------------------------------------------------------------------------------
# helpers shared with test_batch_cluster.py
# --------------------------------------------------------------------------------------


def write_frames(folder: Path, count: int, shape=SHAPE, seed: int = 0, prefix="img") -> list[Path]:
    """``count`` distinct grayscale phantom PNGs ``<prefix>_<i>.png`` (natural order)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, frame in enumerate(make_phantom(count, shape, seed=seed)):
        path = folder / f"{prefix}_{i}.png"
        Image.fromarray(frame).save(path)
        paths.append(path)
    return paths


def write_bad_files(folder: Path, shape=SHAPE) -> dict[str, Path]:
    """One of each kind of awkward input: RGBA, LA, truncated, wrong size, not an image."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    base = make_phantom(1, shape, seed=3)[0]
    files = {}
    rgba = np.dstack([base, np.roll(base, 9, 1), base[::-1], rng.integers(0, 256, shape)])
    files["rgba"] = folder / "colour_rgba.png"
    Image.fromarray(rgba.astype(np.uint8), "RGBA").save(files["rgba"])
    la = np.dstack([np.roll(base, 5, 0), np.full(shape, 128)]).astype(np.uint8)
    files["la"] = folder / "gray_alpha_la.png"
    Image.fromarray(la, "LA").save(files["la"])
    files["truncated"] = folder / "truncated.png"
    whole = folder / "whole.tmp"
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(whole, format="PNG")
    data = whole.read_bytes()
    whole.unlink()
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["wrong_size"] = folder / "wrong_size.png"
    Image.fromarray(make_phantom(1, (64, 80))[0]).save(files["wrong_size"])
    files["not_an_image"] = folder / "notes.png"
    files["not_an_image"].write_text("this is not a PNG\n")
    return files


def reference_frame(path: Path) -> np.ndarray:
    """The frame read with Pillow directly: grayscale as Pillow's convert("L")."""
    with Image.open(path) as im:
        return np.asarray(im if im.mode == "L" else im.convert("L"))


def expected_results(frame: np.ndarray, plan) -> dict[str, np.ndarray]:
    """The engine's result of every filter of ``plan`` on ``frame``, in the stored dtype."""
    return {
        spec.key: np.asarray(OPERATIONS[spec.key](frame, **spec.params), dtype=spec.dtype)
        for spec in plan.filters
    }


def assert_store_matches_engine(store_path, good: dict[int, Path], failed=()):
    """Every done frame equals the engine's result; failed/undone frames are zeros."""
    group = zarr.open_group(str(store_path), mode="r")
    config = group.attrs["napari_xray"]
    plan = BatchPlan(
        store=str(store_path),
        store_id=config["store_id"],
        filters=tuple(FilterSpec(f["key"], f["params"], f["dtype"]) for f in config["filters"]),
        frame_shape=tuple(config["frame_shape"]),
        input_dtype=config["input_dtype"],
        chunk_frames=config["chunk_frames"],
        n_frames=config["n_frames"],
    )
    status = group["status"][:]
    for index, path in good.items():
        assert status[index] == STATUS_DONE, (index, path.name)
        for key, expected in expected_results(reference_frame(path), plan).items():
            got = group[key][index]
            assert got.dtype == expected.dtype, key
            np.testing.assert_array_equal(got, expected, err_msg=f"{key} of {path.name}")
    for index in failed:
        assert status[index] == STATUS_FAILED
        for spec in plan.filters:
            assert not np.any(group[spec.key][index])
    return group


def _plan_and_group(tmp_path, files, keys=None, params=None, **kwargs):
    keys = parse_filters(keys)
    return open_or_create_store(
        tmp_path / "out.zarr", files, keys, parse_params(params, keys), **kwargs
    )


@pytest.fixture
def restore_cv2_threads():
    """process_frames' worker adapter pins OpenCV to one thread; undo it for other tests."""
    import cv2

    before = cv2.getNumThreads()
    yield
    cv2.setNumThreads(before)
    worker._THREADS_LIMITED = False


# --------------------------------------------------------------------------------------
# inputs, filters, parameters
# --------------------------------------------------------------------------------------


def test_inputs_from_folders_globs_and_files_in_natural_order(tmp_path):
    a = tmp_path / "a"
    write_frames(a, 3, prefix="f")  # f_0 f_1 f_2
    (a / "f_10.png").write_bytes((a / "f_1.png").read_bytes())
    (a / "Data_Entry_2017.csv").write_text("Image Index\n")
    (a / ".hidden.png").write_bytes((a / "f_1.png").read_bytes())
    (a / "sub").mkdir()
    (a / "sub" / "deep.png").write_bytes((a / "f_1.png").read_bytes())
    b = tmp_path / "b"
    write_frames(b, 2, prefix="g")
    lone = tmp_path / "lone.png"
    lone.write_bytes((a / "f_0.png").read_bytes())

    found = discover_inputs([lone, a, str(b / "g_*.png"), a / "f_2.png"])

    assert [p.name for p in found] == ["lone.png", "f_0.png", "f_1.png", "f_2.png", "f_10.png",
                                        "g_0.png", "g_1.png"]
    assert all(p.is_absolute() for p in found)
    # a glob keeps only what the reader would list (no CSV, no hidden file)
    assert [p.name for p in discover_inputs([str(a / "*")])] == [
        "f_0.png", "f_1.png", "f_2.png", "f_10.png", "deep.png"]


def test_input_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(BatchError, match="does not exist"):
        discover_inputs([tmp_path / "missing"])
    with pytest.raises(BatchError, match="matches no PNG"):
        discover_inputs([str(tmp_path / "*.png")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchError, match="holds no PNG or DICOM"):
        discover_inputs([tmp_path / "empty"])


def test_filters_and_parameters_come_from_the_description():
    assert parse_filters(None) == list(OPERATIONS)
    assert parse_filters("sobel, LOG") == ["sobel", "log"]
    with pytest.raises(BatchError, match="'blur'.*choose from log, gradient.*preset: all, edges"):
        parse_filters("log,blur")
    with pytest.raises(BatchError, match="more than once"):
        parse_filters("log,log")
    # presets stand for their operations, in their order; keys already named are not repeated
    assert parse_filters("fast") == ["log", "sobel", "mask"]
    assert parse_filters("all") == list(OPERATIONS)
    assert parse_filters("canny,fast") == ["canny", "log", "sobel", "mask"]
    assert parse_filters("edges,mask") == ["log", "gradient", "sobel", "prewitt", "canny", "mask"]

    params = parse_params(["log.sigma=2.5", "mask.mode=binary"], ["log", "mask"])
    assert params == {
        "log": {"sigma": 2.5},
        "mask": {"threshold": 150.0, "mode": "binary"},
    }
    assert parse_params(None, list(OPERATIONS)) == {
        k: op.defaults() for k, op in OPERATIONS.items()
    }
    with pytest.raises(BatchError, match="KEY.NAME=VALUE"):
        parse_params(["sigma=2"], ["log"])
    with pytest.raises(BatchError, match="not among the selected filters"):
        parse_params(["canny.sigma=2"], ["log"])
    with pytest.raises(BatchError, match="no parameter 'radius'"):
        parse_params(["log.radius=2"], ["log"])
    with pytest.raises(BatchError, match="above its maximum"):
        parse_params(["log.sigma=1000"], ["log"])


# --------------------------------------------------------------------------------------
# the store
# --------------------------------------------------------------------------------------


def test_new_store_layout(tmp_path):
    files = write_frames(tmp_path / "in", 5)
    plan, group = _plan_and_group(tmp_path, files, params=["mask.mode=binary"])

    assert group.metadata.zarr_format == 3
    info = group.attrs["napari_xray"]
    assert info["format"] == STORE_FORMAT
    assert info["frame_shape"] == list(SHAPE) and info["input_dtype"] == "uint8"
    assert [f["key"] for f in info["filters"]] == list(OPERATIONS)
    dtypes = {f["key"]: f["dtype"] for f in info["filters"]}
    assert dtypes == {"log": "float32", "gradient": "float32", "sobel": "float32",
                      "prewitt": "float32", "canny": "bool", "mask": "bool"}
    for key, op in OPERATIONS.items():
        array = group[key]
        assert array.shape == (5, *SHAPE)
        assert array.chunks == (1, *SHAPE)  # whole frames
        assert array.dtype == np.dtype(dtypes[key])
        attrs = array.attrs["napari_xray"]
        assert attrs["params"] == json.loads(json.dumps(parse_params(
            ["mask.mode=binary"], list(OPERATIONS))[key]))
        assert attrs["colormap"] == op.colormaps[0]
    status = group["status"]
    assert status.shape == (5,) and status.chunks == (1,)
    assert np.all(status[:] == STATUS_TODO)
    assert status.attrs["file_names"] == [p.name for p in files]
    assert status.attrs["source_paths"] == [str(p) for p in files]
    assert group.attrs["report"]["to_do"] == 5
    fingerprints = group["fingerprint"]
    assert fingerprints.shape == (5, 3) and fingerprints.dtype == np.uint64
    assert fingerprints.attrs["fields"] == ["size", "mtime_ns", "sha256_64"]
    assert info["version"] == 2
    for name in (*OPERATIONS, "status", "fingerprint"):  # every chunk carries a checksum
        codecs = group[name].metadata.to_dict()["codecs"]
        assert codecs[-1]["name"] == "crc32c", (name, codecs)


def test_float16_option_and_value_mask_keeps_the_input_dtype(tmp_path):
    files = write_frames(tmp_path / "in", 2)
    plan, group = _plan_and_group(tmp_path, files, keys="log,mask", float_dtype="float16")
    assert group["log"].dtype == np.float16
    assert group["mask"].dtype == np.uint8  # mode "keep": the input dtype
    assert "lossy" in group["log"].attrs["napari_xray"]  # says what float16 loses
    assert "lossy" not in group["mask"].attrs["napari_xray"]
    process_frames(plan, [0, 1], [str(p) for p in files])
    frame = reference_frame(files[1])
    np.testing.assert_array_equal(group["log"][1], OPERATIONS["log"](frame).astype(np.float16))
    np.testing.assert_array_equal(group["mask"][1], OPERATIONS["mask"](frame))


def test_a_result_beyond_float16_fails_its_frame_naming_the_filter():
    frame = np.zeros((64, 64), dtype=np.float32)
    frame[:, 32:] = 1e6  # a Sobel magnitude far beyond float16's 65,504
    specs = [FilterSpec("mask", {"threshold": 150.0, "mode": "binary"}, "bool"),
             FilterSpec("sobel", {"normalize": False}, "float16")]
    with pytest.raises(worker.FrameError, match=r"sobel: values reach .*float16's range.*float32"):
        worker.filter_frame(frame, specs)
    small = frame / 1e3  # the same frame scaled into range: NumPy's own cast, bit for bit
    results = worker.filter_frame(small, specs)
    expected = OPERATIONS["sobel"](small, normalize=False).astype(np.float16)
    assert np.array_equal(results["sobel"].view(np.uint16), expected.view(np.uint16))
    assert np.array_equal(results["mask"], small > 150.0)


def test_rerun_with_other_options_is_refused_never_mixed(tmp_path):
    files = write_frames(tmp_path / "in", 3)
    _plan_and_group(tmp_path, files)
    with pytest.raises(BatchError, match="filters"):
        _plan_and_group(tmp_path, files, params=["log.sigma=2"])
    with pytest.raises(BatchError, match="filters"):
        _plan_and_group(tmp_path, files, keys="log,sobel")
    with pytest.raises(BatchError, match="float_dtype"):
        _plan_and_group(tmp_path, files, float_dtype="float16")
    with pytest.raises(BatchError, match="n_frames"):
        _plan_and_group(tmp_path, files[:2])
    with pytest.raises(BatchError, match="input files"):
        _plan_and_group(tmp_path, files[::-1])
    # the same options reopen it; --overwrite starts again with the new ones
    plan, _ = _plan_and_group(tmp_path, files)
    plan2, group = _plan_and_group(tmp_path, files, keys="log", overwrite=True)
    assert plan2.store_id != plan.store_id
    assert sorted(group.array_keys()) == ["fingerprint", "log", "status"]


def test_foreign_folders_are_never_touched(tmp_path):
    files = write_frames(tmp_path / "in", 2)
    foreign = tmp_path / "out.zarr"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(BatchError, match="not a Zarr v3 store|not a napari-xray"):
        _plan_and_group(tmp_path, files)
    with pytest.raises(BatchError, match="refusing to delete"):
        _plan_and_group(tmp_path, files, overwrite=True)
    assert (foreign / "precious.txt").read_text() == "keep me"


# --------------------------------------------------------------------------------------
# the per-chunk work (what each Dask task runs)
# --------------------------------------------------------------------------------------


def test_process_frames_matches_the_engine_and_skips_bad_files(tmp_path):
    good = write_frames(tmp_path / "in", 4)
    bad = write_bad_files(tmp_path / "in")
    files = [good[0], bad["rgba"], good[1], bad["truncated"], bad["la"], bad["wrong_size"],
             good[2], bad["not_an_image"], good[3]]
    plan, group = _plan_and_group(tmp_path, files)

    results = process_frames(plan, range(len(files)), [str(p) for p in files])

    by_index = {r.index: r for r in results}
    assert sorted(by_index) == list(range(len(files)))
    failed = {3: "truncated", 5: "wrong size", 7: "not a readable image"}
    for index, word in failed.items():
        assert by_index[index].status == STATUS_FAILED
        assert word in by_index[index].reason, by_index[index].reason
    assert_store_matches_engine(
        tmp_path / "out.zarr",
        {i: p for i, p in enumerate(files) if i not in failed},
        failed=failed,
    )


def test_completion_is_recorded_only_after_the_results(tmp_path, monkeypatch):
    files = write_frames(tmp_path / "in", 3)
    plan, group = _plan_and_group(tmp_path, files)
    real_write = worker._write_chunks

    def crash_half_way(arrays, blocks, where):
        first = next(iter(blocks))
        real_write(arrays, {first: blocks[first]}, where)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(worker, "_write_chunks", crash_half_way)
    with pytest.raises(OSError, match="simulated"):
        process_frames(plan, [1], [str(files[1])])
    assert group["status"][1] == STATUS_TODO  # a result was written, but not marked done
    assert np.any(group["log"][1])

    monkeypatch.setattr(worker, "_write_chunks", real_write)
    process_frames(plan, [1], [str(files[1])])
    assert_store_matches_engine(tmp_path / "out.zarr", {1: files[1]})


def test_a_failed_write_waits_for_the_others_before_raising():
    """The chunk's blocks are reused by the next chunk: no write may still be running."""
    import threading
    import time

    finished = threading.Event()

    class Slow:
        def __setitem__(self, where, value):
            time.sleep(0.3)
            finished.set()

    class Broken:
        def __setitem__(self, where, value):
            raise OSError("No space left on device")

    block = np.zeros((1, 4, 4), dtype=np.float32)
    with pytest.raises(OSError, match="No space"):
        worker._write_chunks({"log": Broken(), "sobel": Slow()},
                             {"log": block, "sobel": block}, slice(0, 1))
    assert finished.is_set()


def test_two_tasks_at_once_in_one_worker_never_share_buffers(tmp_path, restore_cv2_threads):
    """A worker started with several threads runs tasks concurrently: the reused
    result blocks and engine outputs are per thread, so every frame is its own."""
    import threading

    files = write_frames(tmp_path / "in", 8, seed=3)
    plan, _ = _plan_and_group(tmp_path, files, chunk_frames=2, frames_per_task=4)
    paths = [str(p) for p in files]
    errors = []

    def task(indices):
        try:
            for _ in range(3):  # again and again, to interleave with the other thread
                process_frames(plan, indices, [paths[i] for i in indices])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=task, args=(list(r),)) for r in (range(4), range(4, 8))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    assert_store_matches_engine(tmp_path / "out.zarr", dict(enumerate(files)))


def test_graph_is_map_blocks_one_task_per_status_chunk(tmp_path, restore_cv2_threads):
    import dask

    files = write_frames(tmp_path / "in", 10)
    plan, group = _plan_and_group(tmp_path, files, keys="log,canny", chunk_frames=2,
                                  frames_per_task=4)
    assert group["log"].chunks == (2, *SHAPE)
    assert group["status"].chunks == (4,)  # one task block = one status chunk
    # the result chunk of frames 2-3 is already done: everything else is to do
    process_frames(plan, [2, 3], [str(files[i]) for i in (2, 3)])
    todo = todo_frames(plan, read_status(group))
    assert todo.tolist() == [0, 1, 4, 5, 6, 7, 8, 9]

    graph = build_graph(plan, todo, [str(p) for p in files])

    layers = list(graph.dask.layers)
    assert any(name.startswith("_run_block") for name in layers), layers
    assert graph.chunks == ((2, 4, 2),)  # task blocks 0-3, 4-7, 8-9 minus done frames
    (results,) = dask.compute(graph, scheduler="synchronous")
    assert sorted(r.index for r in results) == todo.tolist()
    # the task of block 0 kept the earlier "done" of frames 2-3 in its status chunk
    assert group["status"][:].tolist() == [STATUS_DONE] * 10
    assert_store_matches_engine(tmp_path / "out.zarr", dict(enumerate(files)))


# --------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------


def test_cli_parser_registers_batch():
    from napari_xray import cli

    parser = cli.build_parser()
    args = parser.parse_args(["batch", "a", "b*.png", "--out", "s.zarr", "--filters", "log",
                              "-p", "log.sigma=2", "--workers", "2", "--strict"])
    assert args.run is cli.batch_command
    assert args.inputs == ["a", "b*.png"] and args.param == ["log.sigma=2"]
    assert args.workers == 2 and args.strict and args.dtype == "float32"
    with pytest.raises(SystemExit):
        parser.parse_args(["batch", "a", "--out", "s.zarr", "--workers", "2",
                           "--scheduler-address", "tcp://127.0.0.1:1"])


def test_cli_user_errors_are_one_line_exit_status_2(tmp_path, capsys):
    from napari_xray.cli import main

    status = main(["batch", str(tmp_path / "nothing"), "--out", str(tmp_path / "s.zarr")])
    assert status == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("napari-xray batch: error:") and "does not exist" in err
    assert "\n" not in err and not (tmp_path / "s.zarr").exists()


# --------------------------------------------------------------------------------------
# the lazy reader
# --------------------------------------------------------------------------------------


@pytest.fixture
def finished_store(tmp_path):
    """A store of 6 frames where frame 2 failed and frame 4 is not done yet."""
    files = write_frames(tmp_path / "in", 6)
    files[2] = write_bad_files(tmp_path / "bad")["truncated"]
    plan, group = _plan_and_group(tmp_path, files)
    todo = [0, 1, 2, 3, 5]
    results = process_frames(plan, todo, [str(files[i]) for i in todo])
    write_report(group, plan, files, {r.index: r.reason for r in results if r.reason},
                 {"state": "complete"})
    return tmp_path / "out.zarr", files


def test_is_xray_store(finished_store, tmp_path):
    path, _ = finished_store
    assert store.is_xray_store(path)
    assert store.is_xray_store(str(path / "log"))
    assert not store.is_xray_store(path / "status")
    other = zarr.open_group(str(tmp_path / "other.zarr"), mode="w", zarr_format=3)
    other.create_array("x", shape=(2,), dtype="f4")
    assert not store.is_xray_store(tmp_path / "other.zarr")
    assert not store.is_xray_store(tmp_path / "other.zarr" / "x")
    assert not store.is_xray_store(tmp_path / "in")
    assert not store.is_xray_store(tmp_path / "missing.zarr")
    assert not store.is_xray_store(tmp_path / "in" / "img_0.png")
    assert napari_get_reader(str(path)) is open_store_layers
    assert napari_get_reader([str(path)]) is open_store_layers
    assert napari_get_reader(str(tmp_path / "other.zarr")) is None


def test_store_layers_are_lazy_and_described(finished_store):
    import dask.array as da

    path, files = finished_store
    layers = open_store_layers(path)

    assert [kw["name"] for _, kw, _ in layers] == [f"{k} (out)" for k in OPERATIONS]
    kinds = {kw["metadata"]["filter"]: kind for _, kw, kind in layers}
    assert kinds == {"log": "image", "gradient": "image", "sobel": "image", "prewitt": "image",
                     "canny": "labels", "mask": "image"}
    for data, kwargs, kind in layers:
        key = kwargs["metadata"]["filter"]
        assert isinstance(data, da.Array)
        assert data.shape == (6, *SHAPE) and data.chunksize == (1, *SHAPE)
        assert kwargs["metadata"]["file_names"] == [p.name for p in files]
        assert kwargs["metadata"]["params"] == OPERATIONS[key].defaults()
        if kind == "image":
            assert kwargs["colormap"] == OPERATIONS[key].colormaps[0]
            low, high = kwargs["contrast_limits"]
            assert low < high
    failures = layers[0][1]["metadata"]["report"]["failures"]
    assert [f["file"] for f in failures] == ["truncated.png"]

    log = layers[0][0]
    np.testing.assert_array_equal(log[3].compute(), OPERATIONS["log"](reference_frame(files[3])))
    assert not np.any(log[2].compute()) and not np.any(log[4].compute())  # failed, to do
    canny = dict((kw["metadata"]["filter"], d) for d, kw, _ in layers)["canny"]
    np.testing.assert_array_equal(
        canny[1].compute(), OPERATIONS["canny"](reference_frame(files[1])).astype(np.uint8))

    (single,) = open_store_layers(path / "sobel")
    assert single[1]["name"] == "sobel (out)"
    with pytest.raises(ValueError, match="not a napari-xray batch store"):
        open_store_layers(path.parent / "in")


@pytest.fixture
def read_keys(monkeypatch) -> list[str]:
    """Every key Zarr reads from a local store from now on (the list fills as reads happen)."""
    from zarr.storage import LocalStore

    keys: list[str] = []
    real_get = LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        keys.append(key)
        return await real_get(self, key, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "get", counting_get)
    return keys


def test_a_frame_reads_only_its_own_chunks(finished_store, read_keys):
    path, _ = finished_store
    layers = open_store_layers(path)
    read_keys.clear()
    for data, _, _ in layers:
        np.asarray(data[3])
    chunk_reads = [k for k in read_keys if "/c/" in k]
    assert sorted(chunk_reads) == sorted(f"{key}/c/3/0/0" for key in OPERATIONS), read_keys


def test_the_reader_never_installs_a_dask_client(finished_store):
    path, _ = finished_store
    code = (
        "import threading, dask, numpy as np\n"
        "from napari_xray.plugin._reader import open_store_layers\n"
        f"layers = open_store_layers({str(path)!r})\n"
        "[np.asarray(d[0]) for d, _, _ in layers]\n"
        "from distributed import default_client\n"
        "try:\n"
        "    default_client()\n"
        "    print('a global client exists')\n"
        "except ValueError:\n"
        "    print('no client', dask.config.get('scheduler', None))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "no client None", out.stdout + out.stderr


def _frames_read(keys) -> set[str]:
    """Frame numbers of the chunk keys (``<array>/c/<frame>/0/0``) that were read."""
    return {k.split("/c/")[1].split("/")[0] for k in keys if "/c/" in k}


@pytest.mark.viewer
def test_store_in_a_real_viewer_stays_lazy(make_napari_viewer, finished_store, read_keys):
    import dask.array as da

    path, files = finished_store
    read_keys.clear()
    viewer = make_napari_viewer()
    for data, kwargs, kind in open_store_layers(path):
        getattr(viewer, f"add_{kind}")(data, **kwargs)

    assert len(viewer.layers) == len(OPERATIONS)
    assert all(isinstance(layer.data, da.Array) for layer in viewer.layers)
    assert viewer.layers["canny (out)"]._type_string == "labels"
    # Only the frame on screen is read: napari may slice frame 0 while the first
    # layer is added, then shows the middle frame; never the whole stack.
    on_screen = str(viewer.dims.current_step[0])
    assert on_screen in _frames_read(read_keys) <= {"0", on_screen}, read_keys

    read_keys.clear()
    viewer.dims.set_current_step(0, 3)
    assert _frames_read(read_keys) == {"3"}, read_keys
    shown = viewer.layers["log (out)"]._slice.image.raw
    np.testing.assert_array_equal(shown, OPERATIONS["log"](reference_frame(files[3])))

    from distributed import default_client

    with pytest.raises(ValueError, match="No clients found"):
        default_client()


@pytest.mark.viewer
def test_viewer_open_of_a_store_uses_the_lazy_reader(make_napari_viewer, finished_store):
    import dask.array as da

    path, _ = finished_store
    viewer = make_napari_viewer()
    layers = viewer.open(str(path), plugin="napari-xray")
    assert [layer.name for layer in layers] == [f"{k} (out)" for k in OPERATIONS]
    assert all(isinstance(layer.data, da.Array) for layer in layers)
    (single,) = viewer.open(str(path / "gradient"), plugin="napari-xray")
    assert single.data.shape == (6, *SHAPE)


def test_interrupted_store_creation_leaves_nothing_in_the_way(tmp_path, monkeypatch):
    files = write_frames(tmp_path / "in", 3)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch_store, "empty_report", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _plan_and_group(tmp_path, files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no half store, no temp

    monkeypatch.undo()
    plan, group = _plan_and_group(tmp_path, files)
    assert (tmp_path / "out.zarr").is_dir() and group.attrs["napari_xray"]["n_frames"] == 3


# --------------------------------------------------------------------------------------
# reruns that trust nothing: changed inputs, damaged chunks, one run per store
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def thread_client():
    """A Dask client on one in-process worker thread (no worker processes to start)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                     dashboard_address=None) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture
def run(thread_client, restore_cv2_threads, tmp_path):
    """``run(files, **options)``: run_batch into tmp_path/out.zarr; returns (summary, log)."""
    from napari_xray.batch.run import run_batch

    def run_it(files, **options):
        messages: list[str] = []
        summary = run_batch(files, options.pop("out", tmp_path / "out.zarr"),
                            client=thread_client, progress=False, log=messages.append,
                            **options)
        return summary, "\n".join(messages)

    return run_it


def _replace_with_other_content(path: Path, seed: int) -> None:
    replacement = path.with_name("replacement.tmp.png")
    Image.fromarray(make_phantom(1, SHAPE, seed=seed)[0]).save(replacement)
    os.replace(replacement, path)  # same name, other content


def test_an_input_replaced_under_the_same_name_is_computed_again(tmp_path, run, monkeypatch):
    files = write_frames(tmp_path / "in", 4)
    summary, _ = run(files)
    assert summary.ok == 4
    _replace_with_other_content(files[1], seed=99)

    summary, log = run(files)
    assert summary.already_done == 3 and summary.processed == 1
    assert "1 input(s) changed since they were done (img_1.png)" in log
    assert [e["file"] for e in summary.recomputed] == ["img_1.png"]
    assert_store_matches_engine(tmp_path / "out.zarr", dict(enumerate(files)))
    summary, _ = run(files)
    assert summary.processed == 0  # the new fingerprint was recorded

    # A run killed right after it noticed a change never leaves the old result
    # marked done: the frame is "to do" until its new results are stored.
    _replace_with_other_content(files[2], seed=98)
    from napari_xray.batch import run as batch_run

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch_run, "_compute", killed)
    with pytest.raises(KeyboardInterrupt, match="3 of 4 frames are done"):
        run(files)
    assert read_status(zarr.open_group(str(tmp_path / "out.zarr"), mode="r"))[2] == STATUS_TODO
    monkeypatch.undo()
    summary, _ = run(files)
    assert summary.processed == 1
    assert_store_matches_engine(tmp_path / "out.zarr", dict(enumerate(files)))


def _flip_bytes(path: Path, where: int = 40) -> None:
    data = bytearray(path.read_bytes())
    for offset in range(where, where + 4):
        data[offset % len(data)] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_damaged_chunk_is_an_error_naming_the_frame_and_verify_recomputes_it(tmp_path, run):
    files = write_frames(tmp_path / "in", 6)
    run(files)
    path = tmp_path / "out.zarr"
    _flip_bytes(path / "log" / "c" / "2" / "0" / "0")
    chunk = path / "sobel" / "c" / "3" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:100])  # truncated
    (path / "gradient" / "c" / "4" / "0" / "0").unlink()  # would read back as zeros

    results = {r.key: r.data for r in store.open_store(path).results}
    with pytest.raises(ValueError, match=r"log result of frame 2 \(img_2.png\) is damaged"
                       r".*--verify"):
        results["log"][2].compute()
    with pytest.raises(store.XrayReadError, match=r"sobel result of frame 3 \(img_3.png\)"):
        results["sobel"][3].compute()
    np.testing.assert_array_equal(results["log"][1].compute(),
                                  OPERATIONS["log"](reference_frame(files[1])))

    summary, _ = run(files, verify=True)
    assert summary.verified == 3 and summary.processed == 3
    reasons = {entry["file"]: entry["reason"] for entry in summary.recomputed}
    assert sorted(reasons) == ["img_2.png", "img_3.png", "img_4.png"]
    assert "log chunk damaged" in reasons["img_2.png"]
    assert "sobel chunk damaged" in reasons["img_3.png"]
    assert "gradient chunk file missing" in reasons["img_4.png"]
    assert "recomputed: img_2.png: log chunk damaged" in summary.format_problems()
    assert_store_matches_engine(path, dict(enumerate(files)))
    assert store.open_store(path).results[0].data.compute().shape == (6, *SHAPE)


def test_verify_finds_an_input_changed_behind_an_unchanged_size_and_mtime(tmp_path, run):
    from PIL import PngImagePlugin

    files = write_frames(tmp_path / "in", 3)
    info = PngImagePlugin.PngInfo()
    info.add_text("note", "a")
    Image.open(files[1]).save(files[1], pnginfo=info)
    run(files)
    before = os.stat(files[1])
    info = PngImagePlugin.PngInfo()
    info.add_text("note", "b")  # same length: same size, other bytes
    Image.open(files[1]).save(files[1], pnginfo=info)
    os.utime(files[1], ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(files[1]).st_size == before.st_size

    summary, _ = run(files)
    assert summary.processed == 0  # size and mtime say nothing changed
    summary, _ = run(files, verify=True)
    assert [(e["file"], e["reason"]) for e in summary.recomputed] == [
        ("img_1.png", "input img_1.png changed since it was done")]


def test_a_damaged_status_chunk_is_computed_again_not_a_raw_error(tmp_path, run):
    files = write_frames(tmp_path / "in", 4)
    run(files, frames_per_task=2)
    _flip_bytes(tmp_path / "out.zarr" / "status" / "c" / "1", where=0)
    summary, log = run(files, frames_per_task=2)
    assert "frames 2–3 are damaged" in log
    assert summary.processed == 2 and summary.already_done == 2
    assert_store_matches_engine(tmp_path / "out.zarr", dict(enumerate(files)))


def test_a_store_without_checksums_is_read_and_a_rerun_asks_for_overwrite(tmp_path, run):
    files = write_frames(tmp_path / "in", 3)
    run(files, filters="log,canny")
    path = tmp_path / "out.zarr"
    group = zarr.open_group(str(path), mode="r+")
    for key in ("log", "canny", "status"):  # rewrite each array as version 1 made it
        data, attrs = group[key][:], dict(group[key].attrs)
        old = group[key]
        del group[key]
        array = group.create_array(key, shape=old.shape, chunks=old.chunks, dtype=old.dtype,
                                   fill_value=0, compressors=None)
        array[:] = data
        array.attrs.update(attrs)
    del group["fingerprint"]
    group.attrs["napari_xray"] = dict(group.attrs["napari_xray"], version=1)
    assert "crc32c" not in (path / "log" / "zarr.json").read_text()

    results = {r.key: r.data for r in store.open_store(path).results}
    np.testing.assert_array_equal(results["log"][2].compute(),
                                  OPERATIONS["log"](reference_frame(files[2])))
    with pytest.raises(BatchError, match="older napari-xray.*--overwrite"):
        run(files, filters="log,canny")
    summary, _ = run(files, filters="log,canny", overwrite=True)
    assert summary.ok == 3


def test_a_second_run_on_a_store_is_refused_and_a_stale_lock_taken_over(tmp_path, run):
    from napari_xray.batch.lock import StoreLock, lock_path

    files = write_frames(tmp_path / "in", 2)
    store_path = str(tmp_path / "out.zarr")
    with StoreLock(store_path):  # another run, alive
        with pytest.raises(BatchError, match=rf"another napari-xray batch is running on "
                           rf".*PID {os.getpid()} on "):
            run(files)
        with pytest.raises(BatchError, match="another napari-xray batch is running"):
            run(files, overwrite=True)
    assert not (tmp_path / "out.zarr").exists()

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    Path(lock_path(store_path)).write_text(json.dumps(
        {"pid": dead.pid, "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"}))
    summary, log = run(files)
    assert summary.ok == 2
    assert f"took over the lock of a run that did not finish (PID {dead.pid}" in log
    assert "that process is gone" in log
    assert not Path(lock_path(store_path)).exists()


def test_a_thumbnail_sorted_first_fails_alone(tmp_path, run):
    folder = tmp_path / "in"
    files = write_frames(folder, 4)
    thumbnail = folder / "a_thumbnail.png"
    Image.fromarray(make_phantom(1, (48, 64))[0]).save(thumbnail)
    summary, log = run([folder])
    assert [f["file"] for f in summary.failures] == ["a_thumbnail.png"]
    assert "wrong size" in summary.failures[0]["reason"]
    assert summary.ok == 4
    assert "a_thumbnail.png (48×64 uint8)" in log and "96×128" in log
    group = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")
    assert group.attrs["napari_xray"]["frame_shape"] == list(SHAPE)
    assert_store_matches_engine(tmp_path / "out.zarr",
                                {i + 1: p for i, p in enumerate(files)}, failed=[0])
    # --shape picks the size explicitly
    summary, _ = run([folder], out=tmp_path / "thumbs.zarr", shape="48,64")
    assert summary.ok == 1 and len(summary.failures) == 4


def test_a_killed_overwrite_leaves_a_path_that_can_be_made_again(tmp_path, run, monkeypatch):
    from napari_xray.batch import folders

    files = write_frames(tmp_path / "in", 2)
    run(files)
    real_rmtree = folders.shutil.rmtree

    def killed_while_deleting(path, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(folders.shutil, "rmtree", killed_while_deleting)
    with pytest.raises(KeyboardInterrupt):
        run(files, overwrite=True)
    monkeypatch.setattr(folders.shutil, "rmtree", real_rmtree)
    assert not (tmp_path / "out.zarr").exists()
    assert [p.name for p in tmp_path.glob(".out.zarr.deleting-*")]

    summary, log = run(files)  # neither stuck nor mixed: made again
    assert summary.ok == 2 and "removed .out.zarr.deleting-" in log
    assert not list(tmp_path.glob(".out.zarr.*"))

    # what an in-place deletion killed half-way left (no zarr.json) is named, and removed
    (tmp_path / "out.zarr" / "zarr.json").unlink()
    with pytest.raises(BatchError, match="what is left of a napari-xray batch store"
                                         ".*--overwrite"):
        run(files)
    summary, _ = run(files, overwrite=True)
    assert summary.ok == 2
