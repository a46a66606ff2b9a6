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
    "laplace_of_gaussian": "engine.filters",
    "gaussian_gradient_magnitude": "engine.filters",
    "sobel_magnitude": "engine.filters",
    "fourier_prewitt": "engine.filters",
    "canny": "engine.filters",
    "threshold_mask": "engine.filters",
    "normalize": "engine.filters",
    # the one description of every operation
    "OPERATIONS": "engine.operations",
    "get_operation": "engine.operations",
    "run_operation": "engine.operations",
    "run_operations": "engine.pipeline",
    # statistics and measurements
    "image_statistics": "engine.statistics",
    "line_profile": "engine.measure",
    "path_profile": "engine.measure",
    "path_length": "engine.measure",
    "roi_statistics": "engine.measure",
    "intensity_histogram": "engine.statistics",
    # files and sample data
    "read_xray": "io.read",
    "read_entries": "io.chestxray8",
    "read_boxes": "io.chestxray8",
    "deidentify": "io.deidentify",
    "XrayError": "errors",
    "XrayReadError": "errors",
    "SampleDataError": "errors",
    "load_sample": "samples",
    "fetch_frames": "samples",
    "make_phantom": "phantom",
    # napari scripting (imports napari only when used)
    "compare_all": "plugin.console",
    "add_filter": "plugin.console",
    "restore_view": "plugin.console",
    "prefer_napari_xray_reader": "plugin.viewer",
    "add_boxes": "plugin.boxes",
    "as_python": "plugin.reproduce",
    "save_recipe": "plugin.reproduce",
    "apply_recipe": "plugin.reproduce",
    # recipes headless
    "read_recipe": "recipe",
    "write_recipe": "recipe",
    "RecipeStep": "recipe",
    "RecipeError": "recipe",
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
