"""The npe2 reader contribution."""

from napari_xray.io.read import napari_get_reader

__all__ = ["napari_get_reader"]
