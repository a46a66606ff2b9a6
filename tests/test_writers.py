"""The animated-GIF writer, headless (no viewer): round trips, scaling, atomic writes, npe2."""

from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest

from napari_xray.engine.filters import normalize
from napari_xray.io.gif import DEFAULT_GIF_DURATION, gif_frames, save_gif
from napari_xray.plugin._writer import write_gif


def _read(path) -> np.ndarray:
    frames = iio.imread(path, index=None)
    return frames if frames.ndim == 3 else frames[..., 0]


def test_nine_real_frames_round_trip(xray_stack, tmp_path):
    path = tmp_path / "series.gif"
    assert write_gif(path, xray_stack, {"name": "series"}) == [str(path)]
    frames = _read(path)
    assert frames.shape == (9, 1024, 1024)
    np.testing.assert_array_equal(frames, np.rint(normalize(xray_stack)).astype(np.uint8))
    assert iio.immeta(path, index=0)["duration"] == round(DEFAULT_GIF_DURATION * 1000)


def test_float_results_are_scaled_per_frame_the_tutorials_way(tmp_path):
    rng = np.random.default_rng(0)
    stack = rng.normal(size=(3, 40, 50)).astype(np.float32) * np.array([1, 10, 100])[:, None, None]
    stack[1] = 7.0  # a constant frame becomes 0, never NaN
    frames = gif_frames(stack)
    assert frames.dtype == np.uint8 and frames.shape == (3, 40, 50)
    assert frames[0].min() == 0 and frames[0].max() == 255 and frames[2].max() == 255
    assert not frames[1].any()
    write_gif(tmp_path / "f.gif", stack)
    np.testing.assert_array_equal(_read(tmp_path / "f.gif"), frames)


def test_duration_from_argument_and_from_layer_metadata(xray_stack, tmp_path):
    write_gif(tmp_path / "a.gif", xray_stack[:2], duration=0.5)
    assert iio.immeta(tmp_path / "a.gif", index=0)["duration"] == 500
    write_gif(tmp_path / "b.gif", xray_stack[:2], {"metadata": {"gif_duration": 0.04}})
    assert iio.immeta(tmp_path / "b.gif", index=0)["duration"] == 40


def test_save_gif_takes_no_layer_attributes(xray_stack, tmp_path):
    path = tmp_path / "plain.gif"
    assert save_gif(path, xray_stack[:2], duration=0.25) == path
    np.testing.assert_array_equal(_read(path), gif_frames(xray_stack[:2]))
    assert iio.immeta(path, index=0)["duration"] == 250
    with pytest.raises(ValueError, match="positive"):
        save_gif(tmp_path / "never.gif", xray_stack[:2], duration=-1)
    assert sorted(os.listdir(tmp_path)) == ["plain.gif"]


def test_one_frame_bool_and_rgb(tmp_path):
    frame = np.arange(64 * 48, dtype=np.uint16).reshape(64, 48)
    write_gif(tmp_path / "one.gif", frame)
    assert _read(tmp_path / "one.gif").shape[-2:] == (64, 48)
    mask = np.zeros((2, 16, 16), bool)
    mask[:, 4:8] = True
    write_gif(tmp_path / "mask.gif", mask)
    assert set(np.unique(_read(tmp_path / "mask.gif"))) == {0, 255}
    rgb = np.zeros((2, 16, 16, 4), np.uint8)
    rgb[..., 0] = 200
    rgb[1, :8, :, 1] = 100
    frames = gif_frames(rgb, rgb=True)
    assert frames.shape == (2, 16, 16, 3)  # alpha dropped; each frame scaled over its channels
    assert frames[0, ..., 0].max() == 255 and frames[0, ..., 1:].max() == 0
    assert frames[1, :8, :, 1].max() == 128  # 255 · 100 / 200, rounded
    write_gif(tmp_path / "rgb.gif", rgb, {"rgb": True})
    assert iio.imread(tmp_path / "rgb.gif", index=None).shape[:3] == (2, 16, 16)


def test_multiscale_uses_full_resolution(tmp_path):
    full = np.random.default_rng(1).random((4, 32, 32)).astype(np.float32)
    levels = [full, full[:, ::2, ::2]]
    write_gif(tmp_path / "ms.gif", levels, {"multiscale": True})
    assert _read(tmp_path / "ms.gif").shape == (4, 32, 32)


def test_identical_consecutive_frames_are_merged_by_the_gif_encoder(tmp_path):
    # Pillow stores a repeated frame once with the durations added: same animation.
    write_gif(tmp_path / "same.gif", np.stack([np.eye(8)] * 3), duration=0.1)
    assert _read(tmp_path / "same.gif").shape[0] == 1
    assert iio.immeta(tmp_path / "same.gif", index=0)["duration"] == 300


@pytest.mark.parametrize(
    ("name", "data", "kwargs", "match"),
    [
        ("x.png", np.zeros((2, 8, 8)), {}, "does not end in .gif"),
        ("x.gif", np.zeros((2, 8, 8)), {"duration": 0}, "positive"),
        ("x.gif", np.zeros((2, 8, 8)), {"duration": "slow"}, "number of seconds"),
        ("x.gif", np.zeros(5), {}, "2D frames"),
        ("x.gif", np.zeros((0, 8, 8)), {}, "empty"),
        ("x.gif", np.array([[np.nan, 1.0], [2.0, 3.0]]), {}, "NaN"),
        ("x.gif", np.zeros((2, 8, 8), complex), {}, "real numbers"),
    ],
)
def test_bad_input_raises_and_writes_nothing(tmp_path, name, data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        write_gif(tmp_path / name, data, **kwargs)
    assert os.listdir(tmp_path) == []


def test_missing_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_gif(tmp_path / "nowhere" / "x.gif", np.zeros((2, 8, 8)))


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "keep.gif"
    write_gif(path, np.arange(2 * 8 * 8).reshape(2, 8, 8))
    before = path.read_bytes()

    def broken(target, *args, **kwargs):
        with open(target, "wb") as handle:
            handle.write(b"GIF89a half")
        raise OSError("disk full")

    monkeypatch.setattr(iio, "imwrite", broken)
    with pytest.raises(OSError, match="disk full"):
        write_gif(path, np.ones((2, 8, 8)))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.gif"]


def test_npe2_declares_the_gif_writer_for_image_layers():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    writers = [
        writer
        for writer in pm.iter_compatible_writers(["image"])
        if writer.plugin_name == "napari-xray"
    ]
    assert writers and ".gif" in writers[0].filename_extensions
    assert not [
        writer
        for writer in pm.iter_compatible_writers(["labels"])
        if writer.plugin_name == "napari-xray"
    ]


def test_napari_save_layers_writes_gif_through_npe2(xray_stack, tmp_path):
    import napari
    from napari.layers import Image

    layer = Image(xray_stack[:3], name="three")
    written = napari.save_layers(str(tmp_path / "three.gif"), [layer], plugin="napari-xray")
    assert [os.path.basename(p) for p in written] == ["three.gif"]
    np.testing.assert_array_equal(
        _read(written[0]), np.rint(normalize(xray_stack[:3])).astype(np.uint8)
    )
