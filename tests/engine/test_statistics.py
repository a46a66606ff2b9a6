"""Statistics and histograms against the tutorial's printed figures and scipy's own histogram."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_xray import image_statistics, intensity_histogram


@pytest.mark.realdata
def test_tutorial_figures_for_frame_001(xray_stack):
    stats = image_statistics(xray_stack[1])
    assert stats["dtype"] == "uint8"
    assert (stats["min"], stats["max"]) == (0, 255)
    assert stats["mean"] == 172.52233219146729
    assert stats["median"] == 195.0
    assert stats["std"] == pytest.approx(float(np.std(xray_stack[1].astype(np.float64))))


@pytest.mark.realdata
def test_histogram_is_the_tutorials_ndimage_call(xray_stack):
    image = xray_stack[1]
    counts, edges = intensity_histogram(image)
    expected = ndimage.histogram(image, min=np.min(image), max=np.max(image), bins=256)
    np.testing.assert_array_equal(counts, expected)
    assert counts.sum() == image.size
    np.testing.assert_allclose(edges, np.linspace(0, 255, 257))


def test_constant_image_and_bad_input():
    counts, edges = intensity_histogram(np.full((4, 4), 9, np.uint8), bins=8)
    assert counts[0] == 16 and counts[1:].sum() == 0 and edges[0] == 9
    stats = image_statistics(np.full((4, 4), 9, np.uint8))
    assert stats["std"] == 0.0 and stats["median"] == 9.0
    for bad in (np.array([]), np.array([1.0, np.nan]), np.array([1j]), np.array(["a"])):
        with pytest.raises(ValueError):
            image_statistics(bad)
        with pytest.raises(ValueError):
            intensity_histogram(bad)
    with pytest.raises(ValueError, match="bins"):
        intensity_histogram(np.arange(4), bins=0)


def test_histograms_mark_the_mask_threshold_the_comparison_uses():
    from napari_xray.engine.operations import (
        COMPARISON,
        HISTOGRAM_THRESHOLD,
        OPERATIONS,
        ComparisonPanel,
    )

    marked = (HISTOGRAM_THRESHOLD.operation.key, HISTOGRAM_THRESHOLD.parameter.name)
    assert marked == ("mask", "threshold")
    assert HISTOGRAM_THRESHOLD.label == "mask threshold"
    assert HISTOGRAM_THRESHOLD.value_in(COMPARISON) == 150.0
    assert HISTOGRAM_THRESHOLD.value_in([ComparisonPanel("mask", {"threshold": 99})]) == 99.0
    assert HISTOGRAM_THRESHOLD.value_in([]) == OPERATIONS["mask"].defaults()["threshold"]
    flagged = [p for op in OPERATIONS.values() for p in op.parameters if p.marks_threshold]
    assert flagged == [HISTOGRAM_THRESHOLD.parameter]
