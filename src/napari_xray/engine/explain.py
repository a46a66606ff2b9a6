"""What the tutorial gets wrong, shown on a frame: four pairs of the tutorial's literal
code and napari-xray's engine, each with its difference map and a caption whose
figures are computed from the frame; Canny's stages one by one; the Gaussian's
transfer function.

The tutorial's code runs here as it is written (``scipy.ndimage`` on the uint8
frame); the other side of each pair is the engine the plugin uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft
from scipy import ndimage

from napari_xray.engine.filters import canny, laplace_of_gaussian, normalize, sobel_magnitude

__all__ = [
    "CANNY_STAGES",
    "PAIRS",
    "Pair",
    "canny_stages",
    "explain_pairs",
    "gaussian_transfer",
    "tutorial_canny",
    "tutorial_fourier_gaussian",
    "tutorial_sobel",
]

#: The pairs, in order: key and title.
PAIRS = {
    "wraparound": "uint8 wrap-around: the tutorial's Sobel on uint8 vs float32",
    "fourier": "fourier_gaussian on pixels vs FFT → transfer function → inverse FFT",
    "stack": "a 3-D filter over the stack vs each frame alone",
    "canny": "the tutorial's \"Canny\" (smoothed Prewitt) vs a true Canny",
}
#: The tutorial's σ of ``fourier_gaussian``, and a σ that smooths visibly.
TUTORIAL_SIGMA, USEFUL_SIGMA = 0.05, 2.0
#: Canny's stages as :func:`canny_stages` returns them, in order.
CANNY_STAGES = ("smoothed", "gradient magnitude", "non-maximum suppression", "strong edges",
                "weak edges", "hysteresis")  # fmt: skip


@dataclass(frozen=True)
class Pair:
    """One of the tutorial's mistakes on one frame.

    Attributes
    ----------
    key, title : str
        See :data:`PAIRS`.
    tutorial, engine, difference : ndarray (H, W) float64 or None
        The tutorial's result, napari-xray's and ``tutorial − engine`` (in the
        units ``units`` names); None when the pair needs a stack and got a frame.
    labels : (str, str, str)
        What the three images show.
    caption : (str, str)
        Two lines: what goes wrong, and why, with this frame's figures.
    figures : dict
        The numbers the caption quotes.
    """

    key: str
    title: str
    tutorial: np.ndarray | None
    engine: np.ndarray | None
    difference: np.ndarray | None
    labels: tuple[str, str, str]
    caption: tuple[str, str]
    units: str = "grey levels"
    figures: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- the tutorial's code


def tutorial_sobel(xray_image: np.ndarray) -> np.ndarray:
    """The tutorial's Sobel magnitude, as written: ``ndimage.sobel`` on the uint8 frame
    (each derivative wraps modulo 256), ``np.hypot`` (float16) scaled to 0–255."""
    x_sobel = ndimage.sobel(xray_image, axis=0)
    y_sobel = ndimage.sobel(xray_image, axis=1)
    xray_image_sobel = np.hypot(x_sobel, y_sobel)
    xray_image_sobel *= 255.0 / np.max(xray_image_sobel)
    return xray_image_sobel


def tutorial_fourier_gaussian(xray_image: np.ndarray, sigma: float = TUTORIAL_SIGMA):
    """The tutorial's "smoothing": ``ndimage.fourier_gaussian`` applied to the pixels."""
    return ndimage.fourier_gaussian(xray_image, sigma=sigma)


def tutorial_canny(xray_image: np.ndarray) -> np.ndarray:
    """The tutorial's "Canny": the Prewitt magnitude of ``fourier_gaussian`` of the pixels,
    scaled to 0–255."""
    fourier_gaussian = tutorial_fourier_gaussian(xray_image)
    x_prewitt = ndimage.prewitt(fourier_gaussian, axis=0)
    y_prewitt = ndimage.prewitt(fourier_gaussian, axis=1)
    xray_image_canny = np.hypot(x_prewitt, y_prewitt)
    xray_image_canny *= 255.0 / np.max(xray_image_canny)
    return xray_image_canny


