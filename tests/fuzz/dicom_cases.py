"""Seeded DICOM mutations of pydicom's own test files.

Byte-level (bit flips, truncation, zeros or garbage appended after the data
set) and element-level (Rows, Columns, Bits*, PixelRepresentation, NumberOfFrames,
SamplesPerPixel, PhotometricInterpretation, rescale, pixel data length, the
transfer syntax and how the data set is really encoded), written with pydicom.
Damage the issue lists (NaN/inf rescale, empty Rows, BitsStored 0, an unknown
transfer syntax, a little-endian file labelled big endian, sizes over the limits)
expects an error; appended bytes expect the seed's pixels; the rest an error or
pydicom's own answer.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .files import ANSWER, EITHER, ERROR, FileCase

SEED_FILES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "MR_small_padded.dcm",
    "MR_small_RLE.dcm",
    "dicomdirtests/77654033/CR1/6154",
    "SC_rgb_small_odd.dcm",
    "SC_rgb_rle.dcm",
    "SC_rgb_rle_32bit.dcm",
    "SC_rgb_rle_16bit_2frame.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "image_dfl.dcm",
    "rtdose.dcm",
    "liver_1frame.dcm",
    "JPEG-lossy.dcm",  # no decoder installed: a clear error naming the package
)
#: Seeds no installed decoder reads (the test environment has no pylibjpeg/gdcm).
UNDECODABLE = frozenset({"JPEG-lossy.dcm"})
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_BIG_ENDIAN = "1.2.840.10008.1.2.2"


def test_files() -> Path:
    import pydicom.data

    return Path(pydicom.data.__file__).parent / "test_files"


@contextlib.contextmanager
def _lenient():
    """Let pydicom write any value (NaN, empty, out of range) without complaint."""
    from pydicom import config

    reading, writing = (
        config.settings.reading_validation_mode,
        config.settings.writing_validation_mode,
    )
    config.settings.reading_validation_mode = config.IGNORE
    config.settings.writing_validation_mode = config.IGNORE
    try:
        yield
    finally:
        config.settings.reading_validation_mode = reading
        config.settings.writing_validation_mode = writing


def _dataset(data: bytes):
    import pydicom

    return pydicom.dcmread(io.BytesIO(data))


def _saved(ds, **options) -> bytes:
    import pydicom

    buffer = io.BytesIO()
    if options:
        pydicom.dcmwrite(buffer, ds, **options)
    else:
        ds.save_as(buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- byte level


def flip_any_bit(rng, data, ds):
    position = int(rng.integers(132, len(data)))
    out = bytearray(data)
    out[position] ^= 1 << int(rng.integers(8))
    return f"bit flip at byte {position}", bytes(out), EITHER, None


def truncate(rng, data, ds):
    cut = int(rng.integers(0, len(data)))
    return f"truncated to {cut} bytes", data[:cut], EITHER, None


def append_zeros(rng, data, ds):
    count = int(rng.choice([1, 2, 100, 4096, 1 << 20]))
    return f"{count} zero bytes appended", data + bytes(count), ANSWER, data


def append_garbage(rng, data, ds):
    tail = rng.integers(0, 256, int(rng.integers(1, 3000)), dtype=np.uint8).tobytes()
    return f"{len(tail)} random bytes appended", data + tail, ANSWER, data


# ------------------------------------------------------------------------ element level

_FIELD_VALUES = {
    "Rows": lambda v: [0, 1, v - 1, v + 1, 2 * v, 65535, None],
    "Columns": lambda v: [0, 1, v - 1, v + 1, 2 * v, 65535, None],
    "BitsAllocated": lambda v: [0, 1, 8, 12, 16, 32, 64, 255, None],
    "BitsStored": lambda v: [0, 1, 7, 8, 12, 15, 16, 17, 32, None],
    "HighBit": lambda v: [0, 7, 11, 15, 31, 200],
    "PixelRepresentation": lambda v: [0, 1, 2, None],
    "SamplesPerPixel": lambda v: [0, 1, 2, 3, 4, None],
    "NumberOfFrames": lambda v: [0, 1, 2, 3, -1, 1000, None],
    "PlanarConfiguration": lambda v: [0, 1, 2],
    "PhotometricInterpretation": lambda v: [
        "MONOCHROME1",
        "MONOCHROME2",
        "RGB",
        "PALETTE COLOR",
        "YBR_FULL",
        "",
        "NONSENSE",
    ],  # fmt: skip
    "RescaleSlope": lambda v: ["0", "1", "-1", "0.5", "1e-30", "1e30", "2", "abc", None],
    "RescaleIntercept": lambda v: ["0", "-1024", "0.25", "1e30", "-1e300", "xyz", None],
}


def set_field(rng, data, ds):
    keyword = list(_FIELD_VALUES)[int(rng.integers(len(_FIELD_VALUES)))]
    current = ds.get(keyword)
    try:
        base = int(current)
    except (TypeError, ValueError):
        base = 16
    choices = _FIELD_VALUES[keyword](base)
    value = choices[int(rng.integers(len(choices)))]
    if rng.random() < 0.1:
        if keyword in ds:
            del ds[keyword]
        what = f"{keyword} removed"
    else:
        setattr(ds, keyword, value)
        what = f"{keyword} = {value!r}"
    return what, _saved(ds), EITHER, None


def rescale_not_finite(rng, data, ds):
    keyword = ("RescaleSlope", "RescaleIntercept")[int(rng.integers(2))]
    value = ("nan", "inf", "-inf")[int(rng.integers(3))]
    setattr(ds, keyword, value)
    return f"{keyword} = {value}", _saved(ds), ERROR, None


def empty_size(rng, data, ds):
    keyword = ("Rows", "Columns")[int(rng.integers(2))]
    setattr(ds, keyword, None)
    return f"{keyword} empty", _saved(ds), ERROR, None


def bits_stored_zero(rng, data, ds):
    ds.BitsStored = 0
    return "BitsStored = 0", _saved(ds), ERROR, None


def unknown_transfer_syntax(rng, data, ds):
    stated = str(ds.file_meta.TransferSyntaxUID).encode()
    fake = (b"1.2.840.10008.9." + b"9" * 64)[: len(stated)]
    pad = b"\0" if len(stated) % 2 else b""
    out = data.replace(stated + pad, fake + pad, 1)
    return "unknown transfer syntax", out, ERROR if out != data else EITHER, None


def too_large(rng, data, ds):
    if rng.random() < 0.5:
        ds.Rows, ds.Columns = 20066, 20066
        what = "Rows = Columns = 20066"
    else:
        ds.NumberOfFrames = 10**6
        ds.Rows, ds.Columns = 1024, 1024
        what = "10**6 frames of 1024²"
    return what, _saved(ds), ERROR, None


def pixel_data_length(rng, data, ds):
    pixels = ds.PixelData
    change = int(rng.choice([-len(pixels) // 2, -2, -1, 1, 2, len(pixels)]))
    ds.PixelData = pixels[: len(pixels) + change] if change < 0 else pixels + bytes(change)
    return f"pixel data {change:+d} bytes", _saved(ds), EITHER, None


def little_endian_labelled_big(rng, data, ds):
    """Two ways: the label edited in place, or pydicom writing BE without swapping pixels."""
    stated = str(ds.file_meta.TransferSyntaxUID)
    if stated != _EXPLICIT_LE:
        return set_field(rng, data, ds)
    if rng.random() < 0.5:
        out = data.replace(_EXPLICIT_LE.encode() + b"\0", _BIG_ENDIAN.encode() + b"\0", 1)
        return "little endian labelled big endian (label edited)", out, ERROR, None
    import pydicom

    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRBigEndian
    out = _saved(ds, implicit_vr=False, little_endian=False, force_encoding=True)
    wide = int(ds.get("BitsAllocated", 16)) in (16, 32) and int(ds.get("SamplesPerPixel", 1)) == 1
    return "big-endian header, little-endian pixels", out, ERROR if wide else EITHER, None


def relabel(rng, data, ds):
    """Another transfer syntax in the file meta, the data set left as it is."""
    import pydicom

    target = [pydicom.uid.ImplicitVRLittleEndian, pydicom.uid.ExplicitVRLittleEndian,
              pydicom.uid.DeflatedExplicitVRLittleEndian, pydicom.uid.RLELossless,
              pydicom.uid.JPEGBaseline8Bit][int(rng.integers(5))]  # fmt: skip
    implicit, little = ds.original_encoding
    ds.file_meta.TransferSyntaxUID = target
    out = _saved(ds, implicit_vr=implicit, little_endian=little, force_encoding=True)
    return f"relabelled as {target.name}", out, EITHER, None


BYTE_MUTATIONS = ((flip_any_bit, 5), (truncate, 3), (append_zeros, 1), (append_garbage, 1))
ELEMENT_MUTATIONS = (
    (set_field, 8),
    (rescale_not_finite, 1),
    (empty_size, 1),
    (bits_stored_zero, 1),
    (unknown_transfer_syntax, 1),
    (too_large, 1),
    (pixel_data_length, 1),
    (little_endian_labelled_big, 1),
    (relabel, 1),
)


def dicom_cases(seed: int, count: int) -> Iterator[FileCase]:
    """``count`` seeded DICOM cases: the seeds themselves, then mutations of them."""
    rng = np.random.default_rng(seed)
    folder = test_files()
    seeds = {name: (folder / name).read_bytes() for name in SEED_FILES}
    for name, data in seeds.items():
        yield FileCase(
            f"{name}: unchanged", "dicom", data, EITHER if name in UNDECODABLE else ANSWER
        )
    mutations = BYTE_MUTATIONS + ELEMENT_MUTATIONS
    weights = np.array([w for _, w in mutations], float)
    names = list(seeds)
    produced = len(seeds)
    while produced < count:
        name = names[int(rng.integers(len(names)))]
        data = seeds[name]
        mutation, _ = mutations[int(rng.choice(len(mutations), p=weights / weights.sum()))]
        with _lenient():
            ds = _dataset(data)
            try:
                what, mutated, expect, oracle = mutation(rng, data, ds)
            except Exception as error:  # pydicom refused to write this mutation
                what, mutated, expect, oracle = (
                    f"unwritable ({type(error).__name__})",
                    data,
                    EITHER,
                    None,
                )
        if expect == ANSWER and name in UNDECODABLE:
            expect = EITHER  # intact, but no decoder here: an error naming the codec is right
        yield FileCase(f"{name}: {what}", "dicom", mutated, expect, oracle)
        produced += 1
