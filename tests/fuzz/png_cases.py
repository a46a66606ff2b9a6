"""Seeded PNG mutations: the real ChestX-ray8 frames and small PNGs of every colour type.

Every case is a :class:`~fuzz.files.FileCase`. Mutations that keep the image data
intact (ancillary chunks added, IDAT re-split, bytes after IEND) expect the
seed's pixels; mutations that damage it (an IDAT bit flip, image data that ends
early, a truncated file, an IHDR that claims one row more) expect an error; the
rest (random bit flips, IHDR fields with a valid CRC, chunk lengths, recompressed
data with changed bytes or filter types) expect an error or the oracle's answer.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from .files import ANSWER, EITHER, ERROR, FileCase
from .oracles import SIGNATURE

# --------------------------------------------------------------------------- building


def chunk(kind: bytes, payload: bytes) -> bytes:
    """One PNG chunk with a valid CRC."""
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload))
    )


def chunks(data: bytes) -> list[tuple[int, int, bytes]]:
    """``(offset, length, type)`` of each chunk of a well-formed PNG, IEND included."""
    found, offset = [], len(SIGNATURE)
    while offset + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, offset)
        found.append((offset, length, kind))
        offset += 12 + length
        if kind == b"IEND":
            break
    return found


def _filtered_rows(array: np.ndarray, bit_depth: int) -> list[bytes]:
    sample = ">u2" if bit_depth == 16 else "u1"
    return [b"\x00" + array[y].astype(sample).tobytes() for y in range(array.shape[0])]


def png_bytes(array: np.ndarray, bit_depth: int, color_type: int, interlace: bool = False) -> bytes:
    """A PNG written by hand (filter 0): any bit depth ≥ 8, any colour type, Adam7 or not."""
    height, width = array.shape[:2]
    if interlace:
        rows = []
        for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                               (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)):  # fmt: skip
            sub = array[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                rows += _filtered_rows(sub, bit_depth)
    else:
        rows = _filtered_rows(array, bit_depth)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, int(interlace))
    return (
        SIGNATURE
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def _pillow_png(image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def synthetic_seeds(seed: int = 0) -> dict[str, bytes]:
    """Small PNGs of every colour type and bit depth (seeded, smooth-ish content)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    shape = (23, 31)
    ramp = np.add.outer(np.arange(shape[0]) * 9, np.arange(shape[1]) * 7)
    gray8 = (ramp + rng.integers(0, 8, shape)).astype(np.uint8)
    rgb8 = np.stack([gray8, gray8[::-1], 255 - gray8], -1).astype(np.uint8)
    rgba8 = np.concatenate([rgb8, rng.integers(0, 256, (*shape, 1), dtype=np.uint8)], -1)
    gray16 = (ramp.astype(np.uint32) * 97 + rng.integers(0, 64, shape)).astype(np.uint16)
    rgb16 = np.stack([gray16, gray16[::-1], 65535 - gray16], -1).astype(np.uint16)
    seeds = {
        "gray8": _pillow_png(Image.fromarray(gray8, "L")),
        "gray16": _pillow_png(Image.fromarray(gray16)),
        "rgb8": _pillow_png(Image.fromarray(rgb8, "RGB")),
        "rgba8": _pillow_png(Image.fromarray(rgba8, "RGBA")),
        "la8": _pillow_png(Image.fromarray(rgba8[..., 2:], "LA")),
        "palette8": _pillow_png(Image.fromarray(rgb8, "RGB").quantize(200)),
        "palette4": _pillow_png(Image.fromarray(rgb8, "RGB").quantize(16), bits=4),
        "bilevel": _pillow_png(Image.fromarray(gray8 > 120)),
        "gray4": _pillow_png(Image.fromarray((gray8 >> 4).astype(np.uint8), "L"), bits=4),
        "gray2": _pillow_png(Image.fromarray((gray8 >> 6).astype(np.uint8), "L"), bits=2),
        "rgb16": png_bytes(rgb16, 16, 2),
        "rgba16": png_bytes(np.concatenate([rgb16, gray16[..., None]], -1), 16, 6),
        "la16": png_bytes(np.stack([gray16, gray16[::-1]], -1), 16, 4),
        "interlaced_gray8": png_bytes(gray8, 8, 0, interlace=True),
        "interlaced_rgb8": png_bytes(rgb8, 8, 2, interlace=True),
        "text_chunk": _pillow_png(Image.fromarray(gray8, "L"), pnginfo=_text_info()),
    }
    return seeds


