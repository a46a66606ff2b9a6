"""File fuzz cases: what one mutated file is and what a correct reader must do with it.

A :class:`FileCase` holds the bytes to write, the name to give the file and what
is expected: ``"answer"`` (the image data is intact, e.g. an ancillary chunk was
added: the pixels must come back, equal to the oracle's answer for
``oracle_data``), ``"error"`` (the image data is damaged: an
:class:`~napari_xray.errors.XrayReadError` naming the file, never pixels) or
``"either"`` (a clear error, or pixels equal to the oracle's answer for this
very file; pixels for a file the oracle calls damaged are a failure).
"""

from __future__ import annotations

from dataclasses import dataclass

ANSWER, ERROR, EITHER = "answer", "error", "either"


@dataclass(frozen=True)
class FileCase:
    """One fuzzed file."""

    name: str  # what was done, for the report
    kind: str  # "png" | "dicom"
    data: bytes
    expect: str  # ANSWER | ERROR | EITHER
    oracle_data: bytes | None = None  # what the oracle decodes (None: ``data``)

    @property
    def suffix(self) -> str:
        return ".png" if self.kind == "png" else ".dcm"
