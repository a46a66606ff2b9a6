"""to_float16 against NumPy's own cast, bit for bit, on the values where casts differ."""

from __future__ import annotations

import numpy as np
import pytest

from napari_xray.engine.dtypes import FLOAT16_MAX, to_float16


def _hard_values(dtype) -> np.ndarray:
    rng = np.random.default_rng(7)
    scales = rng.choice([1e-8, 1e-6, 1e-3, 1.0, 100.0, 1e4], size=(256, 512))
    values = np.clip(rng.standard_normal((256, 512)) * scales, -6e4, 6e4).astype(dtype)
    flat = values.reshape(-1)
    special = [np.inf, -np.inf, np.nan, FLOAT16_MAX, -FLOAT16_MAX, 65519.99, -65519.99, -0.0, 0.0,
               2.0**-24, 2.0**-25, 3 * 2.0**-26, 2.0**-14, 2.0**-14 - 2.0**-25]
    flat[: len(special)] = special
    ties = np.arange(2048, 4096, dtype=np.float64) + 0.5  # halfway between float16 neighbours
    flat[100 : 100 + ties.size] = ties
    subnormals = 2.0**-24 * np.arange(3000) / 7
    flat[5000 : 5000 + subnormals.size] = subnormals
    return values


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype == np.float16 and np.array_equal(a.view(np.uint16), b.view(np.uint16))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_numpy_bit_for_bit_on_ties_subnormals_zeros_and_non_finite(dtype):
    values = _hard_values(dtype)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16)
    assert _same_bits(to_float16(values), expected)


def test_stacks_views_and_integers_equal_numpy():
    stack = np.stack([_hard_values(np.float32)] * 3)
    assert _same_bits(to_float16(stack), stack.astype(np.float16))
    view = stack[:, ::2, 1::3]  # not contiguous: NumPy's route
    assert _same_bits(to_float16(view), view.astype(np.float16))
    integers = np.arange(-3000, 3000, dtype=np.int16).reshape(60, 100)
    assert _same_bits(to_float16(integers), integers.astype(np.float16))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("contiguous", [True, False])
def test_a_finite_value_beyond_float16_range_is_refused(dtype, contiguous):
    values = np.zeros((64, 64), dtype=dtype)
    values[3, 4] = -70000.0
    values[0, 0] = np.inf  # infinities stay infinite, as in NumPy; the finite overflow is the error
    if not contiguous:
        values = values[:, ::2]
    with pytest.raises(ValueError, match=r"70,000.*float16's range .*65,504.*float32"):
        to_float16(values)


def test_values_that_round_to_the_largest_float16_pass():
    values = np.full((8, 8), 65519.99, dtype=np.float32)  # rounds down to 65,504
    assert np.all(to_float16(values) == np.float16(FLOAT16_MAX))
    values[0, 0] = 65520.0  # rounds to infinity
    with pytest.raises(ValueError, match="65,520"):
        to_float16(values)
    values[0, 0] = -65520.0
    with pytest.raises(ValueError, match="65,520"):
        to_float16(values)


def test_a_nan_does_not_hide_an_overflow():
    values = np.zeros((64, 64), dtype=np.float32)
    values[0, ::8] = 70000.0  # in every SIMD lane, each followed by NaNs
    values[0, 4::8] = np.nan
    with pytest.raises(ValueError, match="70,000"):
        to_float16(values)


def test_integers_beyond_float16_range_are_refused():
    with pytest.raises(ValueError, match="70,000"):
        to_float16(np.array([[1, 70000]], dtype=np.int32))
    assert to_float16(np.array([[-65519, 65519]], dtype=np.int32)).tolist() == [[-65504, 65504]]
