"""The dock widgets napari opens from the manifest (napari.yaml points here)."""

from napari_xray.plugin.widgets.compare import CompareWidget
from napari_xray.plugin.widgets.explain import ExplainWidget
from napari_xray.plugin.widgets.frame_panel import FramePanelWidget
from napari_xray.plugin.widgets.line_profile import LineProfileWidget
from napari_xray.plugin.widgets.operation import (
    CannyWidget,
    GradientWidget,
    LogWidget,
    MaskWidget,
    PrewittWidget,
    SobelWidget,
)
from napari_xray.plugin.widgets.roi_statistics import RoiStatisticsWidget
from napari_xray.plugin.widgets.statistics import StatisticsWidget
from napari_xray.plugin.widgets.window_level import WindowLevelWidget

__all__ = [
    "CannyWidget",
    "CompareWidget",
    "ExplainWidget",
    "FramePanelWidget",
    "GradientWidget",
    "LineProfileWidget",
    "LogWidget",
    "MaskWidget",
    "PrewittWidget",
    "RoiStatisticsWidget",
    "SobelWidget",
    "StatisticsWidget",
    "WindowLevelWidget",
]
