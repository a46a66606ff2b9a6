"""The napari canvas behind a viewer: removing layers without crashing it, and its draws.

napari deletes a removed layer's OpenGL objects at once (it flushes vispy's
command queue with ``context.finish()``) while Qt's window-compositing context,
not the canvas's own, is current. Under Mesa the canvas' next draw then
segfaults in ``glDrawArrays``. :func:`remove_layers` (and
:func:`remove_layers_later`) make the canvas' context current around the
removal. :func:`canvas_widget` and :func:`draw_emitter` give the Qt widget and
the vispy draw event of a viewer's canvas; :func:`grid_model` and
:func:`camera_model` its grid and camera, wherever the napari version keeps them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from napari_xray.plugin.layers import layer_alive, unwrap

if TYPE_CHECKING:  # pragma: no cover
    import napari
    from napari.layers import Layer

__all__ = [
    "camera_model",
    "canvas_context",
    "canvas_widget",
    "draw_emitter",
    "grid_model",
    "remove_layers",
    "remove_layers_later",
]


def grid_model(viewer: napari.Viewer):
    """napari's grid model (``viewer.canvas.grid`` since 0.9, ``viewer.grid`` before)."""
    canvas = getattr(viewer, "canvas", None)
    grid = getattr(canvas, "grid", None)
    return grid if grid is not None else viewer.grid


def camera_model(viewer: napari.Viewer):
    """napari's camera model (``viewer.scene.camera`` since 0.9, ``viewer.camera`` before)."""
    scene = getattr(viewer, "scene", None)
    camera = getattr(scene, "camera", None)
    return camera if camera is not None else viewer.camera


def _scene_canvas(viewer: napari.Viewer):
    """The vispy SceneCanvas of ``viewer``'s window, or ``None`` (no window, or closed)."""
    try:
        return unwrap(viewer).window._qt_viewer.canvas._scene_canvas
    except (AttributeError, RuntimeError):
        return None


def canvas_widget(viewer: napari.Viewer):
    """The Qt (OpenGL) widget that draws ``viewer``'s canvas, or ``None`` once it is gone."""
    native = getattr(_scene_canvas(viewer), "native", None)
    if native is None:
        return None
    try:
        native.objectName()
    except RuntimeError:  # the C++ widget was deleted with the window
        return None
    return native


def draw_emitter(viewer: napari.Viewer):
    """The vispy event emitted each time ``viewer``'s canvas draws, or ``None``."""
    canvas = _scene_canvas(viewer)
    return None if canvas is None else canvas.events.draw


@contextlib.contextmanager
def canvas_context(viewer: napari.Viewer) -> Iterator[None]:
    """Make the OpenGL context of ``viewer``'s canvas current for the ``with`` block.

    The context current before is made current again afterwards. Does nothing
    when the canvas has no initialised context (no window, never shown).
    """
    native = canvas_widget(viewer)
    if native is None or not hasattr(native, "makeCurrent") or not native.isValid():
        yield
        return
    from qtpy.QtGui import QOpenGLContext

    previous = QOpenGLContext.currentContext()
    surface = previous.surface() if previous is not None else None
    native.makeCurrent()
    try:
        yield
    finally:
        try:
            if previous is not None and surface is not None:
                previous.makeCurrent(surface)
            else:
                native.doneCurrent()
        except RuntimeError:  # pragma: no cover - a context deleted meanwhile
            pass


def remove_layers(viewer: napari.Viewer, layers: Iterable[Layer]) -> None:
    """Remove those of ``layers`` still in ``viewer``, with the canvas' OpenGL context current.

    napari's own ``viewer.layers.remove`` runs ``gc.collect()`` for each layer
    (≈0.5 s each with a full viewer), so remove only what cannot be hidden.
    """
    viewer = unwrap(viewer)
    layers = [unwrap(layer) for layer in layers]
    with canvas_context(viewer):
        for layer in layers:
            if layer_alive(viewer, layer):
                viewer.layers.remove(layer)


def remove_layers_later(viewer: napari.Viewer, layers: Iterable[Layer]) -> None:
    """:func:`remove_layers` on the next event-loop turn (e.g. after napari's own removal loop).

    Holds the viewer weakly meanwhile.
    """
    layers = list(layers)
    if not layers:
        return
    import weakref

    from qtpy.QtCore import QTimer

    viewer_ref = weakref.ref(unwrap(viewer))

    def _remove() -> None:
        target = viewer_ref()
        if target is not None:
            remove_layers(target, layers)

    QTimer.singleShot(0, _remove)
