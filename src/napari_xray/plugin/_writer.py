"""The npe2 writer contribution."""

from napari_xray.io.gif import write_gif

__all__ = ["write_gif"]
