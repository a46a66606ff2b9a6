"""GIF export from a real viewer: napari's File ▸ Save Selected Layers… with the
napari-xray writer saves what the canvas shows (colormap, contrast limits, gamma,
label colours), several selected layers as one grid; other layers get a clear error."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from napari_xray.plugin._writer import GifExportError

pytestmark = pytest.mark.viewer


def _rgb(path) -> np.ndarray:
    frames = iio.imread(path, index=None)
    return np.repeat(frames[..., None], 3, axis=-1) if frames.ndim == 3 else frames[..., :3]


def _open(viewer, name):
    return viewer.window.add_plugin_dock_widget("napari-xray", name)[1]


def test_saved_gifs_show_what_the_canvas_shows(make_napari_viewer, qtbot, xray_stack, tmp_path):
    from napari.utils.colormaps import ensure_colormap

    viewer = make_napari_viewer()
    source = viewer.add_image(np.array(xray_stack[:3]), name="chest")
    sobel = _open(viewer, "Sobel magnitude")
    sobel.colormap = "hot"
    hot = sobel.run(wait=True)
    hot.contrast_limits = (20.0, 180.0)
    hot.gamma = 0.8
    viewer.layers.selection.active = source
    canny = _open(viewer, "Canny edges")
    edges = canny.run(wait=True)

    viewer.layers.selection = {hot}
    (path,) = viewer.layers.save(str(tmp_path / "hot.gif"), selected=True, plugin="napari-xray")
    shown = np.clip((hot.data.astype(np.float64) - 20.0) / 160.0, 0, 1) ** 0.8
    expected = ensure_colormap("hot").map(shown.ravel())[:, :3].reshape(*hot.data.shape, 3) * 255
    frames = _rgb(path)
    np.testing.assert_allclose(frames, expected, atol=2.5)
    assert frames[..., 0].mean() > 2 * frames[..., 2].mean(), "a red-yellow GIF, not gray"

    viewer.layers.selection = {edges}
    (path,) = viewer.layers.save(str(tmp_path / "edges.gif"), selected=True, plugin="napari-xray")
    colour = np.rint(edges.colormap.map(np.array([1]))[0, :3] * 255 * edges.opacity)
    edge = edges.data == 1
    np.testing.assert_array_equal(_rgb(path)[edge], np.tile(colour, (int(edge.sum()), 1)))
    assert not _rgb(path)[~edge].any()

    viewer.layers.selection = {source, hot, edges}
    (path,) = viewer.layers.save(str(tmp_path / "grid.gif"), selected=True, plugin="napari-xray")
    assert _rgb(path).shape == (3, 2 * 1024, 2 * 1024, 3)  # napari's 2 × 2 grid for three


def test_a_points_layer_gets_a_clear_message(make_napari_viewer, xray_stack, tmp_path):
    viewer = make_napari_viewer()
    source = viewer.add_image(np.array(xray_stack[:2]), name="chest")
    marks = viewer.add_points([[0, 10, 10]], name="marks")
    viewer.layers.selection = {source, marks}
    with pytest.raises(GifExportError, match="'marks' is a Points layer"):
        viewer.layers.save(str(tmp_path / "x.gif"), selected=True, plugin="napari-xray")
    assert not list(tmp_path.iterdir())