def fourier_smoothed(frame: np.ndarray, sigma: float) -> np.ndarray:
    """The frame smoothed the way ``fourier_gaussian`` is meant to be used: FFT, the
    Gaussian's transfer function, inverse FFT (float64; periodic borders)."""
    pixels = np.asarray(frame, dtype=np.float64)
    spectrum = ndimage.fourier_gaussian(scipy.fft.rfft2(pixels), sigma, n=pixels.shape[1])
    return scipy.fft.irfft2(spectrum, s=pixels.shape)


def gaussian_transfer(sigma: float, frequencies: np.ndarray) -> np.ndarray:
    """The Gaussian's transfer function at ``frequencies`` (cycles per pixel):
    ``exp(−2 π² σ² f²)``, what ``fourier_gaussian`` multiplies a spectrum by."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    return np.exp(-2.0 * np.pi**2 * float(sigma) ** 2 * frequencies**2)


# --------------------------------------------------------------------------- the pairs


def _as_uint8(frame: np.ndarray) -> tuple[np.ndarray, bool]:
    """The frame as the tutorial's uint8 PNG holds it (other dtypes through the tutorial's
    0–255 normalisation, rounded), and whether it had to be converted."""
    frame = np.asarray(frame)
    if frame.dtype == np.uint8:
        return frame, False
    return np.clip(np.rint(normalize(frame)), 0, 255).astype(np.uint8), True


def _converted_note(frame: np.ndarray) -> str:
    return (f" (this {np.asarray(frame).dtype} image is shown as the uint8 the tutorial "
            "reads: scaled to 0–255)")


def _wraparound(frame: np.ndarray) -> Pair:
    pixels, converted = _as_uint8(frame)
    tutorial = tutorial_sobel(pixels).astype(np.float64)
    engine = sobel_magnitude(pixels).astype(np.float64)  # float32, scaled to 0–255
    exact = [ndimage.sobel(pixels.astype(np.int32), axis=axis) for axis in (0, 1)]
    wrapped = np.logical_or.reduce([(d < 0) | (d > 255) for d in exact])
    share = float(wrapped.mean())
    figures = {"wrapped_fraction": share, "max_difference": float(np.abs(tutorial - engine).max()),
               "converted_to_uint8": converted}  # fmt: skip
    caption = (
        f"scipy.ndimage returns the input's dtype: on uint8 each Sobel derivative wraps modulo "
        f"256, and {share:.0%} of this frame's pixels have a derivative outside 0–255"
        + (_converted_note(frame) if converted else "") + ".",
        "They come out wrong (the tutorial's \"emboss\"); napari-xray computes in float32 "
        "and shows the true magnitude.",
    )
    return Pair("wraparound", PAIRS["wraparound"], tutorial, engine, tutorial - engine,
                ("tutorial: Sobel on uint8", "napari-xray: Sobel in float32",
                 "difference (tutorial − napari-xray)"), caption, figures=figures)  # fmt: skip


def _fourier(frame: np.ndarray) -> Pair:
    pixels, converted = _as_uint8(frame)
    tutorial = tutorial_fourier_gaussian(pixels).astype(np.float64)
    factor = ndimage.fourier_gaussian(np.ones(pixels.shape), sigma=TUTORIAL_SIGMA)
    engine = fourier_smoothed(pixels, USEFUL_SIGMA)
    tiny = float(np.abs(fourier_smoothed(pixels, TUTORIAL_SIGMA) - pixels).max())
    figures = {"smallest_factor": float(factor.min()), "tiny_sigma_change": tiny,
               "useful_sigma": USEFUL_SIGMA, "converted_to_uint8": converted}  # fmt: skip
    caption = (
        "fourier_gaussian expects a spectrum: given pixels, it multiplies each by a fixed "
        f"factor ({factor.min():.3f}–1 here), which smooths nothing"
        + (_converted_note(frame) if converted else "") + ".",
        f"Through the FFT, the tutorial's σ = {TUTORIAL_SIGMA} would change no pixel by more "
        f"than {tiny:.2f} grey levels; σ = {USEFUL_SIGMA:g} smooths (napari-xray's route).",
    )
    return Pair("fourier", PAIRS["fourier"], tutorial, engine, tutorial - engine,
                (f"tutorial: fourier_gaussian(pixels, σ={TUTORIAL_SIGMA})",
                 f"napari-xray: FFT → transfer function → inverse FFT, σ={USEFUL_SIGMA:g}",
                 "difference (tutorial − napari-xray)"), caption, figures=figures)  # fmt: skip


def _stack(stack: np.ndarray | None, index: int) -> Pair:
    labels = ("tutorial: LoG σ=1 over the (N, H, W) stack", "napari-xray: LoG σ=1 of the frame",
              "difference: what leaks in from the other frames")  # fmt: skip
    if stack is None or stack.shape[0] < 2:
        return Pair("stack", PAIRS["stack"], None, None, None, labels,
                    ("A 3-D filter over a stack mixes neighbouring frames into each result.",
                     "This input is a single frame: open a stack to see it."), units="LoG")
    # σ = 1 reaches 4 frames each way (SciPy's truncate=4): the frames beyond change
    # nothing of this one's result, so only its neighbourhood is filtered (exactly).
    first = max(index - 4, 0)
    window = np.asarray(stack[first:index + 5], dtype=np.float32)
    tutorial = ndimage.gaussian_laplace(window, sigma=1.0)[index - first].astype(np.float64)
    engine = laplace_of_gaussian(stack[index], sigma=1.0).astype(np.float64)
    # The weight this frame keeps of itself when smoothed along the stack axis (σ = 1,
    # SciPy's reflecting border: more at the first and last frames).
    count = stack.shape[0]
    own = float(np.diag(ndimage.gaussian_filter1d(np.eye(count), 1.0, axis=0))[index])
    difference = tutorial - engine
    figures = {"own_weight": own, "max_difference": float(np.abs(difference).max()),
               "frames": int(stack.shape[0])}  # fmt: skip
    caption = (
        f"A 3-D filter over the ({stack.shape[0]}, H, W) stack smooths across the stack axis "
        f"too: at σ = 1 only {own:.0%} of this frame's result comes from its own radiograph.",
        "The rest leaks in from the neighbouring frames (the difference); they are separate "
        "radiographs, so napari-xray filters each alone.",
    )
    return Pair("stack", PAIRS["stack"], tutorial, engine, difference, labels, caption,
                units="LoG", figures=figures)


def _canny(frame: np.ndarray) -> Pair:
    pixels, converted = _as_uint8(frame)
    tutorial = tutorial_canny(pixels)
    edges = canny(pixels, sigma=2.0)
    engine = edges.astype(np.float64) * 255.0
    lit = float((tutorial > 0).mean())
    edge_share = float(edges.mean())
    figures = {"tutorial_nonzero_fraction": lit, "edge_fraction": edge_share,
               "converted_to_uint8": converted}  # fmt: skip
    caption = (
        "The tutorial's \"Canny\" is a gradient magnitude (Prewitt on unsmoothed pixels): "
        f"{lit:.0%} of pixels get a value, and its edges are grey bands, not lines"
        + (_converted_note(frame) if converted else "") + ".",
        "A Canny keeps only each edge's ridge (non-maximum suppression) and links weak to "
        f"strong edges (hysteresis): {edge_share:.1%} of pixels, one pixel thin.",
    )
    return Pair("canny", PAIRS["canny"], tutorial, engine, tutorial * ~edges,
                ("tutorial: \"Canny\" (smoothed Prewitt magnitude)",
                 "napari-xray: Canny edges, σ=2",
                 "the tutorial's values where a Canny finds no edge"), caption,
                figures=figures)  # fmt: skip


def explain_pairs(image, frame: int | None = None) -> list[Pair]:
    """The four pairs of :data:`PAIRS` for one frame of ``image``.

    Parameters
    ----------
    image : array_like, (H, W) or (N, H, W)
        A frame, or a stack of separate radiographs (the third pair needs one).
    frame : int, optional
        The frame of a stack (default: the first); negative counts from the end.
    """
    data = np.asarray(image)
    if data.ndim == 2:
        stack, index = None, 0
    elif data.ndim == 3 and data.shape[0]:
        stack, index = data, int(frame or 0)
        if not -data.shape[0] <= index < data.shape[0]:
            raise ValueError(f"frame {index} is out of range: the stack has {data.shape[0]}")
        index %= data.shape[0]
    else:
        raise ValueError(f"pass a frame (H, W) or a stack (N, H, W), got shape {data.shape}")
    if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
        raise ValueError(f"the image must hold real numbers, not {data.dtype}")
    shown = data if stack is None else stack[index]
    return [_wraparound(shown), _fourier(shown), _stack(stack, index), _canny(shown)]


# --------------------------------------------------------------------------- Canny's stages


def canny_stages(frame, sigma: float = 2.0, low_threshold: float | None = None,
                 high_threshold: float | None = None) -> dict[str, np.ndarray]:
    """Canny's stages on one frame, as :func:`napari_xray.engine.filters.canny` runs them.

    Returns
    -------
    dict
        :data:`CANNY_STAGES` in order: the Gaussian-smoothed frame and the Sobel
        gradient magnitude (float32), the magnitude where non-maximum suppression
        keeps a pixel (0 elsewhere), the kept pixels at or above the high
        threshold and those between the thresholds (bool), and the hysteresis
        result, equal to ``canny(frame, sigma, low_threshold, high_threshold)``.
    """
    from napari_xray.engine._canny import link, suppress
    from napari_xray.engine._kernels import (
        DIFF,
        SOBEL_SMOOTH,
        as_opencv_input,
        dtype_max,
        gaussian_kernel,
        magnitude,
        separable,
    )

    pixels = np.asarray(frame)
    if pixels.ndim != 2:
        raise ValueError(f"pass one 2D frame (H, W), got shape {pixels.shape}")
    edges = canny(pixels, sigma, low_threshold, high_threshold)  # checks every argument
    top = dtype_max(pixels.dtype)
    low = 0.1 * top if low_threshold is None else float(low_threshold)
    high = 0.2 * top if high_threshold is None else float(high_threshold)
    height, width = pixels.shape
    g0 = gaussian_kernel(sigma, 0)
    source = as_opencv_input(pixels)[0]
    smoothed = separable(source, g0, g0, np.empty(pixels.shape, np.float32))
    along_rows = separable(smoothed, DIFF, SOBEL_SMOOTH, np.empty(pixels.shape, np.float32))
    along_cols = separable(smoothed, SOBEL_SMOOTH, DIFF, np.empty(pixels.shape, np.float32))
    strength = magnitude(along_rows, along_cols, np.empty(pixels.shape, np.float32))
    suppressed = np.zeros(pixels.shape, np.float32)
    strong = np.zeros(pixels.shape, bool)
    weak = np.zeros(pixels.shape, bool)
    linked = np.zeros(pixels.shape, bool)
    if min(height, width) >= 3:
        kept, is_strong = suppress(along_rows, along_cols, strength, 1, height - 1, low, high)
        suppressed.ravel()[kept] = strength.ravel()[kept]
        strong.ravel()[kept[is_strong]] = True
        weak.ravel()[kept[~is_strong]] = True
        thin = np.zeros(pixels.shape, np.uint8)
        thin.ravel()[kept] = 1
        link(thin, kept, kept[is_strong], linked)
    if not np.array_equal(linked, edges):  # pragma: no cover - the stages are canny's own
        raise RuntimeError("Canny's stages disagree with canny(); please report this")
    return dict(zip(CANNY_STAGES, (smoothed, strength, suppressed, strong, weak, linked),
                    strict=True))
