"""The three samples opened in a real napari viewer through npe2 (File > Open Sample)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.viewer

FRAME_NAMES = [f"00000011_{i:03d}.png" for i in range(9)]


def test_plugin_manifest_declares_the_three_samples():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    samples = {
        contrib.key: contrib.display_name
        for plugin, contribs in pm.iter_sample_data()
        if plugin == "napari-xray"
        for contrib in contribs
    }
    assert samples == {
        "series": "Chest X-ray series (ChestX-ray8, 9 frames)",
        "frame": "Chest X-ray (00000011_001)",
        "phantom": "Synthetic chest phantom",
    }


@pytest.mark.parametrize(
    ("key", "shape", "file_names"),
    [
        ("series", (9, 1024, 1024), FRAME_NAMES),
        ("frame", (1024, 1024), ["00000011_001.png"]),
        ("phantom", (9, 1024, 1024), []),
    ],
)
def test_open_sample_adds_one_image_layer(make_napari_viewer, request, key, shape, file_names):
    if file_names:
        request.getfixturevalue("xray_dir")  # real frames: skip (or fail in CI) without them
    viewer = make_napari_viewer()
    layers = viewer.open_sample("napari-xray", key)

    assert len(layers) == 1
    assert list(viewer.layers) == layers
    layer = layers[0]
    assert layer._type_string == "image"
    assert layer.data.shape == shape
    assert layer.data.dtype == np.uint8
    assert layer.metadata["file_names"] == file_names
    assert layer.colormap.name == "gray"
    assert viewer.dims.ndim == len(shape)


def test_open_series_sample_matches_the_frames(make_napari_viewer, xray_stack):
    viewer = make_napari_viewer()
    (layer,) = viewer.open_sample("napari-xray", "series")
    np.testing.assert_array_equal(np.asarray(layer.data), xray_stack)
    assert layer.metadata["commit"] in layer.metadata["url"]


def test_the_samples_open_with_their_findings_and_pixel_sizes(make_napari_viewer, xray_dir):
    """The data set's rows ship with the package (independent figures: its README)."""
    viewer = make_napari_viewer()
    (series,) = viewer.open_sample("napari-xray", "series")
    frames = series.metadata["frames"]
    findings = {i: f["findings"] for i, f in enumerate(frames) if f["findings"]}
    assert findings == {0: ["Effusion"], 5: ["Infiltration"], 6: ["Atelectasis"],
                        7: ["Infiltration"]}
    assert frames[5]["view"] == "AP" and series.metadata["chestxray8"]["mixed_views"]
    assert tuple(series.scale) == (1.0, 1.0, 1.0)  # nine pixel sizes: stays in pixels
    (frame,) = viewer.open_sample("napari-xray", "frame")
    # 00000011_001: 0.168 mm × 2048 / 1024 down, × 2500 / 1024 across.
    assert frame.scale[0] == pytest.approx(0.336) and round(frame.scale[1], 3) == 0.410
    assert [str(unit) for unit in frame.units] == ["millimeter", "millimeter"]
    # napari's scale bar reads the layers' units (the series' axes are pixels, so
    # only the frame's layer is left for it to read).
    viewer.layers.remove(series)
    viewer.scale_bar.visible = True
    assert [str(unit) for unit in viewer.layers.units][-2:] == ["millimeter", "millimeter"]
