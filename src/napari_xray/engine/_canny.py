"""Canny edges of one frame: Gaussian smoothing, Sobel derivatives, non-maximum
suppression along the gradient (bilinear, as skimage) and hysteresis by 8-connected
segments."""

from __future__ import annotations

import cv2
import numpy as np

from napari_xray.engine._frames import scratch
from napari_xray.engine._kernels import (
    BAND_ROWS,
    DIFF,
    SOBEL_SMOOTH,
    as_opencv_input,
    gaussian_kernel,
    magnitude,
    row_bands,
    separable,
)

#: Rows of a Canny band: its smoothing recomputes 2·(radius + 2) rows, so Canny's bands
#: are wider than the other filters'.
CANNY_BAND_ROWS = 2 * BAND_ROWS


def canny_frame(frame: np.ndarray, sigma: float, low: float, high: float, out: np.ndarray) -> None:
    """Canny edges of ``frame`` (any real dtype) written into the bool frame ``out``.

    Smoothing, derivatives, magnitude and non-maximum suppression run band by
    band (the band's buffers stay in the cache); hysteresis links the thinned
    pixels of the whole frame.
    """
    height, width = frame.shape
    if min(height, width) < 3:
        out.fill(False)
        return
    pixels = as_opencv_input(frame)[0]
    g0 = gaussian_kernel(sigma, 0)
    # The magnitude is needed one row beyond the band (the suppression's
    # neighbours), the derivatives two, the smoothing radius + 2.
    bands = row_bands(height, len(g0) // 2 + 2, CANNY_BAND_ROWS)
    rows = max(bottom - top for _, _, top, bottom in bands)
    smoothed = scratch.get("smooth", (rows, width))
    d_rows, d_cols = scratch.get("d0", (rows, width)), scratch.get("d1", (rows, width))
    strength = scratch.get("magnitude", (rows, width))
    thin = scratch.get("thin", frame.shape, np.uint8)
    thin.fill(0)
    thin_flat, thinned, strong = thin.ravel(), [], []
    for first, stop, top, bottom in bands:
        count = bottom - top
        band = separable(pixels[top:bottom], g0, g0, smoothed[:count])
        along_rows = separable(band, DIFF, SOBEL_SMOOTH, d_rows[:count])
        along_cols = separable(band, SOBEL_SMOOTH, DIFF, d_cols[:count])
        band_strength = magnitude(along_rows, along_cols, strength[:count])
        # The frame's one-pixel border is never an edge.
        rows_from, rows_to = max(first, 1) - top, min(stop, height - 1) - top
        thin_index, is_strong = suppress(
            along_rows, along_cols, band_strength, rows_from, rows_to, low, high
        )
        thin_index += top * width
        thin_flat[thin_index] = 1
        thinned.append(thin_index)
        strong.append(thin_index[is_strong])
    link(thin, np.concatenate(thinned), np.concatenate(strong), out)


def suppress(d_rows, d_cols, strength, rows_from: int, rows_to: int, low: float, high: float):
    """Canny's non-maximum suppression (bilinear, as skimage) on rows ``[rows_from, rows_to)``.

    ``strength`` is the gradient magnitude of the derivatives ``d_rows`` and
    ``d_cols`` (2D arrays of one band, valid one row beyond the rows examined).
    A pixel off the first and last column whose magnitude is at least ``low``
    survives when it is not smaller than the magnitude interpolated one step
    forward and one step back along its gradient direction (between the axis
    neighbour and the diagonal neighbour, weighted by the gradient's slope).

    Returns the flat indices (into the band) of the survivors and which of them
    reach ``high``.
    """
    width = strength.shape[1]
    above = scratch.get("above", (rows_to - rows_from, width), np.bool_)
    np.greater_equal(strength[rows_from:rows_to], max(low, 1e-14), out=above)
    above[:, [0, -1]] = False
    index = np.flatnonzero(above)  # intp: what take() uses without a conversion
    index += rows_from * width
    flat = strength.ravel()
    grad_rows, grad_cols = d_rows.ravel().take(index), d_cols.ravel().take(index)
    value = flat.take(index)
    abs_rows, abs_cols = np.abs(grad_rows), np.abs(grad_cols)
    mostly_vertical = abs_rows > abs_cols
    # Vertical: |cols| / |rows|; otherwise |rows| / |cols| — the smaller over the larger.
    # A candidate's magnitude is positive, so the larger is never zero.
    slope = np.minimum(abs_rows, abs_cols)
    slope /= np.maximum(abs_rows, abs_cols)
    straight = 1 - slope
    # Steps in flat indices: one row is `width` elements.
    one, row = index.dtype.type(1), index.dtype.type(width)
    step_row = np.where(grad_rows > 0, row, -row)
    step_col = np.where(grad_cols > 0, one, -one)
    axis_step = np.where(mostly_vertical, step_row, step_col)
    diagonal_step = step_row
    diagonal_step += step_col
    is_maximum = None
    for neighbours in (np.add, np.subtract):
        axis_neighbour = flat.take(neighbours(index, axis_step))
        diagonal_neighbour = flat.take(neighbours(index, diagonal_step))
        axis_neighbour *= straight
        diagonal_neighbour *= slope
        axis_neighbour += diagonal_neighbour
        not_above = axis_neighbour <= value
        is_maximum = (
            not_above
            if is_maximum is None
            else np.logical_and(is_maximum, not_above, out=is_maximum)
        )
    return index[is_maximum], value[is_maximum] >= high


def link(thin: np.ndarray, thin_index: np.ndarray, strong: np.ndarray, out: np.ndarray) -> None:
    """Hysteresis: the 8-connected segments of ``thin`` (uint8 0/1) holding a ``strong`` pixel.

    ``thin_index`` lists the flat indices of the pixels of ``thin``, ``strong``
    those of its pixels that reach the high threshold. Writes the kept segments
    into the bool frame ``out``.
    """
    labels = scratch.get("labels", thin.shape, np.int32)
    count, labels = cv2.connectedComponents(thin, labels, 8, cv2.CV_32S)
    labels = labels.ravel()
    keep = np.zeros(count, dtype=bool)
    keep[labels.take(strong)] = True
    keep[0] = False
    # Only thinned pixels can be edges: look up their segments, not the whole frame.
    out.fill(False)
    out.ravel()[thin_index] = keep[labels.take(thin_index)]
