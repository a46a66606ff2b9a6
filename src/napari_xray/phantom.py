"""Synthetic chest phantom: a radiograph-like uint8 series made entirely by this code.

It stands in for the nine ChestX-ray8 frames when there is no network and no
mirror folder, in the ChestX-ray8 display convention of a postero-anterior film
(bone and soft tissue bright, lung air dark, the patient's left on the image's
right). The anatomy is built once with vectorised numpy and blurred; each frame
then adds a pneumonia-like opacity in the right lower lung that grows across the
series, a small shift and exposure change, and Poisson-like quantum noise.
"""

from __future__ import annotations

import numbers

import numpy as np
from scipy import ndimage

__all__ = ["make_phantom"]

_MIN_SIDE = 16

# Display levels (0..255 scale) of the attenuation map's building blocks.
_LEVEL_BACKGROUND = 8.0
_LEVEL_SOFT_TISSUE = 215.0  # full body thickness, no air
_LEVEL_AIR = 188.0  # removed by a lung at full depth
_LEVEL_MEDIASTINAL_AIR = 0.33  # lung in front of / behind mediastinum and heart
_LEVEL_HEART = 28.0
_LEVEL_SPINE = 30.0
_LEVEL_RIB = 42.0
_LEVEL_CLAVICLE = 42.0
_LEVEL_HUMERUS = 45.0
_LEVEL_MARKINGS = 24.0
_LEVEL_OPACITY = 75.0  # full-grown opacity, before being limited to the lung
_KNEE = 175.0  # above this the film-like shoulder compresses towards _LEVEL_MAX
_LEVEL_MAX = 238.0


def _validate(n_frames, shape) -> tuple[int, int, int]:
    """Check the arguments of :func:`make_phantom`; return (n_frames, H, W) as ints."""
    if isinstance(n_frames, bool) or not isinstance(n_frames, numbers.Integral):
        raise ValueError(f"n_frames must be an integer >= 1 (for example 9); got {n_frames!r}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1 (for example 9); got {n_frames}")
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(
            f"shape must be a pair of integers (height, width), each >= {_MIN_SIDE}, "
            f"for example (1024, 1024); got {shape!r}"
        ) from None
    if len(dims) != 2 or not all(
        isinstance(d, numbers.Integral) and not isinstance(d, bool) and d >= _MIN_SIDE for d in dims
    ):
        raise ValueError(
            f"shape must be a pair of integers (height, width), each >= {_MIN_SIDE}, "
            f"for example (1024, 1024); got {shape!r}"
        )
    return int(n_frames), int(dims[0]), int(dims[1])


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function in float32 (a soft step for anti-aliased masks)."""
    z = np.clip(z, -30.0, 30.0)
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32, copy=False)


def _ellipse_depth(x, y, cx, cy, ax, ay) -> np.ndarray:
    """Path length through an elliptic cylinder, 1 at the centre and 0 at the rim."""
    r2 = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2
    return np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))


def _tube(u: np.ndarray, inner: float = 0.6) -> np.ndarray:
    """Projected path length through a hollow bone of outer radius 1 (``u`` is the offset).

    Cortical bone makes the edges of a rib brighter than its middle, as on a film.
    """
    outer = np.sqrt(np.clip(1.0 - u * u, 0.0, 1.0))
    marrow = np.sqrt(np.clip(inner * inner - u * u, 0.0, 1.0))
    return outer - 0.55 * marrow


def _smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian-filtered white noise in float32."""
    field = rng.standard_normal(shape, dtype=np.float32)
    field = ndimage.gaussian_filter(field, sigma, mode="reflect")
    field -= field.mean()
    field /= max(float(field.std()), 1e-6)
    return field


