"""napari-xray: explore chest X-rays with edge filters in napari.

The public, scriptable API (usable from the napari console, a notebook or a
script) is re-exported here. Names are imported lazily, so ``import napari_xray``
stays cheap and never imports Qt or napari by itself.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-xray")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_PUBLIC = {
    # engine: filters and masks (pure numpy in, numpy out)
    "laplace_of_gaussian": "filters",
    "gaussian_gradient_magnitude": "filters",
    "sobel_magnitude": "filters",
    "fourier_prewitt": "filters",
    "canny": "filters",
    "threshold_mask": "filters",
    "normalize": "filters",
    # the one description of every operation
    "OPERATIONS": "operations",
    "get_operation": "operations",
    "run_operation": "operations",
    # statistics
    "image_statistics": "statistics",
    "intensity_histogram": "statistics",
    # files and sample data
    "read_xray": "io",
    "XrayReadError": "io",
    "SampleDataError": "samples",
    "load_sample": "samples",
    "fetch_frames": "samples",
    "make_phantom": "phantom",
    # napari scripting (imports napari only when used)
    "compare_all": "widgets",
    "add_filter": "widgets",
    "restore_view": "widgets",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    module_name = _PUBLIC.get(name)
    if module_name is None:
        raise AttributeError(f"module 'napari_xray' has no attribute {name!r}")
    module = importlib.import_module(f"{__name__}.{module_name}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
