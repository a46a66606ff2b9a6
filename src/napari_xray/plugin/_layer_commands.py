"""Commands of napari's Layers menu that act on the selected layer."""

import napari
from napari.layers import Layer

__all__ = ["copy_layer_as_python"]


def copy_layer_as_python(layer: Layer, viewer: napari.Viewer) -> str | None:
    """Put :func:`napari_xray.as_python` of the selected layer on the clipboard.

    napari passes the selected layer and its viewer. A layer napari-xray did not
    make gets a notification saying so, and nothing is copied.
    """
    from napari.utils.notifications import show_info, show_warning
    from qtpy.QtWidgets import QApplication

    from napari_xray.plugin.reproduce import as_python

    if layer is None:
        show_warning("Select a napari-xray result first; its Python is what is copied.")
        return None
    try:
        snippet = as_python(layer, viewer)
    except ValueError as error:
        show_warning(str(error))
        return None
    QApplication.clipboard().setText(snippet)
    show_info(f"Copied the Python that makes '{layer.name}' again.")
    return snippet
