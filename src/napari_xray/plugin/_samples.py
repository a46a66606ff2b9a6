"""The npe2 sample-data contributions."""

from napari_xray.samples import frame_sample, phantom_sample, series_sample

__all__ = ["frame_sample", "phantom_sample", "series_sample"]