def _anatomy(rng: np.random.Generator, height: int, width: int, unit: float):
    """Build the static display-level map of the chest on a (height, width) grid.

    ``unit`` is the number of pixels per normalised length (half the smaller
    side of the output frame), so the anatomy keeps its proportions on
    non-square shapes. Returns ``(display, lung)`` as float32 arrays: the
    blurred display-level map (0..255 scale, before noise) and a soft lung
    mask in 0..1.
    """
    y = ((np.arange(height, dtype=np.float32) - (height - 1) / 2.0) / unit)[:, None]
    x = ((np.arange(width, dtype=np.float32) - (width - 1) / 2.0) / unit)[None, :]
    ax_ = np.abs(x)
    px = 1.0 / unit  # one pixel in normalised units, for anti-aliasing widths

    # Body: the value is the projected soft-tissue thickness, thinning towards
    # the skin line. Torso sides, sloping shoulders, the neck and the upper arms.
    sides = np.clip(1.0 - np.abs(x / 0.95) ** 2.6, 0.0, 1.0) ** 0.45
    shoulder_line = -0.92 + 0.30 * np.clip((ax_ - 0.28) / 0.72, 0.0, 1.0) ** 1.5
    torso = sides * np.clip((y - shoulder_line) / 0.22, 0.0, 1.0) ** 0.5
    neck_w = 0.19 + 0.30 * np.clip((y + 0.90) / 0.14, 0.0, 1.0) ** 2  # flares at its base
    neck = np.sqrt(np.clip(1.0 - (x / neck_w) ** 2, 0.0, 1.0))
    # Upper arms beside the chest wall, running off the bottom of the frame.
    arm_u = (ax_ - 1.08 - 0.05 * (y + 0.6)) / 0.19
    arm_v = np.minimum(y + 0.45, 0.0) / 0.27  # a rounded top at the shoulder
    arms = np.sqrt(np.clip(1.0 - arm_u * arm_u - arm_v * arm_v, 0.0, 1.0))
    body = np.maximum(np.maximum(torso, 0.85 * neck), 0.8 * arms)
    skin = _sigmoid(body / 0.05) * 2.0 - 1.0  # ~1 inside the body, 0 outside

    # Lungs: teardrop-ish ellipses, wider at the base, cut by the diaphragm domes.
    # side -1 is the image's left (patient's right; higher hemidiaphragm).
    air = np.zeros((height, width), dtype=np.float32)
    lung = np.zeros((height, width), dtype=np.float32)
    for side, cx, half_w, dome_top in ((-1, -0.41, 0.34, 0.36), (1, 0.42, 0.32, 0.42)):
        cy, half_h = -0.04, 0.70
        rel = np.clip((y - cy) / half_h, -1.0, 1.0)
        ax_y = half_w * (0.86 + 0.20 * rel)  # narrow apex, broad base
        r2 = ((x - cx) / ax_y) ** 2 + ((y - cy) / half_h) ** 2
        # Diaphragm dome: highest near the lung's middle, deep at the costophrenic angle.
        dome = dome_top + 0.6 * ((x - (cx - side * 0.04)) / 0.42) ** 2
        if side > 0:  # medially the left lung ends at the heart, not below it
            dome = np.where(x < cx, np.minimum(dome, dome_top + 0.02), dome)
        below = _sigmoid((dome - y) / (2.0 * px))
        lung = np.maximum(lung, _sigmoid((1.0 - r2) / 0.04) * below)
        air = np.maximum(air, np.clip(1.0 - r2, 0.0, 1.0) ** 0.3 * below)

    # Mediastinum, aortic knob and heart: soft tissue that displaces lung air.
    mediastinum = _sigmoid((0.12 - ax_) / (3.0 * px)) * _sigmoid((y + 0.90) / 0.05)
    trachea = _sigmoid((0.035 - ax_) / (2.0 * px)) * _sigmoid((-0.28 - y) / 0.03)
    knob = _sigmoid((1.0 - ((x - 0.13) / 0.08) ** 2 - ((y + 0.33) / 0.07) ** 2) / 0.15)
    c, s = np.float32(np.cos(0.40)), np.float32(np.sin(0.40))
    hx, hy = x - 0.10, y - 0.22
    hu, hv = (c * hx + s * hy) / 0.38, (-s * hx + c * hy) / 0.25
    heart_r2 = hu * hu + hv * hv
    heart = _sigmoid((1.0 - heart_r2) / 0.06)
    heart_depth = np.sqrt(np.clip(1.0 - heart_r2, 0.0, 1.0))
    solid = np.maximum(np.maximum(mediastinum, knob), heart)
    # Above the diaphragm, lung lies in front of and behind these soft tissues.
    chest = _sigmoid((0.44 + 0.04 * x - y) / 0.04) * _sigmoid((y + 0.80) / 0.05)
    air = air * (1.0 - solid) + _LEVEL_MEDIASTINAL_AIR * solid * chest
    lung = lung * (1.0 - solid)

    # Spine: vertebral bodies separated by darker discs, with paired ring-like pedicles.
    spine_band = _sigmoid((0.07 - ax_) / (2.0 * px)) * body
    phase = (y + 0.04) / 0.12
    frac = phase - np.floor(phase)
    vertebra = 0.55 + 0.45 * _sigmoid((0.40 - np.abs(frac - 0.5)) / 0.025)
    ped_u = (ax_ - 0.045) / 0.017
    ped_v = (frac - 0.32) / 0.13
    pedicle = _tube(np.sqrt(ped_u * ped_u + ped_v * ped_v), 0.75)
    spine = spine_band * (vertebra + 0.6 * pedicle)

    # Ribs: a warped coordinate gives ten arcs per side in one pass. Upper ribs
    # are tighter arcs; the spacing between ribs grows towards the diaphragm.
    cage = _sigmoid((1.0 - ((x / 0.90) ** 2 + ((y + 0.02) / 0.92) ** 2)) / 0.03)
    t = np.clip((ax_ - 0.06) / 0.80, 0.0, 1.25)
    # Posterior ribs: rise a little beside the spine, then sweep down laterally.
    bend = 1.05 - 0.25 * np.clip((y + 0.8) / 1.3, 0.0, 1.0)
    w = y + 0.80 - bend * (-0.16 * t + 0.80 * t * t)
    a, b = 0.105, 0.0035  # rib k starts at a*k + b*k**2 below the first one
    v = (np.sqrt(a * a + 4.0 * b * np.maximum(w, 0.0)) - a) / (2.0 * b) + 0.5
    v = np.where(w > 0.0, v, w / a + 0.5)
    k = np.floor(v)
    u = (v - k - 0.5) / (0.22 + 0.02 * np.clip(k, 0.0, 9.0) / 9.0)
    k_ok = ((k >= 0) & (k < 10)).astype(np.float32)
    start = _sigmoid((ax_ - 0.075) / (2.0 * px))
    ribs = _tube(u) * k_ok * cage * start
    # Anterior ribs: fainter, sloping down towards the sternum, fading medially.
    va = (y + 0.52 - 0.30 * np.clip(1.0 - t, 0.0, 1.0) ** 1.6 + 0.15 * t) / 0.115
    ka = np.floor(va)
    ua = (va - ka - 0.5) / 0.22
    ka_ok = ((ka >= 0) & (ka < 6)).astype(np.float32)
    fade = np.clip((t - 0.28) / 0.35, 0.0, 1.0)
    ribs = ribs + 0.4 * _tube(ua) * ka_ok * cage * fade

    # Clavicles: gently S-shaped bars from the sternum out to the shoulders.
    tc = (ax_ - 0.07) / 0.68
    yc = -0.61 - 0.13 * tc + 0.045 * np.sin(np.pi * tc)
    clav = _tube((y - yc) / 0.034) * _sigmoid(tc / 0.03) * _sigmoid((1.0 - tc) / 0.04)

    # Humeral heads at the shoulders and the shafts running down the arms.
    head = np.maximum(
        _ellipse_depth(x, y, -0.89, -0.55, 0.12, 0.13),
        _ellipse_depth(x, y, 0.89, -0.55, 0.12, 0.13),
    )
    shaft = _tube((ax_ - 0.94 - 0.06 * (y + 0.5)) / 0.065) * _sigmoid((y + 0.5) / 0.03)
    humerus = np.maximum(head, shaft)

    # Lung markings: vessel-like ridges (zero crossings of smooth noise) that
    # are strongest at the hila and fade towards the periphery.
    texture = _smooth_noise(rng, (height, width), max(0.5, 4.0 * unit / 512.0))
    vessels = np.exp(-((texture / 0.30) ** 2))
    hilum = np.exp(-(((ax_ - 0.20) / 0.10) ** 2 + ((y + 0.02) / 0.18) ** 2))
    markings = vessels * np.exp(-np.abs(ax_ - 0.15) / 0.22) + hilum

    display = (
        _LEVEL_SOFT_TISSUE * body
        - _LEVEL_AIR * air
        + _LEVEL_MARKINGS * markings * lung
        - 25.0 * trachea
        + _LEVEL_HEART * heart_depth
        + _LEVEL_SPINE * spine
        # bone shows best against lung air, less against thick soft tissue
        + _LEVEL_RIB * ribs * (0.3 + 0.7 * lung) * skin
        + (_LEVEL_CLAVICLE * clav + _LEVEL_HUMERUS * humerus) * skin
    )
    # Film-like shoulder: linear up to the knee, then compressed so bone over
    # thick tissue does not saturate; then background fog.
    np.maximum(display, 0.0, out=display)
    span = _LEVEL_MAX - _KNEE
    high = _KNEE + span * (1.0 - np.exp(-np.maximum(display - _KNEE, 0.0) / span))
    display = np.where(display > _KNEE, high, display) + _LEVEL_BACKGROUND
    sigma = max(0.6, 1.2 * unit / 512.0)
    display = ndimage.gaussian_filter(display, sigma, mode="nearest")
    return display, lung