def _text_info():
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("Comment", "chest x-ray " * 40)
    info.add_text("Software", "napari-xray fuzz", zip=True)
    return info


# --------------------------------------------------------------------------- mutations

Mutation = Callable[[np.random.Generator, bytes], tuple[str, bytes, str, bytes | None]]


def _idat_stream(data: bytes) -> bytes:
    return b"".join(data[o + 8 : o + 8 + n] for o, n, k in chunks(data) if k == b"IDAT")


def with_image_data(data: bytes, stream: bytes, pieces: int = 1) -> bytes:
    """``data`` with its IDAT chunks replaced by ``stream`` cut into ``pieces`` chunks."""
    parts, first_idat = [], None
    for offset, length, kind in chunks(data):
        if kind == b"IDAT":
            if first_idat is None:
                first_idat = len(parts)
                step = max(1, -(-len(stream) // pieces))
                parts += [chunk(b"IDAT", stream[i : i + step]) for i in range(0, len(stream), step)]
            continue
        parts.append(data[offset : offset + 12 + length])
    return SIGNATURE + b"".join(parts)


def _ihdr(data: bytes) -> list[int]:
    return list(struct.unpack(">IIBBBBB", data[16:29]))


def _with_ihdr(data: bytes, fields: list[int]) -> bytes:
    payload = struct.pack(
        ">IIBBBBB", *[min(v, 0xFFFFFFFF if i < 2 else 255) for i, v in enumerate(fields)]
    )
    return data[:8] + chunk(b"IHDR", payload) + data[33:]


def _row_layout(data: bytes) -> tuple[int, int]:
    """(rows, bytes per row with filter byte) of a non-interlaced seed."""
    width, height, depth, color = _ihdr(data)[:4]
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    return height, 1 + (width * channels * depth + 7) // 8


def flip_any_bit(rng, data):
    position = int(rng.integers(8, len(data)))
    out = bytearray(data)
    out[position] ^= 1 << int(rng.integers(8))
    return f"bit flip at byte {position}", bytes(out), EITHER, None


def flip_image_data_bit(rng, data):
    idat = [(o, n) for o, n, k in chunks(data) if k == b"IDAT" and n]
    offset, length = idat[int(rng.integers(len(idat)))]
    position = offset + 8 + int(rng.integers(length))
    out = bytearray(data)
    out[position] ^= 1 << int(rng.integers(8))
    return f"IDAT bit flip at byte {position}", bytes(out), ERROR, None


def truncate(rng, data):
    cut = int(rng.integers(0, len(data)))
    return f"truncated to {cut} bytes", data[:cut], ERROR, None


def ihdr_field(rng, data):
    fields = _ihdr(data)
    index = int(rng.integers(7))
    value = fields[index]
    choices = [value + 1, value - 1, value * 2, 0, 2**31, int(rng.integers(0, 256))]
    if index >= 2:
        choices = [1, 2, 4, 8, 16, 3, 6, 255, value + 1] if index in (2, 3) else [0, 1, 2, 255]
    fields[index] = max(0, int(choices[int(rng.integers(len(choices)))]))
    names = ("width", "height", "bit depth", "colour type", "compression", "filter", "interlace")
    return (
        f"IHDR {names[index]} = {fields[index]} (valid CRC)",
        _with_ihdr(data, fields),
        EITHER,
        None,
    )


def one_row_more(rng, data):
    fields = _ihdr(data)
    fields[1] += 1
    return "IHDR claims one row more (valid CRC)", _with_ihdr(data, fields), ERROR, None


def short_ihdr(rng, data):
    payload = data[16:29][: int(rng.integers(0, 13))]
    return (
        f"IHDR of {len(payload)} bytes (valid CRC)",
        data[:8] + chunk(b"IHDR", payload) + data[33:],
        ERROR,
        None,
    )


def chunk_length(rng, data):
    found = chunks(data)
    offset, length, kind = found[int(rng.integers(len(found)))]
    new = int(rng.choice([length + 1, max(0, length - 1), 0, length * 2 + 7, 2**31 - 1, 2**32 - 1,
                          200_000_000]))  # fmt: skip
    out = data[:offset] + struct.pack(">I", new) + data[offset + 4 :]
    return f"{kind.decode()} length {length} -> {new}", out, EITHER, None


def image_data_ends_early(rng, data):
    rows, row_bytes = _row_layout(data)
    raw = zlib.decompress(_idat_stream(data))
    keep = int(rng.integers(0, rows))
    stream = zlib.compress(raw[: keep * row_bytes + int(rng.integers(0, row_bytes))])
    return (
        f"image data recompressed with {keep} of {rows} rows",
        with_image_data(data, stream),
        ERROR,
        None,
    )


def image_data_cut(rng, data):
    stream = _idat_stream(data)
    cut = int(rng.integers(0, len(stream)))
    return (
        f"zlib stream cut at {cut} (valid CRC)",
        with_image_data(data, stream[:cut]),
        ERROR,
        None,
    )


def bad_filter_type(rng, data):
    rows, row_bytes = _row_layout(data)
    raw = bytearray(zlib.decompress(_idat_stream(data)))
    row = int(rng.integers(rows))
    raw[row * row_bytes] = int(rng.integers(5, 256))
    out = with_image_data(data, zlib.compress(bytes(raw)))
    return f"row {row} filter type {raw[row * row_bytes]} (valid CRC)", out, ERROR, None


def changed_pixels(rng, data):
    """A valid PNG with other filtered bytes (filter types 0–4): other pixels, still right."""
    raw = bytearray(zlib.decompress(_idat_stream(data)))
    for _ in range(int(rng.integers(1, 20))):
        position = int(rng.integers(len(raw)))
        raw[position] = int(rng.integers(0, 5)) if rng.random() < 0.2 else int(rng.integers(256))
    out = with_image_data(data, zlib.compress(bytes(raw), int(rng.integers(0, 10))))
    return "image data changed and recompressed (valid)", out, EITHER, None


def extra_image_data(rng, data):
    raw = zlib.decompress(_idat_stream(data))
    stream = zlib.compress(raw + bytes(int(rng.integers(1, 5000))))
    return "more image data than rows", with_image_data(data, stream), EITHER, data


def resplit_image_data(rng, data):
    stream = _idat_stream(data)
    pieces = int(rng.integers(1, 64))
    return (
        f"IDAT re-split into {pieces} chunks",
        with_image_data(data, stream, pieces),
        ANSWER,
        data,
    )


def ancillary_chunk(rng, data):
    kind = [b"tEXt", b"zTXt", b"iTXt", b"prVt", b"eXIf", b"iCCP"][int(rng.integers(6))]
    payload = rng.integers(
        0, 256, int(rng.choice([0, 10, 5000, 300_000])), dtype=np.uint8
    ).tobytes()
    piece = chunk(kind, payload)
    if rng.random() < 0.3:  # a damaged ancillary chunk does not touch the image
        piece = piece[:-1] + bytes([piece[-1] ^ 0xFF])
    first_after_ihdr = 33
    iend = chunks(data)[-1][0]
    where = first_after_ihdr if rng.random() < 0.5 else iend
    out = data[:where] + piece + data[where:]
    return f"{kind.decode()} chunk of {len(payload)} bytes added", out, ANSWER, data


def huge_claimed_chunk(rng, data):
    claimed = int(rng.choice([200_000_000, 2**31 - 1]))
    piece = struct.pack(">I", claimed) + b"tEXt" + b"Comment\x00short"
    out = data[:33] + piece + data[33:]
    return f"tEXt chunk claiming {claimed} bytes", out, ERROR, None


def after_iend(rng, data):
    tail = rng.integers(0, 256, int(rng.integers(1, 4000)), dtype=np.uint8).tobytes()
    return f"{len(tail)} bytes after IEND", data + tail, ANSWER, data


def without_iend(rng, data):
    iend = chunks(data)[-1][0]
    return "no IEND chunk", data[:iend], ERROR, None


def unknown_critical_chunk(rng, data):
    out = data[:33] + chunk(b"ABCD", b"xyz") + data[33:]
    return "unknown critical chunk", out, EITHER, None


def swap_chunks(rng, data):
    found = chunks(data)
    i, j = sorted(int(v) for v in rng.choice(len(found), 2, replace=False))
    pieces = [data[o : o + 12 + n] for o, n, _ in found]
    pieces[i], pieces[j] = pieces[j], pieces[i]
    return f"chunks {i} and {j} swapped", SIGNATURE + b"".join(pieces), EITHER, None


def shrink_palette(rng, data):
    found = [(o, n) for o, n, k in chunks(data) if k == b"PLTE"]
    if not found:
        return flip_any_bit(rng, data)
    offset, length = found[0]
    entries = int(rng.integers(1, length // 3 + 1))
    payload = data[offset + 8 : offset + 8 + 3 * entries]
    out = data[:offset] + chunk(b"PLTE", payload) + data[offset + 12 + length :]
    return f"palette cut to {entries} entries (valid CRC)", out, EITHER, None


MUTATIONS: tuple[tuple[Mutation, float, bool], ...] = (
    # (mutation, weight, needs a non-interlaced seed)
    (flip_any_bit, 4, False),
    (flip_image_data_bit, 3, False),
    (truncate, 3, False),
    (ihdr_field, 4, False),
    (one_row_more, 1, True),
    (short_ihdr, 1, False),
    (chunk_length, 2, False),
    (image_data_ends_early, 2, True),
    (image_data_cut, 2, False),
    (bad_filter_type, 1, True),
    (changed_pixels, 3, False),
    (extra_image_data, 1, False),
    (resplit_image_data, 1, False),
    (ancillary_chunk, 2, False),
    (huge_claimed_chunk, 1, False),
    (after_iend, 1, False),
    (without_iend, 1, False),
    (unknown_critical_chunk, 1, False),
    (swap_chunks, 1, False),
    (shrink_palette, 1, False),
)


def png_cases(
    seed: int, count: int, real_frames: list[Path], real_share: float = 0.3
) -> Iterator[FileCase]:
    """``count`` seeded PNG cases: the seeds themselves, then mutations of them."""
    rng = np.random.default_rng(seed)
    seeds = synthetic_seeds(seed)
    real = {path.name: path.read_bytes() for path in real_frames}
    for name, data in {**seeds, **dict(list(real.items())[:1])}.items():
        yield FileCase(f"{name}: unchanged", "png", data, ANSWER)
    weights = np.array([w for _, w, _ in MUTATIONS], float)
    synthetic_names = sorted(seeds)
    produced = len(seeds) + min(1, len(real))
    while produced < count:
        use_real = real and rng.random() < real_share
        pool = real if use_real else seeds
        names = sorted(real) if use_real else synthetic_names
        seed_name = names[int(rng.integers(len(names)))]
        data = pool[seed_name]
        mutation, _, plain_only = MUTATIONS[
            int(rng.choice(len(MUTATIONS), p=weights / weights.sum()))
        ]
        if plain_only and data[28]:  # interlaced seed
            continue
        what, mutated, expect, oracle = mutation(rng, data)
        yield FileCase(f"{seed_name}: {what}", "png", mutated, expect, oracle)
        produced += 1
