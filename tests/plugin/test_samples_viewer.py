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