def make_phantom(
    n_frames: int = 9, shape: tuple[int, int] = (1024, 1024), seed: int = 0
) -> np.ndarray:
    """Make a deterministic, radiograph-like synthetic chest X-ray series.

    Each frame looks like a postero-anterior chest film in the ChestX-ray8
    convention (bone and soft tissue bright, lung air dark, background near
    black; the heart on the image's right). A round, pneumonia-like opacity in
    the lower lung on the image's left grows and becomes denser smoothly from
    the first frame to the last; each frame also has a mild global shift,
    a small exposure change and its own quantum noise, so no two frames are
    equal while the anatomy stays put.

    Parameters
    ----------
    n_frames : int, optional
        Number of frames, >= 1. Default 9 (like the nine ChestX-ray8 frames).
    shape : tuple of int, optional
        ``(height, width)`` of each frame, each >= 16. Default ``(1024, 1024)``.
        The anatomy keeps its proportions and is centred on non-square shapes.
    seed : int, optional
        Seed for :func:`numpy.random.default_rng`. The same arguments always
        give the same array; another seed gives other noise and lung markings.

    Returns
    -------
    numpy.ndarray
        C-contiguous ``uint8`` array of shape ``(n_frames, height, width)``.

    Raises
    ------
    ValueError
        If ``n_frames`` is not an integer >= 1 or ``shape`` is not a pair of
        integers each >= 16.
    """
    n_frames, height, width = _validate(n_frames, shape)
    rng = np.random.default_rng(seed)
    unit = min(height, width) / 2.0
    pad = int(round(0.012 * min(height, width)))
    display, lung = _anatomy(rng, height + 2 * pad, width + 2 * pad, unit)

    # Opacity geometry (in padded-grid pixels), limited to a bounding box for speed.
    oc_y = (height + 2 * pad - 1) / 2.0 + 0.20 * unit
    oc_x = (width + 2 * pad - 1) / 2.0 - 0.42 * unit
    r_max = 0.17 * unit
    y0 = max(0, int(np.floor(oc_y - 1.6 * r_max)))
    y1 = min(display.shape[0], int(np.ceil(oc_y + 1.6 * r_max)) + 1)
    x0 = max(0, int(np.floor(oc_x - 1.6 * r_max)))
    x1 = min(display.shape[1], int(np.ceil(oc_x + 1.6 * r_max)) + 1)
    yy = (np.arange(y0, y1, dtype=np.float32) - oc_y)[:, None]
    xx = (np.arange(x0, x1, dtype=np.float32) - oc_x)[None, :]
    dist = np.sqrt(yy * yy + xx * xx)
    box_base = display[y0:y1, x0:x1].copy()
    # Patchy, cloud-like texture so the opacity looks like consolidation, not a
    # disc; consolidation stops at the pleura, so it is limited to the lung.
    fluff = _smooth_noise(rng, dist.shape, max(0.5, 10.0 * unit / 512.0))
    fluff = np.clip(0.75 + 0.3 * fluff, 0.0, None) * lung[y0:y1, x0:x1]

    shifts = rng.integers(-pad, pad + 1, size=(n_frames, 2))  # all 0 when pad is 0
    gains = 1.0 + rng.uniform(-0.02, 0.02, size=n_frames)
    offsets = rng.uniform(-2.0, 2.0, size=n_frames)

    out = np.empty((n_frames, height, width), dtype=np.uint8)
    frame = np.empty((height, width), dtype=np.float32)
    for i in range(n_frames):
        progress = i / (n_frames - 1) if n_frames > 1 else 0.0
        ease = 0.5 - 0.5 * np.cos(np.pi * progress)  # smooth start and end
        radius = r_max * (0.35 + 0.65 * ease)
        strength = _LEVEL_OPACITY * (0.35 + 0.65 * ease)
        blob = _sigmoid((1.0 - dist / radius) / 0.18) * fluff
        display[y0:y1, x0:x1] = box_base + strength * blob

        dy, dx = (int(v) for v in shifts[i])
        np.copyto(frame, display[pad + dy : pad + dy + height, pad + dx : pad + dx + width])
        frame *= np.float32(gains[i])
        frame += np.float32(offsets[i])
        np.maximum(frame, 0.0, out=frame)
        # Poisson-like quantum noise: its std grows with the square root of the level.
        noise = rng.standard_normal((height, width), dtype=np.float32)
        noise *= 0.9 + 0.28 * np.sqrt(frame)
        frame += noise
        np.clip(frame, 0.0, 255.0, out=frame)
        np.rint(frame, out=frame)
        out[i] = frame
    return out
