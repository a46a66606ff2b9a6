"""The animated-GIF writers, headless (no viewer): the pure tutorial-scaled GIF of
:mod:`napari_xray.io.gif`, and napari's writer, which draws what the layer shows
(round trips, colours, atomic writes, npe2)."""

from __future__ import annotations

import os

import imageio.v3 as iio
import numpy as np
import pytest

from napari_xray.engine.filters import normalize
from napari_xray.io.gif import DEFAULT_GIF_DURATION, gif_frames, save_gif, write_gif_frames
from napari_xray.plugin._writer import GifExportError, write_gif, write_gif_layers


def _read(path) -> np.ndarray:
    frames = iio.imread(path, index=None)
    return frames if frames.ndim == 3 else frames[..., 0]


def _read_rgb(path) -> np.ndarray:
    frames = iio.imread(path, index=None)
    return np.repeat(frames[..., None], 3, axis=-1) if frames.ndim == 3 else frames[..., :3]


def _napari_gray(data) -> np.ndarray:
    """Gray frames as napari shows ``data`` by default: its contrast limits, gamma 1."""
    from napari.layers import Image

    low, high = Image(data).contrast_limits
    scaled = np.clip((np.asarray(data, np.float64) - low) / (high - low), 0, 1)
    return np.rint(scaled * 255).astype(np.uint8)


# ------------------------------------------------------------------ io.gif (tutorial scaling)


def test_save_gif_scales_each_frame_the_tutorials_way(xray_stack, tmp_path):
    path = tmp_path / "series.gif"
    assert save_gif(path, xray_stack) == path
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
    save_gif(tmp_path / "f.gif", stack)
    np.testing.assert_array_equal(_read(tmp_path / "f.gif"), frames)


def test_save_gif_takes_no_layer_attributes(xray_stack, tmp_path):
    path = tmp_path / "plain.gif"
    assert save_gif(path, xray_stack[:2], duration=0.25) == path
    np.testing.assert_array_equal(_read(path), gif_frames(xray_stack[:2]))
    assert iio.immeta(path, index=0)["duration"] == 250
    with pytest.raises(ValueError, match="positive"):
        save_gif(tmp_path / "never.gif", xray_stack[:2], duration=-1)
    assert sorted(os.listdir(tmp_path)) == ["plain.gif"]


def test_gif_frames_of_bool_and_rgb():
    mask = np.zeros((2, 16, 16), bool)
    mask[:, 4:8] = True
    assert set(np.unique(gif_frames(mask))) == {0, 255}
    rgb = np.zeros((2, 16, 16, 4), np.uint8)
    rgb[..., 0] = 200
    rgb[1, :8, :, 1] = 100
    frames = gif_frames(rgb, rgb=True)
    assert frames.shape == (2, 16, 16, 3)  # alpha dropped; each frame scaled over its channels
    assert frames[0, ..., 0].max() == 255 and frames[0, ..., 1:].max() == 0
    assert frames[1, :8, :, 1].max() == 128  # 255 · 100 / 200, rounded


def test_write_gif_frames_keeps_up_to_256_colours_exactly(tmp_path):
    rng = np.random.default_rng(3)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    frames = palette[rng.integers(0, 256, (3, 32, 40))]
    write_gif_frames(tmp_path / "exact.gif", frames, duration=0.2)
    np.testing.assert_array_equal(_read_rgb(tmp_path / "exact.gif"), frames)
    with pytest.raises(ValueError, match="uint8"):
        write_gif_frames(tmp_path / "bad.gif", frames.astype(np.float32))
    assert sorted(os.listdir(tmp_path)) == ["exact.gif"]


# --------------------------------------------------------------------------- napari's writer


def test_nine_real_frames_round_trip_as_napari_shows_them(xray_stack, tmp_path):
    path = tmp_path / "series.gif"
    assert write_gif(path, xray_stack, {"name": "series"}) == [str(path)]
    frames = _read_rgb(path)
    assert frames.shape == (9, 1024, 1024, 3)
    gray = _napari_gray(xray_stack)
    np.testing.assert_array_equal(frames, np.repeat(gray[..., None], 3, axis=-1))
    assert iio.immeta(path, index=0)["duration"] == round(DEFAULT_GIF_DURATION * 1000)


def test_image_colours_follow_colormap_contrast_limits_and_gamma(tmp_path):
    from napari.utils.colormaps import ensure_colormap

    rng = np.random.default_rng(0)
    data = rng.normal(100, 40, (3, 40, 50)).astype(np.float32)
    for colormap, limits, gamma in [("hot", (60.0, 160.0), 1.0), ("viridis", (50.0, 120.0), 0.6)]:
        meta = {"colormap": colormap, "contrast_limits": limits, "gamma": gamma}
        path = tmp_path / f"{colormap}.gif"
        write_gif(path, data, meta)
        shown = np.clip((data - limits[0]) / (limits[1] - limits[0]), 0, 1) ** gamma
        expected = ensure_colormap(colormap).map(shown.ravel())[:, :3].reshape(*data.shape, 3)
        # 256 colormap levels: within half a level of napari's continuous colormap
        np.testing.assert_allclose(_read_rgb(path), expected * 255, atol=2.5)


def test_labels_are_saved_in_their_colours(tmp_path):
    from napari.layers import Labels

    from napari_xray.plugin.layers import labels_colormap

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 5, (2, 30, 30)).astype(np.uint8)
    layer = Labels(labels)  # napari's default label colours, opacity 0.7
    data, meta, layer_type = layer.as_layer_data_tuple()
    (path,) = write_gif_layers(str(tmp_path / "labels.gif"), [(data, meta, layer_type)])
    rgba = layer.colormap.map(labels.ravel()).reshape(*labels.shape, 4)
    expected = np.rint(rgba[..., :3] * rgba[..., 3:] * layer.opacity * 255)
    np.testing.assert_array_equal(_read_rgb(path), expected)
    assert not _read_rgb(path)[labels == 0].any(), "label 0 is transparent: the black canvas"

    edges = Labels((labels > 2).astype(np.uint8), colormap=labels_colormap("gray"), opacity=1.0)
    (path,) = write_gif_layers(str(tmp_path / "edges.gif"), [edges.as_layer_data_tuple()])
    np.testing.assert_array_equal(_read(path), np.where(labels > 2, 255, 0))


def test_several_layers_make_one_grid_gif(tmp_path):
    from napari.layers import Image, Labels

    levels = np.array([100, 150, 200], np.uint8)[:, None, None]
    image = Image(np.broadcast_to(levels, (3, 10, 20)).copy(), contrast_limits=(0, 255))
    mask = Labels(np.ones((3, 10, 20), np.uint8), opacity=1.0)
    single = Image(np.full((6, 8), 255, np.uint8), contrast_limits=(0, 255))
    (path,) = write_gif_layers(
        str(tmp_path / "grid.gif"), [ly.as_layer_data_tuple() for ly in (image, mask, single)]
    )
    frames = _read_rgb(path)
    assert frames.shape == (3, 20, 40, 3)  # napari's grid for three layers: 2 × 2
    assert (frames[:, :10, :20] == levels[..., None]).all()  # first layer top left
    np.testing.assert_array_equal(
        frames[0, 5, 30], np.rint(mask.colormap.map(np.array([1]))[0, :3] * 255)
    )
    assert (frames[:, 12:18, 6:14] == 255).all()  # the single image centred, in every frame
    assert not frames[:, 10:12].any() and not frames[:, 10:, :6].any()
    assert not frames[:, 10:, 20:].any()  # the empty fourth cell is black


def test_points_or_mismatched_layers_give_a_clear_error(tmp_path):
    from napari.layers import Image, Points

    image = Image(np.zeros((3, 8, 8), np.float32))
    marks = Points([[0, 1, 2]], name="marks")
    with pytest.raises(GifExportError, match="'marks' is a Points layer"):
        write_gif_layers(str(tmp_path / "p.gif"), [image.as_layer_data_tuple(),
                                                   marks.as_layer_data_tuple()])
    short = Image(np.zeros((2, 8, 8), np.float32), name="short")
    with pytest.raises(GifExportError, match="different numbers of frames"):
        write_gif_layers(str(tmp_path / "m.gif"), [image.as_layer_data_tuple(),
                                                   short.as_layer_data_tuple()])
    assert os.listdir(tmp_path) == []


def test_duration_from_argument_and_from_layer_metadata(xray_stack, tmp_path):
    write_gif(tmp_path / "a.gif", xray_stack[:2], duration=0.5)
    assert iio.immeta(tmp_path / "a.gif", index=0)["duration"] == 500
    write_gif(tmp_path / "b.gif", xray_stack[:2], {"metadata": {"gif_duration": 0.04}})
    assert iio.immeta(tmp_path / "b.gif", index=0)["duration"] == 40


def test_one_frame_rgb_and_multiscale(tmp_path):
    frame = np.arange(64 * 48, dtype=np.uint16).reshape(64, 48)
    write_gif(tmp_path / "one.gif", frame)
    assert _read(tmp_path / "one.gif").shape[-2:] == (64, 48)
    rgb = np.zeros((2, 16, 16, 3), np.uint8)
    rgb[0, ..., 0] = 200
    rgb[1, ..., 2] = 100
    write_gif(tmp_path / "rgb.gif", rgb, {"rgb": True, "contrast_limits": (0, 255)})
    np.testing.assert_array_equal(_read_rgb(tmp_path / "rgb.gif"), rgb)
    full = np.random.default_rng(1).random((4, 32, 32)).astype(np.float32)
    write_gif(tmp_path / "ms.gif", [full, full[:, ::2, ::2]], {"multiscale": True})
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
        ("x.gif", np.zeros((0, 8, 8)), {}, "empty"),
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


def test_npe2_declares_the_gif_writer_for_image_and_labels_layers():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()

    def ours(layer_types):
        return [
            writer
            for writer in pm.iter_compatible_writers(layer_types)
            if writer.plugin_name == "napari-xray"
        ]

    for layer_types in (["image"], ["labels"], ["image", "labels", "image"]):
        writers = ours(layer_types)
        assert writers and ".gif" in writers[0].filename_extensions, layer_types


def test_napari_save_layers_writes_gif_through_npe2(xray_stack, tmp_path):
    import napari
    from napari.layers import Image, Labels, Points
    from npe2 import PluginManager

    PluginManager.instance().discover()
    layer = Image(xray_stack[:3], name="three")
    written = napari.save_layers(str(tmp_path / "three.gif"), [layer], plugin="napari-xray")
    assert [os.path.basename(p) for p in written] == ["three.gif"]
    np.testing.assert_array_equal(_read(written[0]), _napari_gray(xray_stack[:3]))

    mask = Labels((xray_stack[:3] > 150).astype(np.uint8), name="mask")
    written = napari.save_layers(str(tmp_path / "mask.gif"), [mask], plugin="napari-xray")
    assert [os.path.basename(p) for p in written] == ["mask.gif"]
    both = napari.save_layers(str(tmp_path / "both.gif"), [layer, mask], plugin="napari-xray")
    assert _read(both[0]).shape == (3, 1024, 2048)

    with pytest.raises(GifExportError, match="'marks' is a Points layer"):
        napari.save_layers(
            str(tmp_path / "marks.gif"), [layer, Points([[0, 1, 2]], name="marks")],
            plugin="napari-xray",
        )
